"""SIGKILL the daemon at every point of the journey; the restarted daemon ends in the same board with exactly one
branch, one pull request and one status comment per ticket."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.journey_helpers import Journey, make_journey
from tracker_bridge.failpoints import ENV, POINTS

BRANCH = "agent/DEMO-1-slugify-keeps-upper-case-and-repeated"


def assert_recovered(journey: Journey) -> None:
    assert journey.column("DEMO-1") == "In Review"
    assert journey.column("DEMO-2") == "Needs Refinement"
    assert journey.agent_branches() == [BRANCH]
    assert [p["branch"] for p in journey.pull_requests()] == [BRANCH]
    assert journey.comment_count("DEMO-1") == 1
    assert journey.comment_count("DEMO-2") == 1
    assert "pull request open for review" in (journey.ticket("DEMO-1").comment or "")
    # And one more cycle changes nothing at all.
    before = journey.snapshot()
    journey.run_daemon_process()
    assert journey.snapshot() == before


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_a_failpoint_then_restarted(tmp_path: Path, point: str, state_url: str) -> None:
    journey = make_journey(tmp_path, state_url=state_url)
    killed = journey.run_daemon_process(env={ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    restarted = journey.run_daemon_process()
    assert restarted.returncode == 0, restarted.stderr
    assert_recovered(journey)


SLOW_AGENT = """
import pathlib, time
# Half of the work is done when the daemon dies: the restarted run must start from a clean workspace.
pathlib.Path("textkit/slug.py").write_text("# half-done edit\\n")
pathlib.Path("AGENT_STARTED").write_text("yes")
time.sleep(120)
"""


def test_killed_in_the_middle_of_the_agent_run(tmp_path: Path, state_url: str) -> None:
    journey = make_journey(tmp_path, state_url=state_url)
    slow = tmp_path / "slow_agent.py"
    slow.write_text(SLOW_AGENT)
    good_config = journey.config.read_text()
    command_line = next(line for line in good_config.splitlines() if line.startswith("command = "))
    journey.config.write_text(good_config.replace(command_line, f"command = '{sys.executable} {slow}'"))

    daemon = subprocess.Popen(
        [sys.executable, "-m", "tracker_bridge.cli", "run", "--once", "-c", str(journey.config)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = tmp_path / ".tracker-bridge" / "workspaces" / "DEMO-1.agent" / "AGENT_STARTED"
    deadline = time.monotonic() + 60
    while not started.exists():
        assert daemon.poll() is None and time.monotonic() < deadline, "the agent never started"
        time.sleep(0.05)
    daemon.send_signal(signal.SIGKILL)
    assert daemon.wait() == -signal.SIGKILL
    assert journey.column("DEMO-1") == "In Progress"  # the card shows the run that was under way
    assert journey.agent_branches() == []

    # Restarted with the working agent: the interrupted run is run again, from a fresh workspace.
    journey.config.write_text(good_config)
    restarted = journey.run_daemon_process()
    assert restarted.returncode == 0, restarted.stderr
    assert_recovered(journey)
    status = {r["ref"]: r for r in journey.status()}
    assert status["DEMO-1"]["stage"] == "review"
