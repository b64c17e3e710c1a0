"""Domain models: what a ticket, a score, a run and a pull request are.

These are the shapes every part of tracker-bridge agrees on; connectors translate their service's objects into them
and the lifecycle reasons only in their terms.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field


class Stage(StrEnum):
    """Where a ticket is in its journey (PRODUCT.md: seen -> scored -> queued -> running -> review -> done)."""

    SEEN = "seen"
    SCORED = "scored"
    QUEUED = "queued"
    RUNNING = "running"
    REVIEW = "review"
    DONE = "done"
    DECLINED = "declined"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # A mid-score ticket whose plan waits for a person's approval (issue 15): between the two thresholds.
    AWAITING_APPROVAL = "awaiting_approval"

    @property
    def is_terminal(self) -> bool:
        return self in (Stage.DONE, Stage.DECLINED, Stage.FAILED, Stage.CANCELLED)


class Phase(StrEnum):
    """What a `running` ticket is doing: the stage users see stays `running`, the engine knows which of the three.

    - AGENT: an agent run is (or, after a crash, was) at work;
    - PUBLISHING: a run finished with passing tests and its change waits to be pushed and proposed (this costs no
      agent budget, so a spent daily budget never holds it back);
    - ITERATING: feedback on the pull request waits for the agent's next run;
    - PLANNING: a mid-score ticket's read-only plan run (under `[scoring] plan_max_cost_usd`): nothing it changes is
      kept or pushed; its plan goes to the status comment and the ticket then awaits a person's approval.
    """

    AGENT = "agent"
    PUBLISHING = "publishing"
    ITERATING = "iterating"
    PLANNING = "planning"



class TicketComment(BaseModel):
    """One person's comment with its author: `id` is stable for the comment, so an approval in it is used once."""

    model_config = ConfigDict(frozen=True)

    id: str
    author: str | None = None
    body: str


class Ticket(BaseModel):
    """A ticket as its tracker shows it now."""

    model_config = ConfigDict(frozen=True)

    ref: str = Field(description="the tracker's own reference: PAY-12, ENG-7, owner/repo#12, group/proj#3, DEMO-1")
    tracker: str = Field(description="name of the [[trackers]] entry it came from")
    title: str
    description: str = ""
    labels: tuple[str, ...] = ()
    column: str | None = None
    url: str = ""
    repo: str | None = Field(default=None, description="per-ticket override of the tracker's repository")
    updated_at: datetime | None = None
    comments: tuple[str, ...] = Field(default=(), description="people's comments, oldest first, ours excluded")
    discussion: tuple[TicketComment, ...] = Field(
        default=(),
        description="people's comments with their authors, for trackers that expose them (approval by comment)",
    )
    closed: bool = Field(default=False, description="the tracker shows the ticket closed (resolved, done)")

    @property
    def key(self) -> str:
        """A filesystem- and branch-safe form of the reference (owner/repo#12 -> owner-repo-12)."""
        return re.sub(r"[^A-Za-z0-9]+", "-", self.ref).strip("-")

    def slug(self, max_len: int = 40) -> str:
        words = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")
        if len(words) > max_len:
            # Cut at a word boundary so the branch name stays readable.
            cut = words[: max_len + 1].rsplit("-", 1)[0]
            words = cut if len(cut) >= max_len // 2 else words[:max_len]
        return words.rstrip("-") or "ticket"

    @property
    def branch(self) -> str:
        return f"agent/{self.key}-{self.slug()}"


class Factor(BaseModel):
    """One named part of a score: a value in [0, 1], its weight in the blend, and why."""

    name: str
    value: float = Field(ge=0.0, le=1.0)
    weight: float = Field(ge=0.0)
    reason: str


class Score(BaseModel):
    """How suitable a ticket is for an autonomous agent."""

    value: float = Field(ge=0.0, le=1.0)
    factors: list[Factor] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list, description="why the score is what it is, most important first")
    suggestions: list[str] = Field(default_factory=list, description="what to add so an agent can take it")
    threshold: float = 0.6

    @property
    def accepted(self) -> bool:
        return self.value >= self.threshold


class PullRequestState(StrEnum):
    OPEN = "open"
    MERGED = "merged"
    CLOSED = "closed"


class ChecksState(StrEnum):
    NONE = "none"
    PENDING = "pending"
    PASSING = "passing"
    FAILING = "failing"


class ReviewState(StrEnum):
    NONE = "none"
    REVIEW_REQUESTED = "review_requested"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"


class PullRequest(BaseModel):
    """A pull (or merge) request as its code host shows it now."""

    id: str = Field(description="the host's identifier: number for GitHub/GitLab, branch for local git")
    url: str
    branch: str
    base: str
    title: str = ""
    state: PullRequestState = PullRequestState.OPEN
    draft: bool = False
    head_sha: str | None = None
    checks: ChecksState = ChecksState.NONE
    review: ReviewState = ReviewState.NONE
    feedback: list[str] = Field(default_factory=list, description="review comments / failing check summaries")
    conflicts: bool = Field(
        default=False,
        description="the host says it no longer merges into its base (GitHub mergeable false / state dirty, "
        "GitLab has_conflicts / cannot_be_merged); False while the host has not computed it yet",
    )
    base_sha: str | None = Field(default=None, description="the base branch's head the host compared against")

    @property
    def merged(self) -> bool:
        return self.state is PullRequestState.MERGED


class RunOutcome(StrEnum):
    SUCCEEDED = "succeeded"  # the agent changed something and the tests pass
    NO_CHANGES = "no_changes"
    TESTS_FAILED = "tests_failed"
    AGENT_FAILED = "agent_failed"
    CAP_REACHED = "cap_reached"
    REFUSED = "refused"  # a guard refused the result (forbidden path, diff too large)
    ERROR = "error"
    CANCELLED = "cancelled"  # stopped on purpose (the ticket left the agent's columns, `tracker-bridge stop`)
    STALLED = "stalled"  # the agent reported nothing for [agent] stall_timeout: killed, retried (transient)
    API_ERROR = "api_error"  # the model API was overloaded, rate limited, 5xx or unreachable: retried (transient)


class RunUsage(BaseModel):
    """What a run has consumed so far."""

    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Run(BaseModel):
    """One agent run on one ticket."""

    id: int | None = None
    tracker: str
    ref: str
    attempt: int = 1
    branch: str
    workspace: str
    backend: str
    usage: RunUsage = Field(default_factory=RunUsage)
    outcome: RunOutcome | None = None
    reason: str = ""
    summary: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TicketFields(TypedDict, total=False):
    """The fields of a ticket the engine writes, by name and type: a misspelt or mistyped write fails `mypy`, not
    a run at three in the morning."""

    title: str
    url: str
    stage: Stage
    phase: Phase | None
    reason: str
    repo: str | None
    branch: str | None
    content_hash: str
    score: float | None
    score_json: str | None
    actor: str | None
    trigger_via: str | None
    pr_id: str | None
    pr_url: str | None
    pr_state: PullRequestState | None
    iterations: int
    feedback_json: str | None
    iterated_sha: str | None
    column_applied: str | None
    comment_hash: str | None
    progress: str | None
    publish_attempts: int
    retry_attempts: int
    retry_at: datetime | None
    synced: bool
