"""Learning from outcomes: a synthetic history refits the blend weights, shrunk toward the shipped table."""

from __future__ import annotations

import random
from pathlib import Path

from tracker_bridge.models import Factor, Score
from tracker_bridge.scoring.calibrate import Outcome, figures, outcome_of, refit, write_weights
from tracker_bridge.scoring.model import CALIBRATED_NAME, load_weights


def history(n: int, seed: int = 7) -> list[Outcome]:
    """Outcomes where success follows the clarity factor only; scope is noise."""
    rng = random.Random(seed)
    found = []
    for i in range(n):
        clarity, scope = rng.random(), rng.random()
        found.append(
            Outcome(
                f"T-{i}",
                {"scope": scope, "clarity": clarity, "kind": 1.0, "risk": 1.0},
                rng.random() < 0.1 + 0.8 * clarity,
            )
        )
    return found


def test_outcomes_that_favour_one_factor_move_its_weight_up() -> None:
    shipped = load_weights()
    new = refit(shipped, history(400))

    share_before = shipped.blend["clarity"] / (shipped.blend["clarity"] + shipped.blend["scope"])
    share_after = new.blend["clarity"] / (new.blend["clarity"] + new.blend["scope"])
    assert share_after > share_before + 0.2
    assert new.blend["scope"] < shipped.blend["scope"]
    assert new.outcomes == 400 and new.source == "calibrated"
    # The refitted weights sort the history better than the shipped ones.
    assert figures(new, history(400), 0.6).auc > figures(shipped, history(400), 0.6).auc


def test_a_handful_of_outcomes_moves_a_weight_only_a_little() -> None:
    shipped = load_weights()
    few = refit(shipped, history(5))
    many = refit(shipped, history(400))

    moved_few = abs(few.blend["clarity"] - shipped.blend["clarity"])
    moved_many = abs(many.blend["clarity"] - shipped.blend["clarity"])
    assert moved_few < 0.05
    assert moved_many > 4 * moved_few
    # Too few outcomes to move the decline point.
    assert few.knot == shipped.knot


def test_no_outcomes_leave_the_weights_as_they_are() -> None:
    shipped = load_weights()
    assert refit(shipped, []) is shipped


def test_merged_is_success_and_failed_or_closed_is_failure() -> None:
    score = Score(value=0.7, factors=[Factor(name="clarity", value=0.8, weight=0.2, reason="r")])
    merged = outcome_of("done", "merged", score)
    closed = outcome_of("review", "closed", score)
    needs_human = outcome_of("failed", None, score)
    assert merged is not None and merged.success and merged.factors == {"clarity": 0.8}
    assert closed is not None and not closed.success
    assert needs_human is not None and not needs_human.success
    # Still under way, declined, or never scored: not an outcome.
    assert outcome_of("review", "open", score) is None
    assert outcome_of("declined", None, score) is None
    assert outcome_of("done", "merged", None) is None


def test_calibrated_table_is_what_the_daemon_reads_next(tmp_path: Path) -> None:
    shipped = load_weights()
    assert load_weights(tmp_path).source == shipped.source == "shipped"
    new = refit(shipped, history(200))

    path = write_weights(new, tmp_path)

    assert path == tmp_path / CALIBRATED_NAME
    read = load_weights(tmp_path)
    assert read.outcomes == 200 and read.blend == new.blend and read.knot == new.knot
    # A corrupt table is ignored in favour of the shipped one, not a crash.
    path.write_text("{not json", encoding="utf-8")
    assert load_weights(tmp_path).source == "shipped"
