"""The journey's rules, as pure functions: no server, no store, no git."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tracker_bridge import lifecycle
from tracker_bridge.config import StagesConfig
from tracker_bridge.lifecycle import Decision, Effect, PollAction, RunView, TicketView, on_poll, on_pull_request
from tracker_bridge.models import (
    ChecksState,
    Phase,
    PullRequest,
    PullRequestState,
    ReviewState,
    RunOutcome,
    Stage,
    Ticket,
)
from tracker_bridge.protocols import CodeHostError, PullRequestComment, Trigger

TRIGGER = Trigger(label="agent-ready", column="Agent")


def ticket(labels: tuple[str, ...] = ("agent-ready",), column: str | None = "Backlog") -> Ticket:
    return Ticket(ref="PAY-1", tracker="pay", title="Fix it", labels=labels, column=column)


def poll(stage: Stage | None, t: Ticket, *, via: str | None = "label", changed: bool = False,
         applied: str | None = None) -> PollAction:
    return on_poll(stage=stage, ticket=t, trigger=TRIGGER, via=via, content_changed=changed, column_applied=applied)


def pr(state: PullRequestState = PullRequestState.OPEN, **kw: object) -> PullRequest:
    return PullRequest(id="1", url="u", branch="agent/PAY-1-fix-it", base="main", state=state, **kw)  # type: ignore[arg-type]


def test_new_ticket_is_evaluated_only_when_triggered() -> None:
    assert poll(None, ticket()) is PollAction.EVALUATE
    assert poll(None, ticket(labels=(), column="Agent")) is PollAction.EVALUATE
    assert poll(None, ticket(labels=())) is PollAction.NOTHING


def test_queued_ticket_is_cancelled_when_its_own_trigger_goes() -> None:
    # Label-triggered and sitting in the Agent column (the daemon put it there): the label is what counts.
    assert poll(Stage.QUEUED, ticket(labels=(), column="Agent"), via="label") is PollAction.CANCEL
    assert poll(Stage.QUEUED, ticket(column="Agent"), via="label") is PollAction.NOTHING
    # Column-triggered: dragged out of Agent.
    assert poll(Stage.QUEUED, ticket(labels=(), column="Backlog"), via="column") is PollAction.CANCEL


def test_declined_ticket_is_scored_again_only_after_it_changes() -> None:
    assert poll(Stage.DECLINED, ticket(), changed=False, applied="Needs Refinement") is PollAction.NOTHING
    assert poll(Stage.DECLINED, ticket(), changed=True, applied="Needs Refinement") is PollAction.EVALUATE


def test_failed_ticket_dragged_back_to_agent_is_tried_again() -> None:
    back = ticket(labels=(), column="Agent")
    assert poll(Stage.FAILED, back, applied="Needs Human") is PollAction.EVALUATE
    assert poll(Stage.FAILED, ticket(column="Needs Human"), applied="Needs Human") is PollAction.NOTHING
    assert poll(Stage.DONE, back, applied="Done") is PollAction.NOTHING


def test_running_and_review_tickets_are_left_to_the_run_and_the_pull_request() -> None:
    for stage in (Stage.RUNNING, Stage.REVIEW):
        assert poll(stage, ticket(labels=()), changed=True) is PollAction.NOTHING


def test_score_and_run_outcomes() -> None:
    assert lifecycle.after_score(True) is Stage.QUEUED
    assert lifecycle.after_score(False) is Stage.DECLINED
    assert lifecycle.after_run(RunOutcome.SUCCEEDED) is Stage.REVIEW
    for outcome in (RunOutcome.NO_CHANGES, RunOutcome.TESTS_FAILED, RunOutcome.CAP_REACHED, RunOutcome.REFUSED):
        assert lifecycle.after_run(outcome) is Stage.FAILED


def test_pull_request_state_drives_the_board() -> None:
    args = {"stage": Stage.REVIEW, "iterations": 0, "max_iterations": 2, "iterated_sha": None}
    assert on_pull_request(pr(PullRequestState.MERGED), **args).stage is Stage.DONE  # type: ignore[arg-type]
    closed = on_pull_request(pr(PullRequestState.CLOSED), **args)  # type: ignore[arg-type]
    assert closed.stage is Stage.FAILED and "closed without merging" in closed.reason
    assert on_pull_request(pr(checks=ChecksState.PASSING), **args).stage is Stage.REVIEW  # type: ignore[arg-type]


def test_failed_ci_or_requested_changes_send_it_back_within_the_cap() -> None:
    failing = pr(checks=ChecksState.FAILING, head_sha="abc", feedback=["test_x failed"])
    d = on_pull_request(failing, stage=Stage.REVIEW, iterations=0, max_iterations=2, iterated_sha=None)
    assert d.stage is Stage.RUNNING and d.iterate and d.feedback == ["test_x failed"]
    # The same head was already iterated on: wait for the new push's checks.
    same = on_pull_request(failing, stage=Stage.REVIEW, iterations=1, max_iterations=2, iterated_sha="abc")
    assert same.stage is Stage.REVIEW and not same.iterate
    changes = pr(review=ReviewState.CHANGES_REQUESTED, head_sha="def")
    spent = on_pull_request(changes, stage=Stage.REVIEW, iterations=2, max_iterations=2, iterated_sha="abc")
    assert spent.stage is Stage.FAILED and "a person should take over" in spent.reason


def test_a_review_the_last_iteration_answered_is_not_a_new_request() -> None:
    args = {"stage": Stage.REVIEW, "iterations": 1, "max_iterations": 2, "iterated_sha": "abc"}
    # The agent pushed "def" for the review's feedback; the review still says CHANGES_REQUESTED until a new one.
    stale = pr(review=ReviewState.CHANGES_REQUESTED, head_sha="def", feedback=["alice: add a test"])
    d = on_pull_request(stale, iterated_feedback=["alice: add a test"], **args)  # type: ignore[arg-type]
    assert d.stage is Stage.REVIEW and not d.iterate
    again = pr(review=ReviewState.CHANGES_REQUESTED, head_sha="def", feedback=["alice: handle floats too"])
    d = on_pull_request(again, iterated_feedback=["alice: add a test"], **args)  # type: ignore[arg-type]
    assert d.stage is Stage.RUNNING and d.iterate and d.feedback == ["alice: handle floats too"]
    # Checks belong to a commit: a failure on the new head is new even when its text is the same.
    ci = pr(checks=ChecksState.FAILING, head_sha="def", feedback=["check unit failed"])
    d = on_pull_request(ci, iterated_feedback=["check unit failed"], **args)  # type: ignore[arg-type]
    assert d.stage is Stage.RUNNING and d.iterate


def test_stage_columns() -> None:
    stages = StagesConfig()
    assert lifecycle.column_for(Stage.RUNNING, stages) == "In Progress"
    assert lifecycle.column_for(Stage.DECLINED, stages) == "Needs Refinement"
    assert lifecycle.column_for(Stage.SEEN, stages) is None
    assert lifecycle.column_for(Stage.CANCELLED, stages) is None


def test_trigger_ignores_case_and_surrounding_spaces_for_label_and_column() -> None:
    assert lifecycle.trigger_via(ticket(labels=(" Agent-Ready ",)), TRIGGER) == "label"
    assert lifecycle.trigger_via(ticket(labels=(), column="  agent"), TRIGGER) == "column"
    assert lifecycle.trigger_via(ticket(labels=("agent-ready-later",), column="Agents"), TRIGGER) is None
    spaced = Trigger(label=" AGENT-READY ", column=" AGENT ")
    assert spaced.matches(ticket(labels=("agent-ready",))) and spaced.matches(ticket(labels=(), column="Agent"))
    # A queued label-triggered ticket stays queued while the label is there in any spelling.
    assert lifecycle.still_triggered(ticket(labels=("AGENT-READY",)), TRIGGER, "label")
    assert not lifecycle.still_triggered(ticket(labels=()), TRIGGER, "label")


# --- decisions: every stage change the engine makes --------------------------------------------------------------

NOW = datetime(2026, 1, 5, 9, 0, 0)
POLICY = lifecycle.RetryPolicy(attempts=4, backoff_s=30)


def view(stage: Stage = Stage.RUNNING, phase: Phase | None = Phase.AGENT, **kw: object) -> TicketView:
    return TicketView(ref="PAY-1", stage=stage, phase=phase, **kw)  # type: ignore[arg-type]


def run_view(status: str = "finished", outcome: RunOutcome | None = RunOutcome.SUCCEEDED,
             commit: str | None = "c1", ready: bool = True) -> RunView:
    return RunView(status=status, outcome=outcome, reason="tests failed twice", commit_sha=commit,
                   workspace_ready=ready)


@pytest.mark.parametrize(
    ("decision", "stage", "phase", "effect", "reason_has"),
    [
        (lifecycle.trigger_removed(), Stage.CANCELLED, None, Effect.NONE, "trigger was removed"),
        (lifecycle.actor_refused("mallory"), Stage.SEEN, None, Effect.NONE, "added by mallory"),
        (lifecycle.scored(accepted=False, value=0.3, threshold=0.6, repo="app", known_repos=["app"]),
         Stage.DECLINED, None, Effect.NONE, "below the threshold"),
        (lifecycle.scored(accepted=True, value=0.8, threshold=0.6, repo="app", known_repos=["app"]),
         Stage.QUEUED, None, Effect.NONE, "at or above"),
        (lifecycle.scored(accepted=True, value=0.8, threshold=0.6, repo=None, known_repos=["app"]),
         Stage.FAILED, None, Effect.NONE, "set `repo` on its tracker"),
        (lifecycle.scored(accepted=True, value=0.8, threshold=0.6, repo="../../etc", known_repos=["app", "web"]),
         Stage.FAILED, None, Effect.NONE, "configured repositories: 'app', 'web'"),
        (lifecycle.take(view(Stage.QUEUED, None)), Stage.RUNNING, Phase.AGENT, Effect.RUN, "took the ticket"),
        (lifecycle.budget_spent(view(Stage.QUEUED, None), 5.0), Stage.QUEUED, None, Effect.NONE, "$5.00 is spent"),
        (lifecycle.run_finished(RunOutcome.SUCCEEDED, ""), Stage.RUNNING, Phase.PUBLISHING, Effect.PUBLISH,
         "publishing it"),
        (lifecycle.run_finished(RunOutcome.TESTS_FAILED, "tests failed"), Stage.FAILED, None, Effect.NONE,
         "tests failed"),
        (lifecycle.run_crashed("boom"), Stage.FAILED, None, Effect.NONE, "error during the run: boom"),
        (lifecycle.published(0, 2), Stage.REVIEW, None, Effect.NONE, "pull request is open"),
        (lifecycle.published(1, 2), Stage.REVIEW, None, Effect.NONE, "iteration 1 of 2"),
        (lifecycle.move_failed(Stage.QUEUED, "Agent", "no such column"), Stage.FAILED, None, Effect.NONE,
         "could not move the card to 'Agent'"),
    ],
)
def test_each_rule_decides_stage_phase_effect_and_reason(
    decision: Decision, stage: Stage, phase: Phase | None, effect: Effect, reason_has: str
) -> None:
    assert (decision.stage, decision.phase, decision.effect) == (stage, phase, effect)
    assert reason_has in decision.reason


def test_a_card_move_that_fails_on_a_failed_ticket_changes_nothing() -> None:
    assert lifecycle.move_failed(Stage.FAILED, "Needs Human", "gone") is None


@pytest.mark.parametrize(
    ("pr_state", "last", "phase", "effect", "stage"),
    [
        (PullRequestState.OPEN, None, Phase.AGENT, Effect.ADOPT_PR, Stage.RUNNING),  # opened before the crash
        (None, run_view(), Phase.AGENT, Effect.PUBLISH, Stage.RUNNING),  # finished, not pushed yet
        (None, run_view(ready=False), Phase.PUBLISHING, Effect.RUN, Stage.RUNNING),  # the workspace is gone
        (None, run_view(outcome=RunOutcome.TESTS_FAILED), Phase.AGENT, Effect.NONE, Stage.FAILED),  # unrecorded
        (None, run_view(status="interrupted", outcome=None), Phase.AGENT, Effect.RUN, Stage.RUNNING),  # killed
        (None, None, Phase.ITERATING, Effect.RUN, Stage.RUNNING),  # feedback waits for the agent
    ],
)
def test_crash_recovery_choices(
    pr_state: PullRequestState | None, last: RunView | None, phase: Phase, effect: Effect, stage: Stage
) -> None:
    found = pr(pr_state) if pr_state else None
    decision = lifecycle.recover(view(phase=phase), found, last)
    assert (decision.effect, decision.stage) == (effect, stage)


def test_transient_errors_are_retried_with_backoff_then_fail_with_the_fix() -> None:
    error = CodeHostError("503", fix="wait for the host", transient=True)
    first = lifecycle.publish_failed(view(phase=Phase.PUBLISHING), error, POLICY, NOW)
    assert first.stage is Stage.RUNNING and first.fields["retry_at"] == NOW  # next cycle
    assert "attempt 1 of 4" in first.reason
    third = lifecycle.publish_failed(view(phase=Phase.PUBLISHING, publish_attempts=2), error, POLICY, NOW)
    assert third.fields["retry_at"] == NOW + timedelta(seconds=60) and "in 60 s" in third.reason
    last = lifecycle.publish_failed(view(phase=Phase.PUBLISHING, publish_attempts=3), error, POLICY, NOW)
    assert last.stage is Stage.FAILED and "wait for the host" in last.reason
    denied = CodeHostError("403", fix="give the token push rights", transient=False)
    assert lifecycle.workspace_unavailable(view(), denied, POLICY, NOW).stage is Stage.FAILED
    assert lifecycle.workspace_unavailable(view(), error, POLICY, NOW).phase is Phase.AGENT


def test_a_retry_waits_for_its_time() -> None:
    assert lifecycle.due(view(retry_at=None), NOW)
    assert not lifecycle.due(view(retry_at=NOW + timedelta(seconds=1)), NOW)
    assert [POLICY.delay(n) for n in (1, 2, 3, 4)] == [0, 30, 60, 120]


def test_failing_ci_makes_an_iterating_decision_with_the_feedback() -> None:
    failing = pr(checks=ChecksState.FAILING, head_sha="h2", feedback=["test_x failed"])
    d = lifecycle.pull_request_decision(failing, view(Stage.REVIEW, None, iterated_sha="h1"), max_iterations=2,
                                        iterated_feedback=None)
    assert d is not None and d.stage is Stage.RUNNING and d.phase is Phase.ITERATING
    assert d.fields["iterations"] == 1 and "test_x failed" in str(d.fields["feedback_json"])
    same = pr(head_sha="h1")
    unchanged = view(Stage.REVIEW, None, pr_state=PullRequestState.OPEN, reason="the pull request is open")
    assert lifecycle.pull_request_decision(same, unchanged, max_iterations=2, iterated_feedback=None) is None


@pytest.mark.parametrize(
    ("limit", "open_reviews", "held"),
    [(1, 0, False), (1, 1, True), (2, 1, False), (2, 3, True)],
)
def test_review_capacity_holds_a_queued_ticket_while_the_repository_is_full(
    limit: int, open_reviews: int, held: bool
) -> None:
    view = TicketView(ref="PAY-1", stage=Stage.QUEUED, phase=None)
    decision = lifecycle.review_capacity(view, "web", limit, open_reviews)
    assert (decision is not None) is held
    if decision is not None:
        assert decision.stage is Stage.QUEUED and decision.effect is Effect.NONE
        assert f"max_open_reviews = {limit}" in decision.reason and "web" in decision.reason


@pytest.mark.parametrize(
    ("choices", "expected"),
    [(("api", "web"), "Choices: api, web; label it `repo:api`"), ((), "Choices: none (add a [[repos]] entry)")],
)
def test_unrouted_declines_with_the_choices(choices: tuple[str, ...], expected: str) -> None:
    decision = lifecycle.unrouted("the label 'repo:x' names the repository 'x', which is not configured", choices)
    assert decision.stage is Stage.DECLINED and decision.effect is Effect.NONE
    assert expected in decision.reason


def _comment(cid: str, author: str, body: str, mine: bool = False) -> PullRequestComment:
    return PullRequestComment(cid, author, body, mine)


@pytest.mark.parametrize(
    ("comments", "handled", "allowed", "iterations", "iterates", "marked"),
    [
        ([_comment("1", "alice", "@tracker-bridge add a test")], set(), ["alice"], 0, True, ("1",)),
        ([_comment("1", "alice", "@Tracker-Bridge add a test")], set(), [], 0, True, ("1",)),  # anyone when empty
        ([_comment("1", "eve", "@tracker-bridge delete it")], set(), ["alice"], 0, False, ("1",)),  # not allowed
        ([_comment("1", "alice", "looks good")], set(), ["alice"], 0, False, ()),  # no mention
        ([_comment("1", "alice", "@tracker-bridge add a test")], {"1"}, ["alice"], 0, False, ()),  # handled before
        ([_comment("1", "bot", "@tracker-bridge said so", mine=True)], set(), [], 0, False, ()),  # our own
        ([_comment("1", "x", "<!-- tracker-bridge:status --> @tracker-bridge")], set(), [], 0, False, ()),
        ([_comment("1", "alice", "@tracker-bridge more")], set(), ["alice"], 2, False, ("1",)),  # iterations used
    ],
)
def test_follow_up_comments(
    comments: list[PullRequestComment],
    handled: set[str],
    allowed: list[str],
    iterations: int,
    iterates: bool,
    marked: tuple[str, ...],
) -> None:
    view = TicketView(ref="PAY-1", stage=Stage.REVIEW, phase=None, iterations=iterations)
    out = lifecycle.follow_up(
        view, pr(head_sha="abc"), comments, handled=handled, mention="@tracker-bridge", allowed_actors=allowed,
        max_iterations=2,
    )
    assert out.handled == marked
    assert (out.decision is not None and out.decision.stage is Stage.RUNNING) is iterates
    if iterates:
        assert out.decision is not None and out.decision.phase is Phase.ITERATING
        assert out.decision.fields["iterations"] == iterations + 1
        assert comments[0].body in str(out.decision.fields["feedback_json"])
    if iterations >= 2 and marked:
        assert out.decision is not None and "used its 2 iteration(s)" in out.decision.reason


def test_follow_up_waits_while_the_ticket_is_not_in_review() -> None:
    view = TicketView(ref="PAY-1", stage=Stage.RUNNING, phase=Phase.AGENT)
    out = lifecycle.follow_up(
        view, pr(), [_comment("1", "alice", "@tracker-bridge go")], handled=set(), mention="@tracker-bridge",
        allowed_actors=[], max_iterations=2,
    )
    assert out.decision is None and out.handled == ()  # read again once the ticket is back in review
# --- the approval workflow (issue 15) ----------------------------------------------------------------------------

SCORED = {"threshold": 0.6, "repo": "app", "known_repos": ["app"]}


@pytest.mark.parametrize(
    ("value", "approval_threshold", "stage", "phase", "words"),
    [
        (0.70, 0.45, Stage.QUEUED, None, "at or above the threshold"),
        (0.60, 0.45, Stage.QUEUED, None, "at or above the threshold"),
        (0.50, 0.45, Stage.RUNNING, Phase.PLANNING, "writes a plan"),
        (0.45, 0.45, Stage.RUNNING, Phase.PLANNING, "between the approval threshold 0.45 and the threshold 0.60"),
        (0.44, 0.45, Stage.DECLINED, None, "below the threshold"),
        (0.50, None, Stage.DECLINED, None, "below the threshold"),  # unset: the feature is off
        (0.50, 0.60, Stage.DECLINED, None, "below the threshold"),  # approval_threshold >= threshold: off
        (0.50, 0.70, Stage.DECLINED, None, "below the threshold"),
    ],
)
def test_a_mid_score_is_planned_not_declined(
    value: float, approval_threshold: float | None, stage: Stage, phase: Phase | None, words: str
) -> None:
    d = lifecycle.scored(accepted=value >= 0.6, value=value, approval_threshold=approval_threshold, **SCORED)  # type: ignore[arg-type]
    assert (d.stage, d.phase, d.effect) == (stage, phase, Effect.NONE)
    assert words in d.reason


def test_a_planned_ticket_without_a_usable_repository_fails_like_an_accepted_one() -> None:
    d = lifecycle.scored(accepted=False, value=0.5, threshold=0.6, repo="other", known_repos=["app"],
                         approval_threshold=0.45)  # fmt: skip
    assert d.stage is Stage.FAILED and "not configured" in d.reason


def test_a_plan_run_is_taken_and_recovered_as_a_plan_run() -> None:
    view = TicketView(ref="PAY-1", stage=Stage.RUNNING, phase=Phase.PLANNING, reason="planning")
    taken = lifecycle.take(view)
    assert (taken.stage, taken.phase, taken.effect) == (Stage.RUNNING, Phase.PLANNING, Effect.RUN)
    # After a crash: never published or adopted, even with a finished run or an open pull request of an earlier try.
    last = RunView(status="finished", outcome=RunOutcome.SUCCEEDED, reason="", commit_sha="abc", workspace_ready=True)
    recovered = lifecycle.recover(view, pr(), last)
    assert (recovered.phase, recovered.effect) == (Phase.PLANNING, Effect.RUN)
    # A code host outage while cloning retries the plan run, not a full run.
    now = datetime(2026, 1, 1)
    d = lifecycle.workspace_unavailable(view, CodeHostError("503"), lifecycle.RetryPolicy(), now)
    assert d.phase is Phase.PLANNING


@pytest.mark.parametrize(
    ("outcome", "plan", "stage", "words"),
    [
        (RunOutcome.SUCCEEDED, "## Files to touch\n- app.py", Stage.AWAITING_APPROVAL, "add the label `ok-go`"),
        (RunOutcome.CAP_REACHED, "## Approach\nhalf a plan", Stage.AWAITING_APPROVAL, "comment `@bot approve`"),
        (RunOutcome.NO_CHANGES, "", Stage.FAILED, "the agent wrote no plan: it wrote nothing"),
        (RunOutcome.CAP_REACHED, "  ", Stage.FAILED, "the agent wrote no plan: cost cap"),
    ],
)
def test_a_plan_run_awaits_approval_only_with_a_plan(outcome: RunOutcome, plan: str, stage: Stage, words: str) -> None:
    reason = {RunOutcome.NO_CHANGES: "it wrote nothing", RunOutcome.CAP_REACHED: "cost cap"}.get(outcome, "")
    d = lifecycle.plan_finished(outcome, plan, reason, approve_label="ok-go", mention="@bot")
    assert d.stage is stage and words in d.reason


def test_approvals_apply_for_allowed_actors_and_each_is_used_once() -> None:
    label = lifecycle.Approval("label:7:alice", "label", "alice")
    mallory = lifecycle.Approval("comment:2-ab", "comment", "mallory")
    assert lifecycle.approval_decision([], set(), []) is None
    # Nobody is listed: anyone who can label may approve.
    d, used = lifecycle.approval_decision([mallory], set(), [])  # type: ignore[misc]
    assert d.stage is Stage.QUEUED and used is mallory and "approved by mallory (comment)" in d.reason
    # Listed people only, compared without case; someone else's approval is refused and named.
    d, used = lifecycle.approval_decision([mallory, label], set(), ["Alice"])  # type: ignore[misc]
    assert d.stage is Stage.AWAITING_APPROVAL and used is mallory
    assert "by mallory (comment) was ignored" in d.reason and "allowed_actors" in d.reason
    d, used = lifecycle.approval_decision([mallory, label], {mallory.key}, ["Alice"])  # type: ignore[misc]
    assert d.stage is Stage.QUEUED and used is label
    # Used approvals never count again; an approver the tracker cannot name is refused when people are listed.
    assert lifecycle.approval_decision([mallory, label], {mallory.key, label.key}, ["alice"]) is None
    unknown = lifecycle.Approval("label:7:", "label", None)
    d, _ = lifecycle.approval_decision([unknown], set(), ["alice"])  # type: ignore[misc]
    assert d.stage is Stage.AWAITING_APPROVAL and "an unknown person" in d.reason


def test_a_ticket_awaiting_approval_waits_and_is_cancelled_when_its_trigger_goes() -> None:
    # Adding the approval label changes the ticket's content: that is no reason to score and plan it again.
    approved = ticket(labels=("agent-ready", "agent-approved"))
    assert poll(Stage.AWAITING_APPROVAL, approved, changed=True) is PollAction.NOTHING
    assert poll(Stage.AWAITING_APPROVAL, ticket(labels=()), changed=True) is PollAction.CANCEL


def test_the_awaiting_approval_column_is_optional() -> None:
    assert lifecycle.column_for(Stage.AWAITING_APPROVAL, StagesConfig()) is None
    configured = StagesConfig(awaiting_approval="Needs Approval")
    assert lifecycle.column_for(Stage.AWAITING_APPROVAL, configured) == "Needs Approval"
    assert "awaiting_approval" not in StagesConfig().as_mapping()
    assert configured.as_mapping()["awaiting_approval"] == "Needs Approval"


def test_a_card_is_not_moved_while_its_plan_is_written() -> None:
    assert lifecycle.column_for(Stage.RUNNING, StagesConfig(), Phase.PLANNING) is None
    assert lifecycle.column_for(Stage.RUNNING, StagesConfig(), Phase.AGENT) == "In Progress"
# --- issue 13: a ticket at work taken away by a person; operator retry; transient agent failures ------------------

AGENT_COLUMNS = ["Agent", "Agent", "In Progress"]


@pytest.mark.parametrize(
    ("labels", "column", "closed", "via", "applied", "expected"),
    [
        (("agent-ready",), "In Progress", False, "label", "In Progress", None),
        (("Agent-Ready ",), "in progress", False, "label", "In Progress", None),  # case and spaces never matter
        (("agent-ready",), "Done", False, "label", "In Progress", "a person moved the card to 'Done'"),
        (("agent-ready",), "Backlog", False, "label", None, None),  # the daemon has not moved the card yet
        (("agent-ready",), "Agent", False, "label", "In Progress", None),  # still one of the agent's columns
        ((), "In Progress", False, "label", "In Progress", "a person removed the label 'agent-ready'"),
        ((), "Agent", False, "column", "Agent", None),  # column-triggered: the label never mattered
        ((), "Backlog", False, "column", None, "a person moved the card out of 'Agent' to 'Backlog'"),
        (("agent-ready",), "In Progress", True, "label", "In Progress", "a person closed the ticket"),
    ],
)
def test_left_the_agent(
    labels: tuple[str, ...], column: str, closed: bool, via: str, applied: str | None, expected: str | None
) -> None:
    t = ticket(labels, column).model_copy(update={"closed": closed})
    assert lifecycle.left_the_agent(t, TRIGGER, via, applied, AGENT_COLUMNS) == expected


@pytest.mark.parametrize(
    ("column", "applied", "expected"),
    [
        ("Done", None, "a person moved the card to 'Done'"),  # a plan under way: the daemon placed nothing
        (" done", None, "a person moved the card to ' done'"),
        ("Backlog", None, None),  # a label-triggered card may sit anywhere while its plan is written
        ("Needs Refinement", None, None),  # e.g. declined before, improved and re-labelled: not a stop
    ],
)
def test_a_card_the_daemon_did_not_place_leaves_the_agent_only_for_done(
    column: str, applied: str | None, expected: str | None
) -> None:
    t = ticket(("agent-ready",), column)
    assert lifecycle.left_the_agent(t, TRIGGER, "label", applied, AGENT_COLUMNS, "Done") == expected


def test_a_deleted_ticket_has_left_the_agent() -> None:
    assert lifecycle.left_the_agent(None, TRIGGER, "label", "In Progress", AGENT_COLUMNS) == (
        "a person deleted the ticket"
    )


def test_a_closed_ticket_is_no_longer_triggered_even_with_its_label() -> None:
    closed = ticket().model_copy(update={"closed": True})
    assert lifecycle.still_triggered(ticket(), TRIGGER, "label")
    assert not lifecycle.still_triggered(closed, TRIGGER, "label")


def test_stopping_cancels_and_says_nothing_was_proposed() -> None:
    d = lifecycle.stop_requested("alice", running=True)
    assert d.stage is Stage.CANCELLED and d.effect is Effect.NONE
    assert d.reason == "stopped by alice; the agent was stopped and nothing was pushed or proposed"
    assert lifecycle.column_for(d.stage, StagesConfig()) is None  # the card is left where it is


@pytest.mark.parametrize(
    ("stage", "queued"),
    [(Stage.FAILED, True), (Stage.DECLINED, True), (Stage.CANCELLED, True), (Stage.RUNNING, False),
     (Stage.QUEUED, False), (Stage.REVIEW, False), (Stage.DONE, False)],
)  # fmt: skip
def test_retry_requested(stage: Stage, queued: bool) -> None:
    d = lifecycle.retry_requested(TicketView("PAY-1", stage, None, retry_attempts=3), "bob")
    if not queued:
        assert d is None
        return
    assert d is not None and d.stage is Stage.QUEUED and d.reason == "retried by bob"
    assert d.fields["retry_attempts"] == 0


@pytest.mark.parametrize(
    ("failures_before", "max_attempts", "stage", "delay_s"),
    [(0, 3, Stage.RUNNING, 30), (1, 3, Stage.RUNNING, 60), (2, 3, Stage.FAILED, None), (0, 1, Stage.FAILED, None)],
)
def test_agent_interrupted(failures_before: int, max_attempts: int, stage: Stage, delay_s: float | None) -> None:
    now = datetime(2026, 1, 5, 9, 0, 0)
    view = TicketView("PAY-1", Stage.RUNNING, Phase.AGENT, retry_attempts=failures_before)
    d = lifecycle.agent_interrupted(view, RunOutcome.API_ERROR, "529 overloaded", max_attempts=max_attempts,
                                    backoff_s=30, now=now)  # fmt: skip
    assert d.stage is stage and d.fields["retry_attempts"] == failures_before + 1
    if delay_s is None:
        assert f"gave up after {failures_before + 1} attempt(s)" in d.reason
    else:
        assert d.fields["retry_at"] == now + timedelta(seconds=delay_s) and d.phase is Phase.AGENT
        assert f"attempt {failures_before + 2} of {max_attempts}" in d.reason


def test_a_run_cut_short_by_the_api_is_taken_again_after_a_restart() -> None:
    view = TicketView("PAY-1", Stage.RUNNING, Phase.AGENT, retry_attempts=1)
    last = RunView(status="finished", outcome=RunOutcome.STALLED, reason="stalled", commit_sha=None,
                   workspace_ready=True)  # fmt: skip
    assert lifecycle.recover(view, None, last).effect is Effect.RUN
