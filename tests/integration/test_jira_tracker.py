"""The Jira connector through the Tracker protocol, with the real `jira` package against the Jira simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.sims.jira import JiraSim, User
from tracker_bridge.config import Settings, TrackerConfig
from tracker_bridge.models import PullRequest, PullRequestState
from tracker_bridge.protocols import Tracker, TrackerError
from tracker_bridge_connectors.jira import JiraTracker

TOKEN_ENV = "TB_TEST_JIRA_TOKEN"
STAGES = Settings().stages.as_mapping()

MakeTracker = Callable[..., JiraTracker]


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraSim]:
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    with JiraSim() as s:
        s.add_project("PAY")
        yield s
        # Every request the connector sent is one Jira's API description accepts.
        assert s.rejected == [], s.rejected


@pytest.fixture
def alice(sim: JiraSim) -> User:
    return sim.add_user("alice", "alice@acme.test", "Alice Lead")


@pytest.fixture
def make(sim: JiraSim) -> MakeTracker:
    def build(*, options: dict[str, Any] | None = None, allowed: list[str] | None = None, **kw: Any) -> JiraTracker:
        cfg = TrackerConfig(
            name="pay",
            kind="jira",
            url=sim.url,
            user=kw.pop("user", "bot@acme.test"),
            token_env=TOKEN_ENV,
            query=kw.pop("query", "project = PAY"),
            options=options or {},
        )
        settings = Settings(trigger={"allowed_actors": allowed or []})
        return JiraTracker.from_config(cfg, settings)

    return build


def labelled(sim: JiraSim, by: User, summary: str = "Fix rounding", **kw: Any) -> str:
    issue = sim.create_issue("PAY", summary, "round_cents in pay/money.py is wrong", **kw)
    sim.add_label(issue.key, "agent-ready", by=by)
    return issue.key


def test_is_a_tracker(make: MakeTracker) -> None:
    assert isinstance(make(), Tracker)


# --- polling ---------------------------------------------------------------------------------------------------------


def test_poll_returns_triggered_tickets_once_then_again_only_when_changed(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    key = labelled(sim, alice)
    sim.create_issue("PAY", "Not for the agent")
    sim.create_issue("OPS", "Other project", labels=["agent-ready"])
    by_status = sim.create_issue("PAY", "Dragged to Agent")
    sim.set_status(by_status.key, "Agent", by=alice)
    tracker = make()

    first = tracker.poll(None)
    assert sorted(t.ref for t in first.tickets) == sorted([key, by_status.key])
    ticket = next(t for t in first.tickets if t.ref == key)
    assert ticket.labels == ("agent-ready",) and ticket.column == "To Do" and ticket.title == "Fix rounding"
    assert ticket.description == "round_cents in pay/money.py is wrong"
    assert next(t for t in first.tickets if t.ref == by_status.key).column == "Agent"

    second = tracker.poll(first.cursor)
    assert second.tickets == []  # the overlap window returned them again, unchanged: dropped

    sim.comment(key, "It also fails for negative amounts.", by=alice)
    third = tracker.poll(second.cursor)
    assert [t.ref for t in third.tickets] == [key]
    assert third.tickets[0].comments == ("It also fails for negative amounts.",)


def test_a_change_that_reaches_the_index_late_is_not_missed(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    tracker = make()
    cursor = tracker.poll(None).cursor
    late = labelled(sim, alice, "Indexed late")
    # The change happened 50 seconds before the last poll but only now shows in search (index lag, minute floor).
    sim.touch(late, sim.now() - timedelta(seconds=50))
    assert [t.ref for t in tracker.poll(cursor).tickets] == [late]


def test_poll_pages_through_500_tickets_and_an_idle_cycle_costs_one_request(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    keys = {labelled(sim, alice, f"Ticket {n}") for n in range(500)}
    for key in keys:  # labelled ten minutes ago: outside the overlap window of the next poll
        sim.touch(key, sim.now() - timedelta(minutes=10))
    tracker = make()
    sim.server.reset_log()
    result = tracker.poll(None)
    assert {t.ref for t in result.tickets} == keys and len(result.tickets) == 500
    searches = [r for r in sim.server.log if r.path.endswith("/search/jql")]
    assert len(searches) == 5  # 100 per page, following nextPageToken
    assert all(r.query["fields"] == ["summary,description,labels,status,updated,comment"] for r in searches)

    sim.server.reset_log()
    assert tracker.poll(result.cursor).tickets == []
    assert len(sim.server.log) == 1


def test_a_ticket_changed_while_the_pages_are_read_does_not_make_another_one_skipped(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    keys = [labelled(sim, alice, f"Ticket {n}") for n in range(150)]
    for key in keys:
        sim.touch(key, sim.now() - timedelta(minutes=10))
    searches: list[int] = []

    def change_between_pages(req: Any) -> None:
        if req.path.endswith("/search/jql"):
            searches.append(1)
            if len(searches) == 2:  # page 1 was served: a person comments on a ticket it held
                sim.comment(keys[3], "One more detail.", by=alice)

    sim.server.before.insert(0, change_between_pages)
    result = make().poll(None)
    assert sorted(t.ref for t in result.tickets) == sorted(keys)


def test_poll_with_a_cursor_from_a_previous_process_stays_within_two_requests(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    labelled(sim, alice)
    cursor = make().poll(None).cursor
    sim.server.reset_log()
    assert make().poll(cursor).tickets == []  # a new process (`run --once`) with the stored cursor
    assert len(sim.server.log) <= 2


def test_a_failed_poll_raises_tracker_error_and_the_old_cursor_loses_nothing(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    tracker = make()
    cursor = tracker.poll(None).cursor
    key = labelled(sim, alice)
    sim.server.inject(500, count=6, headers={"Retry-After": "0"}, path_prefix="/rest/api/3/search")
    with pytest.raises(TrackerError, match="searching issues"):
        tracker.poll(cursor)
    assert [t.ref for t in tracker.poll(cursor).tickets] == [key]


def test_bursts_of_429_and_5xx_are_survived_with_nothing_lost_or_repeated(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    keys = {labelled(sim, alice, f"Ticket {n}") for n in range(150)}
    tracker = make()
    sim.server.inject(429, count=2, headers={"Retry-After": "0"}, path_prefix="/rest/api/3/search")
    sim.server.inject(503, count=1, headers={"Retry-After": "0"}, path_prefix="/rest/api/3/search")
    result = tracker.poll(None)
    assert sorted(t.ref for t in result.tickets) == sorted(keys)  # 150 distinct: none lost, none twice
    key = sorted(keys)[0]
    sim.server.inject(502, count=1, path_prefix=f"/rest/api/3/issue/{key}/comment")  # no Retry-After: backoff
    sim.server.inject(429, count=2, headers={"Retry-After": "0"}, path_prefix=f"/rest/api/3/issue/{key}")
    tracker.upsert_status_comment(key, "**Stage:** running")
    tracker.move(key, "In Progress")
    assert len(sim.status_comments(key)) == 1 and sim.status_name(key) == "In Progress"
    again = tracker.poll(result.cursor)
    assert [t.ref for t in again.tickets] == [key]  # only the ticket that changed, once
    assert tracker.poll(again.cursor).tickets == []


def test_a_5xx_after_the_comment_was_created_never_leaves_a_second_comment(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    key = labelled(sim, alice)
    sim.fail_after(500, method="POST", path_prefix=f"/rest/api/3/issue/{key}/comment")
    with pytest.raises(TrackerError, match="adding the status comment"):
        make().upsert_status_comment(key, "first")  # Jira created it, but answered 500: not repeated blindly
    make().upsert_status_comment(key, "second")  # the next cycle finds it by its comment property
    assert [sim.comment_text(c) for c in sim.status_comments(key)] == ["second"]
    sim.fail_after(503, method="POST", path_prefix=f"/rest/api/3/issue/{key}/remotelink", count=2)
    pr = PullRequest(id="7", url="https://git.example/pr/7", branch="agent/x", base="main")
    make().link_pull_request(key, pr)  # upserted by globalId: safe to retry
    assert len(sim.issues[key].remote_links) == 1


def test_trigger_status_that_jira_does_not_have_falls_back_to_the_label(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    sim.statuses = {sid: name for sid, name in sim.statuses.items() if name != "Agent"}
    key = labelled(sim, alice)
    assert [t.ref for t in make().poll(None).tickets] == [key]


def test_bad_credentials_are_a_clear_error(sim: JiraSim, make: MakeTracker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "wrong")
    with pytest.raises(TrackerError, match=f"rejected the credentials.*{TOKEN_ENV}"):
        make().poll(None)


# --- moving cards ----------------------------------------------------------------------------------------------------


def test_move_is_a_transition_and_a_no_op_when_already_there(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    key = labelled(sim, alice)
    tracker = make()
    tracker.move(key, "In Progress")
    assert sim.status_name(key) == "In Progress"
    transitions_before = sim.server.count("POST", f"/rest/api/3/issue/{key}/transitions")
    tracker.move(key, "in progress")
    assert sim.server.count("POST", f"/rest/api/3/issue/{key}/transitions") == transitions_before


def test_move_without_a_transition_comments_once_and_raises(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    sim.set_workflow([("Start", ["To Do"], "In Progress", []), ("Review", ["In Progress"], "In Review", [])])
    key = labelled(sim, alice)
    tracker = make()
    for _ in range(2):
        with pytest.raises(
            TrackerError, match=r"cannot move .* from 'To Do' to 'Done'.*reachable from here: In Progress"
        ):
            tracker.move(key, "Done")
    notes = sim.bot_comments(key)
    assert len(notes) == 1  # said once, not at every cycle
    assert "no transition of the workflow leads there" in sim.comment_text(notes[0])
    assert sim.status_name(key) == "To Do"
    # The note is ours: it is not reported back as a person's comment.
    assert make().get_ticket(key).comments == ()


def test_a_transition_screen_with_a_required_field_is_a_clear_error(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    sim.set_workflow([("Finish", None, "Done", ["resolution"])])
    key = labelled(sim, alice)
    with pytest.raises(TrackerError, match=r"moving .* to 'Done'.*HTTP 400: Resolution is required"):
        make().move(key, "Done")
    [note] = sim.bot_comments(key)
    assert "Resolution is required" in sim.comment_text(note)


def test_board_columns_map_to_statuses(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    sim.add_board(
        12,
        [
            ("Backlog", ["To Do", "Needs Refinement"]),
            ("Agent", ["Agent"]),
            ("Doing", ["In Progress"]),
            ("Review", ["In Review"]),
            ("Shipped", ["Done"]),
        ],
    )
    key = labelled(sim, alice)
    dragged = sim.create_issue("PAY", "Dragged")
    sim.set_status(dragged.key, "Agent", by=alice)
    tracker = make(options={"board": 12})
    tickets = {t.ref: t for t in tracker.poll(None).tickets}
    assert tickets[key].column == "Backlog" and tickets[dragged.key].column == "Agent"
    tracker.move(key, "Doing")
    assert sim.status_name(key) == "In Progress"
    assert tracker.get_ticket(key).column == "Doing"
    with pytest.raises(TrackerError, match="board 12 has no column named 'Nowhere'"):
        tracker.move(key, "Nowhere")
    problems = tracker.check({**STAGES, "running": "Doing", "review": "Review", "done": "Shipped"})
    assert {p.key for p in problems} == {"stages.declined", "stages.failed"}  # Needs Refinement/Human: no column


# --- the status comment ----------------------------------------------------------------------------------------------


def test_one_status_comment_edited_in_place_even_after_the_state_is_lost(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    key = labelled(sim, alice)
    sim.comment(key, "Please keep the API stable.", by=alice)
    make().upsert_status_comment(key, "### tracker-bridge: queued\n\n**Stage:** `queued`")
    make().upsert_status_comment(key, "### tracker-bridge: running\n\n**Stage:** `running`")  # a new process
    ours = sim.status_comments(key)
    assert len(ours) == 1
    assert "running" in sim.comment_text(ours[0]) and "queued" not in sim.comment_text(ours[0])
    assert ours[0].body["content"][0]["type"] == "heading"  # rendered as ADF, not literal Markdown

    # Even the issue property gone (a crash between creating the comment and saving it): found by its property.
    del sim.issues[key].properties["tracker-bridge"]
    make().upsert_status_comment(key, "### tracker-bridge: review")
    assert len(sim.status_comments(key)) == 1
    assert make().get_ticket(key).comments == ("Please keep the API stable.",)


def test_status_comment_deleted_by_a_person_is_recreated(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    key = labelled(sim, alice)
    tracker = make()
    tracker.upsert_status_comment(key, "first")
    sim.issues[key].comments.clear()
    make().upsert_status_comment(key, "second")
    assert [sim.comment_text(c) for c in sim.status_comments(key)] == ["second"]


def test_same_body_twice_changes_nothing(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    key = labelled(sim, alice)
    tracker = make()
    tracker.upsert_status_comment(key, "**Stage:** running")
    sim.server.reset_log()
    tracker.upsert_status_comment(key, "**Stage:** running")
    assert sim.server.log == []


def test_duplicate_status_comments_left_by_a_retried_create_are_collapsed(
    sim: JiraSim, make: MakeTracker, alice: User
) -> None:
    key = labelled(sim, alice)
    for _ in range(2):  # as if a POST went through but its answer was lost, and the create was repeated
        make().upsert_status_comment(key, "one")
        del sim.issues[key].properties["tracker-bridge"]
    sim.issues[key].comments.append(
        sim.issues[key]
        .comments[0]
        .__class__(
            "99999",
            sim.bot.account_id,
            sim.issues[key].comments[0].body,
            sim.now(),
            sim.now(),
            {"tracker-bridge": {"kind": "status"}},
        )
    )
    make().upsert_status_comment(key, "two")
    assert [sim.comment_text(c) for c in sim.status_comments(key)] == ["two"]


# --- labels, links, actors -------------------------------------------------------------------------------------------


def test_labels_are_added_and_removed_without_clobbering_others(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    key = labelled(sim, alice, labels=["payments", "q3"])
    tracker = make()
    sim.add_label(key, "urgent", by=alice)  # a person edits between our read and our write
    tracker.add_label(key, "agent-running")
    tracker.remove_label(key, "agent-ready")
    tracker.remove_label(key, "agent-ready")
    assert sim.issues[key].labels == ["payments", "q3", "urgent", "agent-running"]
    assert all("update" in (r.json() or {}) for r in sim.server.log if r.method == "PUT" and r.path.endswith(key))


def test_labels_not_on_the_edit_screen_is_a_clear_error(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    key = labelled(sim, alice)
    sim.screen_fields.discard("labels")
    with pytest.raises(TrackerError, match="not on the appropriate screen"):
        make().add_label(key, "agent-running")


def test_pull_request_is_linked_once(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    key = labelled(sim, alice)
    pr = PullRequest(id="7", url="https://git.example/pr/7", branch="agent/PAY-1-fix", base="main", title="Fix")
    tracker = make()
    tracker.link_pull_request(key, pr)
    tracker.link_pull_request(key, pr.model_copy(update={"state": PullRequestState.MERGED}))
    links = sim.issues[key].remote_links
    assert len(links) == 1
    assert links[0]["object"]["url"] == pr.url and links[0]["object"]["status"] == {"resolved": True}


def test_trigger_actor_is_the_account_that_added_the_label(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    bob = sim.add_user("bob", "bob@acme.test", "Bob")
    key = labelled(sim, alice)
    sim.add_label(key, "other", by=bob)  # a later, unrelated change by someone else
    ticket = make().get_ticket(key)
    assert make().trigger_actor(ticket) == alice.account_id
    dragged = sim.create_issue("PAY", "Dragged")
    sim.set_status(dragged.key, "Agent", by=bob)
    assert make().trigger_actor(make().get_ticket(dragged.key)) == bob.account_id


def test_trigger_actor_matches_allowed_actors_given_as_emails(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    mallory = sim.add_user("mallory", "mallory@acme.test", "Mallory")
    key = labelled(sim, alice)
    other = labelled(sim, mallory, "From mallory")
    tracker = make(allowed=["Alice@acme.test", "someone-else@acme.test"])
    assert tracker.trigger_actor(tracker.get_ticket(key)) == "Alice@acme.test"
    assert tracker.trigger_actor(tracker.get_ticket(other)) == mallory.account_id
    # With emails kept private (Jira Cloud's default for many sites) the emails are resolved once by user search.
    sim.hide_emails = True
    sim.server.reset_log()
    private = make(allowed=["alice@acme.test"])
    assert private.trigger_actor(private.get_ticket(key)) == "alice@acme.test"
    assert private.trigger_actor(private.get_ticket(other)) == mallory.account_id
    assert sim.server.count("GET", "/rest/api/3/user/search") == 1  # once per email, then remembered


# --- doctor ----------------------------------------------------------------------------------------------------------


def test_check_is_clean_when_everything_is_in_place(make: MakeTracker) -> None:
    assert make().check(STAGES) == []


def test_check_names_missing_statuses_permissions_and_bad_jql(sim: JiraSim, make: MakeTracker) -> None:
    sim.permissions.discard("TRANSITION_ISSUES")
    problems = make(query="project = PAY AND bogus = 1").check({**STAGES, "review": "Code Review"})
    by_key = {p.key: p for p in problems}
    assert "Code Review" in by_key["stages.review"].message
    assert "In Review" in by_key["stages.review"].message  # the statuses Jira has are listed
    assert "TRANSITION_ISSUES" in by_key["trackers.pay.user"].message
    assert "bogus" in by_key["trackers.pay.query"].message


def test_check_reports_bad_credentials(make: MakeTracker, monkeypatch: pytest.MonkeyPatch) -> None:
    tracker = make()
    monkeypatch.setenv(TOKEN_ENV, "wrong")
    problems = make().check(STAGES)
    assert [p.key for p in problems] == ["trackers.pay.token_env"] and "401" in problems[0].message
    assert tracker.check(STAGES) == []


# --- Data Center: personal access token, REST v2 ----------------------------------------------------------------------


def test_data_center_with_a_personal_access_token_speaks_v2(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    sim.pat = "s3cret"
    key = labelled(sim, alice)
    tracker = make(user=None)
    assert tracker.options.pat and tracker.options.api_version == "2"
    result = tracker.poll(None)
    assert [t.ref for t in result.tickets] == [key]
    assert tracker.poll(result.cursor).tickets == []
    tracker.move(key, "In Progress")
    tracker.upsert_status_comment(key, "### Status\n\n**Stage:** running")
    make(user=None).upsert_status_comment(key, "### Status\n\n**Stage:** review")
    [ours] = sim.status_comments(key)
    assert ours.body == "h3. Status\n\n*Stage:* review"  # wiki markup, which Data Center renders
    assert sim.status_name(key) == "In Progress"
    assert all(r.path.startswith("/rest/api/2/") for r in sim.server.log)
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in sim.server.log)
    assert sim.rejected == []


def test_data_center_search_pages_with_start_at(sim: JiraSim, make: MakeTracker, alice: User) -> None:
    sim.pat = "s3cret"
    keys = {labelled(sim, alice, f"Ticket {n}") for n in range(130)}
    result = make(user=None).poll(None)
    assert sorted(t.ref for t in result.tickets) == sorted(keys)
    starts = [r.query["startAt"] for r in sim.server.log if r.path == "/rest/api/2/search"]
    assert starts == [["0"], ["100"]]


def test_retry_after_is_honoured(sim: JiraSim, make: MakeTracker) -> None:
    from tracker_bridge_connectors.jira.session import RetryingSession

    tracker = make()
    session = tracker.client._session
    assert isinstance(session, RetryingSession)
    waited: list[float] = []
    session.sleep = waited.append
    sim.server.inject(429, count=1, headers={"Retry-After": "7"})
    sim.server.inject(500, count=2)
    tracker.check(STAGES)
    assert waited == [7.0, 1.0, 2.0]  # as Jira asked, then exponential backoff (RetryPolicy)
