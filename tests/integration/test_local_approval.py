"""The approval workflow of issue 15 on the embedded default: local Markdown tickets, local git, the `command` agent.

The slugify ticket scores about 0.70: with the threshold raised to 0.75 and the approval threshold at 0.60 it is a
mid-score ticket, so it is planned, waits for a person, and is run once an allowed person approves."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.journey_helpers import Journey, make_journey
from tracker_bridge.demo import GOOD_TICKET, SLUG_BUGGY, SLUG_FIXED, STAND_IN_AGENT
from tracker_bridge.gitutil import git
from tracker_bridge_connectors.local import TicketFile

# The agent plans when the prompt asks for a plan (and scribbles on the code, which the daemon must throw away);
# otherwise it applies the known fix.
AGENT = '''import os, pathlib, sys
prompt = pathlib.Path(os.environ["TRACKER_BRIDGE_PROMPT_FILE"]).read_text(encoding="utf-8")
if "write your plan" in prompt:
    pathlib.Path("PLAN.md").write_text(
        "## Files to touch\\n- textkit/slug.py: slugify()\\n\\n"
        "## Approach\\nLower-case, collapse runs to one dash.\\n\\n"
        "## Tests to add\\n- test_slug: repeated spaces\\n\\n## Open questions\\n- keep unicode letters?\\n"
    )
    pathlib.Path("textkit/slug.py").write_text("raise SystemExit('plan runs must not change code')\\n")
    print("plan written")
    sys.exit(0)
''' + STAND_IN_AGENT.split('"""', 2)[2].format(fixed=SLUG_FIXED)

CONFIG = """
[scoring]
threshold = 0.75
approval_threshold = 0.6
repo_analysis = false

[trigger]
allowed_actors = ["alice"]

[stages]
awaiting_approval = "Needs Approval"
"""


@pytest.fixture
def journey(tmp_path: Path) -> Journey:
    agent = tmp_path / "planning_agent.py"
    agent.write_text(AGENT, encoding="utf-8")
    ticket = GOOD_TICKET.replace("labels: [agent-ready]\n", "labels: [agent-ready]\ntriggered_by: alice\n", 1)
    j = make_journey(
        tmp_path,
        tickets={"DEMO-1": ticket},
        agent_command=f"{Path(sys.executable).as_posix()} {agent.as_posix()}",
        extra_config=CONFIG,
    )
    board = j.tickets / "board.yaml"
    board.write_text(board.read_text().replace("]", ", Needs Approval]"), encoding="utf-8")
    return j


def edit(j: Journey, key: str, **meta: object) -> None:
    tf = TicketFile(j.tickets / f"{key}.md", edit=True)
    for name, value in meta.items():
        if name == "labels":
            tf.set_labels(list(value))  # type: ignore[call-overload]
        else:
            tf.meta[name] = value
    tf.save()


def prompts(j: Journey) -> list[str]:
    runs = j.root / ".tracker-bridge" / "runs" / "DEMO-1"
    return [p.read_text(encoding="utf-8") for p in sorted(runs.glob("attempt-*.home/prompt.md"))]


def test_a_mid_score_ticket_is_planned_then_run_once_an_allowed_person_approves(journey: Journey) -> None:
    journey.run_once()
    # A plan comment, the card in the approval column, and no code change anywhere.
    assert journey.column("DEMO-1") == "Needs Approval"
    comment = journey.ticket("DEMO-1").comment or ""
    assert "plan ready: waiting for a person's approval" in comment
    assert "**Plan:**" in comment and "## Tests to add" in comment and "keep unicode letters?" in comment
    assert journey.agent_branches() == [] and journey.pull_requests() == []
    assert (journey.repo / "textkit" / "slug.py").read_text(encoding="utf-8") == SLUG_BUGGY
    assert git(journey.repo, "status", "--porcelain") == ""
    assert prompts(journey) == []  # only the plan run so far
    [row] = journey.status()
    assert row["stage"] == "awaiting_approval"

    # An approval by someone outside allowed_actors, by label and by comment, starts nothing.
    edit(journey, "DEMO-1", labels=["agent-ready", "agent-approved"], approved_by="mallory",
         comments=[{"author": "mallory", "body": "@tracker-bridge approve"}])  # fmt: skip
    journey.run_once()
    journey.run_once()
    assert journey.agent_branches() == [] and prompts(journey) == []
    comment = journey.ticket("DEMO-1").comment or ""
    assert "approval by mallory" in comment and "was ignored" in comment
    assert journey.status()[0]["stage"] == "awaiting_approval"

    # Alice adds the label: one run, whose prompt holds the plan; the fix is proposed.
    edit(journey, "DEMO-1", approved_by="alice")
    journey.run_once()
    assert journey.column("DEMO-1") == "In Review", journey.ticket("DEMO-1").comment
    [prompt] = prompts(journey)
    assert "<plan>" in prompt and "Lower-case, collapse runs to one dash." in prompt
    [branch] = journey.agent_branches()
    assert git(journey.repo, "show", f"{branch}:textkit/slug.py") + "\n" == SLUG_FIXED
    assert "PLAN.md" not in git(journey.repo, "ls-tree", "--name-only", branch)
    # The approval was used once: the label is gone and another cycle starts nothing.
    assert "agent-approved" not in journey.ticket("DEMO-1").labels()
    journey.run_once()
    assert len(prompts(journey)) == 1
