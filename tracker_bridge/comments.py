"""The one status comment tracker-bridge keeps on a ticket: stage, score and factors, run progress, PR, outcome.

The body is Markdown and deterministic (no clock in it): the engine rewrites the comment only when this text
changes, so an idle cycle edits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker_bridge.models import Phase, Score, Stage
from tracker_bridge.scoring import render_score_markdown

HEADLINES = {
    Stage.SEEN: "seen",
    Stage.SCORED: "scored",
    Stage.QUEUED: "queued for the agent",
    Stage.RUNNING: "the agent is working on it",
    Stage.REVIEW: "pull request open for review",
    Stage.DONE: "done: the pull request was merged",
    Stage.DECLINED: "declined: not ready for an agent yet",
    Stage.FAILED: "failed: a person should take a look",
    Stage.CANCELLED: "cancelled: the trigger was removed",
    Stage.AWAITING_APPROVAL: "plan ready: waiting for a person's approval",
}

# `running` says which of its three sub-states it is in; the stage shown (`running`) stays the same.
PHASE_HEADLINES = {
    Phase.AGENT: HEADLINES[Stage.RUNNING],
    Phase.PUBLISHING: "the change passes the tests; publishing it",
    Phase.ITERATING: "feedback on the pull request: the agent takes another iteration",
    Phase.PLANNING: "the agent is writing a plan (read-only) for a person to approve",
}


@dataclass
class RunSummary:
    attempt: int
    turns: int
    tokens: int
    cost_usd: float
    outcome: str | None
    tests: str | None = None  # "passed" / "failed"


@dataclass
class StatusView:
    stage: Stage
    reason: str = ""
    column: str | None = None
    score: Score | None = None
    run: RunSummary | None = None
    progress: str | None = None
    pr_url: str | None = None
    summary: str = ""
    total_cost_usd: float = 0.0
    ignored: bool = False
    phase: Phase | None = None
    plan: str = ""  # the agent's plan of a mid-score ticket (issue 15), shown while it awaits approval and after


def _tokens(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def render_status(view: StatusView) -> str:
    headline = HEADLINES[view.stage]
    if view.ignored:
        headline = "ignored: the trigger did not come from an allowed person"
    elif view.stage is Stage.RUNNING and view.phase is not None:
        headline = PHASE_HEADLINES[view.phase]
    lines = [f"### tracker-bridge: {headline}", ""]
    facts = [f"**Stage:** `{view.stage.value}`" + (f" (column *{view.column}*)" if view.column else "")]
    if view.pr_url:
        facts.append(f"**Pull request:** {view.pr_url}")
    lines.append(" · ".join(facts))
    if view.reason:
        lines += ["", f"**Why:** {view.reason}"]
    if view.run is not None:
        r = view.run
        run_bits = [f"attempt {r.attempt}", f"{r.turns} turn(s)", f"{_tokens(r.tokens)} tokens", f"${r.cost_usd:.2f}"]
        if r.tests:
            run_bits.append(f"tests {r.tests}")
        if r.outcome:
            run_bits.append(f"outcome `{r.outcome}`")
        lines += ["", "**Run:** " + " · ".join(run_bits)]
        if view.total_cost_usd > r.cost_usd + 1e-9:
            lines.append(f"**Total cost on this ticket:** ${view.total_cost_usd:.2f}")
    if view.progress and view.stage is Stage.RUNNING:
        lines += ["", f"**Progress:** {view.progress}"]
    if view.summary:
        lines += ["", "**Summary:**", "", view.summary.strip()]
    if view.plan:
        lines += ["", "**Plan:**", "", view.plan.strip()]
    if view.score is not None:
        lines += ["", render_score_markdown(view.score).strip()]
    lines += ["", "_This comment is kept up to date by tracker-bridge; edits to it will be overwritten._"]
    return "\n".join(lines).strip() + "\n"

