"""The daemon on a GitLab board, end to end: `tracker-bridge run --once` against the GitLab simulator, with git
pushed over real smart HTTP. People act between cycles through the simulator (merge, close), and the test reads
what a person would see on GitLab: the card's list, the issue's state, the merge request, the one status note.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.agent_fixtures import make_repo
from tests.journey_helpers import (
    CALC_TICKET,
    CALC_TITLE,
    VAGUE_TICKET_TEXT,
    local_calc_tracker,
    run_once,
    write_hosted_config,
)
from tests.sims.git_http import GitHttpServer
from tests.sims.gitlab import BOT_TOKEN, LISTS, GitLabSim, Issue, MergeRequest, World, make_world
from tracker_bridge.protocols import STATUS_MARKER


@dataclass
class Daemon:
    world: World
    git: GitHttpServer
    config: Path

    def cycle(self) -> str:
        return run_once(self.config, catch_exceptions=False)


def write_config(tmp: Path, sim_url: str, git_url: str, tracker: str) -> Path:
    return write_hosted_config(tmp, tracker, host="gitlab", url=git_url, api_url=sim_url, token_env="GITLAB_TOKEN")


@pytest.fixture
def gitlab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, GitHttpServer]]:
    monkeypatch.setenv("GITLAB_TOKEN", BOT_TOKEN)
    with GitHttpServer(tmp_path / "git", token=BOT_TOKEN) as server, GitLabSim(server) as sim:
        world = make_world(sim)
        server.create_repo("acme/shop", seed=make_repo(tmp_path / "seed"))
        yield world, server
        assert sim.validation_errors == []


@pytest.fixture
def daemon(tmp_path: Path, gitlab: tuple[World, GitHttpServer]) -> Daemon:
    world, server = gitlab
    tracker = f"""
[[trackers]]
name = "shop"
kind = "gitlab"
url = "{world.sim.url}"
token_env = "GITLAB_TOKEN"
query = "acme/shop"
repo = "shop"
"""
    return Daemon(world, server, write_config(tmp_path, world.sim.url, server.repo_url("acme/shop"), tracker))


def status_notes(world: World, issue: Issue) -> list[str]:
    return [n.body for n in issue.notes if n.author == world.bot and STATUS_MARKER in n.body]


def mr_for(world: World, issue: Issue) -> MergeRequest:
    found = [m for m in world.project.mrs.values() if f"acme-shop-{issue.iid}-" in m.source_branch]
    assert len(found) == 1, [m.source_branch for m in world.project.mrs.values()]
    return found[0]


def calc_in_review(daemon: Daemon) -> tuple[Issue, MergeRequest]:
    """The calc issue, labelled by alice and taken by the agent: its merge request open, the card In Review."""
    world = daemon.world
    issue = world.issue(CALC_TITLE, CALC_TICKET)
    world.sim.label(world.project, issue.iid, "agent-ready", by=world.alice)
    daemon.cycle()
    assert list_of(issue) == "workflow::In Review"
    return issue, mr_for(world, issue)


def list_of(issue: Issue) -> str:
    if issue.state == "closed":
        return "Closed"
    lists = [x for x in issue.labels if x in ("Agent", "Needs Refinement", "Needs Human") or x.startswith("workflow::")]
    assert len(lists) <= 1, issue.labels  # a card is in one list at a time
    return lists[0] if lists else "Open"


def test_whole_journey_on_a_gitlab_board(daemon: Daemon) -> None:
    world = daemon.world
    sim, p = world.sim, world.project
    merged_one = world.issue(CALC_TITLE, CALC_TICKET)
    sim.label(p, merged_one.iid, "agent-ready", by=world.alice)
    closed_one = world.issue("calc.add is wrong for the invoice totals", CALC_TICKET)
    sim.move_to_list(p, closed_one.iid, "Agent", by=world.alice)  # dragged to the Agent list instead of labelled
    vague = world.issue("Make it faster", VAGUE_TICKET_TEXT, labels=["agent-ready"])
    untouched = world.issue("Not for the agent", CALC_TICKET, labels=["bug"])

    daemon.cycle()

    # Both good tickets ran, passed the tests and have their merge request open: the cards are In Review.
    for issue in (merged_one, closed_one):
        assert list_of(issue) == "workflow::In Review"
        mr = mr_for(world, issue)
        assert mr.state == "opened" and mr.target_branch == "main"
        assert re.search(rf"Closes (shop)?#{issue.iid}\b", mr.description)
        assert mr.sha == sim.branch_sha(p, mr.source_branch)
        notes = status_notes(world, issue)
        assert len(notes) == 1 and mr_for(world, issue).iid and f"/-/merge_requests/{mr.iid}" in notes[0]
        # The card went through the lists one after the other, moved by the bot.
        moves = [e.label.name for e in issue.label_events if e.action == "add" and e.user == world.bot]
        assert moves[-2:] == ["workflow::In Progress", "workflow::In Review"]
    # The vague ticket was declined, with the score, the reasons and what to add in its note.
    assert list_of(vague) == "Needs Refinement"
    [note] = status_notes(world, vague)
    assert "below the threshold" in note and "clarity" in note and "acceptance criteria" in note.lower()
    assert list_of(untouched) == "Open" and untouched.notes == []

    sim.merge(p, mr_for(world, merged_one).iid, by=world.alice)
    assert merged_one.state == "closed"  # GitLab closed it: the merge request said "Closes"
    sim.close_mr(p, mr_for(world, closed_one).iid)
    daemon.cycle()

    assert merged_one.state == "closed" and list_of(merged_one) == "Closed"  # Done is GitLab's Closed list
    assert not set(merged_one.labels) & set(LISTS), merged_one.labels  # no list label left behind to reopen into
    assert "merged" in status_notes(world, merged_one)[0]
    assert list_of(closed_one) == "Needs Human" and closed_one.state == "opened"
    assert "closed without merging" in status_notes(world, closed_one)[0]

    # Another cycle changes nothing: no second note, no second merge request, no move.
    edits_before = sim.server.count("PUT") + sim.server.count("POST")
    daemon.cycle()
    assert sim.server.count("PUT") + sim.server.count("POST") == edits_before
    for issue in (merged_one, closed_one, vague):
        assert len(status_notes(world, issue)) == 1
    assert len(p.mrs) == 2


def test_a_local_ticket_opens_its_merge_request_on_gitlab(tmp_path: Path, gitlab: tuple[World, GitHttpServer]) -> None:
    world, server = gitlab
    tickets, tracker = local_calc_tracker(tmp_path)
    daemon = Daemon(world, server, write_config(tmp_path, world.sim.url, server.repo_url("acme/shop"), tracker))
    daemon.cycle()
    [mr] = world.project.mrs.values()
    assert mr.title.startswith("DEMO-1") and mr.state == "opened"
    assert mr.source_branch.startswith("agent/DEMO-1-")
    assert world.sim.branch_sha(world.project, mr.source_branch) == mr.sha
    text = (tickets / "DEMO-1.md").read_text()
    assert mr_url(world, mr) in text and "status: In Review" in text


def mr_url(world: World, mr: MergeRequest) -> str:
    return f"{world.sim.url}/acme/shop/-/merge_requests/{mr.iid}"


def test_bursts_of_429_and_5xx_lose_nothing_and_repeat_nothing(daemon: Daemon) -> None:
    world = daemon.world
    sim, p = world.sim, world.project
    issue = world.issue(CALC_TITLE, CALC_TICKET)
    sim.label(p, issue.iid, "agent-ready", by=world.alice)
    issues = "/api/v4/projects/acme%2Fshop/issues"
    # GitLab down for the whole first poll (more failures than retries): the cycle acts on nothing...
    sim.server.inject(500, count=20, method="GET", path_prefix=issues, headers={"Retry-After": "0"})
    daemon.cycle()
    assert issue.notes == [] and list_of(issue) == "Open"
    sim.server.faults.clear()
    # ...and the next one, under bursts of rate limiting and server errors on every kind of call, does it all once.
    for status, method in ((429, "GET"), (502, "POST"), (503, "PUT"), (429, "POST"), (504, "GET")):
        sim.server.inject(status, count=2, method=method, path_prefix="/api/v4", headers={"Retry-After": "0"})
    daemon.cycle()
    assert list_of(issue) == "workflow::In Review"
    assert len(status_notes(world, issue)) == 1
    assert len(p.mrs) == 1
    daemon.cycle()
    assert len(status_notes(world, issue)) == 1 and len(p.mrs) == 1


def test_a_trigger_from_someone_not_allowed_is_ignored_and_said_so(daemon: Daemon) -> None:
    world = daemon.world
    text = daemon.config.read_text().replace("[agent]", '[trigger]\nallowed_actors = ["alice"]\n\n[agent]', 1)
    daemon.config.write_text(text)
    ok = world.issue(CALC_TITLE, CALC_TICKET)
    world.sim.label(world.project, ok.iid, "agent-ready", by=world.alice)
    ignored = world.issue("calc.add is wrong for the invoice totals", CALC_TICKET)
    world.sim.move_to_list(world.project, ignored.iid, "Agent", by=world.guest)
    daemon.cycle()
    assert list_of(ok) == "workflow::In Review"
    assert list_of(ignored) == "Agent" and not world.project.mrs.get(2)
    [note] = status_notes(world, ignored)
    assert "gary-guest" in note and "allowed_actors" in note


def test_a_label_spelt_with_other_capitals_and_spaces_is_taken(daemon: Daemon) -> None:
    world = daemon.world
    issue = world.issue(CALC_TITLE, CALC_TICKET)
    world.sim.label(world.project, issue.iid, " Agent-Ready ", by=world.alice)  # [trigger] label = "agent-ready"
    daemon.cycle()
    assert list_of(issue) == "workflow::In Review"
