"""GitHub as the code host: clone and push over HTTPS with the token, open and follow pull requests.

The token never lands in the clone: git gets it per command through GIT_CONFIG_* environment variables (an
`http.extraHeader`), so neither `.git/config` nor the process arguments carry it, and the agent working in the
clone cannot read it.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tracker_bridge.config import ConfigError, RepoConfig, Settings
from tracker_bridge.gitutil import GitTimeout, git_env, run_git
from tracker_bridge.models import ChecksState, PullRequest, PullRequestState, ReviewState
from tracker_bridge.protocols import CodeHostError, Problem
from tracker_bridge_connectors.github.client import GitHubAPIError, GitHubClient
from tracker_bridge_connectors.github.refs import repo_from_remote

_FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "cancelled", "action_required", "startup_failure", "stale"})


class GitHubHost:
    """CodeHost for one repository on GitHub (or GitHub Enterprise Server through `api_url`)."""

    def __init__(
        self,
        name: str,
        remote_url: str,
        token: str,
        *,
        api_url: str | None = None,
        base_branch: str = "main",
        token_env: str = "GITHUB_TOKEN",
        draft: bool = False,
        client: GitHubClient | None = None,
    ) -> None:
        self.name = name
        self.remote_url = remote_url
        self.owner, self.repo = repo_from_remote(remote_url)
        self.base_branch = base_branch
        self.draft = draft
        self._token = token
        self.client = client or GitHubClient(api_url, token, token_env=token_env)

    @classmethod
    def from_config(cls, cfg: RepoConfig, settings: Settings) -> GitHubHost:
        key = f'repos (name "{cfg.name}")'
        token = cfg.token()
        if not token:
            env = cfg.token_env or "GITHUB_TOKEN"
            raise ConfigError([f"{key}.token_env: no GitHub token. Fix: export {env}=<token>"])
        try:
            repo_from_remote(cfg.url)
        except ValueError as exc:
            raise ConfigError([f"{key}.url = {cfg.url!r}: {exc}. Fix: use the https clone URL"]) from exc
        unknown = sorted(set(cfg.options) - {"draft"})
        if unknown:
            raise ConfigError([f"{key}.options: unknown option(s) {', '.join(unknown)}. Fix: only 'draft' is known"])
        return cls(
            cfg.name,
            cfg.url,
            token,
            api_url=cfg.api_url,
            base_branch=cfg.base_branch,
            token_env=cfg.token_env or "GITHUB_TOKEN",
            draft=bool(cfg.options.get("draft", False)),
        )

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    def _repo_path(self, suffix: str = "") -> str:
        return f"/repos/{self.owner}/{self.repo}{suffix}"

    def _call(self, method: str, suffix: str, **kwargs: Any) -> Any:
        try:
            return self.client.rest(method, self._repo_path(suffix), **kwargs)
        except GitHubAPIError as exc:
            raise CodeHostError(f"{self.full_name}: {exc}") from exc

    # --- doctor ----------------------------------------------------------------------------------------------------

    def check(self) -> list[Problem]:
        key = f'repos (name "{self.name}")'
        try:
            result = self.client.rest("GET", self._repo_path())
        except GitHubAPIError as exc:
            return [Problem(key, f"cannot read {self.full_name}: {exc}", "check url, api_url and the token's access")]
        problems: list[Problem] = []
        perms = (result.data or {}).get("permissions") or {}
        if perms and not perms.get("push"):
            fix = "grant Contents: write (fine-grained token) or the repo scope (classic)"
            problems.append(Problem(key, f"the token cannot push to {self.full_name}", fix))
        scopes = result.headers.get("x-oauth-scopes")
        if scopes is not None and scopes.strip() and "repo" not in {s.strip() for s in scopes.split(",")}:
            problems.append(Problem(key, f"the classic token's scopes '{scopes}' lack 'repo'", "add the repo scope"))
        if not self.branch_exists(self.base_branch):
            problems.append(
                Problem(key, f"base branch {self.base_branch!r} does not exist on {self.full_name}", "fix base_branch")
            )
        return problems

    # --- git -------------------------------------------------------------------------------------------------------

    def _git_env(self) -> dict[str, str]:
        basic = base64.b64encode(f"x-access-token:{self._token}".encode()).decode()
        env = git_env()
        env.update(
            GIT_CONFIG_COUNT="2",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
            # no credential helper may store what it never needed
            GIT_CONFIG_KEY_1="credential.helper",
            GIT_CONFIG_VALUE_1="",
        )
        return env

    def _git(self, cwd: Path, *args: str) -> str:
        try:
            proc = run_git(cwd, args, env=self._git_env())  # hardened: no hooks, filters or fsmonitor; a timeout
        except GitTimeout as exc:
            raise CodeHostError(f"git {args[0]} {self.full_name} failed: {exc.stderr}") from exc
        if proc.returncode != 0:
            stderr = proc.stderr.replace(self._token, "***").strip()
            hint = ""
            if "Authentication failed" in stderr or "403" in stderr or "could not read Username" in stderr:
                hint = " Fix: the token needs Contents: read and write on the repository (docs/github.md)"
            raise CodeHostError(f"git {args[0]} {self.full_name} failed: {stderr}.{hint}")
        return proc.stdout.strip()

    def clone(self, dest: Path, branch: str | None = None) -> None:
        ref = branch if branch and self.branch_exists(branch) else self.base_branch
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._git(dest.parent, "clone", "--quiet", "--branch", ref, self.remote_url, str(dest))

    def push(self, workspace: Path, branch: str) -> None:
        # The branch belongs to the agent, so a forced push after a rerun is what we want.
        self._git(workspace, "push", "--quiet", "--force", self.remote_url, f"refs/heads/{branch}:refs/heads/{branch}")

    def branch_exists(self, branch: str) -> bool:
        result = self._call("GET", f"/branches/{quote(branch, safe='')}", allow=(404,))
        return bool(result.status == 200)

    # --- pull requests ---------------------------------------------------------------------------------------------

    def find_pull_request(self, branch: str) -> PullRequest | None:
        result = self._call(
            "GET", "/pulls", params={"head": f"{self.owner}:{branch}", "state": "all", "per_page": 20}, conditional=True
        )
        pulls = [p for p in result.data or [] if p.get("head", {}).get("ref") == branch]
        if not pulls:
            return None
        # an open one wins; otherwise the newest (a restart must follow the PR it opened, not open a second)
        pulls.sort(key=lambda p: (p.get("state") == "open", p.get("number", 0)), reverse=True)
        return self.get_pull_request(str(pulls[0]["number"]))

    def open_pull_request(self, branch: str, title: str, body: str) -> PullRequest:
        existing = self.find_pull_request(branch)
        if existing is not None and existing.state is PullRequestState.OPEN:
            return existing
        body = self._with_closing(body)
        payload: dict[str, Any] = {"title": title, "head": branch, "base": self.base_branch, "body": body}
        if self.draft:
            payload["draft"] = True
        result = self._call("POST", "/pulls", json_body=payload, allow=(422,))
        if result.status == 422:
            again = self.find_pull_request(branch)
            if again is not None:
                return again
            raise CodeHostError(f"{self.full_name}: GitHub refused the pull request for {branch}: {result.data}")
        return self._to_pull_request(result.data)

    def _with_closing(self, body: str) -> str:
        """`Closes #N` for issues of this repository named in the body, so merging closes the ticket's issue."""
        numbers = re.findall(rf"(?<![\w/]){re.escape(self.full_name)}#(\d+)", body)
        lines = [f"Closes #{n}" for n in dict.fromkeys(numbers) if not re.search(rf"(?i)\bcloses #{n}\b", body)]
        return body if not lines else body.rstrip() + "\n\n" + "\n".join(lines) + "\n"

    def get_pull_request(self, pr_id: str) -> PullRequest:
        number = str(pr_id).lstrip("#")
        data = self._call("GET", f"/pulls/{number}", conditional=True).data
        return self._to_pull_request(data)

    def _to_pull_request(self, data: dict[str, Any]) -> PullRequest:
        number = data["number"]
        if data.get("merged") or data.get("merged_at"):
            state = PullRequestState.MERGED
        elif data.get("state") == "closed":
            state = PullRequestState.CLOSED
        else:
            state = PullRequestState.OPEN
        head_sha = (data.get("head") or {}).get("sha")
        feedback: list[str] = []
        review = ReviewState.NONE
        checks = ChecksState.NONE
        if state is PullRequestState.OPEN:
            review, review_feedback = self._review_state(number, data)
            checks, check_feedback = self._checks_state(head_sha) if head_sha else (ChecksState.NONE, [])
            feedback = review_feedback + check_feedback
        return PullRequest(
            id=str(number),
            url=data.get("html_url") or "",
            branch=(data.get("head") or {}).get("ref", ""),
            base=(data.get("base") or {}).get("ref", self.base_branch),
            title=data.get("title") or "",
            state=state,
            draft=bool(data.get("draft")),
            head_sha=head_sha,
            checks=checks,
            review=review,
            feedback=feedback,
        )

    def _review_state(self, number: int, pr: dict[str, Any]) -> tuple[ReviewState, list[str]]:
        reviews = self._call("GET", f"/pulls/{number}/reviews", params={"per_page": 100}, conditional=True).data or []
        latest: dict[str, dict[str, Any]] = {}
        for r in reviews:  # oldest first: a reviewer's last decisive review counts
            if r.get("state") in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[(r.get("user") or {}).get("login", "?")] = r
        changes = [r for r in latest.values() if r.get("state") == "CHANGES_REQUESTED"]
        if changes:
            feedback = [f"{(r.get('user') or {}).get('login', '?')}: {r['body']}" for r in changes if r.get("body")]
            ids = {r.get("id") for r in changes}
            comments = self._call("GET", f"/pulls/{number}/comments", params={"per_page": 100}, conditional=True).data
            for c in comments or []:
                if c.get("pull_request_review_id") in ids:
                    feedback.append(f"{c.get('path')}:{c.get('line') or c.get('original_line') or ''}: {c.get('body')}")
            return ReviewState.CHANGES_REQUESTED, feedback
        if any(r.get("state") == "APPROVED" for r in latest.values()):
            return ReviewState.APPROVED, []
        if pr.get("requested_reviewers") or pr.get("requested_teams"):
            return ReviewState.REVIEW_REQUESTED, []
        return ReviewState.NONE, []

    def _checks_state(self, sha: str) -> tuple[ChecksState, list[str]]:
        runs = self._call("GET", f"/commits/{sha}/check-runs", params={"per_page": 100}, conditional=True).data or {}
        status = self._call("GET", f"/commits/{sha}/status", conditional=True).data or {}
        failing: list[str] = []
        pending = False
        seen = False
        for run in runs.get("check_runs") or []:
            seen = True
            if run.get("status") != "completed":
                pending = True
            elif run.get("conclusion") in _FAILED_CONCLUSIONS:
                title = ((run.get("output") or {}).get("title")) or run.get("conclusion")
                failing.append(f"check {run.get('name')} failed: {title}")
        for st in status.get("statuses") or []:
            seen = True
            if st.get("state") in ("failure", "error"):
                failing.append(f"status {st.get('context')} {st.get('state')}: {st.get('description') or ''}".rstrip())
            elif st.get("state") == "pending":
                pending = True
        if failing:
            return ChecksState.FAILING, failing
        if pending:
            return ChecksState.PENDING, []
        return (ChecksState.PASSING if seen else ChecksState.NONE), []
