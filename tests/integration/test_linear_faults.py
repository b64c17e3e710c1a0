"""RATELIMITED and 5xx bursts, and answers lost after Linear made the change: nothing is lost or repeated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sims.linear import LinearSim, Workspace, seed
from tracker_bridge.models import PullRequest
from tracker_bridge.protocols import STATUS_MARKER, Trigger
from tracker_bridge_connectors.linear.client import LinearClient
from tracker_bridge_connectors.linear.tracker import LinearTracker
from tracker_bridge_connectors.retry import RetryPolicy


@pytest.fixture(scope="module")
def shared() -> Iterator[LinearSim]:
    with LinearSim() as sim:
        yield sim


@pytest.fixture()
def ws(shared: LinearSim) -> Workspace:
    shared.reset()
    return seed(shared)


def tracker(ws: Workspace) -> LinearTracker:
    policy = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05)
    client = LinearClient(ws.sim.url, "lin_api_bot", policy=policy, max_wait=1.0)
    return LinearTracker("eng", client, "ENG", Trigger("agent-ready", "Agent"))


def journey_effects(t: LinearTracker, ref: str, pr: PullRequest) -> None:
    """The tracker calls of one ticket's journey, in the order the engine makes them."""
    t.move(ref, "In Progress")
    t.upsert_status_comment(ref, f"{STATUS_MARKER}\nStage: running")
    t.add_label(ref, "agent-running")
    t.link_pull_request(ref, pr)
    t.move(ref, "In Review")
    t.remove_label(ref, "agent-running")
    t.upsert_status_comment(ref, f"{STATUS_MARKER}\nStage: review, PR {pr.url}")


def assert_done_once(ws: Workspace, issue_ref: str, pr: PullRequest) -> None:
    issue = ws.sim.find_issue(issue_ref)
    assert issue.state.name == "In Review"
    assert [ws.sim.label_by_id(i).name for i in issue.label_ids] == ["bug", "agent-ready"]
    assert len(issue.comment_list) == 1 and issue.comment_list[0].body.startswith("Stage: review")
    assert [a.url for a in issue.attachment_list] == [pr.url]
    moves = [h.toState.name for h in issue.history_list if h.toState is not None]
    assert moves == ["In Progress", "In Review"]
    assert [lb.name for lb in ws.sim.labels].count("agent-running") == 1


PR = PullRequest(id="1", url="https://github.com/acme/app/pull/1", branch="agent/ENG-1-fix", base="main")


def test_bursts_of_ratelimited_and_5xx_before_every_call(ws: Workspace) -> None:
    issue = ws.issue("Fix the parser", labels=("bug", "agent-ready"))
    t = tracker(ws)
    original = t.client.execute

    def faulty(document, variables=None):  # type: ignore[no-untyped-def]
        ws.sim.inject_ratelimited(2, reset_in_s=0.01)
        ws.sim.inject_5xx(2)
        return original(document, variables)

    t.client.execute = faulty  # type: ignore[method-assign]
    polled = t.poll(None)
    assert [x.ref for x in polled.tickets] == [issue.identifier]
    journey_effects(t, issue.identifier, PR)
    assert_done_once(ws, issue.identifier, PR)
    assert ws.sim.server.count("POST", "/graphql") >= 5 * len(ws.sim.calls) - 1


@pytest.mark.parametrize(
    "lost",
    ["MoveIssue", "CreateComment", "CreateLabel", "AddLabel", "AttachPullRequest", "RemoveLabel", "UpdateComment"],
)
def test_an_answer_lost_after_the_change_was_made_is_not_repeated(ws: Workspace, lost: str) -> None:
    issue = ws.issue("Fix the parser", labels=("bug", "agent-ready"))
    t = tracker(ws)
    ws.sim.lose_responses(1, operation=lost)
    journey_effects(t, issue.identifier, PR)
    assert_done_once(ws, issue.identifier, PR)
    assert lost in [c.operation for c in ws.sim.calls]


def test_a_restart_in_the_middle_repeats_nothing(ws: Workspace) -> None:
    issue = ws.issue("Fix the parser", labels=("bug", "agent-ready"))
    first = tracker(ws)
    first.move(issue.identifier, "In Progress")
    first.upsert_status_comment(issue.identifier, f"{STATUS_MARKER}\nStage: running")
    # A new process with no memory replays the whole journey.
    journey_effects(tracker(ws), issue.identifier, PR)
    assert_done_once(ws, issue.identifier, PR)
