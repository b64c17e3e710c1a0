"""`[scoring] clarity_share`: the operator chooses what the score serves, ranking by the chance the agent finishes
(the shipped table's small clarity share) or declining vague tickets first (a large one); docs/scoring.md has the
figures of each share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_config import MINIMAL, problems, write
from tracker_bridge.config import ScoringConfig, load_settings
from tracker_bridge.models import Ticket
from tracker_bridge.scoring import score_ticket
from tracker_bridge.scoring.model import describe_weights, load_weights

VAGUE = Ticket(
    ref="T-1",
    tracker="board",
    title="Support a dry-run option for `export_invoices()`",
    description="It would be nice if `export_invoices()` could do a dry run. Maybe a flag? Not sure what the output "
    "should look like, or whether it should write a file at all. What do you think?",
)
CLEAR = Ticket(
    ref="T-2",
    tracker="board",
    title="`invoice_total()` returns 0 for invoices with a discount",
    description="Steps to reproduce:\n\n```python\nfrom billing.invoice import invoice_total\n"
    "invoice_total(Invoice(lines=[10], discount=0.1))\n```\n\n"
    "Expected: 9.0\nActual: 0, because the discount is applied after rounding. Version 2.3.1.",
)


def test_by_default_the_vague_proposal_is_taken_and_with_clarity_first_it_is_declined() -> None:
    default = ScoringConfig(repo_analysis=False)
    clarity_first = ScoringConfig(repo_analysis=False, clarity_share=1.0)
    assert score_ticket(VAGUE, default).accepted  # the shipped table ranks by the chance of success
    vague, clear = score_ticket(VAGUE, clarity_first), score_ticket(CLEAR, clarity_first)
    assert not vague.accepted and clear.accepted
    assert vague.value < score_ticket(VAGUE, default).value
    weights = {f.name: f.weight for f in vague.factors}
    assert weights["clarity"] == pytest.approx(0.75) and weights["scope"] == 0.0
    # The decline still says what to add for clarity.
    assert any("expected" in s.lower() or "question" in s.lower() for s in vague.suggestions), vague.suggestions


def test_the_table_s_own_share_changes_nothing_and_another_moves_the_knot_the_fit_found() -> None:
    shipped = load_weights()
    same = shipped.with_clarity_share(shipped.clarity_share)
    assert same.knot == pytest.approx(shipped.knot) and same.blend == pytest.approx(shipped.blend)
    knots = shipped.extra["knots_by_clarity_share"]
    assert isinstance(knots, dict)
    assert shipped.with_clarity_share(0.8).knot == pytest.approx(knots["0.8"])
    between = shipped.with_clarity_share(0.9).knot  # interpolated between the fitted shares
    assert knots["0.8"] < between < knots["1"]
    # The two fitted factors keep their total weight.
    moved = shipped.with_clarity_share(0.5).blend
    assert moved["clarity"] + moved["scope"] == pytest.approx(shipped.blend["clarity"] + shipped.blend["scope"])


def test_a_table_without_knots_keeps_its_knot() -> None:
    shipped = load_weights()
    bare = shipped.__class__(shipped.clarity, shipped.scope, shipped.blend, shipped.knot)
    assert bare.with_clarity_share(0.8).knot == shipped.knot


def test_doctor_s_line_says_the_share_in_use() -> None:
    line = describe_weights(load_weights(), 0.8)
    assert "clarity share 0.8 ([scoring] clarity_share; the table's is 0.1)" in line


@pytest.mark.parametrize("value", ["0", "1.5", '"high"'])
def test_a_share_out_of_range_names_the_key(tmp_path: Path, value: str) -> None:
    (tmp_path / "tickets").mkdir()
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    [line] = problems(write(tmp_path, MINIMAL + f"\n[scoring]\nclarity_share = {value}\n"))
    assert "clarity_share" in line and "[scoring]" in line, line


def test_a_valid_share_is_read(tmp_path: Path) -> None:
    (tmp_path / "tickets").mkdir()
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    settings = load_settings(write(tmp_path, MINIMAL + "\n[scoring]\nclarity_share = 0.8\n"))
    assert settings.scoring.clarity_share == 0.8
