"""Workspaces: names that two trackers cannot share, and a cleanup that never loses unpushed work (real git)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from tracker_bridge.config import settings_from_dict
from tracker_bridge.gitutil import git
from tracker_bridge.models import Stage, Ticket
from tracker_bridge.workspaces import (
    WorkspaceBytesCollector,
    WorkspaceTicket,
    branch_name,
    colliding_trackers,
    disk_bytes,
    execute,
    plan_cleanup,
    workspace_key,
)

NOW = datetime(2026, 11, 30, 12, 0)
WEEK = timedelta(days=7)


def settings_with(tmp_path: Path, *kinds: str) -> set[str]:
    (tmp_path / "t").mkdir(exist_ok=True)
    trackers = [
        {"name": f"{k}{i}", "kind": k, "url": str(tmp_path / "t") if k == "local" else "https://x.test"}
        for i, k in enumerate(kinds)
    ]
    settings = settings_from_dict({"trackers": trackers}, base_dir=tmp_path, check_secrets=False)
    return colliding_trackers(settings)


def test_only_trackers_whose_references_can_overlap_carry_their_name(tmp_path: Path) -> None:
    assert settings_with(tmp_path, "github") == set()
    assert settings_with(tmp_path, "github", "jira") == set()
    assert settings_with(tmp_path, "github", "gitlab") == {"github0", "gitlab1"}
    assert settings_with(tmp_path, "jira", "linear", "github") == {"jira0", "linear1"}
    assert settings_with(tmp_path, "jira", "jira") == {"jira0", "jira1"}


def test_a_github_and_a_gitlab_issue_with_one_reference_get_two_folders_and_branches() -> None:
    gh = Ticket(ref="acme/app#12", tracker="github", title="Fix the totals")
    gl = Ticket(ref="acme/app#12", tracker="gitlab", title="Fix the totals")
    assert workspace_key(gh.tracker, gh.key, True) == "github-acme-app-12"
    assert workspace_key(gl.tracker, gl.key, True) != workspace_key(gh.tracker, gh.key, True)
    assert branch_name(gh, True) == "agent/github-acme-app-12-fix-the-totals"
    assert branch_name(gh, False) == gh.branch  # a lone tracker keeps today's names


# --- cleanup on real git folders ------------------------------------------------------------------------------------


def make_origin(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "README.md").write_text("hello\n")
    git(seed, "add", ".")
    git(seed, "commit", "-q", "-m", "first")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    return origin


def workspace(root: Path, origin: Path, name: str, *, commit: bool = False, push: bool = False) -> tuple[Path, str]:
    """A clone like the engine's, on an agent branch; with a commit of the agent's, pushed to a URL or not."""
    ws = root / name
    git(root, "clone", "-q", str(origin), str(ws))
    git(ws, "checkout", "-q", "-b", f"agent/{name}")
    sha = git(ws, "rev-parse", "HEAD")
    if commit:
        (ws / "fix.py").write_text(f"# {name}\n" + "x = 1\n" * 1000)  # one commit per workspace
        git(ws, "add", ".")
        git(ws, "commit", "-q", "-m", "the agent's fix")
        sha = git(ws, "rev-parse", "HEAD")
    if push:
        git(ws, "push", "-q", str(origin), f"agent/{name}:refs/heads/agent/{name}")  # to a URL, as hosts do
    return ws, sha


def ticket(ref: str, stage: Stage, folder: Path, *, age: timedelta = timedelta(0), pushed: str = "") -> WorkspaceTicket:
    return WorkspaceTicket(ref, stage, NOW - age, (folder,), (pushed,) if pushed else ())


def test_cleanup_plan_settled_failed_orphans_and_unpushed_work(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    root = tmp_path / "state" / "workspaces"
    root.mkdir(parents=True)
    done, done_sha = workspace(root, origin, "DEMO-1", commit=True, push=True)
    unpushed, _ = workspace(root, origin, "DEMO-2", commit=True)
    old_failure, _ = workspace(root, origin, "DEMO-3")
    new_failure, _ = workspace(root, origin, "DEMO-4", commit=True)
    in_review, _ = workspace(root, origin, "DEMO-5", commit=True, push=True)
    workspace(root, origin, "DEMO-6")  # an orphan: no ticket knows it
    half_made = root / "DEMO-7"
    (half_made / "src").mkdir(parents=True)  # a clone a crash interrupted: no .git yet
    unreadable = root / "DEMO-8"
    (unreadable / ".git").mkdir(parents=True)  # git cannot read it: kept, not guessed about
    traces = tmp_path / "state" / "runs" / "DEMO-1"
    traces.mkdir(parents=True)
    (traces / "1.jsonl").write_text("{}\n")
    tickets = [
        ticket("DEMO-1", Stage.DONE, done, pushed=done_sha),
        ticket("DEMO-2", Stage.CANCELLED, unpushed),
        ticket("DEMO-3", Stage.FAILED, old_failure, age=timedelta(days=8)),
        ticket("DEMO-4", Stage.FAILED, new_failure, age=timedelta(days=2)),
        ticket("DEMO-5", Stage.REVIEW, in_review),
        ticket("DEMO-8", Stage.DONE, unreadable),
    ]

    running = plan_cleanup(root, tickets, keep_failed=WEEK, now=NOW)
    assert sorted(d.path.name for d in running.remove) == ["DEMO-1", "DEMO-3"]
    [kept_unpushed, kept_unreadable] = running.keep
    assert kept_unpushed.path == unpushed and "1 commit(s) not pushed" in kept_unpushed.reason
    assert kept_unreadable.path == unreadable and "git cannot read" in kept_unreadable.reason

    at_start = plan_cleanup(root, tickets, keep_failed=WEEK, now=NOW, at_start=True)
    assert sorted(d.path.name for d in at_start.remove) == ["DEMO-1", "DEMO-3", "DEMO-6", "DEMO-7"]

    before = disk_bytes(root)
    freed = execute(at_start, root)
    assert freed > 0 and disk_bytes(root) < before  # (not exactly before - freed: local clones hard-link objects)
    assert sorted(p.name for p in root.iterdir()) == ["DEMO-2", "DEMO-4", "DEMO-5", "DEMO-8"]
    assert (traces / "1.jsonl").exists()  # traces stay
    assert git(unpushed, "log", "-1", "--format=%s") == "the agent's fix"  # unpushed work untouched


def test_a_commit_pushed_elsewhere_than_the_recorded_sha_still_counts_as_unpushed(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    root = tmp_path / "workspaces"
    root.mkdir()
    ws, first = workspace(root, origin, "DEMO-1", commit=True, push=True)
    (ws / "more.py").write_text("y = 2\n")
    git(ws, "add", ".")
    git(ws, "commit", "-q", "-m", "a later commit, never pushed")
    plan = plan_cleanup(root, [ticket("DEMO-1", Stage.DONE, ws, pushed=first)], keep_failed=WEEK, now=NOW)
    assert plan.remove == [] and "1 commit(s) not pushed" in plan.keep[0].reason


def test_a_hostile_git_config_in_the_workspace_runs_nothing(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    root = tmp_path / "workspaces"
    root.mkdir()
    ws, sha = workspace(root, origin, "DEMO-1", commit=True, push=True)
    pwned = tmp_path / "pwned"
    git(ws, "config", "core.fsmonitor", f"touch {pwned}; false")
    hooks = ws / ".git" / "hooks"
    for hook in ("post-checkout", "reference-transaction", "pre-auto-gc"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {pwned}\n")
        (hooks / hook).chmod(0o755)
    plan = plan_cleanup(root, [ticket("DEMO-1", Stage.DONE, ws, pushed=sha)], keep_failed=WEEK, now=NOW)
    assert [d.path for d in plan.remove] == [ws]
    assert not pwned.exists()


def test_execute_never_leaves_the_workspaces_folder_nor_follows_links(tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    root.mkdir()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    (root / "DEMO-1").symlink_to(precious, target_is_directory=True)
    plan = plan_cleanup(root, [], keep_failed=WEEK, now=NOW, at_start=True)
    plan.remove.append(type(plan.remove[0])(precious, "a planner bug"))
    execute(plan, root)
    assert not (root / "DEMO-1").exists() and (precious / "keep.txt").read_text() == "mine"


def test_workspace_bytes_gauge(tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    (root / "DEMO-1").mkdir(parents=True)
    (root / "DEMO-1" / "big.bin").write_bytes(b"x" * 200_000)
    registry = CollectorRegistry()
    registry.register(WorkspaceBytesCollector(root, ttl=0))
    text = generate_latest(registry).decode()
    [line] = [x for x in text.splitlines() if x.startswith("tracker_bridge_workspace_bytes ")]
    assert float(line.split()[1]) >= 200_000
