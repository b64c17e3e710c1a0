"""Agent workspaces: their names, and when they may go.

Names. A workspace folder and its branch are named after the ticket (`ticket.key`: owner/repo#12 -> owner-repo-12).
Two trackers whose references have the same shape could hand the daemon two different tickets with one name (a
GitHub issue `acme/app#12` and a GitLab issue `acme/app#12`; a Jira `ENG-7` and a Linear `ENG-7`), so when the
configuration holds such a pair, the tracker's name goes in front. A single tracker, or trackers whose references
cannot overlap, keep the plain names, so upgrading changes nothing for them.

Cleanup. Every ticket used to leave a full clone in the state folder forever. A workspace is removed when its ticket
has settled (done, declined, cancelled), `[bridge] keep_workspaces` days after its ticket failed (a person may want
to look), and at start when no ticket knows it (an orphan, e.g. a clone a crash left half made) - but never while it
holds commits that were not pushed anywhere: that work would be lost. Traces (state_dir/runs) are never touched.

The workspace was written by the agent, so git is asked only about refs and objects (no command that reads the work
tree), with hooks and fsmonitor switched off, and a folder git cannot answer for is kept rather than guessed about.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tracker_bridge.agents.handover import AGENT_SUFFIX, agent_workspace
from tracker_bridge.config import Settings
from tracker_bridge.gitutil import GitError, git
from tracker_bridge.models import Stage, Ticket
from tracker_bridge.store import Store, utcnow

log = structlog.get_logger(__name__)

SETTLED = (Stage.DONE, Stage.DECLINED, Stage.CANCELLED)

# Tracker kinds whose references share a shape: KEY-N (Jira, Linear, a folder of KEY-N.md) and path#N (GitHub,
# GitLab). Two trackers of one family can name two different tickets alike.
_REF_FAMILIES = ({"jira", "linear", "local"}, {"github", "gitlab"})

# Settings for every git call in a workspace: the agent could have written any configuration into .git/config.
# safe.directory: the sandbox may have left the folder owned by another user; we only read refs and objects.
_HARDENED = (
    "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "safe.directory=*", "--no-optional-locks",
)  # fmt: skip


# --- names ------------------------------------------------------------------------------------------------------------


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def colliding_trackers(settings: Settings) -> set[str]:
    """Names of the trackers whose references could collide with another configured tracker's."""
    family_of = {kind: i for i, family in enumerate(_REF_FAMILIES) for kind in family}
    names: set[str] = set()
    for t in settings.trackers:
        if any(o is not t and family_of.get(o.kind) == family_of.get(t.kind) for o in settings.trackers):
            names.add(t.name)
    return names


def workspace_key(tracker_name: str, ticket_key: str, colliding: bool) -> str:
    """The folder name (under state_dir/workspaces) and the branch's key part for one ticket of one tracker."""
    return f"{_safe(tracker_name)}-{ticket_key}" if colliding else ticket_key


def branch_name(ticket: Ticket, colliding: bool) -> str:
    """`agent/<key>-<slug>`; the key carries the tracker's name when two trackers could collide."""
    return f"agent/{workspace_key(ticket.tracker, ticket.key, colliding)}-{ticket.slug()}"


# --- what the store says about each workspace ---------------------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceTicket:
    """The ticket a workspace folder belongs to, as far as cleanup cares."""

    ref: str
    stage: Stage
    changed_at: datetime  # naive UTC: when the ticket last changed (for a failed one: since when it failed)
    folders: tuple[Path, ...]
    pushed: tuple[str, ...] = ()  # commits pushed to the code host, from the store's record of effects


def workspace_tickets(store: Store) -> list[WorkspaceTicket]:
    """Every ticket that has had a workspace, with the folders its runs used and the commits pushed for it."""
    folders: dict[int, list[Path]] = {}
    for run in store.all_runs():
        if run.workspace:
            # The daemon's clone and the agent's copy of it (tracker_bridge.agents.handover) go together.
            folders.setdefault(run.ticket_id, []).extend((Path(run.workspace), agent_workspace(Path(run.workspace))))
    pushed: dict[int, list[str]] = {}
    for effect in store.effects(kind="push"):
        sha = effect.detail.rpartition("@")[2]
        if sha and sha != "None":
            pushed.setdefault(effect.ticket_id, []).append(sha)
    return [
        WorkspaceTicket(
            ref=row.ref,
            stage=row.stage_enum,
            changed_at=row.updated_at,
            folders=tuple(dict.fromkeys(folders[row.id])),
            pushed=tuple(pushed.get(row.id, ())),
        )
        for row in store.tickets()
        if row.id in folders
    ]


# --- unpushed work ----------------------------------------------------------------------------------------------------


class UnknownState(Exception):
    """git could not say whether the folder holds unpushed commits: the folder is kept."""


def unpushed_commits(folder: Path, pushed: Iterable[str] = ()) -> list[str]:
    """Commits on the folder's branches (and HEAD) that are on no remote-tracking ref and in none of `pushed`.

    The daemon pushes to a URL, not to a named remote, so what it pushed is known from the store (`pushed`), and
    what the clone came with from its remote-tracking refs.
    """
    git_dir = folder / ".git"
    if not git_dir.exists():
        return []  # never a repository (a clone that failed early): no commits to lose
    base = ["--git-dir", str(git_dir), *_HARDENED]
    try:
        tips = ["--branches"]
        if git(folder, *base, "rev-parse", "--verify", "--quiet", "HEAD", check=False):
            tips.append("HEAD")
        out = git(folder, *base, "rev-list", "--ignore-missing", *tips, "--not", "--remotes", *pushed)
    except (GitError, OSError) as exc:
        raise UnknownState(f"git cannot read {folder}: {exc}") from exc
    return out.split()


# --- the plan ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    path: Path
    reason: str


@dataclass
class CleanupPlan:
    remove: list[Decision] = field(default_factory=list)
    keep: list[Decision] = field(default_factory=list)


def plan_cleanup(
    workspaces_dir: Path,
    tickets: Sequence[WorkspaceTicket],
    *,
    keep_failed: timedelta,
    now: datetime | None = None,
    at_start: bool = False,
) -> CleanupPlan:
    """Which folders of `workspaces_dir` to remove and which to keep, each with the reason."""
    now = now or utcnow()
    plan = CleanupPlan()
    if not workspaces_dir.is_dir():
        return plan
    owner: dict[Path, WorkspaceTicket] = {}
    for t in tickets:
        for f in t.folders:
            owner[_resolved(f)] = t
    for entry in sorted(workspaces_dir.iterdir()):
        path = _resolved(entry)
        ticket = owner.get(path)
        pushed: tuple[str, ...] = ()
        if ticket is None:
            if not at_start:
                continue  # an orphan only at start: now it may be a run's folder being made
            why = "no ticket in the state store has this workspace"
        elif ticket.stage in SETTLED:
            why, pushed = f"{ticket.ref} is {ticket.stage.value}", ticket.pushed
        elif ticket.stage is Stage.FAILED and now - ticket.changed_at >= keep_failed:
            days = (now - ticket.changed_at).total_seconds() / 86400
            why, pushed = f"{ticket.ref} failed {days:.1f} days ago (keep_workspaces)", ticket.pushed
        else:
            continue
        if entry.is_symlink() or not entry.is_dir() or entry.name.endswith(AGENT_SUFFIX):
            # The agent's copy is untrusted and never asked (no git runs in it outside the sandbox): what it held
            # worth keeping was handed over to the daemon's clone, which is checked for unpushed commits.
            plan.remove.append(Decision(entry, why))
            continue
        try:
            unpushed = unpushed_commits(entry, pushed)
        except UnknownState as exc:
            plan.keep.append(Decision(entry, str(exc)))
            continue
        if unpushed:
            shown = ", ".join(sha[:10] for sha in unpushed[:3]) + (" ..." if len(unpushed) > 3 else "")
            plan.keep.append(Decision(entry, f"{why}, but it holds {len(unpushed)} commit(s) not pushed: {shown}"))
        else:
            plan.remove.append(Decision(entry, why))
    return plan


def _resolved(path: Path) -> Path:
    return Path(os.path.normpath(path.absolute()))


def execute(plan: CleanupPlan, workspaces_dir: Path) -> int:
    """Remove the planned folders (only ever inside `workspaces_dir`, never following a link); bytes freed."""
    root = _resolved(workspaces_dir)
    freed = 0
    for d in plan.remove:
        path = _resolved(d.path)
        if path.parent != root:
            log.error("workspace.cleanup_refused", path=str(d.path), reason="not directly in the workspaces folder")
            continue
        size = disk_bytes(path)
        try:
            if path.is_symlink() or not path.is_dir():
                path.unlink()
            else:
                shutil.rmtree(path)
        except OSError as exc:
            log.error("workspace.cleanup_failed", path=str(path), error=str(exc))
            continue
        freed += size
        log.info("workspace.removed", path=str(path), reason=d.reason, bytes=size)
    for d in plan.keep:
        log.info("workspace.kept", path=str(d.path), reason=d.reason)
    return freed


def cleanup(settings: Settings, store: Store, *, at_start: bool = False) -> int:
    """Plan and carry out the cleanup of settings.state_dir/workspaces; bytes freed. Call at start (at_start=True,
    orphans go too) and then now and again (each cycle is fine: it reads the store and a directory listing)."""
    workspaces = settings.state_dir / "workspaces"
    plan = plan_cleanup(
        workspaces,
        workspace_tickets(store),
        keep_failed=timedelta(days=settings.bridge.keep_workspaces),
        at_start=at_start,
    )
    return execute(plan, workspaces)


# --- disk used ----------------------------------------------------------------------------------------------------


def disk_bytes(path: Path) -> int:
    """Disk space used under `path` (allocated blocks; links not followed, hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for st in _walk_stats(path):
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        total += st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
    return total


def _walk_stats(path: Path) -> Iterator[os.stat_result]:
    try:
        st = path.lstat()
    except OSError:
        return
    yield st
    if not stat.S_ISDIR(st.st_mode):
        return
    stack = [path]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            try:
                est = e.stat(follow_symlinks=False)
            except OSError:
                continue
            yield est
            if stat.S_ISDIR(est.st_mode):
                stack.append(Path(e.path))


class WorkspaceBytesCollector(Collector):
    """The Prometheus gauge `tracker_bridge_workspace_bytes`; the folder is measured at most once per `ttl` s."""

    def __init__(self, workspaces_dir: Path, ttl: float = 60.0) -> None:
        self.workspaces_dir = workspaces_dir
        self.ttl = ttl
        self._cached: tuple[float, int] | None = None

    def value(self) -> int:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] >= self.ttl:
            self._cached = (now, disk_bytes(self.workspaces_dir) if self.workspaces_dir.exists() else 0)
        return self._cached[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "tracker_bridge_workspace_bytes", "Disk space used by agent workspaces, in bytes", value=self.value()
        )
