"""Two `run --standby` replicas on one PostgreSQL store (real processes): one leads, the other waits; SIGKILL the
leader in the middle of the board's runs and the standby takes over and finishes the board with exactly one branch,
one pull request and one status comment per ticket (replicas are standbys; see docs/scaling.md)."""

from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path

import pytest

from tests import pg
from tests.journey_helpers import make_journey
from tests.processes import Proc, until
from tracker_bridge.demo import GOOD_TICKET, SLUG_FIXED, STAND_IN_AGENT

KEYS = [f"DEMO-{i}" for i in range(1, 7)]
# The stand-in agent's fix, slow enough that the leader dies with runs under way.
SLOW_FIX = "import time\ntime.sleep(1.5)\n" + STAND_IN_AGENT.format(fixed=SLUG_FIXED)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_standby_replica_takes_over_a_killed_leader_and_finishes_the_board_once(
    tmp_path: Path, pg_server: pg.PostgresServer, procs: list[Proc]
) -> None:
    agent = tmp_path / "slow_fix.py"
    agent.write_text(SLOW_FIX)
    tickets = {key: GOOD_TICKET.replace("title: slugify()", f"title: {key} slugify()") for key in KEYS}
    journey = make_journey(
        tmp_path, tickets=tickets, agent_command=f"{sys.executable} {agent}", state_url=pg_server.new_database()
    )
    text = journey.config.read_text().replace("poll_interval = 5", "poll_interval = 0.5\nlease_seconds = 3")
    unconfined = 'timeout = 300\nsandbox = "none"\nallow_unsandboxed = true'  # the test's own agent: no sandbox
    journey.config.write_text(text.replace("timeout = 300", unconfined))

    procs.extend([Proc(journey, "run", "--standby", name=f"replica-{n}") for n in "ab"])
    until(lambda: sum("lease.acquired" in r.output for r in procs) == 1, 60, "one replica to lead")
    until(lambda: any("lease.standby" in r.output for r in procs), 60, "the other to stand by")
    leader = next(r for r in procs if "lease.acquired" in r.output)
    standby = next(r for r in procs if r is not leader)
    assert "run.start" not in standby.output  # a standby does nothing but wait

    # Mid-board: some runs under way, not every ticket done yet.
    until(lambda: "run.start" in leader.output, 60, "the leader to start runs")
    assert sum(journey.column(k) == "In Review" for k in KEYS) < len(KEYS)
    leader.popen.send_signal(signal.SIGKILL)
    assert leader.popen.wait() == -signal.SIGKILL

    until(lambda: "lease.acquired" in standby.output, 30, "the standby to take over")
    try:
        until(lambda: all(journey.column(k) == "In Review" for k in KEYS), 180, "every ticket to reach review")
    except AssertionError as exc:  # say where the board stopped and what the new leader was doing
        columns = {k: journey.column(k) for k in KEYS}
        raise AssertionError(f"{exc}: {columns}\n{standby.output[-6000:]}") from None
    assert "run.start" in standby.output  # it carried on the board's runs, the killed leader's included
    time.sleep(2)  # a few more cycles: nothing may be made twice afterwards either
    branches = journey.agent_branches()
    assert len(branches) == len(KEYS) and all(any(k in b for b in branches) for k in KEYS), branches
    assert sorted(p["branch"] for p in journey.pull_requests()) == sorted(branches)
    assert {k: journey.comment_count(k) for k in KEYS} == dict.fromkeys(KEYS, 1)
    # The new leader started each ticket's agent at most once (the killed leader's runs resumed, the others
    # started): never a second run on a ticket whose run had finished but was not yet written.
    started = re.findall(r"run\.start .* ref=(\S+)", standby.output)
    assert len(started) == len(set(started)), started
    standby.popen.send_signal(signal.SIGTERM)
    assert standby.popen.wait(timeout=30) == 0, standby.output
