"""bench/triage_robustness.py: the pass rule, the recalibration it simulates, and its modes on a tiny data set."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Ticket
from tracker_bridge.scoring import score_ticket
from tracker_bridge.scoring.model import load_weights

CALIBRATION_KNOT = load_weights().knot

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "triage_robustness.py"

ROWS = [
    ("`parse()` drops the sign\n`parse('-1')` gives 1. Expected -1.", 0.9),
    ("Epic: rethink everything\nMaybe explore options?", 0.1),
    ("`fmt()` pads wrongly\n`fmt(1)` gives ' 1'. Expected '1'.", 0.7),
    ("Investigate slowness\nNot sure where, perhaps the database?", 0.2),
    ("`Table.sort()` does not support `key=`\nA patch is attached.", 0.8),
    ("Several things are odd\nAlso the docs, and see #1234 and #2345. Maybe the settings too?", 0.3),
    ("`round_to()` is wrong for negatives\nSince 2.1, `round_to(-1.5)` gives -1. Expected -2.", 0.6),
    ("Improve the user experience\nThink about what users want; perhaps a redesign?", 0.0),
]


@pytest.fixture(scope="module")
def robustness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("triage_robustness", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclass resolves annotations through sys.modules.
    sys.modules.setdefault("triage_robustness", module)
    spec.loader.exec_module(module)
    return module


def test_margin_is_the_smallest_slack_and_passes_at_zero(robustness: ModuleType) -> None:
    ok = robustness.HalfFigures(spearman=0.30, uplift=0.12, fraction=0.35)
    assert ok.margin == pytest.approx(0.02)
    assert ok.passes
    short = robustness.HalfFigures(spearman=0.40, uplift=0.20, fraction=0.29)
    assert short.margin == pytest.approx(-0.01)
    assert not short.passes


def test_percentile_is_nearest_rank(robustness: ModuleType) -> None:
    xs = [float(i) for i in range(11)]
    assert robustness.percentile(xs, 10) == 1.0
    assert robustness.percentile(xs, 50) == 5.0
    assert robustness.percentile([3.0], 10) == 3.0


def test_rescale_at_the_current_knot_gives_the_scores_back(robustness: ModuleType) -> None:
    config = ScoringConfig(repo_analysis=False, llm=False)
    scores = [
        score_ticket(Ticket(ref=f"r{i}", tracker="t", title=text.partition("\n")[0], description=text), config)
        for i, (text, _) in enumerate(ROWS)
    ]
    parts = [robustness.raw_and_capped(s) for s in scores]
    # Up to rounding of the factor values, and tickets under a product cap (kept at their cap by the score).
    rescaled = robustness.rescale(parts, CALIBRATION_KNOT)
    assert all(abs(r - s.value) <= 0.01 or s.value <= 0.5 for r, s in zip(rescaled, scores, strict=True))
    # A lower knot selects at least as many tickets.
    lower = robustness.rescale(parts, CALIBRATION_KNOT - 0.1)
    assert all(lo >= s.value for lo, s in zip(lower, scores, strict=True))


@pytest.mark.parametrize("mode", [None, "fraction", "weights", "knot"])
def test_modes_run_and_report_the_pass_rate(
    robustness: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str | None
) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps({"problem_statement": t, "resolved_fraction": y}) for t, y in ROWS) + "\n")
    argv = ["--data", str(data), "--splits", "3", "--inner", "2"] + (["--cv", mode] if mode else [])

    assert robustness.main(argv) == 0

    out = capsys.readouterr().out
    assert out.startswith("rows=8 ")
    assert "current scorer, random halves: halves=6 pass_rate=" in out
    assert "margin   p10=" in out
    if mode == "fraction":
        assert "target 0.38" in out
    if mode == "weights":
        assert "weights chosen on the other half" in out
    if mode == "knot":
        assert "knot chosen by the same rule on the full file" in out
