"""The fitted scorer's weights: loading the shipped table (or the calibrated one) and turning features into factors.

The weights are a small JSON table (`weights.json` beside this module, written by bench/fit_scorer.py, which says
how in its "provenance"): per fitted factor (clarity, scope) an intercept and one coefficient per readable feature,
the blend weights of the factors, and the "knot", the raw blended value that the decline policy put at the
threshold. `tracker-bridge calibrate` writes a refitted copy to `<state_dir>/scoring-weights.json`, which the daemon
prefers when it exists; `outcomes` says from how many finished tickets it was refitted (0 for the shipped table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
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


def describe_weights(w: Weights) -> str:
    """One line for `doctor` and the dashboard: which table is in use and from how many outcomes."""
    if w.source == "shipped":
        return f"shipped weights (fitted on real issues, bench/fit_scorer.py; {w.outcomes} outcomes of yours)"
    return f"calibrated weights from {w.outcomes} outcomes ({w.source})"
