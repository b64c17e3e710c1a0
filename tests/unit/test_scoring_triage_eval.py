"""bench/triage_eval.py: the rank statistics it computes by hand, and the exact last line it prints."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "triage_eval.py"


@pytest.fixture(scope="module")
def triage_eval() -> ModuleType:
    spec = importlib.util.spec_from_file_location("triage_eval", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ranks_share_ties(triage_eval: ModuleType) -> None:
    assert triage_eval.ranks([10.0, 20.0, 20.0, 5.0]) == [2.0, 3.5, 3.5, 1.0]


def test_spearman_with_ties_matches_the_pearson_of_average_ranks(triage_eval: ModuleType) -> None:
    assert triage_eval.spearman([1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]) == pytest.approx(1.0)
    assert triage_eval.spearman([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    # x ranks 1, 2.5, 2.5, 4 against y ranks 1..4: r = 4.5 / sqrt(4.5 * 5) (worked by hand).
    assert triage_eval.spearman([1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    assert triage_eval.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) == 0.0


def test_auc_counts_ties_as_half(triage_eval: ModuleType) -> None:
    assert triage_eval.roc_auc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert triage_eval.roc_auc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    # One positive tied with one of two negatives, above the other: (1 + 0.5) / 2.
    assert triage_eval.roc_auc([0.5, 0.5, 0.1], [True, False, False]) == pytest.approx(0.75)


def test_last_line_has_the_four_figures(tmp_path: Path) -> None:
    rows = [
        {
            "problem_statement": "`parse()` drops the sign\n`parse('-1')` gives 1. Expected -1.",
            "resolved_fraction": 0.9,
        },
        {"problem_statement": "Epic: rethink everything\nMaybe explore options?", "resolved_fraction": 0.1},
        {"problem_statement": "`fmt()` pads wrongly\n`fmt(1)` gives ' 1'. Expected '1'.", "resolved_fraction": 0.7},
        {"problem_statement": "Investigate slowness\nNot sure where, perhaps the database?", "resolved_fraction": 0.2},
    ]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(data), "--split-seed", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    last = out.strip().splitlines()[-1]

    m = re.fullmatch(r"spearman=(\S+) auc=(\S+) selected_fraction=(\S+) selected_mean_resolved=(\S+)", last)
    assert m, last
    spearman, auc, fraction, selected_mean = map(float, m.groups())
    # The two precise bugs are selected at the default threshold, the epic and the spike are not.
    assert fraction == 0.5
    assert selected_mean == pytest.approx(0.8)
    assert spearman > 0.5 and auc == 1.0
    assert "half A:" in out and "half B:" in out
