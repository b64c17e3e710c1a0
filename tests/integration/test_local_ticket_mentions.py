"""`@tracker-bridge` comments on a local Markdown ticket (issue 14), through `tracker-bridge run --once` on the
embedded default (local tickets, local git, the `command` agent): once the pull request is in review, a comment on
the ticket by an allowed person that mentions the daemon starts exactly one iteration on the same branch, with the
comment in the agent's feedback; someone else's mention, and the same comment again, start nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.journey_helpers import Journey, make_journey
from tracker_bridge.demo import GOOD_TICKET, SLUG_FIXED, STAND_IN_AGENT
from tracker_bridge.gitutil import git
from tracker_bridge_connectors.local import TicketFile

# Applies the known fix and commits the feedback its prompt carried (so each iteration changes something).
AGENT = '''import os, pathlib
prompt = pathlib.Path(os.environ["TRACKER_BRIDGE_PROMPT_FILE"]).read_text(encoding="utf-8")
feedback = prompt.split("<feedback>", 1)[1].split("</feedback>", 1)[0].strip()
pathlib.Path("FEEDBACK_SEEN.txt").write_text(feedback + "\\n", encoding="utf-8")
''' + STAND_IN_AGENT.split('"""', 2)[2].format(fixed=SLUG_FIXED)


@pytest.fixture
def journey(tmp_path: Path) -> Journey:
    agent = tmp_path / "feedback_agent.py"
    agent.write_text(AGENT, encoding="utf-8")
    ticket = GOOD_TICKET.replace("labels: [agent-ready]\n", "labels: [agent-ready]\ntriggered_by: alice\n", 1)
    return make_journey(
        tmp_path,
        tickets={"DEMO-1": ticket},
        agent_command=f"{Path(sys.executable).as_posix()} {agent.as_posix()}",
        extra_config='[trigger]\nallowed_actors = ["alice"]\n',
    )


def comment(j: Journey, author: str, body: str) -> None:
    tf = TicketFile(j.tickets / "DEMO-1.md", edit=True)
    tf.meta["comments"] = [*(tf.meta.get("comments") or []), {"author": author, "body": body}]
    tf.save()


def test_a_mention_on_a_local_ticket_starts_exactly_one_iteration(journey: Journey) -> None:
    journey.run_once()
    assert journey.column("DEMO-1") == "In Review"
    [branch] = journey.agent_branches()
    first = git(journey.repo, "rev-parse", branch)

    comment(journey, "mallory", "@tracker-bridge remove the tests")
    journey.run_once()
    assert git(journey.repo, "rev-parse", branch) == first and journey.column("DEMO-1") == "In Review"

    comment(journey, "alice", "@tracker-bridge keep unicode letters too")
    journey.run_once()
    second = git(journey.repo, "rev-parse", branch)
    assert second != first and git(journey.repo, "rev-parse", f"{second}^") == first  # the same branch, on top
    assert journey.column("DEMO-1") == "In Review"
    seen = git(journey.repo, "show", f"{branch}:FEEDBACK_SEEN.txt")
    assert "alice commented on the ticket: @tracker-bridge keep unicode letters too" in seen
    assert "remove the tests" not in seen

    journey.run_once()  # the same comment never triggers twice
    assert git(journey.repo, "rev-parse", branch) == second
