"""The run row as the contract between the leader and `tracker-bridge worker` processes (worker.py, remote_runs.py):
one live claim per run, a result written only by the current claim, and the daily budget held across workers and
across a leader's fail-over by the reservations on the run rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import pg
from tests.fakes import ScriptedAgent, World, make_world
from tracker_bridge.models import Phase, Stage, Ticket
from tracker_bridge.runqueue import RunSpec
from tracker_bridge.store import RunRow, Store
from tracker_bridge.worker import Executor, Heartbeat, Identity


def _run_row(store: Store) -> int:
    row, _ = store.get_or_create_ticket("board", "T-1", title="Fix it")
    spec = RunSpec(ticket=Ticket(ref="T-1", tracker="board", title="Fix it"), repo="app", branch="agent/T-1")
    run = store.start_run(row.id, backend="scripted", branch="agent/T-1", workspace="w", trace_path="t",
                          plan_json=spec.to_json())  # fmt: skip
    return run.id


def queued_world(tmp_path: Path, pg_server: pg.PostgresServer, agent: ScriptedAgent, **options: Any) -> World:
    """An in-memory world whose state and run queue are a fresh PostgreSQL database (workers run its jobs)."""
    pytest.importorskip("procrastinate", reason="procrastinate is not installed")
    url = pg_server.new_database()
    return make_world(tmp_path, agent=agent, state=url, queue=url, lease_seconds=5, **options)


@contextmanager
def one_run_deferred(
    tmp_path: Path, pg_server: pg.PostgresServer, agent: ScriptedAgent, **options: Any
) -> Iterator[tuple[World, RunRow, Executor]]:
    """T-1 taken by the leader and its run deferred on a PostgreSQL queue, and a live worker's executor (with the
    world's agent and host) to run it."""
    w = queued_world(tmp_path, pg_server, agent, **options)
    me = Identity()
    beat = Heartbeat(w.store, w.settings, me, 1)
    try:
        w.tracker.add("T-1")
        w.engine.cycle()
        [run] = w.store.all_runs()
        executor = Executor(w.settings, w.store, me, backend_factory=lambda _s: agent,  # type: ignore[arg-type,return-value]
                            host_factory=lambda _r, _s: w.host)  # type: ignore[arg-type,return-value]  # fmt: skip
        yield w, run, executor
    finally:
        beat.stop()
        w.engine.shutdown()
        w.store.close()


def test_one_live_claim_per_run_and_only_the_current_claim_writes_the_result(tmp_path: Path, state_url: str) -> None:
    from tests.fakes import settings_for

    settings = settings_for(tmp_path, state=state_url, lease_seconds=5)
    store = Store(settings.state_url)
    run_id = _run_row(store)
    first, second = Executor(settings, store, Identity()), Executor(settings, store, Identity())

    claimed = first._claim(run_id)
    assert claimed is not None and claimed[1] == 1
    assert second._claim(run_id) is None  # the first worker's lease is live: nobody else may take the run

    store.update_run(run_id, lease_until=datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1))
    taken = second._claim(run_id)  # the first worker went silent: its lease ran out
    assert taken is not None and taken[1] == 2

    result = {"kind": "crash", "message": "x"}
    assert not first._write_result(run_id, 1, result, None)  # the old claim's result is refused (fencing)
    assert second._write_result(run_id, 2, result, b"bundle")
    assert not second._write_result(run_id, 2, result, None)  # written once
    assert first._claim(run_id) is None  # a run with its result is never claimed again
    assert store.run_bundle(run_id) == b"bundle"
    store.close()


@pytest.mark.postgres
def test_four_workers_and_a_new_leader_overspend_the_daily_budget_by_at_most_one_runs_cap(
    tmp_path: Path, pg_server: pg.PostgresServer
) -> None:
    agent = ScriptedAgent(turns=10, cost_per_turn=0.1)
    budget, cap = 1.0, 0.4
    w = queued_world(tmp_path, pg_server, agent, agent_config={"daily_budget_usd": budget, "max_cost_usd": cap})
    workers = [Identity() for _ in range(4)]
    beats = [Heartbeat(w.store, w.settings, me, 1) for me in workers]
    try:
        for i in range(6):
            w.tracker.add(f"T-{i}", title=f"Fix bug {i}")
        w.engine.cycle()
        started = w.store.all_runs()
        assert len(started) == 3  # 0.4 + 0.4 + 0.2 set aside: nothing left of today's budget for a fourth

        # The leader fails over before any worker has spent a cent: the new one counts the reservations on the
        # rows (the old one's memory is gone) and starts nothing more.
        w.restart()
        w.engine.cycle()
        assert len(w.store.all_runs()) == 3

        executors = [Executor(w.settings, w.store, me, backend_factory=lambda _s: agent,  # type: ignore[arg-type,return-value]
                              host_factory=lambda _r, _s: w.host)  # type: ignore[arg-type,return-value]
                     for me in workers]  # fmt: skip
        pairs = zip(executors[:3], started, strict=True)  # three runs on three of the four workers
        threads = [threading.Thread(target=ex.execute, args=(run.id,)) for ex, run in pairs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        deadline = time.monotonic() + 30
        while any(r.status == "running" for r in w.store.all_runs()):
            assert time.monotonic() < deadline, "the leader never took the workers' results"
            w.engine.tend()
            time.sleep(0.1)
        for _ in range(2):
            w.engine.cycle()
            w.engine.wait()

        runs: list[RunRow] = w.store.all_runs()
        spent = w.store.spent_on(datetime.now(UTC).date())
        assert len(runs) == 3 and all(r.status == "finished" for r in runs)
        assert budget - 1e-9 <= spent <= budget + cap + 1e-9, spent
        waiting = [r for r in w.store.tickets() if r.stage is Stage.QUEUED]
        assert waiting and all("daily budget" in r.reason for r in waiting)
    finally:
        for beat in beats:
            beat.stop()
        w.engine.shutdown()
        w.store.close()


def test_worker_refuses_a_local_queue_and_a_bad_queue_url_names_the_key(tmp_path: Path) -> None:
    from tests.journey_helpers import make_journey

    journey = make_journey(tmp_path)
    result = journey.cli("worker")
    assert result.exit_code == 2 and '[bridge] queue = "local"' in result.output, result.output
    text = journey.config.read_text()
    journey.config.write_text(text.replace("max_concurrent_runs = 2", 'max_concurrent_runs = 2\nqueue = "redis://x"'))
    result = journey.cli("run", "--once")
    assert result.exit_code == 2 and "queue" in result.output and "PostgreSQL URL" in result.output, result.output


@pytest.mark.postgres
def test_a_plan_run_executes_on_a_worker_and_its_plan_reaches_the_ticket(
    tmp_path: Path, pg_server: pg.PostgresServer
) -> None:
    """With a queue, a mid-score ticket's read-only plan run goes where agent runs go: to a worker, not the leader."""
    from tests.unit.test_engine_approval import PLAN, PlanningAgent, mid_score

    agent = PlanningAgent()
    with one_run_deferred(tmp_path, pg_server, agent, scorer=mid_score) as (w, run, executor):
        assert w.row("T-1").phase is Phase.PLANNING and run.plan_json is not None
        assert RunSpec.from_json(run.plan_json).plan_only
        time.sleep(0.5)
        assert agent.requests == []  # the leader did not run it itself

        executor.execute(run.id)
        deadline = time.monotonic() + 30
        while w.row("T-1").stage is not Stage.AWAITING_APPROVAL:
            assert time.monotonic() < deadline, w.row("T-1").reason
            w.engine.tend()
            time.sleep(0.1)

        [request] = agent.requests
        assert request.max_cost_usd == pytest.approx(w.settings.scoring.plan_max_cost_usd)
        assert str(w.settings.state_dir / "workers") in str(request.workspace)  # the worker's own workspace
        assert "Return 42." in PLAN and "Return 42." in w.tracker.comments["T-1"]  # the worker's plan, shown
        assert w.host.pushed == {} and w.host.pulls == {}  # read-only: nothing handed over, nothing pushed
        assert w.store.run_bundle(run.id) is None


@pytest.mark.postgres
def test_a_worker_that_takes_a_run_over_closes_the_dead_holder_s_job(
    tmp_path: Path, pg_server: pg.PostgresServer
) -> None:
    """A worker can claim a dead worker's run before the leader sees the lease run out: then the worker closes the
    dead one's procrastinate job, which would otherwise stay `doing` for ever."""
    import psycopg

    from tracker_bridge import jobs
    from tracker_bridge.worker import register_task

    agent = ScriptedAgent()
    with one_run_deferred(tmp_path, pg_server, agent) as (w, run, executor):
        url = w.settings.bridge.queue
        # A worker took the job and the run, then died: its job `doing`, its lease on the run lapsed.
        with psycopg.connect(jobs.conninfo(url), autocommit=True) as conn:
            [(dead_job,)] = conn.execute("UPDATE procrastinate_jobs SET status = 'doing' RETURNING id").fetchall()
        w.store.update_run(run.id, holder="dead-worker", claims=1,
                           lease_until=datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1))  # fmt: skip
        app = jobs.make_app(url)
        with app.open():
            app.configure_task(jobs.TASK, queue=jobs.QUEUE).defer(run_id=run.id)  # the run deferred again
        register_task(app, executor)
        app.run_worker(queues=[jobs.QUEUE], wait=False, install_signal_handlers=False)  # the jobs there, then back

        assert len(agent.requests) == 1 and w.store.run_bundle(run.id) is not None  # the run was done, once
        with psycopg.connect(jobs.conninfo(url)) as conn:
            states: dict[int, str] = dict(conn.execute("SELECT id, status FROM procrastinate_jobs").fetchall())
        assert states.pop(dead_job) == "failed", states  # the dead worker's job is closed
        assert "doing" not in states.values(), states
