"""Learning from outcomes: refit the factors' blend weights from the tickets this installation has finished.

Every finished ticket is an outcome: its pull request merged is a success; a failed run, a pull request closed
unmerged or a ticket moved to Needs Human is a failure. Its score, stored when it was scored, holds the factor
values the daemon saw then. The refit is a logistic regression of success on those values whose coefficients are
pulled toward the weights in use (`PRIOR_STRENGTH`, worth about that many outcomes): a handful of outcomes moves a
weight a little, a few hundred consistent ones move it far. Only the relative weights matter to a weighted mean, so
the new weights keep the old total; the knot moves so that the history's share of declined tickets stays the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tracker_bridge.models import Score, Stage
from tracker_bridge.scoring.blend import calibrate as calibrate_scale
from tracker_bridge.scoring.fit import fit_logistic
from tracker_bridge.scoring.model import CALIBRATED_NAME, Weights

# How many outcomes the weights in use count for: the penalty of the refit.
PRIOR_STRENGTH = 20.0
# Logit units per unit of blend weight in the prior: the shipped weights as coefficients of a regression of
# success on the factor values (a ticket at all factors 1 vs all 0 differs by this many logits).
PRIOR_SCALE = 4.0
# Fewer outcomes than this leave the knot where it is: a share of declined tickets on five tickets is noise.
MIN_FOR_KNOT = 20
LEARNED = ("scope", "clarity", "kind", "risk", "coverage")


@dataclass(frozen=True)
class Outcome:
    ref: str
    factors: dict[str, float]
    success: bool


def outcome_of(stage: str, pr_state: str | None, score: Score | None, ref: str = "") -> Outcome | None:
    """The outcome of one ticket, or None while it is not finished (or was never scored / never taken)."""
    if score is None:
        return None
    if pr_state == "merged":
        success = True
    elif pr_state == "closed" or stage == Stage.FAILED.value:
        success = False
    else:
        return None
    values = {f.name: f.value for f in score.factors if f.name in LEARNED}
    return Outcome(ref, values, success)


def outcomes_from_rows(rows: Iterable[object]) -> list[Outcome]:
    """Outcomes of store ticket rows (anything with stage, pr_state, score_model and ref), in the store's order."""
    found: list[Outcome] = []
    for row in rows:
        o = outcome_of(
            str(getattr(row, "stage", "")),
            getattr(row, "pr_state", None),
            getattr(row, "score_model", None),
            str(getattr(row, "ref", "")),
        )
        if o is not None:
            found.append(o)
    return found


def _names(outcomes: Sequence[Outcome], weights: Weights) -> list[str]:
    return [n for n in LEARNED if n in weights.blend and any(n in o.factors for o in outcomes)]


def raw_score(weights: Weights, factors: dict[str, float]) -> float:
    """The weighted mean of the stored factor values under `weights` (factors a ticket lacks are left out)."""
    present = [(weights.blend[n], v) for n, v in factors.items() if n in weights.blend]
    total = sum(w for w, _ in present)
    return sum(w * v for w, v in present) / total if total > 0 else 0.0


def refit(weights: Weights, outcomes: Sequence[Outcome], strength: float = PRIOR_STRENGTH) -> Weights:
    """New weights from the outcomes, shrunk toward `weights`; the same weights when there are no outcomes."""
    names = _names(outcomes, weights)
    if not outcomes or not names:
        return weights
    prior = [PRIOR_SCALE * weights.blend[n] for n in names]
    rows = [[o.factors.get(n, 1.0) for n in names] for o in outcomes]
    _, coef = fit_logistic(rows, [1.0 if o.success else 0.0 for o in outcomes], strength, prior=prior)
    raw = {n: max(c, 0.0) / PRIOR_SCALE for n, c in zip(names, coef, strict=True)}
    old_total = sum(weights.blend[n] for n in names)
    new_total = sum(raw.values())
    blend = dict(weights.blend)
    for n in names:
        blend[n] = round(raw[n] * old_total / new_total, 4) if new_total > 0 else weights.blend[n]
    knot = weights.knot
    if len(outcomes) >= MIN_FOR_KNOT:
        # Keep the share of the history below the threshold: the decline policy was set on real issues, and the
        # history alone cannot say which tickets a person would have called vague.
        old_raw = sorted(raw_score(weights, o.factors) for o in outcomes)
        share = sum(r < weights.knot for r in old_raw) / len(old_raw)
        new = replace(weights, blend=blend)
        new_raw = sorted(raw_score(new, o.factors) for o in outcomes)
        knot = min(max(new_raw[min(len(new_raw) - 1, int(share * len(new_raw)))], 0.05), 0.95)
    return replace(
        weights,
        blend=blend,
        knot=round(knot, 4),
        outcomes=weights.outcomes + len(outcomes) if weights.source == "shipped" else len(outcomes),
        source="calibrated",
        provenance=(
            f"Refitted by `tracker-bridge calibrate` from {len(outcomes)} finished tickets, shrunk toward the "
            f"weights in use (worth {strength:.0f} outcomes). Before: {weights.provenance}"
        )[:2000],
    )


@dataclass(frozen=True)
class HistoryFigures:
    outcomes: int
    success_rate: float
    accepted: int
    accepted_success_rate: float
    auc: float


def figures(weights: Weights, outcomes: Sequence[Outcome], threshold: float) -> HistoryFigures:
    """How `weights` would have sorted the history: the success rate of the tickets it accepts, and the AUC."""
    scores = [calibrate_scale(raw_score(weights, o.factors), weights.knot) for o in outcomes]
    ok = [o.success for o in outcomes]
    acc = [y for s, y in zip(scores, ok, strict=True) if s >= threshold]
    pos = [s for s, y in zip(scores, ok, strict=True) if y]
    neg = [s for s, y in zip(scores, ok, strict=True) if not y]
    pairs = len(pos) * len(neg)
    auc = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / pairs if pairs else 0.5
    return HistoryFigures(
        len(outcomes),
        sum(ok) / len(ok) if ok else 0.0,
        len(acc),
        sum(acc) / len(acc) if acc else 0.0,
        auc,
    )


def write_weights(weights: Weights, state_dir: Path) -> Path:
    """Store the table where the daemon reads it (atomically: a half-written table is never read)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / CALIBRATED_NAME
    tmp = target.with_suffix(".tmp")
    tmp.write_text(weights.to_json(), encoding="utf-8")
    tmp.replace(target)
    return target
