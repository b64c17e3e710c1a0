"""The GitHub Projects tracker against the GitHub simulator: real HTTP, real GraphQL validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sims.github import GitHubSim
from tests.sims.github.scenario import GOOD_TICKET, Board, acme_board
from tracker_bridge.config import ConfigError, Settings, TrackerConfig
from tracker_bridge.protocols import STATUS_MARKER, TrackerError, Trigger
from tracker_bridge_connectors.github.client import GitHubClient
from tracker_bridge_connectors.github_projects import GitHubProjectsTracker, ProjectScope
from tracker_bridge_connectors.retry import RetryPolicy

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    with GitHubSim(tmp_path / "gh") as gh:
        yield acme_board(gh, tmp_path)


def tracker_for(board: Board, query: str = "acme/1", token: str | None = None, **kw: Any) -> GitHubProjectsTracker:
    client = GitHubClient(board.gh.url, token or board.gh.token, policy=FAST)
    return GitHubProjectsTracker("gh", ProjectScope.parse(query), client, Trigger("agent-ready", "Agent"), **kw)


def test_poll_finds_cards_in_agent_column_and_labelled_items(board: Board) -> None:
    gh = board.gh
    carded = gh.create_issue(board.repo, "Fix parse_amount", GOOD_TICKET, by="alice")
    gh.add_to_project(board.project, carded, status="Agent", by="alice")
    labelled = gh.create_issue(board.repo, "Label me", "text", labels=("agent-ready", "bug"), by="bob")
    gh.add_to_project(board.project, labelled, status="Todo")
    idle = gh.create_issue(board.repo, "Not for the agent", "text")
    gh.add_to_project(board.project, idle, status="Todo")
    gh.comment(carded, "It happens with '2,50' too", by="bob")

    result = tracker_for(board).poll(None)

    by_ref = {t.ref: t for t in result.tickets}
    assert set(by_ref) == {"acme/widgets#1", "acme/widgets#2"}
    assert by_ref["acme/widgets#1"].column == "Agent"
    assert by_ref["acme/widgets#1"].description == GOOD_TICKET
    assert by_ref["acme/widgets#1"].comments == ("It happens with '2,50' too",)
    assert by_ref["acme/widgets#2"].labels == ("agent-ready", "bug")
    assert by_ref["acme/widgets#2"].column == "Todo"
    assert result.cursor


def test_idle_poll_costs_two_free_conditional_requests_and_no_graphql(board: Board) -> None:
    gh = board.gh
    for n in range(1000):
        issue = gh.create_issue(board.repo, f"Issue {n}", "text")
        gh.add_to_project(board.project, issue, status="Agent" if n < 3 else "Todo")
    tracker = tracker_for(board)
    first = tracker.poll(None)
    assert len(first.tickets) == 3
    gh.server.reset_log()
    points, used = gh.world.graphql_points, gh.world.core.used

    idle = tracker.poll(first.cursor)

    assert idle.tickets == []
    assert len(gh.server.log) == 2
    assert all(r.headers.get("if-none-match") for r in gh.server.log)
    assert gh.world.graphql_points == points  # no GraphQL at all
    assert gh.world.core.used == used  # 304s do not count against the rate limit


def test_a_card_moved_to_agent_shows_up_on_the_next_poll(board: Board) -> None:
    gh = board.gh
    issue = gh.create_issue(board.repo, "Fix it", GOOD_TICKET)
    item = gh.add_to_project(board.project, issue, status="Todo")
    tracker = tracker_for(board)
    cursor = tracker.poll(None).cursor
    gh.set_status(item, "Agent", by="alice")

    result = tracker.poll(cursor)

    assert [t.ref for t in result.tickets] == ["acme/widgets#1"]


def test_move_is_a_noop_when_already_there_and_adds_missing_items(board: Board) -> None:
    gh = board.gh
    issue = gh.create_issue(board.repo, "Fix it", GOOD_TICKET, labels=("agent-ready",))
    tracker = tracker_for(board)

    tracker.move("acme/widgets#1", "In Progress")  # not on the board yet: added, then moved
    assert gh.column(issue) == "In Progress"
    item = gh.item(issue)
    assert item is not None and item.status_setter == gh.bot
    gh.server.reset_log()
    tracker.move("acme/widgets#1", "In Progress")
    mutations = [d for d in gh.graphql_documents() if d.lstrip().startswith("mutation")]
    assert mutations == []
    with pytest.raises(TrackerError, match="no such option"):
        tracker.move("acme/widgets#1", "Nowhere")


def test_one_status_comment_edited_in_place_even_after_a_restart(board: Board) -> None:
    gh = board.gh
    issue = gh.create_issue(board.repo, "Fix it", GOOD_TICKET)
    gh.comment(issue, "a person's comment", by="alice")
    tracker_for(board).upsert_status_comment("acme/widgets#1", "**queued** score 0.8")
    # a new process (no memory of the comment) finds it again by the marker
    fresh = tracker_for(board)
    fresh.upsert_status_comment("acme/widgets#1", "**running** score 0.8")
    fresh.upsert_status_comment("acme/widgets#1", "**running** score 0.8")

    ours = gh.status_comments(issue)
    assert len(ours) == 1
    assert ours[0].body == f"{STATUS_MARKER}\n**running** score 0.8"
    assert ours[0].user == gh.bot
    assert fresh.get_ticket("acme/widgets#1").comments == ("a person's comment",)


def test_labels_are_added_and_removed_without_clobbering(board: Board) -> None:
    gh = board.gh
    issue = gh.create_issue(board.repo, "Fix it", "x", labels=("bug", "agent-ready"))
    tracker = tracker_for(board)
    tracker.add_label("acme/widgets#1", "agent-running")
    tracker.add_label("acme/widgets#1", "agent-running")
    tracker.remove_label("acme/widgets#1", "agent-ready")
    tracker.remove_label("acme/widgets#1", "never-there")
    assert issue.labels == ["bug", "agent-running"]


def test_trigger_actor_from_label_events_and_card_moves_with_permission(board: Board) -> None:
    gh = board.gh
    tracker = tracker_for(board)
    labelled = gh.create_issue(board.repo, "A", "x", by="alice")
    gh.add_label(labelled, "agent-ready", by="bob")
    assert tracker.trigger_actor(tracker.get_ticket("acme/widgets#1")) == "bob"

    moved = gh.create_issue(board.repo, "B", "x", by="alice")
    gh.add_to_project(board.project, moved, status="Agent", by="alice")
    assert tracker.trigger_actor(tracker.get_ticket("acme/widgets#2")) == "alice"

    by_reader = gh.create_issue(board.repo, "C", "x", by="eve")
    gh.add_to_project(board.project, by_reader, status="Agent", by="eve")
    actor = tracker.trigger_actor(tracker.get_ticket("acme/widgets#3"))
    assert actor is not None and actor.startswith("eve") and actor != "eve"  # named, but never matches an allow-list
    assert tracker_for(board, min_permission="read").trigger_actor(tracker.get_ticket("acme/widgets#3")) == "eve"


def test_check_reports_missing_columns_and_unknown_projects(board: Board) -> None:
    tracker = tracker_for(board)
    assert tracker.check({"running": "In Progress", "done": "Done"}) == []
    problems = tracker.check({"running": "Doing"})
    assert len(problems) == 1 and "'Doing' is not an option" in problems[0].message
    missing = tracker_for(board, query="acme/9").check({})
    assert missing and "not found" in missing[0].message.lower()


def test_user_projects_and_bad_tokens(board: Board) -> None:
    gh = board.gh
    gh.world.user("octocat")
    project = gh.create_project("octocat", 3, is_user=True)
    issue = gh.create_issue(board.repo, "User board", "x")
    gh.add_to_project(project, issue, status="Agent", by="alice")
    assert [t.ref for t in tracker_for(board, "user:octocat/3").poll(None).tickets] == ["acme/widgets#1"]

    bad = tracker_for(board, token="nope")
    with pytest.raises(TrackerError, match="401"):
        bad.poll(None)


def test_rate_limits_and_server_errors_are_retried(board: Board) -> None:
    gh = board.gh
    issue = gh.create_issue(board.repo, "Fix it", GOOD_TICKET)
    gh.add_to_project(board.project, issue, status="Agent")
    tracker = tracker_for(board)
    gh.server.inject(403, count=1, headers={"retry-after": "0"}, path_prefix="/orgs")  # secondary limit
    gh.server.inject(429, count=1, headers={"Retry-After": "0"}, path_prefix="/graphql")
    gh.server.inject(502, count=1, path_prefix="/repos")
    assert [t.ref for t in tracker.poll(None).tickets] == ["acme/widgets#1"]
    tracker.upsert_status_comment("acme/widgets#1", "hello")
    assert len(gh.status_comments(issue)) == 1


def test_from_config_validates_query_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_T", "x")
    settings = Settings()
    ok = TrackerConfig(name="gh", kind="github", url="http://127.0.0.1:1", token_env="GH_T", query="user:octo/2")
    tracker = GitHubProjectsTracker.from_config(ok, settings)
    assert tracker.scope == ProjectScope("octo", 2, True)
    options = {"colour": 1, "page_limit": "x"}
    bad = TrackerConfig(name="gh", kind="github", url="x", token_env="GH_T", query="acme", options=options)
    with pytest.raises(ConfigError) as err:
        GitHubProjectsTracker.from_config(bad, settings)
    text = str(err.value)
    assert "query = 'acme'" in text and "unknown option(s) colour" in text and "page_limit = 'x'" in text


def test_a_classic_token_without_the_project_scope_is_named_with_the_fix(board: Board) -> None:
    gh = board.gh
    gh.add_token("ghp_repo_only", gh.bot, scopes="repo")
    tracker = tracker_for(board, token="ghp_repo_only")
    [problem] = tracker.check({"running": "In Progress"})
    assert "'projectV2' field requires one of the following scopes" in problem.message
    assert "project scope" in problem.fix

    gh.add_token("ghp_read_project", gh.bot, scopes="repo, read:project")
    reader = tracker_for(board, token="ghp_read_project")
    assert reader.check({"running": "In Progress"}) == []
    issue = gh.create_issue(board.repo, "Fix it", "x")
    gh.add_to_project(board.project, issue, status="Agent")
    with pytest.raises(TrackerError, match="token needs write access to the project"):
        reader.move("acme/widgets#1", "In Progress")
    assert gh.column(issue) == "Agent"
