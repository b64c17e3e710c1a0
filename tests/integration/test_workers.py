"""`run` replicas and `tracker-bridge worker` processes on one PostgreSQL (real processes, procrastinate's real
queue): the agent runs execute on the workers, only the leader writes the board and pushes, and killing a worker or
the leader in the middle loses no run and makes nothing twice (see docs/scaling.md)."""

from __future__ import annotations

import signal
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests import pg
from tests.journey_helpers import Journey, make_journey
from tests.processes import Proc, until
from tracker_bridge import jobs
from tracker_bridge.demo import GOOD_TICKET, SLUG_FIXED, STAND_IN_AGENT

pytest.importorskip("procrastinate", reason="procrastinate is not installed: pip install 'tracker-bridge[postgres]'")


def slow_agent(tmp_path: Path, seconds: float) -> str:
    agent = tmp_path / "slow_fix.py"
    agent.write_text(f"import time\ntime.sleep({seconds})\n" + STAND_IN_AGENT.format(fixed=SLUG_FIXED))
    return f"{sys.executable} {agent}"


def worker_journey(tmp_path: Path, pg_server: pg.PostgresServer, keys: list[str], agent: str,
                   poll_interval: float = 0.5) -> Journey:  # fmt: skip
    tickets = {key: GOOD_TICKET.replace("title: slugify()", f"title: {key} slugify()") for key in keys}
    url = pg_server.new_database()
    journey = make_journey(tmp_path, tickets=tickets, agent_command=agent, state_url=url)
    text = journey.config.read_text().replace(
        "poll_interval = 5", f"poll_interval = {poll_interval}\nlease_seconds = 3\nqueue = {url!r}"
    )
    unconfined = 'timeout = 300\nsandbox = "none"\nallow_unsandboxed = true'  # the test's own agent: no sandbox
    journey.config.write_text(text.replace("timeout = 300", unconfined))
    return journey


def queue_url(journey: Journey) -> str:
    return str(tomllib.loads(journey.config.read_text())["bridge"]["queue"])


def assert_one_of_each(journey: Journey, keys: list[str]) -> None:
    branches = journey.agent_branches()
    assert len(branches) == len(keys) and all(any(k in b for b in branches) for k in keys), branches
    assert sorted(p["branch"] for p in journey.pull_requests()) == sorted(branches)
    assert {k: journey.comment_count(k) for k in keys} == dict.fromkeys(keys, 1)


@pytest.mark.postgres
@pytest.mark.slow
def test_workers_take_the_runs_and_a_killed_worker_or_leader_makes_nothing_twice(
    tmp_path: Path, pg_server: pg.PostgresServer, procs: list[Proc]
) -> None:
    keys = [f"DEMO-{i}" for i in range(1, 21)]  # the board of 20 triggered tickets
    journey = worker_journey(tmp_path, pg_server, keys, slow_agent(tmp_path, 1.0))
    workers = [Proc(journey, "worker", "--concurrency", "2", name=f"worker-{n}") for n in "ab"]
    procs.append(Proc(journey, "run", "--standby", name="run-a"))
    until(lambda: "lease.acquired" in procs[0].output, 60, "the first replica to lead")
    procs.append(Proc(journey, "run", "--standby", name="run-b"))
    procs.extend(workers)
    leader, standby = procs[0], procs[1]

    # A worker SIGKILLed in the middle of a run: its run is taken over once its lease has run out.
    until(lambda: any("worker.run_start" in w.output for w in workers), 60, "a worker to start a run")
    victim = next(w for w in workers if "worker.run_start" in w.output)
    survivor = next(w for w in workers if w is not victim)
    victim.kill()
    # The leader SIGKILLed mid-board: the standby takes over and adopts the runs under way on the workers.
    until(lambda: "worker.run_start" in survivor.output, 60, "the other worker to start a run")
    leader.kill()
    until(lambda: "lease.acquired" in standby.output, 30, "the standby to take over")
    until(lambda: "queue.adopted_runs" in standby.output, 30, "the new leader to adopt the runs on the workers")

    until(lambda: all(journey.column(k) == "In Review" for k in keys), 240, "every ticket to reach review")
    time.sleep(1.5)  # a few more cycles: nothing may be made twice afterwards either
    assert_one_of_each(journey, keys)
    assert "took_over=True" in survivor.output, survivor.output  # the killed worker's run, claimed a second time
    # Every run executed on a worker, once: the killed worker's run was finished by the survivor, no other twice.
    finished = [line for w in workers for line in w.output.splitlines() if "worker.run_finished" in line]
    assert len(finished) == len(keys) and all(sum(f"ref={k} " in f for f in finished) == 1 for k in keys), finished
    import psycopg  # with procrastinate (the postgres extra)

    # The killed worker's job is closed, not left `doing` in procrastinate's table for ever.
    # (by the leader that saw its lease run out, or by the worker that took the run over first).
    assert any("queue.stale_job_closed" in p.output for p in (leader, standby, survivor))
    with psycopg.connect(jobs.conninfo(queue_url(journey))) as conn:
        doing = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'").fetchone()
    assert doing == (0,), doing
    for p in (standby, survivor):
        p.popen.send_signal(signal.SIGTERM)
        assert p.popen.wait(timeout=30) == 0, p.output


@pytest.mark.postgres
@pytest.mark.slow
def test_stop_reaches_a_run_executing_on_a_worker_within_one_poll_interval(
    tmp_path: Path, pg_server: pg.PostgresServer, procs: list[Proc]
) -> None:
    poll_interval = 3.0
    journey = worker_journey(tmp_path, pg_server, ["DEMO-1"], slow_agent(tmp_path, 60), poll_interval)
    procs.extend([Proc(journey, "run", name="run"), Proc(journey, "worker", name="worker")])
    worker = procs[1]
    until(lambda: "worker.run_start" in worker.output, 60, "the worker to start the run")
    time.sleep(0.5)  # the agent is under way
    # `status` and `doctor` show the worker alive and what it runs.
    shown = journey.cli("status").output
    assert "workers: 1 alive" in shown and "concurrency 1): DEMO-1" in shown, shown
    assert "concurrency 1): DEMO-1" in journey.cli("doctor").output
    asked = time.monotonic()
    assert journey.cli("stop", "DEMO-1").exit_code == 0
    until(lambda: "worker.run_finished" in worker.output, poll_interval, "the worker to stop the run")
    stopped_in = time.monotonic() - asked
    until(lambda: any(r["stage"] == "cancelled" for r in journey.status()), 10, "the ticket to be cancelled")
    assert '"cancelled"' in worker.output or "outcome=cancelled" in worker.output, worker.output
    assert stopped_in < poll_interval
    assert journey.agent_branches() == [] and journey.pull_requests() == []
