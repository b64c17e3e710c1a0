"""A worker's commit handed to the leader as a git bundle, so that only the leader pushes (one writer of remote
state). The bundle holds the run's branch without what the host already has (the clone's remote-tracking refs), so
it is the agent's commits only: small, and stored on the run row with the result.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tracker_bridge.agents.pipeline import prepare_workspace
from tracker_bridge.gitutil import GitError, git
from tracker_bridge.protocols import CodeHost


def make_bundle(workspace: Path, branch: str) -> bytes:
    """The branch's commits that the host does not have yet, as a git bundle."""
    with tempfile.TemporaryDirectory(prefix="tb-bundle-") as tmp:
        out = Path(tmp) / "run.bundle"
        try:
            git(workspace, "bundle", "create", "-q", str(out), branch, "--not", "--remotes")
        except GitError:  # no remote-tracking refs (a host that clones without them): the whole branch
            git(workspace, "bundle", "create", "-q", str(out), branch)
        return out.read_bytes()


def checked_out_at(workspace: Path, sha: str) -> bool:
    """Whether `workspace` is a clone whose HEAD is the commit `sha`."""
    if not (workspace / ".git").exists():
        return False
    try:
        git(workspace, "cat-file", "-e", f"{sha}^{{commit}}")
    except GitError:
        return False
    return git(workspace, "rev-parse", "HEAD") == sha


def unbundle(host: CodeHost, workspace: Path, branch: str, commit: str, bundle: bytes) -> None:
    """Make `workspace` the branch at `commit` from a fresh clone and the worker's bundle (nothing when it already
    is, e.g. a retried publish). Raises CodeHostError when the host cannot be cloned (retried like a push)."""
    if checked_out_at(workspace, commit):
        return
    if workspace.exists():
        shutil.rmtree(workspace)
    prepare_workspace(host, workspace, branch)
    with tempfile.TemporaryDirectory(prefix="tb-bundle-") as tmp:
        path = Path(tmp) / "run.bundle"
        path.write_bytes(bundle)
        git(workspace, "fetch", "-q", str(path), branch)
    git(workspace, "checkout", "-q", "-B", branch, commit)
