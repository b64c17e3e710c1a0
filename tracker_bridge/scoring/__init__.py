"""Ticket scoring: how likely an autonomous coding agent is to finish a ticket, with named factors and reasons.

    score = score_ticket(ticket, config.scoring, repo_dir)   # repo_dir: checkout at the base branch, or None
    markdown = render_score_markdown(score)

Factors: scope and clarity (fitted on real issues: `features.py` reads the text, `model.py` weighs it with the
table in `weights.json` or the one `tracker-bridge calibrate` wrote), kind and risk (`factors.py`), coverage
(tests around the code the ticket names, `repo.py` + `coverage.py` + `area.py`, when a checkout is given and
`repo_analysis` is on; cached per repository head) and, when `[scoring] llm` is on, the LLM judge
(`judge.py`). `blend.py` combines them and calibrates the scale; see docs/scoring.md.
"""

from __future__ import annotations

from pathlib import Path

from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Score, Ticket
from tracker_bridge.scoring.area import coverage_factor
from tracker_bridge.scoring.blend import MAX_SUGGESTIONS, blend
from tracker_bridge.scoring.factors import Assessment, kind_factor, risk_factor
from tracker_bridge.scoring.features import advice_details, text_features
from tracker_bridge.scoring.judge import judge
from tracker_bridge.scoring.model import COVERAGE_WEIGHT, Weights, clarity_assessment, load_weights, scope_assessment
from tracker_bridge.scoring.render import render_score_markdown
from tracker_bridge.scoring.repo import analyse_repo
from tracker_bridge.scoring.text import analyse_text

__all__ = ["render_score_markdown", "score_ticket"]

NOTHING_CONCRETE_CAP = 0.5


def score_ticket(
    ticket: Ticket, config: ScoringConfig, repo_dir: Path | None = None, weights: Weights | None = None
) -> Score:
    """Score one ticket. Deterministic and offline unless `config.llm` is on; never raises for a bad repository.

    `weights` defaults to the calibrated table in the state folder when there is one, else the shipped table.
    """
    w = weights or load_weights(config.weights_dir)
    if config.clarity_share is not None:
        w = w.with_clarity_share(config.clarity_share)
    text = analyse_text(ticket)
    features = text_features(text)
    kind = kind_factor(text)
    details = advice_details(text)
    assessments: list[Assessment] = [
        scope_assessment(w, features, details),
        clarity_assessment(w, features, details),
        _weighted(kind, w.blend.get("kind", 0.15)),
    ]
    notes: list[str] = []
    extra_risk: tuple[tuple[str, str], ...] = ()
    if repo_dir is not None and config.repo_analysis:
        area = analyse_repo(repo_dir, text)
        assessments.append(_weighted(coverage_factor(area), w.blend.get("coverage", COVERAGE_WEIGHT)))
        extra_risk = area.risky
    assessments.append(_weighted(risk_factor(text, extra_risk), w.blend.get("risk", 0.10)))
    if config.llm:
        verdict = judge(ticket, config, w.blend)
        if isinstance(verdict, str):
            notes.append(verdict)
        else:
            assessments.append(verdict)
    caps: list[tuple[float, str]] = []
    if not (text.has_repro or text.has_traceback or text.code_lines or text.symbols or text.paths or text.snake_names):
        # A product rule, not a fitted one: with no code, example or name in it, the agent cannot find the place to
        # change (2% of the development issues; the fit has too few of them to learn it).
        caps.append((NOTHING_CONCRETE_CAP, "the ticket neither shows nor names any code, example or file."))
    score = blend(assessments, config.threshold, notes, knot=w.knot, caps=caps)
    if not score.accepted and caps:
        missing = [
            "Name the function, class or file to change (e.g. `billing.invoice.total()`).",
            "Add reproduction steps or a short code snippet that shows the problem.",
        ]
        extra = [m for m in missing if m not in score.suggestions]
        score = score.model_copy(update={"suggestions": (extra + score.suggestions)[:MAX_SUGGESTIONS]})
    return score


def _weighted(a: Assessment, weight: float) -> Assessment:
    """The assessment with the blend weight of the table in use (calibration may have moved it)."""
    return Assessment(a.factor.model_copy(update={"weight": round(weight, 3)}), a.suggestions)
