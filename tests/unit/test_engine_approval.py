"""The approval workflow of issue 15 on in-memory remotes (tests/fakes.py): a mid-score ticket is planned read-only,
waits for a person's approval, and runs once with the plan in its prompt; approvals by others start nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes import ScriptedAgent, World, make_world
from tracker_bridge.gitutil import git
from tracker_bridge.models import Phase, RunOutcome, RunUsage, Score, Stage, Ticket
from tracker_bridge.protocols import AgentEvent, AgentRequest, AgentResult

PLAN = "## Files to touch\n- app.py: answer()\n\n## Approach\nReturn 42.\n\n## Tests to add\n- test_answer\n"


def mid_score(ticket: Ticket, config: object, repo_dir: object) -> Score:
    return Score(value=0.57, threshold=0.6, reasons=["a bigger change"])


@dataclass
class PlanningAgent(ScriptedAgent):
    """Writes PLAN.md when asked for a plan, and also edits code then (which a plan run must throw away)."""

    def run(self, request: AgentRequest, on_event: Callable[[AgentEvent], None]) -> AgentResult:
        if "write your plan" not in request.prompt:
            return super().run(request, on_event)
        self.requests.append(request)
        (request.workspace / "PLAN.md").write_text(PLAN)
        (request.workspace / "app.py").write_text("def answer():\n    return 'sneaky'\n")
        usage = RunUsage(turns=1, input_tokens=100, output_tokens=50, cost_usd=0.05)
        return AgentResult(RunOutcome.SUCCEEDED, usage, summary="I wrote PLAN.md")


def planned_world(tmp_path: Path) -> World:
    w = make_world(tmp_path, agent=PlanningAgent(), scorer=mid_score)
    w.tracker.add("T-1")
    w.step()
    return w


def test_a_mid_score_ticket_gets_a_plan_comment_and_no_code_change(tmp_path: Path) -> None:
    w = planned_world(tmp_path)
    row = w.row("T-1")
    assert row.stage is Stage.AWAITING_APPROVAL, row.reason
    comment = w.tracker.comments["T-1"]
    assert "plan ready: waiting for a person's approval" in comment
    assert "**Plan:**" in comment and "## Tests to add" in comment and "Return 42." in comment
    assert "add the label `agent-approved`" in comment
    # Read-only: nothing pushed, no pull request, no clone left behind.
    assert w.host.pushed == {} and w.host.pulls == {}
    assert not (w.settings.state_dir / "plans").exists() or not any((w.settings.state_dir / "plans").iterdir())
    # The plan run is a run of its own, capped at plan_max_cost_usd, paid from the daily budget.
    [request] = w.agent.requests
    assert request.max_cost_usd == pytest.approx(0.5)
    assert [(r.status, r.outcome) for r in w.store.runs(row.id)] == [("finished", "succeeded")]
    assert w.store.spent_on(w.clock().date()) == pytest.approx(0.05)
    # The card stays where it was when no awaiting_approval column is configured; nothing more happens.
    assert w.tracker.columns["T-1"] == "Backlog"
    w.step()
    assert len(w.agent.requests) == 1 and w.stage("T-1") == "awaiting_approval"


def test_the_approval_label_starts_one_run_with_the_plan_in_its_prompt(tmp_path: Path) -> None:
    w = planned_world(tmp_path)
    w.tracker.add_label("T-1", "agent-approved")
    w.step()
    assert w.stage("T-1") == "review", w.row("T-1").reason
    assert len(w.agent.requests) == 2
    prompt = w.agent.requests[1].prompt
    assert "<plan>" in prompt and "## Files to touch" in prompt and "Return 42." in prompt
    assert w.agent.requests[1].max_cost_usd == pytest.approx(3.0)  # the run's own cap, not the plan's
    # Only the run's change was proposed: neither the plan run's edit nor its PLAN.md.
    [sha] = w.host.pushed.values()
    run = w.store.last_run(w.row("T-1").id)
    assert run is not None
    assert git(Path(run.workspace), "show", f"{sha}:app.py") == "def answer():\n    return 42"
    assert "PLAN.md" not in git(Path(run.workspace), "ls-tree", "--name-only", sha)
    # Used once: the label was taken off, and further cycles start nothing.
    assert "agent-approved" not in w.tracker.tickets["T-1"].labels
    w.step()
    assert len(w.agent.requests) == 2


def test_an_approval_by_someone_not_allowed_starts_nothing(tmp_path: Path) -> None:
    w = make_world(tmp_path, agent=PlanningAgent(), scorer=mid_score)
    w.settings.trigger.allowed_actors = ["alice"]
    w.tracker.add("T-1")
    w.tracker.actors["T-1"] = "alice"
    w.step()
    assert w.stage("T-1") == "awaiting_approval"
    w.tracker.add_label("T-1", "agent-approved")
    w.tracker.approvers["T-1"] = "mallory"
    w.tracker.comment("T-1", "mallory", "@tracker-bridge approve")
    w.step()
    w.step()
    assert w.stage("T-1") == "awaiting_approval" and len(w.agent.requests) == 1
    comment = w.tracker.comments["T-1"]
    assert "approval by mallory" in comment and "was ignored" in comment and "**Plan:**" in comment
    # Alice approves with a comment: one run, with the plan.
    w.tracker.comment("T-1", "Alice", "Looks good. @Tracker-Bridge approve")
    w.step()
    assert w.stage("T-1") == "review"
    assert len(w.agent.requests) == 2 and "Return 42." in w.agent.requests[1].prompt


def test_a_plan_is_shown_in_the_awaiting_approval_column_when_configured(tmp_path: Path) -> None:
    w = make_world(tmp_path, agent=PlanningAgent(), scorer=mid_score)
    w.settings.stages.awaiting_approval = "Needs Approval"
    w.tracker.add("T-1")
    w.step()
    assert w.tracker.columns["T-1"] == "Needs Approval"


def test_a_ticket_above_the_threshold_never_gets_an_old_plan(tmp_path: Path) -> None:
    w = planned_world(tmp_path)
    w.tracker.add_label("T-1", "agent-approved")
    w.step()
    assert "Return 42." in w.agent.requests[1].prompt
    # The ticket is taken again later, scored above the threshold: a new evaluation, no plan.
    w.engine.scorer = lambda t, c, r: Score(value=0.9, threshold=0.6)
    w.tracker.tickets["T-1"] = w.tracker.tickets["T-1"].model_copy(update={"description": "now with criteria"})
    row = w.row("T-1")
    w.store.update_ticket(row.id, stage=Stage.DECLINED)  # a settled ticket a person sends again
    w.step()
    assert len(w.agent.requests) == 3, w.row("T-1").reason
    assert "(none: no plan was asked for)" in w.agent.requests[2].prompt


def test_the_daily_budget_holds_back_a_plan_run_too(tmp_path: Path) -> None:
    w = make_world(tmp_path, agent=PlanningAgent(), scorer=mid_score, agent_config={"daily_budget_usd": 0.01})
    w.tracker.add("T-1")
    w.step()  # the plan run spends 0.05 of a 0.01 budget (a CLI cannot be stopped mid-turn)
    w.tracker.add("T-2", title="Another bigger change")
    w.step()
    row = w.row("T-2")
    assert row.stage is Stage.RUNNING and row.phase is Phase.PLANNING and "daily budget" in row.reason
    assert len(w.agent.requests) == 1


@dataclass
class SlowPlanner(ScriptedAgent):
    """A plan run that works until the engine tells it to stop (as real backends watch `request.cancel`)."""

    def run(self, request: AgentRequest, on_event: Callable[[AgentEvent], None]) -> AgentResult:
        self.requests.append(request)
        stopped = request.cancel.wait(timeout=10)
        outcome = RunOutcome.CANCELLED if stopped else RunOutcome.SUCCEEDED
        return AgentResult(outcome, RunUsage(), reason="the run was cancelled" if stopped else "")


def planning_world(tmp_path: Path) -> World:
    """A world whose plan run for T-1 is under way (and works until it is told to stop)."""
    w = make_world(tmp_path, agent=SlowPlanner(), scorer=mid_score)
    w.tracker.add("T-1")
    w.engine.cycle()
    deadline = time.monotonic() + 10
    while not w.agent.requests and time.monotonic() < deadline:  # the workspace is cloned first
        time.sleep(0.02)
    assert w.agent.requests and w.row("T-1").phase is Phase.PLANNING
    return w


@pytest.mark.parametrize(
    ("take_away", "said", "column"),
    [
        (lambda w: w.tracker.remove_label("T-1", "agent-ready"), "removed the label", "Backlog"),
        # A plan leaves the card where it was, so no column was applied: the move to Done still says "stop".
        (lambda w: w.tracker.move("T-1", "Done"), "a person moved the card to 'Done'", "Done"),
    ],
    ids=["label removed", "card moved to Done"],
)
def test_a_person_taking_the_ticket_away_stops_the_plan_run(
    tmp_path: Path, take_away: Callable[[World], None], said: str, column: str
) -> None:
    w = planning_world(tmp_path)
    take_away(w)
    w.engine.cycle()
    assert w.agent.requests[0].cancel.is_set(), "the plan run was not told to stop"
    w.engine.wait()
    assert w.stage("T-1") == "cancelled" and said in w.tracker.comments["T-1"]
    assert w.tracker.columns["T-1"] == column  # the card stays where the person left it


@pytest.mark.parametrize("how", ["moved to Done", "closed"])
def test_a_plan_awaiting_approval_is_withdrawn_when_the_ticket_is_finished(tmp_path: Path, how: str) -> None:
    w = planned_world(tmp_path)
    if how == "closed":
        w.tracker.tickets["T-1"] = w.tracker.tickets["T-1"].model_copy(update={"closed": True})
    else:
        w.tracker.move("T-1", "Done")
    w.tracker.add_label("T-1", "agent-approved")  # too late: the approval must not start the run
    w.step()
    assert w.stage("T-1") == "cancelled", w.row("T-1").reason
    assert len(w.agent.requests) == 1  # the plan run only
    assert w.host.pushed == {}
