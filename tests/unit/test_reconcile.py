"""Issue 13 on the engine's in-memory remotes: a ticket a person takes away while the agent works is stopped (no
push, no pull request, the card left where the person put it), operator stop/retry requests from the store are
carried out, transient agent failures are retried with backoff, colliding references get their own workspaces."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.fakes import FakeTracker, ScriptedAgent, World, make_world
from tracker_bridge.control import Controls
from tracker_bridge.models import RunOutcome, Stage
from tracker_bridge.views import ticket_summary


def _running(tmp_path: Path) -> tuple[World, threading.Event]:
    """A world whose agent is at work on T-1 (held by a gate that is never opened unless the test does)."""
    gate = threading.Event()
    w = make_world(tmp_path, agent=ScriptedAgent(gate=gate))
    w.tracker.add("T-1")
    w.engine.cycle()
    assert w.stage("T-1") == "running" and w.tracker.columns["T-1"] == "In Progress"
    assert w.engine.in_flight() == ["T-1"]
    deadline = time.monotonic() + 10
    while not w.agent.requests and time.monotonic() < deadline:  # the workspace is cloned first
        time.sleep(0.02)
    assert w.agent.requests, "the agent never started"
    return w, gate


def _assert_stopped(w: World, column: str, words: str) -> None:
    before = len(w.tracker.calls)
    w.engine.cycle()
    w.engine.wait()
    assert w.stage("T-1") == "cancelled"
    assert w.engine.in_flight() == []
    assert w.agent.requests[0].cancel.is_set(), "the agent was not told to stop"
    assert w.host.pushed == {} and w.host.pulls == {}, "a stopped run pushed or proposed something"
    assert w.tracker.columns["T-1"] == column, "the card was moved away from where the person put it"
    assert [c for c in w.tracker.calls[before:] if c[0] == "move"] == [], "the card was moved after the stop"
    assert words in w.tracker.comments["T-1"] and "nothing was pushed or proposed" in w.tracker.comments["T-1"]
    runs = w.store.runs(w.row("T-1").id)
    assert [(r.status, r.outcome) for r in runs] == [("finished", "cancelled")]
    w.step()  # and it stays so
    assert w.stage("T-1") == "cancelled" and len(w.agent.requests) == 1


def test_a_card_moved_to_done_while_the_agent_works_stops_it_and_stays_in_done(tmp_path: Path) -> None:
    w, _ = _running(tmp_path)
    w.tracker.columns["T-1"] = "Done"
    _assert_stopped(w, "Done", "a person moved the card to 'Done'")


def test_a_removed_label_stops_the_running_agent(tmp_path: Path) -> None:
    w, _ = _running(tmp_path)
    w.tracker.remove_label("T-1", "agent-ready")
    _assert_stopped(w, "In Progress", "a person removed the label 'agent-ready'")


def test_a_closed_ticket_stops_the_running_agent(tmp_path: Path) -> None:
    w, _ = _running(tmp_path)
    w.tracker.tickets["T-1"] = w.tracker.tickets["T-1"].model_copy(update={"closed": True})
    _assert_stopped(w, "In Progress", "a person closed the ticket")


def test_a_deleted_ticket_stops_the_running_agent(tmp_path: Path) -> None:
    w, _ = _running(tmp_path)
    del w.tracker.tickets["T-1"]
    _assert_stopped(w, "In Progress", "a person deleted the ticket")


def test_a_running_ticket_not_in_the_poll_is_read_once_per_cycle(tmp_path: Path) -> None:
    # The poll returns only triggered tickets: once the label is gone, the targeted read is what notices.
    w, _ = _running(tmp_path)
    w.tracker.tickets["T-1"] = w.tracker.tickets["T-1"].model_copy(update={"labels": ()})
    polled = FakeTracker.poll

    def poll_without_untriggered(self: FakeTracker, cursor: str | None) -> object:
        result = polled(self, cursor)
        result.tickets[:] = [t for t in result.tickets if t.labels]
        return result

    FakeTracker.poll = poll_without_untriggered  # type: ignore[assignment,method-assign]
    try:
        before = len([c for c in w.tracker.calls if c[0] == "get_ticket"])
        w.engine.cycle()
        reads = len([c for c in w.tracker.calls if c[0] == "get_ticket"]) - before
    finally:
        FakeTracker.poll = polled  # type: ignore[method-assign]
    w.engine.wait()
    assert reads == 1
    assert w.stage("T-1") == "cancelled" and w.host.pulls == {}


def test_a_queued_ticket_closed_by_a_person_is_not_run(tmp_path: Path) -> None:
    w = make_world(tmp_path, max_concurrent_runs=1)
    gate = threading.Event()
    w.agent.gate = gate
    w.tracker.add("T-1")
    w.tracker.add("T-2")
    w.engine.cycle()  # T-1 runs, T-2 waits in the queue
    assert w.stage("T-2") == "queued"
    w.tracker.tickets["T-2"] = w.tracker.tickets["T-2"].model_copy(update={"closed": True})
    w.engine.cycle()
    assert w.stage("T-2") == "cancelled"
    gate.set()
    w.engine.wait()
    w.step()
    assert [r.ticket.ref for r in w.agent.requests] == ["T-1"]
    assert w.stage("T-1") == "review"


def test_stop_and_retry_requests_in_the_store_are_carried_out(tmp_path: Path) -> None:
    w, gate = _running(tmp_path)
    controls = Controls(w.store)
    controls.request("stop", "T-1", by="alice")
    w.engine.tend()  # between cycles: the daemon's one-second pass
    w.engine.wait()
    assert w.stage("T-1") == "cancelled" and "stopped by alice" in w.tracker.comments["T-1"]
    assert w.host.pulls == {} and controls.pending() == []
    gate.set()
    controls.request("retry", "T-1", by="bob")
    w.step()
    assert w.stage("T-1") == "review", "a retried ticket is queued again and run"
    assert len(w.agent.requests) == 2 and list(w.host.pulls) and controls.pending() == []


def test_a_retry_of_a_ticket_at_work_changes_nothing(tmp_path: Path) -> None:
    w, gate = _running(tmp_path)
    Controls(w.store).request("retry", "T-1")
    w.engine.cycle()
    assert w.stage("T-1") == "running" and Controls(w.store).pending() == []
    gate.set()
    w.engine.wait()
    w.step()
    assert w.stage("T-1") == "review" and len(w.agent.requests) == 1


def test_an_overloaded_model_api_is_retried_with_backoff_and_the_third_attempt_succeeds(tmp_path: Path) -> None:
    agent = ScriptedAgent(script=[RunOutcome.API_ERROR, RunOutcome.API_ERROR])
    w = make_world(tmp_path, agent=agent, retry_backoff=30)
    w.tracker.add("T-1")
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.RUNNING and row.retry_attempts == 1
    comment = w.tracker.comments["T-1"]
    assert "attempt 1 of 3 did not finish" in comment and "tries again at 2026-01-05 09:00:30 UTC" in comment
    assert ticket_summary(w.settings, w.store, row)["next_attempt_at"] == "2026-01-05T09:00:30Z"  # the API says it
    w.step()
    assert len(agent.requests) == 1, "retried before its time"
    w.clock.advance(31)
    w.step()
    assert "attempt 2 of 3" in w.tracker.comments["T-1"] and "09:01:31 UTC" in w.tracker.comments["T-1"]
    w.clock.advance(61)
    w.step()
    assert w.stage("T-1") == "review" and len(agent.requests) == 3
    runs = w.store.runs(row.id)
    assert [r.outcome for r in runs] == ["api_error", "api_error", "succeeded"]
    assert w.store.ticket_cost(row.id) > runs[-1].cost_usd, "the failed attempts' cost is counted too"


def test_an_agent_that_stalls_every_attempt_fails_after_max_attempts(tmp_path: Path) -> None:
    agent = ScriptedAgent(script=[RunOutcome.STALLED] * 3)
    w = make_world(tmp_path, agent=agent, agent_config={"max_attempts": 2}, retry_backoff=10)
    w.tracker.add("T-1")
    w.step()
    w.clock.advance(11)
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.FAILED and "gave up after 2 attempt(s) of [agent] max_attempts = 2" in row.reason


def test_colliding_references_get_separate_workspaces_and_branches(tmp_path: Path) -> None:
    other = FakeTracker(name="lab")
    w = make_world(tmp_path, others=(other,))
    w.tracker.add("acme/app#12")
    other.add("acme/app#12")
    w.step()
    rows = [w.store.ticket(n, "acme/app#12") for n in ("board", "lab")]
    assert all(r is not None and r.stage.value == "review" for r in rows)
    branches = {r.branch for r in rows if r is not None}
    assert branches == {"agent/board-acme-app-12-fix-the-bug", "agent/lab-acme-app-12-fix-the-bug"}
    folders = {w.store.runs(r.id)[0].workspace for r in rows if r is not None}
    assert len(folders) == 2 and set(w.host.pushed) == branches
