"""Blending factors into one Score: a weighted mean, the kind cap, ordered reasons and suggestions."""

from __future__ import annotations

from collections.abc import Sequence

from tracker_bridge.models import Score
from tracker_bridge.scoring.factors import Assessment

# Calibration: the weighted mean of the factors ("raw") is mapped piecewise-linearly so that the knot lands on
# CALIBRATED_CUT, the default threshold. The knot comes with the weights (weights.json): bench/fit_scorer.py puts it
# where the decline policy wants it, below about a sixth of the issues experts rated clear (docs/scoring.md).
CALIBRATION_KNOT = 0.62
CALIBRATED_CUT = 0.6
# An epic or a spike is not for the agent however clear its text is, so its score never rises above this.
KIND_CAP = 0.3
# A declined ticket's comment lists at most this many things to add: more would read like a form to fill in.
MAX_SUGGESTIONS = 6


def calibrate(raw: float, knot: float = CALIBRATION_KNOT) -> float:
    """Map a raw weighted mean in [0, 1] onto the calibrated scale (monotone, 0 -> 0, knot -> cut, 1 -> 1)."""
    raw = max(0.0, min(1.0, raw))
    if raw < knot:
        return CALIBRATED_CUT * raw / knot
    return CALIBRATED_CUT + (1.0 - CALIBRATED_CUT) * (raw - knot) / (1.0 - knot)


def raw_value(assessments: Sequence[Assessment]) -> float:
    """The weighted mean of the factor values, before calibration."""
    factors = [a.factor for a in assessments]
    total = sum(f.weight for f in factors)
    return sum(f.weight * f.value for f in factors) / total if total > 0 else 0.0


def blend(
    assessments: Sequence[Assessment],
    threshold: float,
    notes: Sequence[str] = (),
    knot: float = CALIBRATION_KNOT,
    caps: Sequence[tuple[float, str]] = (),
) -> Score:
    """Weighted mean of the factor values; `notes` (e.g. "the LLM judge failed") lead the reasons."""
    factors = [a.factor for a in assessments]
    value = calibrate(raw_value(assessments), knot)
    reasons = list(notes)
    kind = next((f for f in factors if f.name == "kind"), None)
    if kind is not None and kind.value < 0.5 and value > KIND_CAP:
        value = KIND_CAP
        reasons.append(f"Score capped at {KIND_CAP:.2f}: {kind.reason[0].lower()}{kind.reason[1:]}")
    for cap, why in caps:
        if value > cap:
            value = cap
            reasons.append(f"Score capped at {cap:.2f}: {why}")
    value = round(max(0.0, min(1.0, value)), 3)
    accepted = value >= threshold
    # Most important first: for a declined ticket the factors that cost the most, for an accepted one those that
    # contributed the most.
    ranked = sorted(
        assessments,
        key=lambda a: -(a.factor.weight * ((1.0 - a.factor.value) if not accepted else a.factor.value)),
    )
    reasons += [f"{a.factor.name}: {a.factor.reason}" for a in ranked]
    suggestions: list[str] = []
    if not accepted:
        # Suggestions of the weakest factors first; a factor at full value has nothing to add.
        for a in sorted(assessments, key=lambda a: a.factor.value):
            for s in a.suggestions:
                if s not in suggestions:
                    suggestions.append(s)
        if not suggestions:
            suggestions.append("Make the ticket more specific: name the function or file, and add acceptance criteria.")
    return Score(
        value=value,
        factors=factors,
        reasons=reasons,
        suggestions=suggestions[:MAX_SUGGESTIONS],
        threshold=threshold,
    )
