"""The daemon as a service manager runs it (real processes): one daemon per state store, a bounded and logged
SIGTERM, a second signal that exits at once, SIGHUP reloading the configuration."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.journey_helpers import Journey, make_journey
from tests.processes import Proc, until
from tracker_bridge.lease import Lease
from tracker_bridge.store import Store

# An agent that works for two minutes unless stopped, and leaves its pid so the test can see it die.
SLOW_AGENT = """import os, pathlib, sys, time
pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
time.sleep(120)
"""
GRACE = 2.0
LEASE = 3.0


@pytest.fixture
def journey(tmp_path: Path) -> Journey:
    agent = tmp_path / "slow_agent.py"
    agent.write_text(SLOW_AGENT)
    j = make_journey(tmp_path, agent_command=f"{sys.executable} {agent} {tmp_path / 'agent.pid'}")
    text = j.config.read_text().replace(
        "poll_interval = 5", f"poll_interval = 0.5\nshutdown_grace = {GRACE}\nlease_seconds = {LEASE}"
    )
    j.config.write_text(text.replace("timeout = 300", 'timeout = 300\nsandbox = "none"\nallow_unsandboxed = true'))
    return j


def agent_pid(journey: Journey) -> int:
    pid_file = journey.root / "agent.pid"
    until(lambda: pid_file.exists() and pid_file.read_text() != "", 60, "the agent to start")
    return int(pid_file.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent, the test, is not its parent here, so it is reaped by init soon).
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def last_run_status(journey: Journey) -> str:
    store = Store(f"sqlite:///{journey.root / 'state.db'}")
    try:
        row = store.find_ticket("DEMO-1")
        assert row is not None
        return store.runs(row.id)[-1].status
    finally:
        store.close()


def test_sigterm_waits_up_to_the_grace_then_interrupts_the_run_and_exits_0(
    journey: Journey, procs: list[Proc]
) -> None:
    daemon = Proc(journey, "run")
    procs.append(daemon)
    agent = agent_pid(journey)
    daemon.signal(signal.SIGTERM)
    started = time.monotonic()
    assert daemon.wait(timeout=GRACE + 5) == 0, daemon.output
    assert time.monotonic() - started >= GRACE - 0.5  # it did wait for the run
    out = daemon.output
    assert "daemon.stopping" in out and "daemon.waiting" in out and "DEMO-1" in out
    assert "daemon.interrupted_runs" in out and "Traceback" not in out
    until(lambda: not alive(agent), 5, "the agent to die with the daemon")
    assert last_run_status(journey) == "interrupted"  # resumed at the next start, as after a crash
    store = Store(f"sqlite:///{journey.root / 'state.db'}")
    assert Lease(store, LEASE).holder() is None  # a clean stop releases the state store at once
    store.close()


def test_a_second_signal_exits_at_once_without_a_traceback(journey: Journey, procs: list[Proc]) -> None:
    journey.config.write_text(journey.config.read_text().replace(f"shutdown_grace = {GRACE}", "shutdown_grace = 60"))
    daemon = Proc(journey, "run")
    procs.append(daemon)
    agent = agent_pid(journey)
    daemon.signal(signal.SIGTERM)
    until(lambda: "daemon.waiting" in daemon.output, 10, "the daemon to say what it waits for")
    daemon.signal(signal.SIGINT)
    assert daemon.wait(timeout=5) == 128 + signal.SIGINT
    assert "daemon.exit_now" in daemon.output and "Traceback" not in daemon.output
    until(lambda: not alive(agent), 5, "the agent to die with the daemon")


def test_a_second_daemon_is_refused_and_a_standby_takes_over_a_dead_holder(
    journey: Journey, procs: list[Proc]
) -> None:
    holder = Proc(journey, "run")
    procs.append(holder)
    agent_pid(journey)
    assert journey.column("DEMO-1") == "In Progress"

    second = subprocess.run(
        [sys.executable, "-m", "tracker_bridge.cli", "run", "--once", "-c", str(journey.config)],
        cwd=journey.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2, second.stdout + second.stderr
    said = " ".join((second.stdout + second.stderr).split())
    assert f"held by tracker-bridge on {socket.gethostname()} (pid {holder.popen.pid})" in said
    assert "--standby" in said
    # The live run was left alone: not marked interrupted, not started a second time.
    assert last_run_status(journey) == "running" and journey.column("DEMO-1") == "In Progress"

    standby = Proc(journey, "run", "--standby")
    procs.append(standby)
    until(lambda: "lease.standby" in standby.output, 20, "the standby to wait")
    assert standby.popen.poll() is None
    holder.popen.kill()
    holder.popen.wait()
    took = until(lambda: "lease.acquired" in standby.output, LEASE + 10, "the standby to take over")
    assert took <= LEASE + 3, took
    # It resumes the run the dead holder left, then stops cleanly.
    until(lambda: last_run_status(journey) == "running" and "run.start" in standby.output, 30, "the run to resume")
    standby.signal(signal.SIGTERM)
    assert standby.wait(timeout=GRACE + 5) == 0, standby.output


def test_sighup_reloads_the_configuration_and_a_broken_file_keeps_the_last_good_one(
    journey: Journey, procs: list[Proc]
) -> None:
    daemon = Proc(journey, "run")
    procs.append(daemon)
    until(lambda: "daemon.started" in daemon.output, 30, "the daemon to start")
    good = journey.config.read_text()
    journey.config.write_text(good + "\n[scoring]\ntreshold = 0.5\n")
    daemon.signal(signal.SIGHUP)
    # Generous bounds: the handler reads the file and builds the connectors anew; a loaded CI machine once took
    # more than 10 s.
    until(lambda: "config.reload_failed" in daemon.output, 30, "the failed reload to be logged")
    assert "treshold" in daemon.output and "last good configuration" in daemon.output
    assert daemon.popen.poll() is None  # SIGHUP no longer kills the daemon
    journey.config.write_text(good.replace("poll_interval = 0.5", "poll_interval = 0.7"))
    daemon.signal(signal.SIGHUP)
    until(lambda: "config.reloaded" in daemon.output, 30, "the reload")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, daemon.output  # the bound on SIGTERM is the test above
