"""The GitHub simulator's state: users, repositories (with real bare git repositories), issues, projects v2, pull
requests, reviews and checks. Tests change it through the helpers here, as people would on github.com; the
connector changes it through the REST and GraphQL routes."""

from __future__ import annotations

import itertools
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

_ids = itertools.count(1000)


def next_id() -> int:
    return next(_ids)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


@dataclass
class Comment:
    id: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime


@dataclass
class Event:
    id: int
    event: str  # labeled, unlabeled, closed, ...
    actor: str
    created_at: datetime
    label: str | None = None


@dataclass
class Issue:
    repo: Repo
    number: int
    title: str
    body: str
    user: str
    id: int = field(default_factory=next_id)
    state: str = "open"
    labels: list[str] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    @property
    def node_id(self) -> str:
        return f"I_{self.id}"

    @property
    def ref(self) -> str:
        return f"{self.repo.full_name}#{self.number}"

    def touch(self) -> None:
        self.updated_at = now()


@dataclass
class Option:
    id: str
    name: str


@dataclass
class Field:
    id: int
    name: str
    data_type: str  # single_select, title, text
    options: list[Option] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return f"PVTSSF_{self.id}" if self.data_type == "single_select" else f"PVTF_{self.id}"

    def option(self, name: str) -> Option:
        for o in self.options:
            if o.name == name:
                return o
        raise KeyError(f"no option {name!r} in field {self.name!r}")

    def option_by_id(self, option_id: str) -> Option:
        return next(o for o in self.options if o.id == option_id)


@dataclass
class Item:
    id: int
    project: Project
    issue: Issue
    status: str | None = None  # option id
    status_setter: str | None = None
    status_updated: datetime | None = None
    archived: bool = False
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    history: list[tuple[str, str]] = field(default_factory=list)  # (column, who moved it), oldest first

    @property
    def node_id(self) -> str:
        return f"PVTI_{self.id}"

    @property
    def status_name(self) -> str | None:
        for o in self.project.status.options:
            if o.id == self.status:
                return o.name
        return None


@dataclass
class Project:
    owner: str
    is_user: bool
    number: int
    title: str
    fields: list[Field]
    id: int = field(default_factory=next_id)
    items: list[Item] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return f"PVT_{self.id}"

    @property
    def status(self) -> Field:
        for f in self.fields:
            if f.name == "Status":
                return f
        raise KeyError("Status")

    def item_for(self, issue: Issue) -> Item | None:
        for it in self.items:
            if it.issue is issue:
                return it
        return None


@dataclass
class Review:
    id: int
    user: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED
    body: str
    submitted_at: datetime = field(default_factory=now)


@dataclass
class ReviewComment:
    id: int
    review_id: int
    user: str
    path: str
    line: int
    body: str


@dataclass
class Pull:
    repo: Repo
    number: int
    title: str
    body: str
    head: str
    base: str
    user: str
    id: int = field(default_factory=next_id)
    state: str = "open"
    merged: bool = False
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    draft: bool = False
    requested_reviewers: list[str] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    review_comments: list[ReviewComment] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)  # the conversation: GitHub serves it as the issue's
    head_sha_at_close: str | None = None
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    @property
    def head_sha(self) -> str | None:
        return self.head_sha_at_close or self.repo.branch_sha(self.head)


@dataclass
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str  # queued, in_progress, completed
    conclusion: str | None
    title: str = ""
    log: str | None = None  # a GitHub Actions job's log; None: a check run of another app (no Actions job)


@dataclass
class CommitStatus:
    id: int
    context: str
    state: str  # pending, success, failure, error
    description: str = ""


@dataclass
class Repo:
    owner: str
    name: str
    bare: Path
    id: int = field(default_factory=next_id)
    default_branch: str = "main"
    private: bool = True
    issues: dict[int, Issue] = field(default_factory=dict)
    pulls: dict[int, Pull] = field(default_factory=dict)
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> role (admin, maintain, write, triage, read)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def next_number(self) -> int:
        return next(self._numbers)

    def git(self, *args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=self.bare, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} in {self.bare}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def merges_cleanly(self, base: str, head: str) -> bool | None:
        """Does `head` merge into `base` without conflicts? GitHub's test merge, with real git in the bare
        repository (`merge-tree` writes objects only, never a ref); None when a branch is missing."""
        base_sha, head_sha = self.branch_sha(base), self.branch_sha(head)
        if base_sha is None or head_sha is None:
            return None
        proc = subprocess.run(
            ["git", "merge-tree", "--write-tree", "--name-only", base_sha, head_sha],
            cwd=self.bare, capture_output=True, text=True, check=False,
        )  # fmt: skip
        return proc.returncode == 0

    def branch_sha(self, branch: str) -> str | None:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
            cwd=self.bare,
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.strip() or None if proc.returncode == 0 else None


@dataclass
class RateLimit:
    limit: int = 5000
    remaining: int = 5000
    reset: int = field(default_factory=lambda: int(time.time()) + 3600)

    def spend(self, points: int = 1) -> None:
        if time.time() >= self.reset:
            self.remaining, self.reset = self.limit, int(time.time()) + 3600
        self.remaining = max(0, self.remaining - points)

    @property
    def used(self) -> int:
        return self.limit - self.remaining


@dataclass
class World:
    git_root: Path
    users: dict[str, int] = field(default_factory=dict)  # login -> id
    orgs: set[str] = field(default_factory=set)
    tokens: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # token -> (login, classic scopes)
    repos: dict[str, Repo] = field(default_factory=dict)
    projects: list[Project] = field(default_factory=list)
    check_runs: list[CheckRun] = field(default_factory=list)
    statuses: dict[str, list[CommitStatus]] = field(default_factory=dict)  # sha -> statuses
    core: RateLimit = field(default_factory=RateLimit)
    graphql: RateLimit = field(default_factory=RateLimit)
    graphql_points: int = 0

    def user(self, login: str) -> int:
        return self.users.setdefault(login, next_id())
