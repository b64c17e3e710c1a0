"""The local git code host: a repository on disk; the agent's branch pushed there is the pull request.

Merging the branch into the base branch is the merge; deleting the branch unmerged is closing the pull request.
The pull request's title and body are kept inside that repository's git directory (`tracker-bridge/pulls/`), so it
is found again from the repository alone, without the daemon's state store.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracker_bridge.config import RepoConfig, Settings
from tracker_bridge.gitutil import GitError, git, git_ok
from tracker_bridge.models import PullRequest, PullRequestState
from tracker_bridge.protocols import CodeHostError, Problem


class LocalGitHost:
    def __init__(self, name: str, path: Path, base_branch: str, test_command: str = "") -> None:
        self.name = name
        self.path = path
        self.base_branch = base_branch
        self.test_command = test_command

    @classmethod
    def from_config(cls, config: RepoConfig, settings: Settings) -> LocalGitHost:
        return cls(config.name, settings.path(config.url), config.base_branch, config.test_command)

    # --- helpers ---------------------------------------------------------------------------------------------------

    @property
    def _pulls_dir(self) -> Path:
        gitdir = Path(git(self.path, "rev-parse", "--absolute-git-dir"))
        return gitdir / "tracker-bridge" / "pulls"

    def _meta_path(self, branch: str) -> Path:
        return self._pulls_dir / (re.sub(r"[^A-Za-z0-9._-]+", "_", branch) + ".json")

    def _load_meta(self, branch: str) -> dict[str, Any] | None:
        p = self._meta_path(branch)
        return dict(json.loads(p.read_text(encoding="utf-8"))) if p.is_file() else None

    def _save_meta(self, meta: dict[str, Any]) -> None:
        p = self._meta_path(str(meta["branch"]))
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)
        os.replace(tmp, p)

    def _branch_sha(self, branch: str) -> str | None:
        try:
            return git(self.path, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        except GitError:
            return None

    def _url(self, branch: str) -> str:
        return f"{self.path.as_uri()}#{branch}"

    # --- protocol --------------------------------------------------------------------------------------------------

    def check(self) -> list[Problem]:
        key = f"repos.{self.name}"
        if not git_ok(self.path, "rev-parse", "--git-dir"):
            return [Problem(f"{key}.url", f"{self.path} is not a git repository", "point url at a git repository")]
        if self._branch_sha(self.base_branch) is None:
            return [
                Problem(
                    f"{key}.base_branch",
                    f"branch {self.base_branch!r} does not exist in {self.path}",
                    "set base_branch to an existing branch (git branch --list shows them)",
                )
            ]
        return []

    def clone(self, dest: Path, branch: str | None = None) -> None:
        try:
            git(dest.parent, "clone", "--quiet", "--branch", self.base_branch, str(self.path), str(dest))
            if branch and self._branch_sha(branch):
                git(dest, "checkout", "-q", "-B", branch, f"origin/{branch}")
        except GitError as exc:
            raise CodeHostError(f"cannot clone {self.path}: {exc.stderr}") from exc

    def push(self, workspace: Path, branch: str) -> None:
        try:
            git(workspace, "push", "--quiet", "--force", str(self.path), f"{branch}:refs/heads/{branch}")
        except GitError as exc:
            raise CodeHostError(f"cannot push {branch} to {self.path}: {exc.stderr}") from exc

    def branch_exists(self, branch: str) -> bool:
        return self._branch_sha(branch) is not None

    def find_pull_request(self, branch: str) -> PullRequest | None:
        meta = self._load_meta(branch)
        return self._to_pr(meta) if meta else None

    def open_pull_request(self, branch: str, title: str, body: str) -> PullRequest:
        existing = self.find_pull_request(branch)
        if existing is not None and existing.state is PullRequestState.OPEN:
            return existing
        sha = self._branch_sha(branch)
        if sha is None:
            raise CodeHostError(f"cannot open a pull request for {branch}: the branch is not in {self.path}")
        meta = {
            "branch": branch,
            "base": self.base_branch,
            "title": title,
            "body": body,
            "head_sha": sha,
            "opened_at": datetime.now(UTC).isoformat(),
        }
        self._save_meta(meta)
        return self._to_pr(meta)

    def get_pull_request(self, pr_id: str) -> PullRequest:
        meta = self._load_meta(pr_id)
        if meta is None:
            raise CodeHostError(f"no pull request for branch {pr_id} in {self.path}")
        return self._to_pr(meta)

    def _to_pr(self, meta: dict[str, Any]) -> PullRequest:
        branch = str(meta["branch"])
        sha = self._branch_sha(branch)
        head = sha or str(meta["head_sha"])
        if sha and sha != meta.get("head_sha"):
            meta["head_sha"] = sha  # the branch moved on (another iteration pushed): follow it
            self._save_meta(meta)
        merged = git_ok(self.path, "merge-base", "--is-ancestor", head, f"refs/heads/{self.base_branch}")
        if merged:
            state = PullRequestState.MERGED
        elif sha is None:
            state = PullRequestState.CLOSED
        else:
            state = PullRequestState.OPEN
        return PullRequest(
            id=branch,
            url=self._url(branch),
            branch=branch,
            base=str(meta.get("base", self.base_branch)),
            title=str(meta.get("title", "")),
            state=state,
            head_sha=head,
        )
