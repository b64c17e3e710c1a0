"""GitLabTracker against the GitLab simulator: real python-gitlab, real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sims.gitlab import BOT_TOKEN, GitLabSim, World, make_world
from tracker_bridge.config import ConfigError, Settings, TrackerConfig
from tracker_bridge.protocols import STATUS_MARKER, Tracker, TrackerError
from tracker_bridge_connectors.gitlab import GitLabTracker

API = "/api/v4"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("GITLAB_TOKEN", BOT_TOKEN)
    with GitLabSim() as sim:
        w = make_world(sim)
        yield w
        # Every request the connector sent is one the GitLab API description allows.
        assert sim.validation_errors == []


def make_tracker(world: World, **options: Any) -> GitLabTracker:
    cfg = TrackerConfig(
        name="shop", kind="gitlab", url=world.sim.url, token_env="GITLAB_TOKEN", query="acme/shop", options=options
    )
    return GitLabTracker.from_config(cfg, Settings(base_dir=Path.cwd()))


def requests_made(world: World, method: str | None = None) -> int:
    return world.sim.server.count(method, API)


def test_it_is_a_tracker(world: World) -> None:
    assert isinstance(make_tracker(world), Tracker)


def test_poll_returns_labelled_and_agent_list_issues_then_only_what_changed(world: World) -> None:
    sim, p = world.sim, world.project
    labelled = world.issue("Fix rounding", "The total is wrong.", labels=["bug", "agent-ready"])
    world.issue("Fix currency", labels=["Agent"])
    world.issue("Unrelated", labels=["bug"])
    sim.comment(p, labelled.iid, "It happens on every order", by=world.alice)
    tracker = make_tracker(world)

    first = tracker.poll(None)
    by_ref = {t.ref: t for t in first.tickets}
    assert set(by_ref) == {"acme/shop#1", "acme/shop#2"}
    assert by_ref["acme/shop#1"].labels == ("bug", "agent-ready")
    assert by_ref["acme/shop#1"].comments == ("It happens on every order",)
    assert by_ref["acme/shop#1"].url.endswith("/acme/shop/-/issues/1")
    assert by_ref["acme/shop#2"].column == "Agent"

    sim.server.reset_log()
    idle = tracker.poll(first.cursor)
    assert idle.tickets == []
    assert requests_made(world) == 1  # an idle cycle is one request

    sim.label(p, 3, "agent-ready", by=world.alice)
    later = tracker.poll(idle.cursor)
    assert [t.ref for t in later.tickets] == ["acme/shop#3"]
    assert tracker.poll(later.cursor).tickets == []


def test_poll_follows_pagination_over_many_issues(world: World) -> None:
    for n in range(130):
        world.issue(f"Issue {n}", labels=["agent-ready"] if n in (0, 99, 100, 129) else ["bug"])
    tracker = make_tracker(world)
    result = tracker.poll(None)
    assert sorted(t.title for t in result.tickets) == ["Issue 0", "Issue 100", "Issue 129", "Issue 99"]
    pages = [r for r in world.sim.server.log if r.path.endswith("/issues")]
    assert len(pages) == 2  # per_page=100, the Link header's next page followed once
    assert tracker.poll(result.cursor).tickets == []


def test_comments_leave_out_system_notes_and_our_status_note(world: World) -> None:
    issue = world.issue("Fix rounding", labels=["agent-ready"])
    tracker = make_tracker(world)
    tracker.board()  # read once per process
    world.sim.server.reset_log()
    assert tracker.get_ticket("acme/shop#1").comments == ()
    assert requests_made(world) == 1  # no notes yet (user_notes_count = 0): the notes are not even read
    tracker.upsert_status_comment("acme/shop#1", "**Agent**: scoring")
    world.sim.comment(world.project, issue.iid, "Please also check refunds", by=world.alice)
    ticket = tracker.get_ticket("acme/shop#1")
    assert ticket.comments == ("Please also check refunds",)
    # with their authors, for `@mention` follow-ups on the issue (issue 14)
    assert [(c.author, c.body) for c in ticket.discussion] == [("alice", "Please also check refunds")]


def test_move_swaps_list_labels_in_one_edit_and_keeps_other_labels(world: World) -> None:
    world.issue("Fix rounding", labels=["bug", "agent-ready", "Agent"])
    tracker = make_tracker(world)
    tracker.move("acme/shop#1", "In Progress")
    issue = world.project.issues[1]
    assert sorted(issue.labels) == ["agent-ready", "bug", "workflow::In Progress"]
    assert tracker.get_ticket("acme/shop#1").column == "In Progress"

    world.sim.server.reset_log()
    tracker.move("acme/shop#1", "In Review")
    assert requests_made(world, "PUT") == 1
    # The scoped label replaced its sibling: one workflow:: label at a time.
    assert sorted(issue.labels) == ["agent-ready", "bug", "workflow::In Review"]

    world.sim.server.reset_log()
    tracker.move("acme/shop#1", "In Review")
    assert requests_made(world, "PUT") == 0  # already there: nothing changes


def test_done_is_the_closed_list_and_leaving_it_reopens(world: World) -> None:
    world.issue("Fix rounding", labels=["agent-ready", "workflow::In Review"])
    tracker = make_tracker(world)
    tracker.move("acme/shop#1", "Done")
    issue = world.project.issues[1]
    assert issue.state == "closed"
    assert "workflow::In Review" not in issue.labels
    assert tracker.get_ticket("acme/shop#1").column == "Done"
    world.sim.server.reset_log()
    tracker.move("acme/shop#1", "Done")
    assert requests_made(world, "PUT") == 0

    tracker.move("acme/shop#1", "Needs Human")
    assert issue.state == "opened"
    assert "Needs Human" in issue.labels


def test_lists_can_be_mapped_explicitly(world: World) -> None:
    world.sim.label_named(world.project, "status::doing")
    world.issue("Fix rounding", labels=["agent-ready"])
    tracker = make_tracker(world, lists={"In Progress": "status::doing"})
    tracker.move("acme/shop#1", "In Progress")
    assert "status::doing" in world.project.issues[1].labels
    assert tracker.get_ticket("acme/shop#1").column == "In Progress"


def test_moving_to_a_column_without_a_list_says_how_to_fix_it(world: World) -> None:
    world.issue("Fix rounding", labels=["agent-ready"])
    cfg = TrackerConfig(name="shop", kind="gitlab", url=world.sim.url, token_env="GITLAB_TOKEN", query="acme/shop")
    settings = Settings(base_dir=Path.cwd(), stages={"review": "QA"})  # type: ignore[arg-type]
    tracker = GitLabTracker.from_config(cfg, settings)
    with pytest.raises(TrackerError, match="add a list whose label is 'QA'"):
        tracker.move("acme/shop#1", "QA")
    problems = tracker.check(settings.stages.as_mapping())
    assert [p.key for p in problems] == ["[stages] review"]


def test_status_note_is_created_once_and_edited_in_place_even_without_state(world: World) -> None:
    world.issue("Fix rounding", labels=["agent-ready"])
    # A person quoting the marker does not make their note ours.
    world.sim.comment(world.project, 1, f"copy of {STATUS_MARKER} text", by=world.alice)
    make_tracker(world).upsert_status_comment("acme/shop#1", "**Agent**: queued, score 0.8")
    # A new tracker (a restart that lost its state store) finds the same note by its marker.
    fresh = make_tracker(world)
    fresh.upsert_status_comment("acme/shop#1", "**Agent**: running")
    fresh.upsert_status_comment("acme/shop#1", "**Agent**: running")
    ours = [n for n in world.project.issues[1].notes if n.author == world.bot]
    assert len(ours) == 1
    assert ours[0].body.startswith(STATUS_MARKER)
    assert "running" in ours[0].body


def test_labels_are_added_and_removed_without_clobbering(world: World) -> None:
    world.issue("Fix rounding", labels=["bug", "agent-ready"])
    tracker = make_tracker(world)
    tracker.add_label("acme/shop#1", "agent-done")
    tracker.remove_label("acme/shop#1", "agent-ready")
    tracker.remove_label("acme/shop#1", "agent-ready")
    assert world.project.issues[1].labels == ["bug", "agent-done"]


def test_trigger_actor_is_who_added_the_label_and_their_role_counts(world: World) -> None:
    world.issue("Fix rounding")
    world.sim.label(world.project, 1, "agent-ready", by=world.guest)
    world.sim.unlabel(world.project, 1, "agent-ready", by=world.guest)
    world.sim.label(world.project, 1, "agent-ready", by=world.alice)
    tracker = make_tracker(world)
    ticket = tracker.get_ticket("acme/shop#1")
    assert tracker.trigger_actor(ticket) == "alice"

    world.issue("Fix currency")
    world.sim.move_to_list(world.project, 2, "Agent", by=world.guest)
    strict = make_tracker(world, min_access_level="developer")
    actor = strict.trigger_actor(strict.get_ticket("acme/shop#2"))
    assert actor is not None and actor.startswith("gary-guest (GitLab role Guest, below the required Developer")
    assert strict.trigger_actor(ticket) == "alice"


def test_rate_limits_honour_retry_after_and_lose_nothing(world: World) -> None:
    world.issue("Fix rounding", labels=["agent-ready"])
    tracker = make_tracker(world)
    world.sim.server.inject(429, count=2, headers={"Retry-After": "1", "RateLimit-Remaining": "0"})
    started = time.monotonic()
    result = tracker.poll(None)
    assert time.monotonic() - started >= 2.0  # python-gitlab slept for Retry-After each time
    assert [t.ref for t in result.tickets] == ["acme/shop#1"]


def test_without_retry_after_a_429_waits_until_ratelimit_reset(world: World) -> None:
    world.issue("Fix rounding", labels=["agent-ready"])
    tracker = make_tracker(world)
    reset = int(time.time()) + 2
    world.sim.server.inject(429, count=1, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)})
    expected_wait = reset - time.time()  # between 1 and 2 seconds
    started = time.monotonic()
    result = tracker.poll(None)
    assert time.monotonic() - started >= expected_wait - 0.1  # it slept until the window reset, no hammering
    assert [t.ref for t in result.tickets] == ["acme/shop#1"]


def test_server_errors_are_retried_and_a_write_is_not_repeated(world: World) -> None:
    world.issue("Fix rounding", labels=["agent-ready"])
    tracker = make_tracker(world)
    world.sim.server.inject(502, count=2, method="POST", headers={"Retry-After": "0"})
    tracker.upsert_status_comment("acme/shop#1", "**Agent**: queued")
    world.sim.server.inject(503, count=3, method="PUT", headers={"Retry-After": "0"})
    tracker.move("acme/shop#1", "In Progress")
    issue = world.project.issues[1]
    assert len([n for n in issue.notes if n.author == world.bot]) == 1
    assert "workflow::In Progress" in issue.labels


def test_a_service_that_stays_down_becomes_a_clear_error(world: World) -> None:
    tracker = make_tracker(world, max_retries=1)
    world.sim.server.inject(500, count=5, headers={"Retry-After": "0"})
    with pytest.raises(TrackerError, match="GitLab answered 500"):
        tracker.poll(None)


def test_bad_token_and_unknown_project_are_explained(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-wrong")
    with pytest.raises(TrackerError, match="rejected the token"):
        make_tracker(world).poll(None)
    problems = make_tracker(world).check({})
    assert problems and problems[0].key == "trackers.shop.token_env"
    monkeypatch.setenv("GITLAB_TOKEN", BOT_TOKEN)
    cfg = TrackerConfig(name="x", kind="gitlab", url=world.sim.url, token_env="GITLAB_TOKEN", query="acme/nope")
    with pytest.raises(TrackerError, match="404"):
        GitLabTracker.from_config(cfg, Settings(base_dir=Path.cwd())).poll(None)


def test_check_passes_on_a_complete_board_and_flags_a_read_only_token(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(base_dir=Path.cwd())
    assert make_tracker(world).check(settings.stages.as_mapping()) == []
    world.sim.tokens["glpat-readonly"] = (world.bot.id, ["read_api"])
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-readonly")
    problems = make_tracker(world).check(settings.stages.as_mapping())
    assert [p.key for p in problems] == ["trackers.shop.token_env"]
    assert "read_api is read-only" in problems[0].message
    with pytest.raises(TrackerError, match="403"):
        make_tracker(world).add_label("acme/shop#1", "x")


def test_options_are_validated() -> None:
    cfg = TrackerConfig(
        name="shop",
        kind="gitlab",
        url="https://gitlab.example.com",
        query="acme/shop",
        token_env="GITLAB_TOKEN",
        options={"colums": {}, "scope": "team"},
    )
    with pytest.raises(ConfigError) as info:
        GitLabTracker.from_config(cfg, Settings(base_dir=Path.cwd()))
    text = str(info.value)
    assert "options.colums: unknown option" in text
    assert "options.scope" in text


def test_group_scope_polls_issues_of_every_project_in_the_group(world: World) -> None:
    other = world.sim.add_project("acme/api", members={world.bot: 40, world.alice: 30})
    world.sim.add_group_board("acme", ["Agent", "workflow::In Progress"])
    world.issue("Shop issue", labels=["agent-ready"])
    world.sim.create_issue(other, "API issue", author=world.alice, labels=["Agent"])
    world.sim.create_issue(other, "Not for the agent", author=world.alice)
    cfg = TrackerConfig(
        name="acme",
        kind="gitlab",
        url=world.sim.url,
        token_env="GITLAB_TOKEN",
        query="acme",
        options={"scope": "group"},
    )
    tracker = GitLabTracker.from_config(cfg, Settings(base_dir=Path.cwd()))
    tickets = {t.ref: t for t in tracker.poll(None).tickets}
    assert sorted(tickets) == ["acme/api#1", "acme/shop#1"]
    assert tickets["acme/api#1"].column == "Agent"
    tracker.move("acme/api#1", "In Progress")
    assert other.issues[1].labels == ["workflow::In Progress"]
