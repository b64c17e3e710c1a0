"""The fitted scorer's weights: loading the shipped table (or the calibrated one) and turning features into factors.

The weights are a small JSON table (`weights.json` beside this module, written by bench/fit_scorer.py, which says
how in its "provenance"): per fitted factor (clarity, scope) an intercept and one coefficient per readable feature,
the blend weights of the factors, and the "knot", the raw blended value that the decline policy put at the
threshold. `tracker-bridge calibrate` writes a refitted copy to `<state_dir>/scoring-weights.json`, which the daemon
prefers when it exists; `outcomes` says from how many finished tickets it was refitted (0 for the shipped table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

from tracker_bridge.models import Factor
from tracker_bridge.scoring.factors import Assessment
from tracker_bridge.scoring.features import ADVICE, LABELS
from tracker_bridge.scoring.fit import sigmoid

SHIPPED = Path(__file__).with_name("weights.json")
CALIBRATED_NAME = "scoring-weights.json"
# Share of the blend that goes to the two fitted text factors; kind and risk keep their fixed shares.
TEXT_WEIGHT = 0.75
OTHER_WEIGHTS: dict[str, float] = {"kind": 0.15, "risk": 0.10}
COVERAGE_WEIGHT = 0.15


@dataclass(frozen=True)
class Linear:
    """sigmoid(intercept + sum of coef * feature): one fitted factor."""

    intercept: float
    coef: dict[str, float]

    def value(self, features: dict[str, float]) -> float:
        return sigmoid(self.intercept + sum(c * features.get(n, 0.0) for n, c in self.coef.items()))


@dataclass(frozen=True)
class Weights:
    clarity: Linear
    scope: Linear
    blend: dict[str, float]
    knot: float
    outcomes: int = 0
    source: str = "shipped"
    provenance: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def clarity_share(self) -> float:
        """Clarity's share of the two fitted factors' weight."""
        total = self.blend.get("clarity", 0.0) + self.blend.get("scope", 0.0)
        return self.blend.get("clarity", 0.0) / total if total > 0 else 0.0

    def with_clarity_share(self, share: float) -> Weights:
        """The table with clarity given `share` of the fitted factors' weight (`[scoring] clarity_share`).

        The two factors keep their total weight. The knot moves by what the fit found the decline policy needs at
        that share (`knots_by_clarity_share`, interpolated), so the same share of clear issues is declined; a table
        without those knots (an old calibrated one) keeps its knot."""
        total = self.blend.get("clarity", 0.0) + self.blend.get("scope", 0.0)
        blend = {**self.blend, "clarity": round(total * share, 4), "scope": round(total * (1 - share), 4)}
        knots = _knots(self.extra.get("knots_by_clarity_share"))
        knot = self.knot
        if knots:
            knot = self.knot + _interpolate(knots, share) - _interpolate(knots, self.clarity_share)
        return replace(self, blend=blend, knot=round(min(max(knot, 0.05), 0.95), 4))

    def to_json(self) -> str:
        doc = {
            **self.extra,
            "provenance": self.provenance,
            "clarity": {"intercept": self.clarity.intercept, "coef": self.clarity.coef},
            "scope": {"intercept": self.scope.intercept, "coef": self.scope.coef},
            "blend": self.blend,
            "knot": self.knot,
            "outcomes": self.outcomes,
        }
        return json.dumps(doc, indent=2) + "\n"


class WeightsError(Exception):
    pass


def _knots(doc: object) -> list[tuple[float, float]]:
    """(share, knot) pairs of a table's `knots_by_clarity_share`, sorted; empty when absent or malformed."""
    if not isinstance(doc, dict):
        return []
    try:
        return sorted((float(a), float(k)) for a, k in doc.items())
    except (TypeError, ValueError):
        return []


def _interpolate(points: list[tuple[float, float]], x: float) -> float:
    """Piecewise-linear through `points`, flat beyond the ends."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in pairwise(points):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1
    return points[-1][1]


def parse_weights(text: str, source: str) -> Weights:
    try:
        doc = json.loads(text)
        lin = {
            k: Linear(float(doc[k]["intercept"]), {str(n): float(c) for n, c in doc[k]["coef"].items()})
            for k in ("clarity", "scope")
        }
        blend = {str(k): float(v) for k, v in doc["blend"].items()}
        knot = float(doc["knot"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(f"{source} is not a scoring weights table ({exc.__class__.__name__}: {exc})") from exc
    if not 0.0 < knot < 1.0 or any(v < 0 for v in blend.values()):
        raise WeightsError(f"{source}: knot must be in (0, 1) and blend weights non-negative")
    extra = {k: v for k, v in doc.items() if k not in ("provenance", "clarity", "scope", "blend", "knot", "outcomes")}
    return Weights(
        lin["clarity"],
        lin["scope"],
        blend,
        knot,
        int(doc.get("outcomes", 0)),
        source,
        str(doc.get("provenance", "")),
        extra,
    )


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, source: str) -> Weights:
    return parse_weights(Path(path).read_text(encoding="utf-8"), source)


def load_weights(state_dir: Path | None = None) -> Weights:
    """The calibrated table in `state_dir` when there is a valid one, else the shipped table (re-read on change)."""
    if state_dir is not None:
        calibrated = state_dir / CALIBRATED_NAME
        try:
            return _load(str(calibrated), calibrated.stat().st_mtime_ns, str(calibrated))
        except (OSError, WeightsError):
            pass
    return _load(str(SHIPPED), SHIPPED.stat().st_mtime_ns, "shipped")


def _ranked(model: Linear, features: dict[str, float]) -> list[tuple[float, str]]:
    """(contribution, feature) for the features present, largest effect first."""
    return sorted(
        ((c * features.get(n, 0.0), n) for n, c in model.coef.items() if features.get(n, 0.0) > 0 and c != 0),
        key=lambda x: -abs(x[0]),
    )


def _missing(model: Linear, features: dict[str, float], limit: int) -> list[tuple[float, str]]:
    """What would raise the factor most: helpful features absent, harmful ones present (with advice to give)."""
    gains: list[tuple[float, str]] = []
    for name, c in model.coef.items():
        if name not in ADVICE:
            continue
        x = features.get(name, 0.0)
        gain = c * (1.0 - x) if c > 0 else -c * x
        if gain > 0.05:
            gains.append((gain, name))
    return sorted(gains, reverse=True)[:limit]


def _explain(
    kind: str, model: Linear, features: dict[str, float], value: float, details: dict[str, str] | None
) -> tuple[str, tuple[str, ...]]:
    ranked = _ranked(model, features)
    helps = [LABELS[n] for c, n in ranked if c > 0][:4]
    hurts = [LABELS[n] for c, n in ranked if c < 0][:4]
    verdict = "high" if value >= 0.7 else "medium" if value >= 0.45 else "low"
    reason = f"{verdict.capitalize()} {kind}"
    if helps:
        reason += ": has " + ", ".join(helps)
    if hurts:
        reason += ("; but " if helps else ": ") + ", ".join(hurts)
    advice = tuple(
        # Five per factor: with the clarity cues fitted on all rows, "very short" and the report sections would
        # otherwise crowd out "split the ticket".
        ADVICE[n].format(**(details or {})) if details else ADVICE[n]
        for _, n in _missing(model, features, 5)
    )
    return reason + ".", advice


def clarity_assessment(w: Weights, features: dict[str, float], details: dict[str, str] | None = None) -> Assessment:
    """Would a person know what is asked: fitted on experts' ratings of real issues."""
    value = w.clarity.value(features)
    reason, advice = _explain("clarity", w.clarity, features, value, details)
    return Assessment(Factor(name="clarity", value=round(value, 3), weight=w.blend["clarity"], reason=reason), advice)


def scope_assessment(w: Weights, features: dict[str, float], details: dict[str, str] | None = None) -> Assessment:
    """Would an agent resolve it: fitted on how often 24 agent runs resolved real issues."""
    value = w.scope.value(features)
    reason, advice = _explain("chance the agent finishes it (scope)", w.scope, features, value, details)
    return Assessment(Factor(name="scope", value=round(value, 3), weight=w.blend["scope"], reason=reason), advice)


def describe_weights(w: Weights, clarity_share: float | None = None) -> str:
    """One line for `doctor` and the dashboard: which table is in use, from how many outcomes, and the clarity
    share when `[scoring] clarity_share` overrides the table's."""
    if w.source == "shipped":
        line = f"shipped weights (fitted on real issues, bench/fit_scorer.py; {w.outcomes} outcomes of yours)"
    else:
        line = f"calibrated weights from {w.outcomes} outcomes ({w.source})"
    if clarity_share is not None:
        line += f"; clarity share {clarity_share:g} ([scoring] clarity_share; the table's is {w.clarity_share:.2g})"
    return line
