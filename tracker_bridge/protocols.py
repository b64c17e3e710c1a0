"""The small protocols the core talks to: Tracker, CodeHost, AgentBackend.

A connector implements one of these for one service. The core never imports a connector's client library; it finds
connectors by `kind` through `tracker_bridge_connectors.registry`.

Every method that changes something remote must be safe to call twice: the engine may repeat a call after a crash
(check-then-act), so `move` to the column a card is already in, or `upsert_status_comment` with the same body, must
change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event
from typing import Protocol, runtime_checkable

from tracker_bridge.models import PullRequest, RunOutcome, RunUsage, Ticket

# The hidden marker that identifies tracker-bridge's one status comment on a ticket. Connectors embed it the way
# their service hides text (an HTML comment in Markdown, an entity property in Jira, ...).
STATUS_MARKER = "<!-- tracker-bridge:status -->"


@dataclass(frozen=True)
class Problem:
    """Something `doctor` (or start-up) found wrong, with the key it concerns and how to fix it."""

    key: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}. Fix: {self.fix}"


@dataclass(frozen=True)
class RejectedTicket:
    """A ticket the connector saw but could not read, parse or route; the engine reports it and goes on."""

    ref: str
    reason: str


@dataclass(frozen=True)
class PollResult:
    """Tickets that changed since the cursor and carry the trigger, and the cursor for next time.

    `rejected` holds the tickets that could not be read (a malformed file, a field of the wrong type): one poisoned
    ticket must never stop the rest of the board, so a connector reports it here instead of raising.
    """

    tickets: list[Ticket]
    cursor: str | None
    rejected: list[RejectedTicket] = field(default_factory=list)


def same_name(a: str | None, b: str | None) -> bool:
    """Do two label or column names mean the same thing? Case and surrounding spaces never matter: people type
    `Agent-Ready` for `agent-ready`, and every tracker's own search treats them as one."""
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


@dataclass(frozen=True)
class Trigger:
    """The label and the column that hand a ticket to the agent, compared as `same_name` does everywhere."""

    label: str
    column: str

    def has_label(self, labels: Iterable[str]) -> bool:
        return any(same_name(self.label, label) for label in labels)

    def in_column(self, column: str | None) -> bool:
        return same_name(self.column, column)

    def matches(self, ticket: Ticket) -> bool:
        return self.has_label(ticket.labels) or self.in_column(ticket.column)


class RemoteError(Exception):
    """A remote service refused or failed a request: the one error tree the engine reasons about.

    `transient` says whether trying again later may succeed (a timeout, 429, 5xx, a host outage while cloning or
    pushing): the engine then retries across cycles with backoff and counts the attempts in the status comment.
    A permanent error (bad credentials, a missing project) fails the ticket at once with `fix`. Connectors that
    do not know default to transient: the engine's retries are bounded, so the worst case is a later failure.
    """

    def __init__(self, message: str = "", *, fix: str = "", transient: bool = True) -> None:
        super().__init__(message)
        self.fix = fix
        self.transient = transient

    def explain(self) -> str:
        text = str(self)
        return f"{text} (fix: {self.fix})" if self.fix and self.fix not in text else text


class TrackerError(RemoteError):
    """A tracker refused or failed a request; the message says what and, where known, how to fix it."""


class CodeHostError(RemoteError):
    """A code host refused or failed a request."""


@runtime_checkable
class Tracker(Protocol):
    name: str

    def check(self, columns: Mapping[str, str]) -> list[Problem]:
        """Problems with credentials, scope and the mapped columns (stage -> column); empty when all is well."""
        ...

    def poll(self, cursor: str | None) -> PollResult:
        """Triggered tickets changed since `cursor` (all triggered tickets when None)."""
        ...

    def get_ticket(self, ref: str) -> Ticket:
        ...

    def move(self, ref: str, column: str) -> None:
        """Put the ticket in `column`; nothing happens when it is already there."""
        ...

    def upsert_status_comment(self, ref: str, body: str) -> None:
        """Create tracker-bridge's one status comment (Markdown `body`) or edit it in place, found by its marker."""
        ...

    def add_label(self, ref: str, label: str) -> None:
        ...

    def remove_label(self, ref: str, label: str) -> None:
        ...

    def trigger_actor(self, ticket: Ticket) -> str | None:
        """Who added the trigger (label or column move), as the service names people; None when unknown."""
        ...

    def link_pull_request(self, ref: str, pr: PullRequest) -> None:
        """Show the pull request on the ticket (remote link, attachment); idempotent; may do nothing."""
        ...


@runtime_checkable
class CodeHost(Protocol):
    name: str

    def check(self) -> list[Problem]:
        ...

    def clone(self, dest: Path, branch: str | None = None) -> None:
        """Clone into `dest`, checked out at `branch` when given and it exists on the host, else at the base branch.

        No credentials may be left in the clone (the agent works in it).
        """
        ...

    def push(self, workspace: Path, branch: str) -> None:
        """Push `branch` of the workspace to the host (force-with-lease is fine: the branch is the agent's)."""
        ...

    def branch_exists(self, branch: str) -> bool:
        ...

    def find_pull_request(self, branch: str) -> PullRequest | None:
        """The pull request whose head is `branch`, open or not; None when there is none."""
        ...

    def open_pull_request(self, branch: str, title: str, body: str) -> PullRequest:
        ...

    def get_pull_request(self, pr_id: str) -> PullRequest:
        ...


@dataclass(frozen=True)
class PullRequestComment:
    """A comment on a pull request: its conversation or a line of its diff. `mine`: written by the daemon's own
    account (never a follow-up request). The body is untrusted text."""

    id: str
    author: str
    body: str
    mine: bool = False
    on: str = "pull request"  # where it was written: "pull request", or "ticket" for a comment on the ticket


@runtime_checkable
class TicketDiscussion(Protocol):
    """A tracker whose tickets carry people's comments with their authors and stable ids (`Ticket.discussion`):
    `@mention` comments on the ticket start follow-up iterations. Optional: test with isinstance."""

    comments_with_authors: bool


@runtime_checkable
class PullRequestComments(Protocol):
    """A code host that lists a pull request's comments (GitHub issue and review comments, GitLab merge request
    notes), for `@mention` follow-ups. Optional: test with isinstance."""

    def pull_request_comments(self, pr_id: str) -> list[PullRequestComment]:
        """Every person's comment on the pull request, oldest first (system notes left out)."""
        ...


@runtime_checkable
class ReviewRequests(Protocol):
    """A code host that can ask a person to review a pull request (GitHub requested reviewers, GitLab merge request
    reviewers). Optional: test with isinstance."""

    def request_review(self, pr_id: str, username: str) -> None:
        """Ask `username` (as the host names people) to review; raises CodeHostError when the host refuses (no
        such user, not a collaborator, the pull request's own author)."""
        ...


@runtime_checkable
class CheckLogs(Protocol):
    """A code host that can read its CI's job logs (GitHub Actions, GitLab CI). Optional: test with isinstance."""

    def failed_check_logs(self, pr_id: str) -> dict[str, str]:
        """check name -> the tail of its log, for the failed checks of the pull request's head commit that have a
        log here (a check run by another CI service has none); {} when nothing failed. The text is untrusted."""
        ...


@dataclass
class AgentRequest:
    """What an agent backend needs for one run."""

    ticket: Ticket
    workspace: Path
    prompt: str
    branch: str
    test_command: str
    trace_path: Path
    max_turns: int
    max_cost_usd: float
    timeout_s: float
    max_tokens: int | None = None
    daily_budget_left_usd: float | None = None  # what today's budget still allows; a cap like max_cost_usd
    extra_env: dict[str, str] = field(default_factory=dict)
    # Set by the engine when the run must stop (a person closed the ticket, `tracker-bridge stop`): the backend
    # kills the agent's whole process group and returns RunOutcome.CANCELLED as soon as it sees it.
    cancel: Event = field(default_factory=Event)
    # No event from the agent for this long means it hangs: it is killed and the run retried ([agent] stall_timeout).
    stall_timeout_s: float | None = None


@dataclass
class AgentEvent:
    """Progress reported by a backend while it runs (a turn, a tool call, usage so far)."""

    kind: str
    message: str = ""
    usage: RunUsage | None = None
    data: dict[str, object] = field(default_factory=dict)


@dataclass
class AgentResult:
    outcome: RunOutcome
    usage: RunUsage
    summary: str = ""
    reason: str = ""


@runtime_checkable
class AgentBackend(Protocol):
    name: str

    def run(self, request: AgentRequest, on_event: Callable[[AgentEvent], None]) -> AgentResult:
        """Let the agent work in `request.workspace`; return when it finished, failed or hit a cap."""
        ...
