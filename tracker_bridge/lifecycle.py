"""The journey of a ticket as pure functions: what the next stage is, given what the tracker, the store and the
pull request show now. No I/O here: every rule is a plain unit test, and the engine only carries decisions out.

    seen -> scored -> queued -> running -> review -> done
    exits: declined (score under threshold), failed (run failed, cap hit, PR closed unmerged),
           cancelled (a person removed the trigger while the ticket waited)
    approval (issue 15): a score between `approval_threshold` and `threshold` goes
           running/planning (a read-only plan run) -> awaiting_approval -> queued once a person approves the plan

Like a Kubernetes controller, the engine observes, asks a function here for a `Decision` (next stage, sub-state,
reason, the fields written with it, the next effect) and applies it in one place (`Engine._apply`). So every
stage change, including the failure paths (actor refused, no repository, budget spent, crash recovery, a run
that crashed, a publish or a card move that failed) is a rule with a table test, not a branch in the engine.
`running` has three sub-states (`models.Phase`): the agent at work, a finished change being published, and
feedback waiting for the next iteration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from tracker_bridge.config import StagesConfig
from tracker_bridge.models import (
    ChecksState,
    Phase,
    PullRequest,
    PullRequestState,
    ReviewState,
    RunOutcome,
    Stage,
    Ticket,
    TicketFields,
)
from tracker_bridge.protocols import STATUS_MARKER, PullRequestComment, RemoteError, Trigger, same_name

MAX_RETRY_DELAY_S = 1800.0


class Effect(StrEnum):
    """The side effect the engine performs after writing a decision (the board is always converged too)."""

    NONE = "none"
    RUN = "run"  # start (or restart) the agent
    PUBLISH = "publish"  # push the finished run's commit and open or find the pull request
    ADOPT_PR = "adopt_pr"  # a pull request for the branch exists already: link it and go to review


@dataclass(frozen=True)
class Decision:
    """What to write (stage, phase, reason and `fields`, in one store write) and which effect follows."""

    stage: Stage
    reason: str
    phase: Phase | None = None
    fields: TicketFields = field(default_factory=lambda: TicketFields())
    effect: Effect = Effect.NONE


@dataclass(frozen=True)
class RunView:
    """The last run of a ticket as the store knows it."""

    status: str  # running | finished | interrupted
    outcome: RunOutcome | None
    reason: str
    commit_sha: str | None
    workspace_ready: bool  # the committed workspace is still on disk


@dataclass(frozen=True)
class TicketView:
    """A frozen view of what the store knows of a ticket, for the rules below."""

    ref: str
    stage: Stage
    phase: Phase | None
    reason: str = ""
    pr_id: str | None = None
    pr_state: PullRequestState | None = None
    iterations: int = 0
    publish_attempts: int = 0
    retry_attempts: int = 0
    retry_at: datetime | None = None
    iterated_sha: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures are retried across cycles: the first retry on the next cycle, then with doubling delays
    (`backoff_s`, 2x, 4x, ... up to 30 minutes) until `attempts` failures in all."""

    attempts: int = 8
    backoff_s: float = 30.0

    def delay(self, failures: int) -> float:
        if failures <= 1:
            return 0.0
        return float(min(MAX_RETRY_DELAY_S, self.backoff_s * 2.0 ** (failures - 2)))


class PollAction(StrEnum):
    NOTHING = "nothing"
    EVALUATE = "evaluate"  # check who triggered it, score it, queue or decline it
    CANCEL = "cancel"


def trigger_via(ticket: Ticket, trigger: Trigger) -> str | None:
    """How the ticket is triggered now: by its label, by its column, or not at all."""
    if trigger.has_label(ticket.labels):
        return "label"
    if trigger.in_column(ticket.column):
        return "column"
    return None


def still_triggered(ticket: Ticket, trigger: Trigger, via: str | None) -> bool:
    """Is the trigger that started this ticket still there? A queued card sits in the trigger column because the
    daemon put it there, so a label-triggered ticket is cancelled by removing the label, not by its column."""
    if ticket.closed:
        return False  # a person closed it: a label left on a closed ticket triggers nothing
    if via == "column":
        return trigger.in_column(ticket.column)
    return trigger.has_label(ticket.labels)


def on_poll(
    *,
    stage: Stage | None,
    ticket: Ticket,
    trigger: Trigger,
    via: str | None,
    content_changed: bool,
    column_applied: str | None,
) -> PollAction:
    """What to do with a ticket the tracker shows now."""
    now_via = trigger_via(ticket, trigger)
    if stage is None:
        return PollAction.EVALUATE if now_via else PollAction.NOTHING
    if stage is Stage.SEEN:
        # Seen but not taken (e.g. triggered by someone not allowed): look again when it changes.
        return PollAction.EVALUATE if now_via and content_changed else PollAction.NOTHING
    if stage is Stage.QUEUED:
        return PollAction.NOTHING if still_triggered(ticket, trigger, via) else PollAction.CANCEL
    if stage is Stage.AWAITING_APPROVAL:
        # Approvals are read by the engine each cycle (`approval_decision`); adding the approval label changes the
        # content hash, so a change here is no reason to plan again. Removing the trigger withdraws the request.
        return PollAction.NOTHING if still_triggered(ticket, trigger, via) else PollAction.CANCEL
    if stage is Stage.DECLINED and now_via and content_changed:
        # The ticket was improved (acceptance criteria added, function named): score it again.
        return PollAction.EVALUATE
    if stage in (Stage.DECLINED, Stage.FAILED, Stage.CANCELLED):
        # A person dragged the card back into the trigger column: that is a request to try again.
        moved_back = trigger.in_column(ticket.column) and not trigger.in_column(column_applied)
        if moved_back or (stage is Stage.CANCELLED and now_via == "label" and content_changed):
            return PollAction.EVALUATE
    return PollAction.NOTHING


def after_score(accepted: bool) -> Stage:
    return Stage.QUEUED if accepted else Stage.DECLINED


def after_run(outcome: RunOutcome) -> Stage:
    """SUCCEEDED runs are published and go to review; everything else is a failure with its reason."""
    return Stage.REVIEW if outcome is RunOutcome.SUCCEEDED else Stage.FAILED


@dataclass(frozen=True)
class PullRequestDecision:
    stage: Stage
    reason: str = ""
    iterate: bool = False
    feedback: list[str] = field(default_factory=list)


def on_pull_request(
    pr: PullRequest,
    *,
    stage: Stage,
    iterations: int,
    max_iterations: int,
    iterated_sha: str | None,
    iterated_feedback: Sequence[str] | None = None,
    conflict_files: Sequence[str] = (),
) -> PullRequestDecision:
    """Keep the board true to the pull request's real state.

    `iterated_sha` is the head the last iteration was started for, `iterated_feedback` the feedback it was given
    (None before any iteration). Checks belong to a commit, so a failure on a newer head is new; a review requesting
    changes stays on the pull request until the reviewer reviews again, so once an iteration has answered it, only
    feedback the agent has not been given yet is a new request (a reviewer's new review, or a new review comment).

    A pull request that no longer merges into its base (`pr.conflicts`; `conflict_files` as the daemon's dry-run
    merge found them) comes first: checks and reviews of a branch that cannot merge are moot. Its iteration merges
    the base into the branch and the agent resolves the conflicts; a conflict left on the head that iteration
    pushed (or one with no iteration left) goes to a person, the files named.
    """
    if pr.state is PullRequestState.MERGED:
        return PullRequestDecision(Stage.DONE, "the pull request was merged")
    if pr.state is PullRequestState.CLOSED:
        return PullRequestDecision(Stage.FAILED, "the pull request was closed without merging")
    new_head = pr.head_sha != iterated_sha
    if pr.conflicts and new_head and stage is Stage.REVIEW:
        return _conflicted(pr, conflict_files, iterations, max_iterations)
    ci_failed = pr.checks is ChecksState.FAILING and new_head
    answered = iterated_feedback is not None and set(pr.feedback) <= set(iterated_feedback)
    changes_requested = pr.review is ReviewState.CHANGES_REQUESTED and new_head and not answered
    if (ci_failed or changes_requested) and stage is Stage.REVIEW:
        what = "CI failed" if ci_failed else "a reviewer requested changes"
        if iterations < max_iterations:
            return PullRequestDecision(
                Stage.RUNNING, f"{what}: the agent takes another iteration", iterate=True, feedback=pr.feedback
            )
        return PullRequestDecision(
            Stage.FAILED, f"{what} and the agent has used its {max_iterations} iteration(s): a person should take over"
        )
    if stage is Stage.FAILED:
        return PullRequestDecision(Stage.FAILED)  # open PR on a failed ticket: wait for a person to merge or close
    return PullRequestDecision(Stage.REVIEW)


MAX_LISTED = 20  # conflicting files named in a status comment or a prompt; the rest are counted


def listed(files: Sequence[str]) -> str:
    """`a.py`, `b.py` and 3 more, for a comment or a prompt."""
    if not files:
        return "files the daemon could not determine"
    shown = ", ".join(f"`{f}`" for f in files[:MAX_LISTED])
    more = len(files) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


# How the feedback of a conflict iteration begins: the run merges the base into the branch first (agents/pipeline).
CONFLICT_FEEDBACK = "merge conflict"


def asks_merge(feedback: Sequence[str]) -> bool:
    """Is this iteration's feedback a conflict to resolve (so the run starts by merging the base)?"""
    return any(line.startswith(CONFLICT_FEEDBACK + ":") for line in feedback)


def conflict_feedback(base: str, files: Sequence[str]) -> str:
    """The feedback line of a conflict iteration: what the agent is asked, with the files (data, not orders)."""
    return (
        f"{CONFLICT_FEEDBACK}: the base branch `{base}` moved and the pull request no longer merges into it; "
        f"conflicting files: {listed(files)}. tracker-bridge has merged `{base}` into your branch: resolve "
        "every conflict (remove all <<<<<<< ======= >>>>>>> markers, keeping the intent of both sides) so that "
        "the tests pass"
    )


def _conflicted(
    pr: PullRequest, files: Sequence[str], iterations: int, max_iterations: int
) -> PullRequestDecision:
    """Another iteration to merge the base and resolve the conflicts, or a person. The feedback the pull request
    still carries goes along, so a review the iteration also answers is not asked again."""
    if iterations < max_iterations:
        return PullRequestDecision(
            Stage.RUNNING,
            f"the pull request no longer merges into `{pr.base}` (conflicts in {listed(files)}): the agent "
            "takes another iteration to merge the base and resolve them",
            iterate=True,
            feedback=[conflict_feedback(pr.base, files), *pr.feedback],
        )
    return PullRequestDecision(
        Stage.FAILED,
        f"the pull request no longer merges into `{pr.base}`: conflicts in {listed(files)}, and the agent "
        f"has used its {max_iterations} iteration(s): a person should resolve them (merge `{pr.base}` into the "
        "branch) or close the pull request",
    )


def column_for(stage: Stage, stages: StagesConfig, phase: Phase | None = None) -> str | None:
    """The board column a stage maps to; None where the daemon leaves the card where it is (also while a plan is
    written: the card shows work under way only once a person approved it)."""
    if phase is Phase.PLANNING:
        return None
    mapping = {
        Stage.QUEUED: stages.queued,
        Stage.RUNNING: stages.running,
        Stage.REVIEW: stages.review,
        Stage.DONE: stages.done,
        Stage.DECLINED: stages.declined,
        Stage.FAILED: stages.failed,
        Stage.AWAITING_APPROVAL: stages.awaiting_approval,
    }
    return mapping.get(stage)


def follows_pull_request(stage: Stage, pr_state: str | None) -> bool:
    """Tickets whose pull request the engine keeps watching each cycle."""
    return stage is Stage.REVIEW or (stage is Stage.FAILED and pr_state == PullRequestState.OPEN.value)


# --- decisions: every stage change the engine makes ----------------------------------------------------------------

TRIGGER_REMOVED = "the trigger was removed before the agent started"


def trigger_removed() -> Decision:
    return Decision(Stage.CANCELLED, TRIGGER_REMOVED)


def actor_refused(actor: str | None) -> Decision:
    who = actor or "an unknown person"
    return Decision(
        Stage.SEEN,
        f"the trigger was added by {who}, who may not hand tickets to the agent "
        "(not listed in [trigger] allowed_actors, or without the permission the tracker requires); "
        "ask one of the allowed people to add it",
    )


def scored(
    *,
    accepted: bool,
    value: float,
    threshold: float,
    repo: str | None,
    known_repos: Sequence[str],
    approval_threshold: float | None = None,
) -> Decision:
    """Queue, plan or decline a scored ticket; a ticket to work on with no usable repository fails with the fix.

    A score in [approval_threshold, threshold) is planned: the agent writes a plan a person approves (issue 15)."""
    planned = not accepted and needs_approval(value, threshold, approval_threshold)
    if not accepted and not planned:
        return Decision(Stage.DECLINED, f"score {value:.2f} is below the threshold {threshold:.2f}")
    if repo is None:
        return Decision(Stage.FAILED, "no repository is configured for this ticket: set `repo` on its tracker")
    if repo not in known_repos:
        listed = ", ".join(repr(r) for r in known_repos) or "none"
        return Decision(
            Stage.FAILED,
            f"the ticket names the repository {repo!r}, which is not configured; configured repositories: "
            f"{listed}. Set `repo` on the ticket to one of them (or add a [[repos]] entry)",
        )
    if planned:
        assert approval_threshold is not None
        return plan_requested(value, threshold, approval_threshold)
    return Decision(Stage.QUEUED, f"score {value:.2f} is at or above the threshold {threshold:.2f}")


def unrouted(problem: str, choices: Sequence[str]) -> Decision:
    """A ticket no routing rule sends to a configured repository is declined with the choices (never guessed at):
    a person adds a `repo:<name>` label or a `[repo=<name>]` tag and the changed ticket is evaluated again."""
    listed = ", ".join(choices) or "none (add a [[repos]] entry)"
    hint = f"label it `repo:{choices[0]}` (or write `[repo={choices[0]}]` in the description)" if choices else ""
    return Decision(
        Stage.DECLINED,
        f"no repository for this ticket: {problem}. Choices: {listed}" + (f"; {hint}" if hint else ""),
    )


def unroutable(error: str) -> Decision:
    """A ticket that could not be observed or evaluated: reported on the ticket, skipped, never fatal."""
    return Decision(Stage.FAILED, f"tracker-bridge could not process this ticket: {error}")


def budget_spent(view: TicketView, daily_budget_usd: float) -> Decision:
    """The agent waits for the budget; the ticket keeps its stage (a publish is never held back: see `recover`)."""
    return Decision(
        view.stage,
        f"the daily budget of ${daily_budget_usd:.2f} is spent; the agent takes this ticket when it renews",
        phase=view.phase,
    )


def review_capacity(view: TicketView, repo: str, limit: int, open_reviews: int) -> Decision | None:
    """`[bridge] max_open_reviews`: a queued ticket waits (stays queued, saying why) while `open_reviews` agent pull
    requests (or runs that will become one) await review on its repository; None when it may start."""
    if open_reviews < limit:
        return None
    return Decision(
        Stage.QUEUED,
        f"waiting for review capacity: {open_reviews} agent pull request(s) on {repo} await review or are being "
        f"prepared ([bridge] max_open_reviews = {limit}); the agent starts on this ticket when one is merged or "
        "closed",
    )


def take(view: TicketView) -> Decision:
    """The agent starts on a queued ticket, or on the feedback of an iteration."""
    reason = "the agent took the ticket" if view.stage is Stage.QUEUED else view.reason
    if view.phase is Phase.PLANNING:  # a plan run keeps its phase: it is started read-only, under the plan cap
        return Decision(Stage.RUNNING, view.reason, phase=Phase.PLANNING, effect=Effect.RUN)
    return Decision(Stage.RUNNING, reason, phase=Phase.AGENT, effect=Effect.RUN)


def due(view: TicketView, now: datetime) -> bool:
    """A ticket waiting out a retry delay is left alone until its time comes."""
    return view.retry_at is None or view.retry_at <= now


def recover(view: TicketView, pr: PullRequest | None, last: RunView | None) -> Decision:
    """A `running` ticket with no run under way: after a crash, a publish to retry, an iteration to start."""
    if view.phase is Phase.PLANNING:
        return take(view)  # a plan run publishes nothing and adopts nothing: it is simply run again
    if view.pr_id is None and pr is not None and pr.state is PullRequestState.OPEN:
        # The pull request was opened before the crash: adopt it instead of running the agent again.
        return Decision(Stage.RUNNING, view.reason, phase=Phase.PUBLISHING, effect=Effect.ADOPT_PR)
    publishable = (
        last is not None
        and last.status == "finished"
        and last.outcome is RunOutcome.SUCCEEDED
        and bool(last.commit_sha)
        and last.workspace_ready
    )
    if last is not None and publishable and (pr is None or pr.head_sha != last.commit_sha):
        # The run's commit is not on the pull request yet: publish it rather than run the agent again.
        return Decision(Stage.RUNNING, view.reason, phase=Phase.PUBLISHING, effect=Effect.PUBLISH)
    if last is not None and last.outcome in TRANSIENT_OUTCOMES:
        return take(view)  # an attempt the model API or a stall cut short, its retry now due: the agent goes again
    if (
        view.phase is not Phase.ITERATING
        and last is not None
        and last.status == "finished"
        and last.outcome is not RunOutcome.SUCCEEDED
    ):
        # The run ended before the crash but its verdict was not recorded on the ticket: record it now.
        return Decision(Stage.FAILED, last.reason or "the agent's run failed")
    return take(view)


def run_finished(outcome: RunOutcome, reason: str) -> Decision:
    """A SUCCEEDED run is published next (publish attempts counted from zero); anything else fails with why."""
    if outcome is RunOutcome.SUCCEEDED:
        return Decision(
            Stage.RUNNING,
            "the agent's change passes the tests; publishing it",
            phase=Phase.PUBLISHING,
            fields={"publish_attempts": 0, "retry_attempts": 0, "retry_at": None},
            effect=Effect.PUBLISH,
        )
    return Decision(after_run(outcome), reason)


def run_crashed(error: str) -> Decision:
    return Decision(Stage.FAILED, f"tracker-bridge hit an error during the run: {error}")


def _retry_note(policy: RetryPolicy, failures: int) -> str:
    delay = policy.delay(failures)
    when = "next cycle" if delay <= 0 else f"in {delay:.0f} s"
    return f"tracker-bridge tries again {when} (attempt {failures} of {policy.attempts})"


def workspace_unavailable(
    view: TicketView, error: RemoteError, policy: RetryPolicy, now: datetime
) -> Decision:
    """The code host could not be reached to clone the workspace: transient errors are retried with backoff."""
    failures = view.retry_attempts + 1
    if not error.transient or failures >= policy.attempts:
        return Decision(
            Stage.FAILED,
            f"the workspace could not be cloned from the code host: {error.explain()}",
            fields={"retry_attempts": failures, "retry_at": None},
        )
    return Decision(
        Stage.RUNNING,
        f"the code host could not be reached to prepare the workspace ({error}); {_retry_note(policy, failures)}",
        phase=Phase.PLANNING if view.phase is Phase.PLANNING else Phase.AGENT,
        fields={"retry_attempts": failures, "retry_at": now + timedelta(seconds=policy.delay(failures))},
    )


def publish_failed(view: TicketView, error: RemoteError, policy: RetryPolicy, now: datetime) -> Decision:
    """The change passed its tests but pushing or proposing it failed: an outage must not throw the work away."""
    failures = view.publish_attempts + 1
    if not error.transient or failures >= policy.attempts:
        return Decision(
            Stage.FAILED,
            f"the change could not be pushed or proposed: {error.explain()}",
            fields={"publish_attempts": failures, "retry_at": None},
        )
    return Decision(
        Stage.RUNNING,
        f"the change passes the tests but publishing it failed ({error}); {_retry_note(policy, failures)}",
        phase=Phase.PUBLISHING,
        fields={"publish_attempts": failures, "retry_at": now + timedelta(seconds=policy.delay(failures))},
    )


def published(iterations: int, max_iterations: int) -> Decision:
    reason = "the agent's change passes the tests; the pull request is open"
    if iterations:
        reason = (
            f"iteration {iterations} of {max_iterations}: the agent's change for the feedback on the pull request "
            "passes the tests and was pushed to the same pull request"
        )
    return Decision(Stage.REVIEW, reason, fields={"retry_attempts": 0, "retry_at": None})


def move_failed(stage: Stage, column: str, error: str) -> Decision | None:
    """A card that cannot be moved fails the ticket; a failed ticket has nowhere further to go (None: keep it)."""
    if stage is Stage.FAILED:
        return None
    return Decision(Stage.FAILED, f"tracker-bridge could not move the card to {column!r}: {error}")


def pull_request_decision(
    pr: PullRequest,
    view: TicketView,
    *,
    max_iterations: int,
    iterated_feedback: Sequence[str] | None,
    conflict_files: Sequence[str] = (),
) -> Decision | None:
    """The board follows the pull request: a new stage, another iteration, or None when nothing changes."""
    d = on_pull_request(
        pr,
        stage=view.stage,
        iterations=view.iterations,
        max_iterations=max_iterations,
        iterated_sha=view.iterated_sha,
        iterated_feedback=iterated_feedback,
        conflict_files=conflict_files,
    )
    fields: TicketFields = {"pr_state": pr.state, "pr_url": pr.url}
    if d.iterate:
        fields["iterations"] = view.iterations + 1
        fields["iterated_sha"] = pr.head_sha
        fields["feedback_json"] = json.dumps(d.feedback)
        return Decision(Stage.RUNNING, d.reason, phase=Phase.ITERATING, fields=fields)
    if d.stage is view.stage and (not d.reason or d.reason == view.reason) and pr.state is view.pr_state:
        return None
    return Decision(d.stage, d.reason or view.reason, fields=fields)


@dataclass(frozen=True)
class FollowUp:
    """What the comments on a pull request ask: the decision (an iteration, or None) and the comment ids now
    handled, remembered so that no comment ever triggers twice."""

    decision: Decision | None
    handled: tuple[str, ...] = ()


def follow_up(
    view: TicketView,
    pr: PullRequest,
    comments: Sequence[PullRequestComment],
    *,
    handled: set[str],
    mention: str,
    allowed_actors: Sequence[str],
    max_iterations: int,
) -> FollowUp:
    """A comment on the pull request or the ticket mentioning `mention` by an allowed person (anyone when
    `allowed_actors` is empty; never the daemon's own account or its status comment) starts one iteration on the
    same branch with the comment as its feedback. Every new mention is handled once, whoever wrote it: a refused
    one is not reconsidered later."""
    allowed = {a.lower() for a in allowed_actors}
    fresh = [
        c
        for c in comments
        if c.id not in handled and not c.mine and STATUS_MARKER not in c.body and mention.lower() in c.body.lower()
    ]
    if not fresh or view.stage is not Stage.REVIEW or pr.state is not PullRequestState.OPEN:
        return FollowUp(None)
    ids = tuple(c.id for c in fresh)
    asks = [c for c in fresh if not allowed or c.author.lower() in allowed]
    if not asks:
        return FollowUp(None, ids)
    if view.iterations >= max_iterations:
        return FollowUp(
            Decision(
                Stage.REVIEW,
                f"{asks[-1].author} asked the agent for a change, but it has used its {max_iterations} "
                "iteration(s): a person should take over",
            ),
            ids,
        )
    feedback = [*pr.feedback, *(f"{c.author} commented on the {c.on}: {c.body}" for c in asks)]
    fields: TicketFields = {
        "iterations": view.iterations + 1,
        "iterated_sha": pr.head_sha,
        "feedback_json": json.dumps(feedback),
    }
    reason = f"{asks[-1].author} asked for a change in a comment: the agent takes another iteration"
    return FollowUp(Decision(Stage.RUNNING, reason, phase=Phase.ITERATING, fields=fields), ids)


# --- the approval workflow (issue 15): plan mid-score tickets, run them once a person approves -----------------


def needs_approval(value: float, threshold: float, approval_threshold: float | None) -> bool:
    """A score under the threshold but at or above `approval_threshold` is planned, not declined. The feature is
    off when `approval_threshold` is unset or not below the threshold."""
    return approval_threshold is not None and approval_threshold < threshold and approval_threshold <= value < threshold


def plan_requested(value: float, threshold: float, approval_threshold: float) -> Decision:
    return Decision(
        Stage.RUNNING,
        f"score {value:.2f} is between the approval threshold {approval_threshold:.2f} and the threshold "
        f"{threshold:.2f}: the agent writes a plan (read-only) for a person to approve",
        phase=Phase.PLANNING,
    )


@dataclass(frozen=True)
class Approval:
    """One approval seen on a ticket: `key` identifies it so that it is used once (by label: per plan and person;
    by comment: the comment)."""

    key: str
    via: str  # label | comment
    actor: str | None


def plan_finished(outcome: RunOutcome, plan: str, reason: str, *, approve_label: str, mention: str) -> Decision:
    """A plan run that wrote a plan awaits approval; one that did not fails with why (nothing was changed)."""
    if plan.strip():
        return Decision(
            Stage.AWAITING_APPROVAL,
            f"the agent wrote a plan (below); to let it carry the plan out, add the label `{approve_label}` or "
            f"comment `{mention} approve`",
        )
    why = reason or f"the plan run ended with `{outcome.value}`"
    return Decision(Stage.FAILED, f"the agent wrote no plan: {why}")


def approval_decision(
    approvals: Sequence[Approval], used: set[str], allowed_actors: Sequence[str]
) -> tuple[Decision, Approval] | None:
    """The first approval not used yet: an allowed person's queues the ticket (the run gets the plan), anyone
    else's is refused with who and why (and counts as used: it is reported once). None when there is none."""
    allowed = {a.lower() for a in allowed_actors}
    for approval in approvals:
        if approval.key in used:
            continue
        by = approval.actor or "an unknown person"
        if allowed and (approval.actor is None or approval.actor.lower() not in allowed):
            return Decision(
                Stage.AWAITING_APPROVAL,
                f"an approval by {by} ({approval.via}) was ignored: only the people listed in [trigger] "
                "allowed_actors may approve a plan; ask one of them to approve it",
            ), approval
        return Decision(
            Stage.QUEUED, f"the plan was approved by {by} ({approval.via}): the agent carries it out"
        ), approval
    return None


# --- the board moved under a ticket at work; operator controls; transient agent failures (issue 13) ---------------

# Outcomes that are no verdict on the agent's work: the attempt is retried with backoff up to [agent] max_attempts.
TRANSIENT_OUTCOMES = frozenset({RunOutcome.API_ERROR, RunOutcome.STALLED})


def left_the_agent(
    ticket: Ticket | None,
    trigger: Trigger,
    via: str | None,
    column_applied: str | None,
    agent_columns: Sequence[str],
    done_column: str | None = None,
) -> str | None:
    """Why a ticket at work (queued, planning, running or awaiting approval) must stop because a person took it
    away, or None.

    `ticket` is None when the tracker says it no longer exists. A column counts only once the daemon has put the
    card somewhere (`column_applied`) and the card is now elsewhere, outside the agent's columns (trigger, queued,
    running): the daemon's own move in flight is no person's decision. A label-triggered card the daemon has not
    placed (a plan being written leaves it where it is) could sit in any column, so only one move says "stop"
    there: to the `done_column`.
    """
    if ticket is None:
        return "a person deleted the ticket"
    if ticket.closed:
        return "a person closed the ticket"
    if via != "column" and not trigger.has_label(ticket.labels):
        return f"a person removed the label {trigger.label!r}"
    if via == "column" and column_applied is None and not trigger.in_column(ticket.column):
        return f"a person moved the card out of {trigger.column!r} to {ticket.column!r}"
    if column_applied is None and done_column is not None and same_name(ticket.column or "", done_column):
        return f"a person moved the card to {ticket.column!r}"
    moved = ticket.column is not None and column_applied is not None and not same_name(ticket.column, column_applied)
    if moved and not any(same_name(ticket.column, c) for c in agent_columns):
        return f"a person moved the card to {ticket.column!r}"
    return None


def stopped(reason: str, *, running: bool) -> Decision:
    """The agent is stopped (or never starts): the card stays where the person put it, nothing is proposed."""
    what = "the agent was stopped" if running else "the agent will not take it"
    return Decision(Stage.CANCELLED, f"{reason}; {what} and nothing was pushed or proposed")


def stop_requested(who: str, *, running: bool) -> Decision:
    return stopped(f"stopped by {who}", running=running)


RETRYABLE = (Stage.FAILED, Stage.DECLINED, Stage.CANCELLED)


def retry_requested(view: TicketView, who: str) -> Decision | None:
    """`tracker-bridge retry REF`: a failed, declined or cancelled ticket goes straight back to the queue (no new
    scoring: a person vouched for it), its counters reset; None for a ticket that is not settled that way."""
    if view.stage not in RETRYABLE:
        return None
    return Decision(
        Stage.QUEUED,
        f"retried by {who}",
        fields={"publish_attempts": 0, "retry_attempts": 0, "retry_at": None, "progress": None},
    )


def agent_retry_delay(failures: int, backoff_s: float) -> float:
    """Exponential: `backoff_s`, 2x, 4x, ... after the 1st, 2nd, 3rd failed attempt (at most 30 minutes)."""
    return float(min(MAX_RETRY_DELAY_S, backoff_s * 2.0 ** (max(failures, 1) - 1)))


def agent_interrupted(
    view: TicketView, outcome: RunOutcome, reason: str, *, max_attempts: int, backoff_s: float, now: datetime
) -> Decision:
    """An attempt cut short by the model API (overloaded, rate limited, 5xx, connection lost) or a stall is not the
    agent failing: it is tried again after a growing delay, up to `max_attempts` attempts in all."""
    failures = view.retry_attempts + 1
    if failures >= max_attempts:
        return Decision(
            Stage.FAILED,
            f"{reason}; gave up after {failures} attempt(s) of [agent] max_attempts = {max_attempts}",
            fields={"retry_attempts": failures, "retry_at": None},
        )
    at = now + timedelta(seconds=agent_retry_delay(failures, backoff_s))
    return Decision(
        Stage.RUNNING,
        f"attempt {failures} of {max_attempts} did not finish: {reason}; "
        f"the agent tries again at {at:%Y-%m-%d %H:%M:%S} UTC (attempt {failures + 1} of {max_attempts})",
        phase=Phase.AGENT,
        fields={"retry_attempts": failures, "retry_at": at},
    )
