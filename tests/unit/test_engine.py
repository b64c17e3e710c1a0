"""The engine's journey on in-memory remotes (tests/fakes.py): dispatch, recovery, publish retries, a card that
cannot be moved, poisoned tickets, the daily budget, and what an idle cycle touches."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fakes import FakeTracker, ScriptedAgent, always_accept, make_world, outage
from tracker_bridge.models import ChecksState, Phase, PullRequestState, RunOutcome, Score, Stage, Ticket
from tracker_bridge.protocols import CodeHostError, PollResult, RejectedTicket, TrackerError

BRANCH = "agent/T-1-fix-the-bug"


def test_a_triggered_ticket_is_run_published_and_put_in_review(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.tracker.add("T-1")
    w.step()
    assert w.stage("T-1") == "review"
    assert w.tracker.columns["T-1"] == "In Review"
    assert "pull request open for review" in w.tracker.comments["T-1"]
    assert list(w.host.pulls) == [BRANCH] and w.host.pushed[BRANCH]
    assert w.tracker.links["T-1"] == "https://code.test/pr/1"
    runs = w.store.runs(w.row("T-1").id)
    assert [(r.status, r.outcome) for r in runs] == [("finished", "succeeded")]
    assert runs[0].cost_usd == pytest.approx(0.2)  # spend recorded from the streamed usage and the report


def test_a_code_host_outage_while_cloning_is_retried_and_leaves_no_run_running(tmp_path: Path) -> None:
    # Regression: the outage failed the ticket for good and its run row stayed `running` until a restart.
    w = make_world(tmp_path)
    w.tracker.add("T-1")
    w.host.faults.add("clone", outage("connection refused"), times=2)
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.RUNNING and row.retry_attempts == 1
    assert "tries again next cycle (attempt 1 of 8)" in w.tracker.comments["T-1"]
    assert [r.status for r in w.store.runs(row.id)] == ["interrupted"]
    w.step()  # second outage: the next try waits out a backoff delay
    assert "attempt 2 of 8" in w.tracker.comments["T-1"]
    w.step()
    assert w.stage("T-1") == "running", "tried again before the backoff delay"
    w.clock.advance(31)
    w.step()
    assert w.stage("T-1") == "review"
    assert [r.status for r in w.store.runs(row.id)] == ["interrupted", "interrupted", "finished"]


def test_a_permanent_clone_error_fails_the_ticket_with_its_fix(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.tracker.add("T-1")
    denied = CodeHostError("401 Unauthorized", fix="renew the token in GITHUB_TOKEN", transient=False)
    w.host.faults.add("clone", denied)
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.FAILED and "renew the token in GITHUB_TOKEN" in row.reason
    assert [r.status for r in w.store.runs(row.id)] == ["interrupted"]
    assert w.tracker.columns["T-1"] == "Needs Human"


def test_a_spent_budget_does_not_hold_back_a_publish_retry(tmp_path: Path) -> None:
    # Regression: a change that passed its tests but hit a 503 on push waited for the next day's budget.
    w = make_world(tmp_path, agent=ScriptedAgent(turns=2, cost_per_turn=0.3), agent_config={"daily_budget_usd": 0.5})
    w.tracker.add("T-1")
    w.host.faults.add("push", outage())
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.RUNNING and row.phase is Phase.PUBLISHING and row.publish_attempts == 1
    assert w.store.spent_on(w.clock().date()) >= 0.5  # today's budget is spent
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.REVIEW, row.reason
    assert "budget" not in w.tracker.comments["T-1"]
    assert len(w.agent.requests) == 1


def test_publishing_is_retried_with_backoff_and_counted_in_the_comment(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.tracker.add("T-1")
    w.host.faults.add("push", outage("503 from the code host"), times=2)
    w.step()
    assert "publishing it" in w.tracker.comments["T-1"]
    assert "attempt 1 of 8" in w.tracker.comments["T-1"]
    w.step()
    assert "attempt 2 of 8" in w.tracker.comments["T-1"] and "in 30 s" in w.tracker.comments["T-1"]
    w.step()
    assert w.row("T-1").publish_attempts == 2  # not tried before its time
    w.clock.advance(30)
    w.step()
    assert w.stage("T-1") == "review"
    assert len(w.agent.requests) == 1  # only the publish was repeated


def test_a_twenty_second_push_outage_does_not_send_passing_work_to_a_person(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.tracker.add("T-1")
    outage_ends = w.clock() + timedelta(seconds=20)
    w.host.faults.add("push", outage(), times=100)
    for _ in range(40):  # a cycle every 5 s for over three minutes
        if w.clock() >= outage_ends:
            w.host.faults.clear("push")
        w.step()
        w.clock.advance(5)
    assert w.stage("T-1") == "review"


def test_a_push_refused_every_time_fails_after_the_retry_attempts(tmp_path: Path) -> None:
    w = make_world(tmp_path, retry_attempts=3, retry_backoff=0)
    w.tracker.add("T-1")
    w.host.faults.add("push", outage("refused by policy"), times=10)
    for _ in range(3):
        w.step()
    row = w.row("T-1")
    assert row.stage is Stage.FAILED and "could not be pushed or proposed" in row.reason
    assert row.publish_attempts == 3


def test_a_card_that_cannot_be_moved_fails_the_ticket_with_the_reason(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.tracker.add("T-1")
    w.tracker.faults.add("move", TrackerError("column 'Agent' does not exist"))
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.FAILED
    assert "could not move the card to 'Agent'" in row.reason
    assert w.tracker.columns["T-1"] == "Needs Human"
    assert w.agent.requests == []


def test_a_run_interrupted_by_a_restart_is_run_again_from_a_clean_start(tmp_path: Path) -> None:
    gate = threading.Event()  # the first daemon's run never gets past it while that daemon is "dead"
    w = make_world(tmp_path, agent=ScriptedAgent(gate=gate))
    w.tracker.add("T-1")
    w.engine.cycle()
    assert w.stage("T-1") == "running"
    while not w.agent.requests:  # the dead daemon's run is at the agent (done with its workspace's clone)
        threading.Event().wait(0.01)
    dead = w.engine
    w.agent = ScriptedAgent()
    w.restart()  # the daemon dies; the new one finds the run row `running`
    assert [r.status for r in w.store.runs(w.row("T-1").id)] == ["interrupted"]
    w.step()
    assert w.stage("T-1") == "review"
    assert len(w.host.pulls) == 1
    assert [r.status for r in w.store.runs(w.row("T-1").id)] == ["interrupted", "finished"]
    gate.set()
    dead.pool.shutdown(wait=True)


def test_a_pull_request_opened_before_a_crash_is_adopted_without_running_again(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.tracker.add("T-1")
    w.host.faults.add("push", outage())
    w.step()
    # Meanwhile the branch was pushed and the pull request opened (the crash came before it was recorded).
    w.host.pushed[BRANCH] = "abc"
    w.host.open_pull_request(BRANCH, "T-1: Fix the bug", "")
    w.host.set_pr(BRANCH, head_sha=w.store.last_run(w.row("T-1").id).commit_sha)  # type: ignore[union-attr]
    w.restart()
    w.step()
    assert w.stage("T-1") == "review" and w.row("T-1").pr_id == "1"
    assert len(w.agent.requests) == 1 and len(w.host.pulls) == 1


def test_a_crash_in_the_run_fails_the_ticket_and_closes_the_run(tmp_path: Path) -> None:
    class Crashing(ScriptedAgent):
        def run(self, request, on_event):  # type: ignore[no-untyped-def]
            raise RuntimeError("backend bug")

    w = make_world(tmp_path, agent=Crashing())
    w.tracker.add("T-1")
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.FAILED and "backend bug" in row.reason
    assert [r.status for r in w.store.runs(row.id)] == ["interrupted"]


def test_failing_ci_sends_the_ticket_back_to_the_agent_on_the_same_pull_request(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.tracker.add("T-1")
    w.step()
    w.host.set_pr(BRANCH, checks=ChecksState.FAILING, feedback=["test_x failed"])
    w.step()
    assert w.stage("T-1") == "review"
    assert len(w.agent.requests) == 2 and w.agent.requests[1].prompt.count("test_x failed") >= 1
    assert w.row("T-1").iterations == 1 and len(w.host.pulls) == 1


def test_poisoned_tickets_are_reported_and_skipped_while_a_good_one_reaches_review(tmp_path: Path) -> None:
    def scorer(ticket: Ticket, config: object, repo_dir: object) -> Score:
        if ticket.ref == "BOOM-1":
            raise ValueError("a field of the wrong type")
        return always_accept(ticket, config, repo_dir)

    w = make_world(tmp_path, scorer=scorer)
    w.tracker.rejected = [RejectedTicket("BAD-1", "the front matter is not valid YAML")]
    w.tracker.add("BOOM-1")
    w.tracker.add("ETC-1", repo="../../etc")
    w.tracker.add("T-1")
    w.step()
    assert w.stage("T-1") == "review"
    reasons = {r.ref: r.reason for r in w.store.rejections()}
    assert reasons["BAD-1"] == "the front matter is not valid YAML"
    assert "a field of the wrong type" in reasons["BOOM-1"]
    assert "could not be read" in w.tracker.comments["BAD-1"]
    etc = w.row("ETC-1")
    assert etc.stage is Stage.FAILED and "'../../etc'" in etc.reason and "configured repositories: 'app'" in etc.reason
    w.step()  # reported once, not once per cycle
    assert sum(1 for c in w.tracker.calls if c == ("comment", "BAD-1")) == 1
    # Fixed on the board: read again, no longer reported.
    w.tracker.rejected = []
    w.tracker.add("BAD-1")
    w.step()
    assert w.stage("BAD-1") == "review"
    assert "BAD-1" not in {r.ref for r in w.store.rejections()}
    assert "BOOM-1" in {r.ref for r in w.store.rejections()}  # still failing: still reported


def test_concurrent_runs_overspend_a_small_daily_budget_by_at_most_one_turn(tmp_path: Path) -> None:
    gate = threading.Event()
    agent = ScriptedAgent(turns=10, cost_per_turn=0.1, gate=gate)
    w = make_world(tmp_path, agent=agent, max_concurrent_runs=4, agent_config={"daily_budget_usd": 0.25})
    for i in range(4):
        w.tracker.add(f"T-{i}", title=f"Fix bug {i}")
    w.engine.cycle()
    gate.set()
    w.engine.wait()
    for _ in range(3):
        w.step()
    spent = w.store.spent_on(w.clock().date())
    assert 0.25 <= spent <= 0.25 + 0.1 + 1e-9
    waiting = [r for r in w.store.tickets() if r.stage is Stage.QUEUED]
    assert waiting and all("daily budget" in r.reason for r in waiting)


def test_an_idle_cycle_does_not_touch_settled_tickets(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.tracker.add("T-1")
    w.tracker.add("T-2", labels=("agent-ready",))
    w.step()
    w.host.set_pr(BRANCH, state=PullRequestState.MERGED)
    w.step()
    assert w.stage("T-1") == "done"
    del w.tracker.tickets["T-1"], w.tracker.tickets["T-2"]  # nothing changed on the board since
    w.tracker.calls.clear()
    w.step()
    assert [c[0] for c in w.tracker.calls] == ["poll"]
    assert all(r.synced for r in w.store.tickets())


def test_a_failed_run_reports_its_reason(tmp_path: Path) -> None:
    w = make_world(tmp_path, agent=ScriptedAgent(outcome=RunOutcome.AGENT_FAILED))
    w.tracker.add("T-1")
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.FAILED and row.reason == "the agent gave up"


def test_scoring_runs_off_the_loop_thread_and_the_ticket_still_starts_in_the_same_cycle(tmp_path: Path) -> None:
    threads: list[str] = []

    def scorer(ticket: Ticket, config: object, repo_dir: object) -> Score:
        threads.append(threading.current_thread().name)
        return always_accept(ticket, config, repo_dir)

    w = make_world(tmp_path, scorer=scorer)
    w.tracker.add("T-1")
    report = w.engine.cycle()
    assert report.started_runs == ["T-1"]
    w.engine.wait()
    assert w.stage("T-1") == "review"
    assert threads and all(name.startswith("score") for name in threads)


def test_a_stalled_tracker_delays_only_its_own_tickets(tmp_path: Path) -> None:
    release = threading.Event()

    class Stalled(FakeTracker):
        def poll(self, cursor: str | None) -> PollResult:
            release.wait(30)
            return super().poll(cursor)

    slow = Stalled(name="slow")
    slow.add("S-1")
    w = make_world(tmp_path, others=(slow,), cycle_deadline=3.0)
    w.tracker.add("T-1")
    report = w.engine.cycle()
    assert report.started_runs == ["T-1"] and "slow" in report.poll_errors
    w.engine.wait()
    assert w.stage("T-1") == "review"
    release.set()  # the board answers at last: its ticket is taken by the next cycle
    w.step()
    assert w.store.ticket("slow", "S-1") is not None
    assert w.store.ticket("slow", "S-1").stage is Stage.REVIEW  # type: ignore[union-attr]
    assert slow.calls.count(("poll", "")) == 1  # the stalled poll was never started twice


def test_a_run_that_ended_but_is_not_yet_written_is_not_started_again(tmp_path: Path) -> None:
    # The run's result can land in the inbox just after a cycle drained it: the row still says running, and the
    # cycle must not take that for a run lost in a crash and start a second agent on the ticket.
    gate = threading.Event()
    world = make_world(tmp_path, agent=ScriptedAgent(gate=gate))
    world.tracker.add("T-1")
    world.engine.cycle()
    assert world.stage("T-1") == "running"
    gate.set()
    while not all(f.done() for f in world.engine.active.values()):
        threading.Event().wait(0.01)
    drain = world.engine._drain
    world.engine._drain = lambda report: None  # type: ignore[method-assign]  # the result arrives after the drain
    world.engine.cycle()
    world.engine._drain = drain  # type: ignore[method-assign]
    world.engine.wait()
    assert len(world.agent.requests) == 1, "a second agent run was started on a ticket whose run had finished"
    assert world.stage("T-1") == "review"
