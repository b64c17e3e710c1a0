"""The plan run of a mid-score ticket (issue 15): the agent reads the repository and writes a plan, and nothing it
changes is kept.

Tickets scoring between `[scoring] approval_threshold` and `threshold` are neither declined nor run: a person
approves a plan first. The plan run is read-only by construction, not by trust: the agent works in a throwaway
clone, its plan is read from `PLAN.md` at the clone's root (or, when it wrote none, its final reply), and both
clones are deleted afterwards. Nothing is committed, pushed or proposed, no test or set-up command runs, and the run
is capped at `[scoring] plan_max_cost_usd` (its cost is recorded like any run's, so it counts in the daily budget).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tracker_bridge.agents.handover import agent_workspace, make_agent_workspace
from tracker_bridge.agents.pipeline import RunPlan, RunReport, agent_request, prepare_workspace
from tracker_bridge.agents.prompt import build_prompt, sanitize
from tracker_bridge.agents.trace import TraceWriter
from tracker_bridge.config import Settings
from tracker_bridge.models import RunOutcome
from tracker_bridge.protocols import AgentBackend, AgentEvent, CodeHost

PLAN_FILE = "PLAN.md"
MAX_PLAN = 6000  # characters of plan kept for the status comment and the run's prompt


def plan_template() -> str:
    return (Path(__file__).resolve().parents[1] / "prompt_plan.md").read_text(encoding="utf-8")


def read_plan(work: Path, reply: str) -> str:
    """The plan the agent wrote: `PLAN.md` when it is a regular file in the clone, else its final reply."""
    f = work / PLAN_FILE
    text = ""
    if f.is_file() and not f.is_symlink():
        text = f.read_text(encoding="utf-8", errors="replace")
    # Agent output is shown in a comment and put into a later prompt: cleaned as ticket text is.
    return sanitize(text.strip() or reply.strip(), MAX_PLAN)


def execute_plan(
    plan: RunPlan,
    *,
    host: CodeHost,
    backend: AgentBackend,
    settings: Settings,
    on_event: Callable[[AgentEvent], None],
) -> RunReport:
    """Let the agent plan `plan.ticket` read-only; the report's `summary` is the plan (SUCCEEDED when there is
    one). Both clones are removed whatever happens."""
    trace = TraceWriter(plan.trace_path)
    work = agent_workspace(plan.workspace)
    try:
        prepare_workspace(host, plan.workspace, plan.branch)
        make_agent_workspace(plan.workspace, work, plan.branch)
        trace.write("workspace", path=str(work), branch=plan.branch, read_only=True)
        prompt = build_prompt(plan.ticket, work, plan.repo.test_command, template=plan_template())
        request = agent_request(plan, work, prompt, settings, max_cost_usd=settings.scoring.plan_max_cost_usd)
        result = backend.run(request, on_event)
        text = read_plan(work, result.summary)
        trace.write("plan", outcome=result.outcome.value, reason=result.reason, chars=len(text))
        if text:
            return RunReport(RunOutcome.SUCCEEDED, result.usage, summary=text)
        outcome = result.outcome if result.outcome is not RunOutcome.SUCCEEDED else RunOutcome.NO_CHANGES
        reason = result.reason or f"it wrote no {PLAN_FILE} and gave no final reply"
        return replace(RunReport(outcome, result.usage), reason=reason)
    finally:
        # Read-only: the agent's clone and the daemon's are thrown away; nothing is committed or pushed.
        for folder in (work, plan.workspace):
            shutil.rmtree(folder, ignore_errors=True)
