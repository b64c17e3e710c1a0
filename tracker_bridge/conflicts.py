"""Merge conflicts between an agent branch and a base branch that moved, found and prepared with real git.

The code host only says that a pull request no longer merges (GitHub `mergeable: false`, GitLab `has_conflicts`);
which files conflict the daemon finds itself, with a dry-run merge (`git merge-tree`, which touches no work tree)
in a fresh clone of its own. To resolve them, an iteration starts a real merge of the base into the branch in the
daemon's clone (`start_merge`) and hands the merged work tree, conflict markers included, to the agent; what the
agent leaves is committed in the daemon's clone, where the merge is still in progress, so that commit is a real
merge commit with both parents.

Why a merge commit, not a rebase: the push is then a fast-forward of the branch (nothing a reviewer already saw is
rewritten, no force needed, review comments stay anchored to their commits), and the agent resolves the conflicts
once, in the final state, instead of once per replayed commit. Every git call here runs in the daemon's own clones
through `gitutil` (hardened: no hooks, filters or drivers), never in the agent's workspace.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tracker_bridge.gitutil import GitError, git, run_git
from tracker_bridge.protocols import CodeHost


def merge_tree_conflicts(clone: Path, ours: str, theirs: str) -> list[str]:
    """The files a merge of `theirs` into `ours` would leave conflicted ([] when it merges cleanly), computed with
    `git merge-tree --write-tree` (git 2.38 or later): the object store only, no work tree, no index."""
    proc = run_git(clone, ["merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs])
    if proc.returncode == 0:
        return []
    if proc.returncode != 1:
        raise GitError(["merge-tree", ours, theirs], proc.returncode, proc.stderr)
    # exit 1: the first line is the tree written with conflict markers, then one conflicted path a line
    lines = proc.stdout.splitlines()[1:]
    return list(dict.fromkeys(line for line in lines if line.strip()))


def conflicting_files(host: CodeHost, dest: Path, branch: str, base: str) -> list[str]:
    """Clone `branch` afresh into `dest` (the daemon's folder, removed afterwards) and list the files a merge of
    the host's `base` would leave conflicted. Raises CodeHostError (clone) or GitError (git)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        host.clone(dest, branch=branch)
        return merge_tree_conflicts(dest, "HEAD", f"refs/remotes/origin/{base}")
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def start_merge(clone: Path, base: str) -> tuple[str, list[str]]:
    """Begin merging the base (as cloned: `origin/<base>`) into the checked-out branch of the daemon's `clone`,
    without committing: the merge stays in progress, so the next commit there is the merge commit. Returns the
    base's commit and the files left with conflict markers ([] when git merged everything by itself)."""
    theirs = git(clone, "rev-parse", f"refs/remotes/origin/{base}")
    proc = run_git(clone, ["merge", "--no-commit", "--no-ff", "--no-edit", theirs])
    conflicted = git(clone, "diff", "--name-only", "--diff-filter=U")
    files = [line for line in conflicted.splitlines() if line]
    if proc.returncode != 0 and not files:
        raise GitError(["merge", theirs], proc.returncode, proc.stderr or proc.stdout)
    return theirs, files

