"""Ticket scoring: how likely an autonomous coding agent is to finish a ticket, with named factors and reasons.

    score = score_ticket(ticket, config.scoring, repo_dir)   # repo_dir: checkout at the base branch, or None
    markdown = render_score_markdown(score)

Factors: scope, clarity, kind, risk (from the text, `factors.py`), coverage (tests around the code the ticket names,
`repo.py` + `coverage.py` + `area.py`, when a checkout is given and `repo_analysis` is on) and, when `[scoring] llm`
is on, the LLM judge (`judge.py`). `blend.py` combines them and calibrates the scale; see docs/scoring.md.
"""

from __future__ import annotations

from pathlib import Path

from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Score, Ticket
from tracker_bridge.scoring.area import coverage_factor
from tracker_bridge.scoring.blend import blend
from tracker_bridge.scoring.factors import Assessment, clarity_factor, kind_factor, risk_factor, scope_factor
from tracker_bridge.scoring.judge import judge
from tracker_bridge.scoring.render import render_score_markdown
from tracker_bridge.scoring.repo import analyse_repo
from tracker_bridge.scoring.text import analyse_text

__all__ = ["render_score_markdown", "score_ticket"]


def score_ticket(ticket: Ticket, config: ScoringConfig, repo_dir: Path | None = None) -> Score:
    """Score one ticket. Deterministic and offline unless `config.llm` is on; never raises for a bad repository."""
    text = analyse_text(ticket)
    assessments: list[Assessment] = [scope_factor(text), clarity_factor(text), kind_factor(text)]
    notes: list[str] = []
    extra_risk: tuple[tuple[str, str], ...] = ()
    if repo_dir is not None and config.repo_analysis:
        area = analyse_repo(repo_dir, text)
        assessments.append(coverage_factor(area))
        extra_risk = area.risky
    assessments.append(risk_factor(text, extra_risk))
    if config.llm:
        verdict = judge(ticket, config)
        if isinstance(verdict, str):
            notes.append(verdict)
        else:
            assessments.append(verdict)
    return blend(assessments, config.threshold, notes)
