"""Each readable text feature on small hand-written tickets: present where a person would see it, absent otherwise."""

from __future__ import annotations

import pytest

from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Ticket
from tracker_bridge.scoring import score_ticket
from tracker_bridge.scoring.features import ADVICE, CLARITY_FEATURES, DIRECTION, LABELS, SCOPE_FEATURES, text_features
from tracker_bridge.scoring.model import load_weights
from tracker_bridge.scoring.text import analyse_text

PLAIN = Ticket(ref="P-1", tracker="t", title="Totals are off", description="The invoice total is off by a cent.")


def features(title: str, description: str) -> dict[str, float]:
    return text_features(analyse_text(Ticket(ref="F-1", tracker="t", title=title, description=description)))


CASES: list[tuple[str, str, str]] = [
    ("expected", "Rounding", "`round_total(1.005)` gives 1.0. Expected: 1.01."),
    ("expected", "Rounding", "It prints 1.0 instead of 1.01."),
    ("repro", "Rounding", "Steps to reproduce: open an invoice with one line."),
    ("repro", "Rounding", "```python\nround_total(1.005)\n```"),
    ("traceback", "Crash", 'Traceback (most recent call last):\n  File "app.py", line 3, in <module>\nKeyError: 1'),
    ("named", "Rounding", "The bug is in `billing.invoice.total()`."),
    ("title_symbol", "`round_total()` rounds half down", "It does."),
    ("fix", "Rounding", "The fix is to use Decimal.quantize with ROUND_HALF_UP."),
    ("fix", "Rounding", "I can open a pull request for this."),
    ("missing_case", "CSV export", "The exporter does not support semicolons as separators."),
    ("version", "Rounding", "This broke in version 2.3.1."),
    ("acceptance", "Rounding", "Acceptance criteria: totals of 1.005 show 1.01."),
    ("explains", "Rounding", "It is wrong because binary floats cannot hold 1.005."),
    ("link", "Rounding", "See https://example.org/discussion for the report."),
    ("template", "Rounding", "**Describe the bug**\nTotals are off.\n**Expected behavior**\nThey are not."),
    ("unsure", "Rounding", "I am not sure what the total should be."),
    ("questions", "Rounding", "Should it round up? Or to even?"),
    ("hedges", "Rounding", "Maybe we should perhaps round differently."),
    ("feature", "Export", "It would be nice to have a new option for the separator."),
    ("ticket_refs", "Rounding", "Same as #1234, see there."),
    ("docs", "Rounding", "Also update the documentation."),
    ("asks", "Many things", "Fix totals. Also fix the tax. Additionally the export. Also the PDF."),
    ("proposes", "Export", "I propose a separator option for the CSV export."),
    ("proposes", "Export", "Why not let the user pick the separator?"),
]


@pytest.mark.parametrize(("name", "title", "description"), CASES)
def test_each_feature_is_seen_where_a_person_would_see_it(name: str, title: str, description: str) -> None:
    assert features(title, description)[name] > 0
    assert text_features(analyse_text(PLAIN))[name] == 0


def test_size_breadth_and_code_grow_with_the_ticket() -> None:
    short = features("Rounding", "The total is off.")
    long = features("Rounding", " ".join(["The total is off in many places."] * 200))
    many = features("Rounding", ", ".join(f"`mod{i}.func{i}()`" for i in range(30)))
    code = features("Rounding", "```\n" + "x = 1\n" * 100 + "```")
    assert short["size"] == 0 and long["size"] > 0.8
    assert short["breadth"] == 0 and many["breadth"] == 1.0
    assert short["code"] == 0 and code["code"] > 0.9
    # "very short": under 60 words of title and body, whatever they say.
    assert short["short"] == 1.0 and long["short"] == 0.0 and code["short"] == 0.0
    assert features("Rounding", " ".join(["word"] * 57))["short"] == 1.0
    assert features("Rounding", " ".join(["word"] * 59))["short"] == 0.0
    assert long["prose"] > short["prose"]


def test_every_feature_has_a_label_a_direction_and_a_weight_the_right_way_round() -> None:
    weights = load_weights()
    for name in (*CLARITY_FEATURES, *SCOPE_FEATURES):
        assert name in LABELS and name in DIRECTION
    for model, names in ((weights.clarity, CLARITY_FEATURES), (weights.scope, SCOPE_FEATURES)):
        for name in names:
            assert model.coef.get(name, 0.0) * DIRECTION[name] >= 0, name


def test_a_decline_names_what_to_add_and_the_ticket_with_them_added_is_taken() -> None:
    config = ScoringConfig()
    vague = Ticket(
        ref="V-1", tracker="t", title="Totals are wrong", description="Maybe the totals are wrong? Not sure why."
    )
    declined = score_ticket(vague, config)
    assert not declined.accepted
    wanted = {ADVICE["named"], ADVICE["repro"], ADVICE["expected"]}
    assert wanted <= set(declined.suggestions)
    assert any("open" in s for s in declined.suggestions)  # the hedges and the question are named too

    relabelled = vague.model_copy(
        update={
            "title": "`invoice_total()` drops the discount",
            "description": (
                "`invoice_total()` in billing/invoice.py ignores the line discount.\n\n"
                "Steps to reproduce:\n```python\ninvoice_total([Line(10.0, discount=0.1)])\n```\n"
                "Expected: 9.0, actual: 10.0.\n\nAcceptance criteria: a 10% discount on a 10.0 line totals 9.0."
            ),
        }
    )
    taken = score_ticket(relabelled, config)
    assert taken.accepted
    assert taken.suggestions == []


def test_a_short_proposal_is_told_to_state_the_decision() -> None:
    proposal = Ticket(
        ref="P-2",
        tracker="t",
        title="Separator option for exports",
        description="It would be nice to pick the CSV separator. I propose a setting for it, why not?",
    )
    score = score_ticket(proposal, ScoringConfig())
    clarity = next(f for f in score.factors if f.name == "clarity")

    assert not score.accepted
    assert "proposes or suggests rather than reports" in clarity.reason and "very short" in clarity.reason
    assert ADVICE["proposes"] in score.suggestions
