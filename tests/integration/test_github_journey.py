"""The daemon on a GitHub Projects (v2) board, end to end: `tracker-bridge run --once` against the GitHub simulator
(REST checked against the official description, GraphQL against the official schema), git pushed over real smart
HTTP. People act between cycles through the simulator (drag a card, label, merge, close), and the test reads what a
person would see on GitHub: the card's Status, the pull request, the issue, the one status comment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.agent_fixtures import make_repo
from tests.journey_helpers import (
    CALC_TICKET,
    CALC_TITLE,
    VAGUE_TICKET_TEXT,
    local_calc_tracker,
    run_once,
    write_hosted_config,
)
from tests.sims.github import GitHubSim
from tests.sims.github.world import Issue, Project, Pull, Repo
from tracker_bridge.cli import app
from tracker_bridge.protocols import STATUS_MARKER
from tracker_bridge_connectors.github_projects import queries


@dataclass
class World:
    gh: GitHubSim
    repo: Repo
    project: Project

    def pr_for(self, issue: Issue) -> Pull:
        found = [p for p in self.repo.pulls.values() if f"acme-shop-{issue.number}-" in p.head]
        assert len(found) == 1, [p.head for p in self.repo.pulls.values()]
        return found[0]

    def comments(self, issue: Issue) -> list[str]:
        return [c.body for c in issue.comments if c.user == self.gh.bot and STATUS_MARKER in c.body]

    def history(self, issue: Issue) -> list[str]:
        item = self.gh.item(issue, self.project)
        assert item is not None
        return [column for column, _ in item.history]


@dataclass
class Daemon:
    world: World
    config: Path

    def cycle(self) -> str:
        return run_once(self.config, catch_exceptions=False)


def write_config(tmp: Path, world: World, tracker: str, extra: str = "") -> Path:
    return write_hosted_config(
        tmp,
        tracker,
        host="github",
        url=world.gh.clone_url("acme/shop"),
        api_url=world.gh.url,
        token_env="GITHUB_TOKEN",
        extra=extra,
    )


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with GitHubSim(tmp_path / "gh") as gh:
        monkeypatch.setenv("GITHUB_TOKEN", gh.token)
        gh.create_org("acme")
        repo = gh.create_repo(
            "acme/shop", seed=make_repo(tmp_path / "seed"), collaborators={"alice": "write", "eve": "read"}
        )
        yield World(gh, repo, gh.create_project("acme", 1))
        assert gh.validation_errors == []
        # every GraphQL document sent is one of the connector's named, schema-validated constants
        assert set(gh.graphql_documents()) <= set(queries.ALL_DOCUMENTS.values())


def board_tracker(world: World) -> str:
    return f"""
[[trackers]]
name = "board"
kind = "github"
url = "{world.gh.url}"
token_env = "GITHUB_TOKEN"
query = "acme/1"
repo = "shop"
"""


def test_whole_journey_on_a_projects_board(tmp_path: Path, world: World) -> None:
    gh, repo, project = world.gh, world.repo, world.project
    daemon = Daemon(world, write_config(tmp_path, world, board_tracker(world)))
    merged_one = gh.create_issue(repo, CALC_TITLE, CALC_TICKET, by="alice")
    gh.add_to_project(project, merged_one, status="Agent", by="alice")  # dragged to Agent
    closed_one = gh.create_issue(repo, "calc.add is wrong for the invoice totals", CALC_TICKET, by="alice")
    gh.add_to_project(project, closed_one, status="Todo")
    gh.add_label(closed_one, "agent-ready", by="alice")  # labelled instead
    vague = gh.create_issue(repo, "Make it faster", VAGUE_TICKET_TEXT)
    gh.add_to_project(project, vague, status="Agent", by="alice")
    untouched = gh.create_issue(repo, "Not for the agent", CALC_TICKET)
    gh.add_to_project(project, untouched, status="Todo")

    daemon.cycle()

    for issue in (merged_one, closed_one):
        assert gh.column(issue) == "In Review"
        assert world.history(issue)[-2:] == ["In Progress", "In Review"]
        pr = world.pr_for(issue)
        assert pr.state == "open" and pr.base == "main"
        assert f"Closes #{issue.number}" in pr.body
        assert pr.head_sha == repo.branch_sha(pr.head)
        assert "a + b" in repo.git("show", f"{pr.head}:calc.py")
        [comment] = world.comments(issue)
        assert f"/acme/shop/pull/{pr.number}" in comment
    assert gh.column(vague) == "Needs Refinement"
    [note] = world.comments(vague)
    assert "0." in note and "threshold" in note.lower()
    assert gh.column(untouched) == "Todo" and untouched.comments == []

    gh.merge_pull(world.pr_for(merged_one))
    gh.close_pull(world.pr_for(closed_one))
    daemon.cycle()

    assert gh.column(merged_one) == "Done" and merged_one.state == "closed"
    assert "a + b" in repo.git("show", "main:calc.py")  # the merge reached the base branch
    assert "merged" in world.comments(merged_one)[0]
    assert gh.column(closed_one) == "Needs Human" and closed_one.state == "open"
    assert "closed without merging" in world.comments(closed_one)[0]

    # Another cycle changes nothing: no second comment, no second pull request, no move.
    writes = sum(1 for r in gh.server.log if r.method in ("POST", "PATCH", "PUT", "DELETE") and r.path != "/graphql")
    mutations = sum(1 for d in gh.graphql_documents() if d.lstrip().startswith("mutation"))
    daemon.cycle()
    assert sum(1 for r in gh.server.log if r.method in ("POST", "PATCH", "PUT", "DELETE") and r.path != "/graphql") == (
        writes
    )
    assert sum(1 for d in gh.graphql_documents() if d.lstrip().startswith("mutation")) == mutations
    for issue in (merged_one, closed_one, vague):
        assert len(world.comments(issue)) == 1
    assert len(repo.pulls) == 2


def test_a_trigger_from_someone_not_allowed_is_ignored_and_said_so(tmp_path: Path, world: World) -> None:
    gh = world.gh
    extra = '[trigger]\nallowed_actors = ["alice", "eve"]'
    daemon = Daemon(world, write_config(tmp_path, world, board_tracker(world), extra))
    by_reader = gh.create_issue(world.repo, CALC_TITLE, CALC_TICKET)
    gh.add_to_project(world.project, by_reader, status="Agent", by="eve")  # eve may only read the repository
    daemon.cycle()
    assert gh.column(by_reader) == "Agent" and world.repo.pulls == {}
    [comment] = world.comments(by_reader)
    assert "eve (only read permission on acme/shop)" in comment


def test_a_local_ticket_opens_its_pull_request_on_github(tmp_path: Path, world: World) -> None:
    tickets, tracker = local_calc_tracker(tmp_path)
    Daemon(world, write_config(tmp_path, world, tracker)).cycle()
    [pr] = world.repo.pulls.values()
    assert pr.title.startswith("DEMO-1") and pr.state == "open"
    assert pr.head.startswith("agent/DEMO-1-") and pr.head_sha == world.repo.branch_sha(pr.head)
    text = (tickets / "DEMO-1.md").read_text()
    assert f"{world.gh.url}/acme/shop/pull/{pr.number}" in text and "status: In Review" in text


def test_doctor_names_the_missing_column_and_the_fix(tmp_path: Path, world: World) -> None:
    world.project.status.options = [o for o in world.project.status.options if o.name != "Needs Human"]
    config = write_config(tmp_path, world, board_tracker(world))
    result = CliRunner().invoke(app, ["doctor", "-c", str(config)])
    text = " ".join(result.output.split())
    assert result.exit_code != 0
    assert "'Needs Human' is not an option of the 'Status' field of project acme/1" in text
    assert "repository shop (github): ok" in text


def test_a_label_spelt_with_other_capitals_is_taken(tmp_path: Path, world: World) -> None:
    gh = world.gh
    daemon = Daemon(world, write_config(tmp_path, world, board_tracker(world)))
    issue = gh.create_issue(world.repo, CALC_TITLE, CALC_TICKET, by="alice")
    gh.add_to_project(world.project, issue, status="Todo")
    gh.add_label(issue, "Agent-Ready", by="alice")  # [trigger] label = "agent-ready"
    daemon.cycle()
    assert gh.column(issue) == "In Review"
