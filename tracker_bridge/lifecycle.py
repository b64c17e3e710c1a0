"""The journey of a ticket as pure functions: what the next stage is, given what the tracker, the store and the
pull request show now. No I/O here: every rule is a plain unit test, and the engine only carries decisions out.

    seen -> scored -> queued -> running -> review -> done
    exits: declined (score under threshold), failed (run failed, cap hit, PR closed unmerged),
           cancelled (a person removed the trigger while the ticket waited)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from tracker_bridge.config import StagesConfig
from tracker_bridge.models import ChecksState, PullRequest, PullRequestState, ReviewState, RunOutcome, Stage, Ticket
from tracker_bridge.protocols import Trigger


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
) -> PullRequestDecision:
    """Keep the board true to the pull request's real state.

    `iterated_sha` is the head the last iteration was started for, `iterated_feedback` the feedback it was given
    (None before any iteration). Checks belong to a commit, so a failure on a newer head is new; a review requesting
    changes stays on the pull request until the reviewer reviews again, so once an iteration has answered it, only
    feedback the agent has not been given yet is a new request (a reviewer's new review, or a new review comment).
    """
    if pr.state is PullRequestState.MERGED:
        return PullRequestDecision(Stage.DONE, "the pull request was merged")
    if pr.state is PullRequestState.CLOSED:
        return PullRequestDecision(Stage.FAILED, "the pull request was closed without merging")
    new_head = pr.head_sha != iterated_sha
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


def column_for(stage: Stage, stages: StagesConfig) -> str | None:
    """The board column a stage maps to; None where the daemon leaves the card where it is."""
    mapping = {
        Stage.QUEUED: stages.queued,
        Stage.RUNNING: stages.running,
        Stage.REVIEW: stages.review,
        Stage.DONE: stages.done,
        Stage.DECLINED: stages.declined,
        Stage.FAILED: stages.failed,
    }
    return mapping.get(stage)


def follows_pull_request(stage: Stage, pr_state: str | None) -> bool:
    """Tickets whose pull request the engine keeps watching each cycle."""
    return stage is Stage.REVIEW or (stage is Stage.FAILED and pr_state == PullRequestState.OPEN.value)
