"""Issue 13 against a real daemon process on the local tracker with a real `command` agent: a person who moves the
card to Done or removes the label stops the agent within one poll interval (its process is gone, nothing pushed or
proposed, the card left where the person put it); `stop` and `retry` from a second shell; an agent that prints
nothing for `stall_timeout` is killed and retried; SIGTERM during a run, then a restart, ends with one branch and
one pull request."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_daemon_signals import GRACE, SLOW_AGENT, agent_pid, alive
from tests.journey_helpers import Journey, make_journey
from tests.processes import Proc, until
from tracker_bridge.demo import GOOD_TICKET, make_stand_in_agent
from tracker_bridge.store import Store

POLL = 0.5

# Slow on its first run (pid left for the test, two minutes of work), the demo's stand-in fix on the next ones.
SLOW_THEN_FIX = """import os, pathlib, subprocess, sys, time
pid_file, fix = pathlib.Path(sys.argv[1]), sys.argv[2]
first = not pid_file.exists()
pid_file.write_text(str(os.getpid()))
if first:
    time.sleep(120)
sys.exit(subprocess.call([sys.executable, fix]))
"""


def _config(j: Journey, *, extra_agent: str = "") -> None:
    text = j.config.read_text().replace(
        "poll_interval = 5", f"poll_interval = {POLL}\nshutdown_grace = {GRACE}\nretry_backoff = 0.5"
    )
    agent = f'timeout = 300\nsandbox = "none"\nallow_unsandboxed = true\n{extra_agent}'
    j.config.write_text(text.replace("timeout = 300", agent))


@pytest.fixture
def journey(tmp_path: Path) -> Journey:
    agent = tmp_path / "slow_agent.py"
    agent.write_text(SLOW_AGENT)
    j = make_journey(tmp_path, tickets={"DEMO-1": GOOD_TICKET},
                     agent_command=f"{sys.executable} {agent} {tmp_path / 'agent.pid'}")  # fmt: skip
    _config(j)
    return j


def cli(journey: Journey, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker_bridge.cli", *args, "-c", str(journey.config)],
        cwd=journey.root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def stage(journey: Journey) -> str:
    store = Store(f"sqlite:///{journey.root / 'state.db'}")
    try:
        row = store.find_ticket("DEMO-1")
        return row.stage.value if row is not None else "none"
    finally:
        store.close()


def _stopped_by_a_person(journey: Journey, procs: list[Proc], change: str, column: str, words: str) -> None:
    daemon = Proc(journey, "run")
    procs.append(daemon)
    agent = agent_pid(journey)
    assert journey.column("DEMO-1") == "In Progress"
    for _ in range(10):  # a person's edit, written again if the daemon's comment update raced it
        ticket = journey.ticket("DEMO-1")
        if change == "column":
            ticket.meta["status"] = column
        else:
            ticket.meta["labels"] = []
        ticket.save()
        time.sleep(0.2)
        now = journey.ticket("DEMO-1")
        if (now.meta.get("status") if change == "column" else list(now.meta.get("labels") or [])) in (column, []):
            break
    took = until(lambda: not alive(agent), 2 * POLL + 5, "the agent's process to be killed")
    assert took <= POLL + 3, took
    until(lambda: stage(journey) == "cancelled", 5, "the ticket to be cancelled")
    time.sleep(3 * POLL)  # a few more cycles: nothing moves the card back, nothing is proposed
    assert journey.column("DEMO-1") == column
    assert journey.agent_branches() == [] and journey.pull_requests() == []
    comment = journey.ticket("DEMO-1").comment or ""
    assert words in comment and "nothing was pushed or proposed" in comment
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=GRACE + 5) == 0, daemon.output
    assert "run.stopped" in daemon.output and "ref=DEMO-1" in daemon.output


def test_a_card_moved_to_done_stops_the_agent_within_one_poll(journey: Journey, procs: list[Proc]) -> None:
    _stopped_by_a_person(journey, procs, "column", "Done", "a person moved the card to 'Done'")


def test_a_removed_label_stops_the_agent_within_one_poll(journey: Journey, procs: list[Proc]) -> None:
    _stopped_by_a_person(journey, procs, "label", "In Progress", "a person removed the label 'agent-ready'")


def test_stop_and_retry_from_a_second_shell(tmp_path: Path, procs: list[Proc]) -> None:
    fix = make_stand_in_agent(tmp_path / "fix.py")
    agent = tmp_path / "agent.py"
    agent.write_text(SLOW_THEN_FIX)
    j = make_journey(tmp_path, tickets={"DEMO-1": GOOD_TICKET},
                     agent_command=f"{sys.executable} {agent} {tmp_path / 'agent.pid'} {fix}")  # fmt: skip
    _config(j)
    daemon = Proc(j, "run")
    procs.append(daemon)
    first = agent_pid(j)
    stop = cli(j, "stop", "DEMO-1")
    assert stop.returncode == 0, stop.stderr
    until(lambda: not alive(first), 5, "the agent to be stopped")
    until(lambda: stage(j) == "cancelled", 5, "the ticket to be cancelled")
    assert "stopped by" in (j.ticket("DEMO-1").comment or "") and j.pull_requests() == []
    assert j.column("DEMO-1") == "In Progress"  # a cancelled card stays where it is
    retry = cli(j, "retry", "DEMO-1")
    assert retry.returncode == 0, retry.stderr
    until(lambda: j.column("DEMO-1") == "In Review", 60, "the retried run to reach review")
    assert len(j.agent_branches()) == 1 and len(j.pull_requests()) == 1
    assert "retried by" in daemon.output  # the stage change, logged with its reason
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=GRACE + 5) == 0, daemon.output
    assert "control.done" in daemon.output


def test_a_silent_agent_is_killed_at_stall_timeout_and_retried(tmp_path: Path, procs: list[Proc]) -> None:
    agent = tmp_path / "silent.py"
    agent.write_text("import os, pathlib, sys, time\n"
                     "p = pathlib.Path(sys.argv[1]); p.write_text(p.read_text() + f'{os.getpid()} ' if p.exists() "
                     "else f'{os.getpid()} ')\ntime.sleep(120)\n")  # fmt: skip
    pids = tmp_path / "pids"
    j = make_journey(tmp_path, tickets={"DEMO-1": GOOD_TICKET}, agent_command=f"{sys.executable} {agent} {pids}")
    _config(j, extra_agent="stall_timeout = 1\nmax_attempts = 2")
    daemon = Proc(j, "run")
    procs.append(daemon)
    until(lambda: stage(j) == "failed", 60, "both attempts to stall")
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2, "the stalled agent was not retried once"
    assert not any(alive(p) for p in started)
    until(lambda: "gave up" in (j.ticket("DEMO-1").comment or ""), 10, "the comment to say so")
    comment = j.ticket("DEMO-1").comment or ""
    assert "printed nothing for 1 s" in comment and "gave up after 2 attempt(s)" in comment
    store = Store(f"sqlite:///{j.root / 'state.db'}")
    row = store.find_ticket("DEMO-1")
    assert row is not None and [r.outcome for r in store.runs(row.id)] == ["stalled", "stalled"]
    store.close()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=GRACE + 5) == 0, daemon.output


def test_sigterm_during_a_run_then_a_restart_ends_with_one_branch_and_one_pull_request(
    tmp_path: Path, procs: list[Proc]
) -> None:
    fix = make_stand_in_agent(tmp_path / "fix.py")
    agent = tmp_path / "agent.py"
    agent.write_text(SLOW_THEN_FIX)
    j = make_journey(tmp_path, tickets={"DEMO-1": GOOD_TICKET},
                     agent_command=f"{sys.executable} {agent} {tmp_path / 'agent.pid'} {fix}")  # fmt: skip
    _config(j)
    daemon = Proc(j, "run")
    procs.append(daemon)
    first = agent_pid(j)
    daemon.signal(signal.SIGTERM)
    started = time.monotonic()
    assert daemon.wait(timeout=GRACE + 5) == 0, daemon.output
    assert time.monotonic() - started <= GRACE + 5
    until(lambda: not alive(first), 5, "the agent to die with the daemon")
    again = Proc(j, "run")
    procs.append(again)
    until(lambda: j.column("DEMO-1") == "In Review", 60, "the resumed run to reach review")
    assert len(j.agent_branches()) == 1 and len(j.pull_requests()) == 1
    again.signal(signal.SIGTERM)
    assert again.wait(timeout=GRACE + 5) == 0, again.output
