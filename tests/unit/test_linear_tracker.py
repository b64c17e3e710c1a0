"""LinearTracker against the Linear simulator, through the Tracker protocol: real HTTP, real GraphQL execution."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.sims.linear import LinearSim, Workspace, seed
from tracker_bridge.config import ConfigError, settings_from_dict
from tracker_bridge.models import PullRequest, PullRequestState
from tracker_bridge.protocols import STATUS_MARKER, Tracker, TrackerError, Trigger
from tracker_bridge_connectors.linear.client import LinearClient
from tracker_bridge_connectors.linear.cursor import PollCursor
from tracker_bridge_connectors.linear.marker import MARKER_URL
from tracker_bridge_connectors.linear.tracker import LinearTracker
from tracker_bridge_connectors.retry import RetryPolicy

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="module")
def server_sim() -> Iterator[LinearSim]:
    with LinearSim() as sim:
        yield sim


@pytest.fixture()
def ws(server_sim: LinearSim) -> Workspace:
    server_sim.reset()
    return seed(server_sim)


def make_tracker(ws: Workspace, *, allowed: tuple[str, ...] = (), page_size: int = 10,
                 token: str = "lin_api_bot") -> LinearTracker:
    client = LinearClient(ws.sim.url, token, policy=FAST, sleep=lambda s: None)
    return LinearTracker("eng", client, "ENG", Trigger("agent-ready", "Agent"), allowed_actors=allowed,
                         page_size=page_size)


def test_it_is_a_tracker(ws: Workspace) -> None:
    assert isinstance(make_tracker(ws), Tracker)


# --- polling -------------------------------------------------------------------------------------------------------


def test_poll_finds_labelled_and_agent_column_issues_of_the_team_only(ws: Workspace) -> None:
    labelled = ws.issue("Fix the parser", labels=("bug",))
    ws.sim.label(labelled, "agent-ready", ws.alice)
    in_column = ws.issue("Rename a flag", state="Agent")
    ws.issue("Not for the agent", labels=("bug",))
    other_team = ws.sim.add_issue(ws.sim.teams[1], "Ops ticket", labels=("agent-ready",))
    result = make_tracker(ws).poll(None)
    refs = {t.ref for t in result.tickets}
    assert refs == {labelled.identifier, in_column.identifier}
    assert other_team.identifier not in refs
    ticket = next(t for t in result.tickets if t.ref == labelled.identifier)
    assert ticket.labels == ("bug", "agent-ready") and ticket.column == "Todo" and ticket.tracker == "eng"
    assert ticket.url.startswith("https://linear.app/") and ticket.updated_at is not None


def test_an_idle_poll_is_one_request_and_changes_nothing(ws: Workspace) -> None:
    ws.issue("Fix the parser", labels=("agent-ready",))
    tracker = make_tracker(ws)
    first = tracker.poll(None)
    ws.sim.reset_calls()
    again = tracker.poll(first.cursor)
    assert again.tickets == [] and again.cursor == first.cursor
    assert ws.sim.operations == ["PollIssues"]


def test_poll_is_incremental_a_change_after_the_cursor_is_seen_once(ws: Workspace) -> None:
    a = ws.issue("A", labels=("agent-ready",))
    b = ws.issue("B", labels=("agent-ready",))
    tracker = make_tracker(ws)
    cursor = tracker.poll(None).cursor
    ws.sim.label(b, "frontend", ws.alice)  # a person edits B
    changed = tracker.poll(cursor)
    assert [t.ref for t in changed.tickets] == [b.identifier]
    before, after = PollCursor.decode(cursor), PollCursor.decode(changed.cursor)
    assert before is not None and after is not None and after.newest == b.updatedAt > before.newest
    assert tracker.poll(changed.cursor).tickets == []
    assert a.identifier not in [t.ref for t in changed.tickets]


def test_an_update_that_shows_up_late_is_not_lost(ws: Workspace) -> None:
    a = ws.issue("A", labels=("agent-ready",))
    tracker = make_tracker(ws)
    cursor = tracker.poll(None).cursor
    time.sleep(0.05)
    b = ws.issue("B", labels=("agent-ready",))
    cursor = tracker.poll(cursor).cursor
    # A change to A stamped a moment before B's, but visible to queries only now (replication lag).
    a.title, a.updatedAt = "A, clarified", _earlier(b.updatedAt, milliseconds=20)
    late = tracker.poll(cursor)
    assert [(t.ref, t.title) for t in late.tickets] == [(a.identifier, "A, clarified")]
    assert tracker.poll(late.cursor).tickets == []


def _earlier(ts: str, milliseconds: int) -> str:
    when = datetime.fromisoformat(ts.replace("Z", "+00:00")) - timedelta(milliseconds=milliseconds)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_burst_of_changes_keeps_idle_polls_at_one_request(ws: Workspace) -> None:
    for n in range(25):
        ws.issue(f"Issue {n}", labels=("agent-ready",))
    tracker = make_tracker(ws, page_size=5)
    first = tracker.poll(None)
    assert len(first.tickets) == 25
    ws.sim.reset_calls()
    idle = tracker.poll(first.cursor)
    assert idle.tickets == [] and ws.sim.operations == ["PollIssues"]


def test_poll_pages_through_many_issues_by_cursor(ws: Workspace) -> None:
    made = [ws.issue(f"Issue {n}", labels=("agent-ready",)).identifier for n in range(7)]
    result = make_tracker(ws, page_size=3).poll(None)
    assert sorted(t.ref for t in result.tickets) == sorted(made)
    assert ws.sim.operations.count("PollIssues") == 3


def test_get_ticket_has_peoples_comments_oldest_first_without_ours(ws: Workspace) -> None:
    issue = ws.issue("Fix the parser", "It crashes", labels=("agent-ready",))
    ws.sim.add_comment(issue, "first from a person", ws.alice)
    tracker = make_tracker(ws)
    tracker.upsert_status_comment(issue.identifier, f"{STATUS_MARKER}\n**tracker-bridge**: scored 0.8")
    ws.sim.add_comment(issue, "second from a person", ws.alice)
    ticket = tracker.get_ticket(issue.identifier)
    assert ticket.comments == ("first from a person", "second from a person")
    assert ticket.description == "It crashes"


# --- moving and labels ---------------------------------------------------------------------------------------------


def test_move_changes_the_workflow_state_once(ws: Workspace) -> None:
    issue = ws.issue("Fix", labels=("agent-ready",))
    tracker = make_tracker(ws)
    tracker.move(issue.identifier, "In Progress")
    assert issue.state.name == "In Progress"
    ws.sim.reset_calls()
    tracker.move(issue.identifier, "In Progress")
    assert "MoveIssue" not in ws.sim.operations
    assert [h.toState.name for h in issue.history_list if h.toState] == ["In Progress"]


def test_move_to_a_state_the_team_lacks_says_how_to_fix_it(ws: Workspace) -> None:
    issue = ws.issue("Fix")
    with pytest.raises(TrackerError, match=r"no workflow state 'Blocked'.*Settings > Teams > ENG > Workflow"):
        make_tracker(ws).move(issue.identifier, "Blocked")


def test_labels_are_added_and_removed_without_clobbering_others(ws: Workspace) -> None:
    issue = ws.issue("Fix", labels=("bug", "agent-ready"))
    tracker = make_tracker(ws)
    tracker.add_label(issue.identifier, "frontend")
    ws.sim.label(issue, "frontend", ws.alice)  # already there: nothing changes
    tracker.remove_label(issue.identifier, "agent-ready")
    names = [ws.sim.label_by_id(i).name for i in issue.label_ids]
    assert names == ["bug", "frontend"]
    # The ENG label was used, never the OPS label of the same name.
    tracker.add_label(issue.identifier, "agent-ready")
    assert ws.sim.label_by_id(issue.label_ids[-1]).team is ws.team


def test_a_missing_label_is_created_in_the_team_and_removing_an_unknown_label_is_a_no_op(ws: Workspace) -> None:
    issue = ws.issue("Fix")
    tracker = make_tracker(ws)
    tracker.remove_label(issue.identifier, "never-existed")
    tracker.add_label(issue.identifier, "agent-failed")
    label = ws.sim.label_named("agent-failed", ws.team)
    assert label.team is ws.team and issue.label_ids == [label.id]


# --- the status comment --------------------------------------------------------------------------------------------


def test_status_comment_is_created_once_and_edited_in_place(ws: Workspace) -> None:
    issue = ws.issue("Fix", labels=("agent-ready",))
    tracker = make_tracker(ws)
    tracker.upsert_status_comment(issue.identifier, f"{STATUS_MARKER}\nStage: scored (0.82)")
    tracker.upsert_status_comment(issue.identifier, f"{STATUS_MARKER}\nStage: scored (0.82)")
    assert len(issue.comment_list) == 1 and issue.comment_list[0].editedAt is None
    # A second tracker (the state store was lost) finds the same comment on the remote.
    make_tracker(ws).upsert_status_comment(issue.identifier, f"{STATUS_MARKER}\nStage: running")
    assert len(issue.comment_list) == 1
    body = issue.comment_list[0].body
    assert body.startswith("Stage: running") and MARKER_URL in body
    assert "<!--" not in body  # Linear dropped nothing we rely on: the marker is the invisible link


def test_someone_elses_comment_quoting_the_marker_is_not_taken_over(ws: Workspace) -> None:
    issue = ws.issue("Fix", labels=("agent-ready",))
    ws.sim.add_comment(issue, f"look at this [\u200b]({MARKER_URL})", ws.alice)
    make_tracker(ws).upsert_status_comment(issue.identifier, "Stage: scored")
    assert [c.user for c in issue.comment_list] == [ws.alice, ws.sim.bot]
    assert issue.comment_list[0].body.startswith("look at this")


# --- pull request, trigger actor -----------------------------------------------------------------------------------


def test_the_pull_request_is_attached_once_and_its_state_refreshed(ws: Workspace) -> None:
    issue = ws.issue("Fix", labels=("agent-ready",))
    tracker = make_tracker(ws)
    pr = PullRequest(id="7", url="https://github.com/acme/app/pull/7", branch="agent/ENG-1-fix", base="main",
                     title="Fix the parser")
    tracker.link_pull_request(issue.identifier, pr)
    tracker.link_pull_request(issue.identifier, pr.model_copy(update={"state": PullRequestState.MERGED}))
    assert [a.url for a in issue.attachment_list] == [pr.url]
    assert issue.attachment_list[0].subtitle is not None and issue.attachment_list[0].subtitle.startswith("merged")


def test_trigger_actor_is_whoever_added_the_label_last(ws: Workspace) -> None:
    issue = ws.issue("Fix")
    ws.sim.label(issue, "agent-ready", ws.mallory)
    ws.sim.unlabel(issue, "agent-ready", ws.mallory)
    ws.sim.label(issue, "frontend", ws.mallory)
    ws.sim.label(issue, "agent-ready", ws.alice)
    tracker = make_tracker(ws)
    assert tracker.trigger_actor(tracker.get_ticket(issue.identifier)) == "alice@acme.dev"


def test_trigger_actor_of_a_move_to_the_agent_column(ws: Workspace) -> None:
    issue = ws.issue("Fix")
    ws.sim.move(issue, "Agent", ws.mallory)
    tracker = make_tracker(ws)
    assert tracker.trigger_actor(tracker.get_ticket(issue.identifier)) == "mallory@acme.dev"


def test_trigger_actor_is_named_by_id_when_the_allow_list_uses_ids(ws: Workspace) -> None:
    issue = ws.issue("Fix")
    ws.sim.label(issue, "agent-ready", ws.alice)
    tracker = make_tracker(ws, allowed=(ws.alice.id,))
    assert tracker.trigger_actor(tracker.get_ticket(issue.identifier)) == ws.alice.id


def test_trigger_actor_is_none_when_the_issue_was_created_with_the_label(ws: Workspace) -> None:
    issue = ws.issue("Fix", labels=("agent-ready",))
    tracker = make_tracker(ws)
    assert tracker.trigger_actor(tracker.get_ticket(issue.identifier)) is None


# --- doctor, configuration -----------------------------------------------------------------------------------------


def test_check_names_every_missing_state_and_the_fix(ws: Workspace) -> None:
    problems = make_tracker(ws).check({"running": "In Progress", "review": "Code Review", "done": "Done"})
    assert [p.key for p in problems] == ["stages.review"]
    assert "Code Review" in problems[0].message and "In Review" in problems[0].message


def test_check_reports_a_refused_key_and_an_unknown_team(ws: Workspace) -> None:
    bad = make_tracker(ws, token="lin_api_wrong").check({})
    assert len(bad) == 1 and bad[0].key.endswith("token_env") and "Personal API keys" in bad[0].message
    tracker = make_tracker(ws)
    tracker.team_key = "NOPE"
    problems = tracker.check({})
    assert [p.key for p in problems] == ["trackers.eng.query"] and "ENG (Engineering)" in problems[0].fix


def test_oauth_tokens_are_sent_as_bearer(ws: Workspace) -> None:
    ws.sim.oauth_tokens["lin_oauth_abc"] = ws.sim.bot
    tracker = make_tracker(ws, token="lin_oauth_abc")
    assert tracker.check({"running": "In Progress"}) == []


def _settings(tmp_path: Path, **tracker: object) -> object:
    entry = {"name": "eng", "kind": "linear", "url": "https://api.linear.app", "token_env": "LINEAR_TEST_KEY",
             "query": "ENG", **tracker}
    return settings_from_dict({"trackers": [entry]}, base_dir=tmp_path, check_secrets=False)


def test_from_config_reads_team_key_url_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAR_TEST_KEY", "lin_api_x")
    settings = settings_from_dict(
        {"trackers": [{"name": "eng", "kind": "linear", "url": "https://api.linear.app/graphql",
                       "token_env": "LINEAR_TEST_KEY", "query": "ENG", "options": {"page_size": 25}}]},
        base_dir=tmp_path,
    )
    tracker = LinearTracker.from_config(settings.trackers[0], settings)
    assert tracker.team_key == "ENG" and tracker.page_size == 25
    assert tracker.client.base_url == "https://api.linear.app"


def test_from_config_explains_bad_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAR_TEST_KEY", "lin_api_x")
    settings = settings_from_dict(
        {"trackers": [{"name": "eng", "kind": "linear", "url": "https://api.linear.app",
                       "token_env": "LINEAR_TEST_KEY", "query": "Engineering team",
                       "options": {"page_size": 500, "colour": "red", "auth": "basic"}}]},
        base_dir=tmp_path,
    )
    with pytest.raises(ConfigError) as err:
        LinearTracker.from_config(settings.trackers[0], settings)
    text = str(err.value)
    assert "query = 'Engineering team'" in text and "options.colour: unknown option" in text
    assert "options.page_size = 500" in text and "options.auth = 'basic'" in text
