"""`tracker-bridge stop/retry/pause/resume`: requests recorded in the state store from another process, for the
daemon to carry out; `pause` holds dispatch (also for `run --once`) while everything else goes on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.journey_helpers import Journey
from tracker_bridge.control import Controls
from tracker_bridge.lease import Lease
from tracker_bridge.store import Store


def cli(journey: Journey, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker_bridge.cli", *args, "-c", str(journey.config)],
        cwd=journey.root,
        capture_output=True,
        text=True,
        timeout=60,
    )


def store_of(journey: Journey) -> Store:
    return Store(f"sqlite:///{journey.root / 'state.db'}")


def test_requests_are_recorded_for_the_daemon_and_unknown_refs_refused(journey: Journey) -> None:
    journey.run_once()
    stop = cli(journey, "stop", "DEMO-1")
    assert stop.returncode == 0, stop.stderr
    assert "stop requested for DEMO-1" in stop.stdout and "the next `tracker-bridge run` will act" in stop.stdout
    retry = cli(journey, "retry", "DEMO-2")
    assert retry.returncode == 0 and "retry requested for DEMO-2" in retry.stdout

    unknown = cli(journey, "retry", "NOPE-9")
    assert unknown.returncode == 2
    assert "no ticket NOPE-9" in unknown.stderr and "DEMO-1" in unknown.stderr  # names the known ones

    store = store_of(journey)
    controls = Controls(store)
    pending = controls.pending()
    assert [(c.kind, c.ref) for c in pending] == [("stop", "DEMO-1"), ("retry", "DEMO-2")]
    assert pending[0].requested_by.endswith(f"@{socket.gethostname()}")
    controls.mark_done(pending[0].id)
    assert [c.kind for c in controls.pending()] == ["retry"] and controls.pending("stop") == []
    store.close()


def test_pause_names_the_live_daemon_and_holds_dispatch_until_resume(journey: Journey) -> None:
    store = store_of(journey)
    lease = Lease(store, 30)
    lease.acquire()  # this test process plays the running daemon
    paused = cli(journey, "pause")
    assert paused.returncode == 0, paused.stderr
    assert f"the daemon on {socket.gethostname()} (pid {os.getpid()}) will act" in paused.stdout
    assert Controls(store).paused()
    shown = cli(journey, "status").stdout
    assert f"daemon: tracker-bridge on {socket.gethostname()} (pid {os.getpid()})" in shown
    assert "dispatch is paused" in shown
    lease.release()

    journey.run_once()  # polls, scores and queues, but starts no run
    assert journey.column("DEMO-1") == "Agent" and journey.agent_branches() == []
    assert journey.column("DEMO-2") == "Needs Refinement"  # everything but dispatch goes on

    assert cli(journey, "resume").returncode == 0
    assert not Controls(store).paused()
    journey.run_once()
    assert journey.column("DEMO-1") == "In Review"
    store.close()
