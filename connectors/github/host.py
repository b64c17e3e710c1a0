"""GitHub as the code host: clone and push over HTTPS with the token, open and follow pull requests with PyGithub.

PyGithub (pointed at `api_url`, so GitHub Enterprise Server and the loopback simulator work alike) does the
repository, branch and pull-request calls. The pull request a ticket waits on is followed every cycle, so it must be
cheap: PyGithub's own conditional refresh (`PullRequest.update()`, If-None-Match with the ETag it kept, a 304 that
costs no rate limit) keeps the pull request itself; the lists around it (reviews, review comments, check runs,
commit statuses) are paginated lists PyGithub cannot ask conditionally, so those four go through the shared
`GitHubClient`, which keeps each answer's ETag.

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

import httpx
import requests
from github import Auth, Github, GithubException, GithubRetry
from github.PullRequest import PullRequest as GhPull
from github.Repository import Repository

from tracker_bridge.agents.ci_logs import log_tail
from tracker_bridge.config import ConfigError, RepoConfig, Settings
from tracker_bridge.gitutil import GitTimeout, git_env, run_git
from tracker_bridge.models import ChecksState, PullRequest, PullRequestState, ReviewState
from tracker_bridge.protocols import CodeHostError, Problem, PullRequestComment
from tracker_bridge_connectors.github.client import GitHubAPIError, GitHubClient
from tracker_bridge_connectors.github.refs import repo_from_remote

_HINTS = {
    403: "the token lacks a permission, or a rate limit was hit; see docs/github.md for the scopes",
    404: "it does not exist, or the token cannot see it (private repository: check the scopes)",
    422: "GitHub rejected the request",
}
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
        self.github = Github(
            auth=Auth.Token(token),
            base_url=self.client.api_url,
            user_agent="tracker-bridge",
            per_page=100,
            # retries: 5xx and rate-limit 403/429, honouring Retry-After (PyGithub's GithubRetry on urllib3)
            retry=GithubRetry(
                total=self.client.policy.attempts,
                backoff_factor=self.client.policy.base_delay,
                status_forcelist=[*range(500, 600), 429],  # GithubRetry adds 403 (rate limits) itself
            ),
            # our volume is a few calls per ticket: no pause between reads; GitHub asks for one second between
            # content-creating writes, which PyGithub keeps
            seconds_between_requests=None,
            lazy=True,
        )
        self._pulls: dict[int, GhPull] = {}  # the pull requests followed, kept for their conditional refresh
        self._me: str | None = None  # the token's login, read when first needed

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

    def _repository(self) -> Repository:
        return self.github.get_repo(self.full_name)  # lazy (Github(lazy=True)): no request until data is read

    def _error(self, what: str, exc: Exception) -> CodeHostError:
        if isinstance(exc, GithubException):
            message = (exc.data or {}).get("message") if isinstance(exc.data, dict) else None
            hint = _HINTS.get(exc.status, "GitHub had a problem; it will be retried on the next cycle")
            if exc.status == 401:
                hint = f"the token in ${self.client.token_env} is missing, expired or revoked (docs/github.md)"
            return CodeHostError(f"{self.full_name}: {what}: GitHub answered {exc.status} {message or ''}. {hint}")
        return CodeHostError(f"{self.full_name}: {what}: cannot reach GitHub at {self.client.api_url} ({exc})")

    def _call(self, method: str, suffix: str, **kwargs: Any) -> Any:
        try:
            return self.client.rest(method, self._repo_path(suffix), **kwargs)
        except GitHubAPIError as exc:
            raise CodeHostError(f"{self.full_name}: {exc}") from exc

    # --- doctor ----------------------------------------------------------------------------------------------------

    def check(self) -> list[Problem]:
        key = f'repos (name "{self.name}")'
        try:
            repository = self._repository()
            data = repository.raw_data  # the one GET /repos/{owner}/{repo}
        except (GithubException, requests.RequestException) as exc:
            return [Problem(key, f"cannot read {self.full_name}: {self._error('GET', exc)}",
                            "check url, api_url and the token's access")]  # fmt: skip
        problems: list[Problem] = []
        perms = data.get("permissions") or {}
        if perms and not perms.get("push"):
            fix = "grant Contents: write (fine-grained token) or the repo scope (classic)"
            problems.append(Problem(key, f"the token cannot push to {self.full_name}", fix))
        scopes = self.github.oauth_scopes  # from the X-OAuth-Scopes header; None for fine-grained tokens
        if scopes and "repo" not in {s.strip() for s in scopes}:
            problems.append(
                Problem(key, f"the classic token's scopes '{', '.join(scopes)}' lack 'repo'", "add the repo scope")
            )
        if self.base_branch != data.get("default_branch") and not self.branch_exists(self.base_branch):
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
        # Not Repository.get_branch: it leaves the "/" of agent/... unescaped, and GitHub's path takes one segment.
        try:
            self.github.requester.requestJsonAndCheck(
                "GET", f"/repos/{self.full_name}/branches/{quote(branch, safe='')}"
            )
        except GithubException as exc:
            if exc.status == 404:
                return False
            raise self._error(f"reading branch {branch}", exc) from exc
        except requests.RequestException as exc:
            raise self._error(f"reading branch {branch}", exc) from exc
        return True

    # --- pull requests ---------------------------------------------------------------------------------------------

    def find_pull_request(self, branch: str) -> PullRequest | None:
        try:
            found = self._repository().get_pulls(state="all", head=f"{self.owner}:{branch}")
            pulls = [p for p in found.get_page(0) if p.head.ref == branch]
        except (GithubException, requests.RequestException) as exc:
            raise self._error(f"looking for the pull request of {branch}", exc) from exc
        if not pulls:
            return None
        # an open one wins; otherwise the newest (a restart must follow the PR it opened, not open a second)
        pulls.sort(key=lambda p: (p.state == "open", p.number), reverse=True)
        self._pulls[pulls[0].number] = pulls[0]
        return self._to_pull_request(pulls[0])

    def open_pull_request(self, branch: str, title: str, body: str) -> PullRequest:
        existing = self.find_pull_request(branch)
        if existing is not None and existing.state is PullRequestState.OPEN:
            return existing
        try:
            pull = self._repository().create_pull(
                base=self.base_branch, head=branch, title=title, body=self._with_closing(body), draft=self.draft
            )
        except GithubException as exc:
            if exc.status == 422:  # "A pull request already exists" (a race with ourselves after a crash)
                again = self.find_pull_request(branch)
                if again is not None:
                    return again
            raise self._error(f"opening the pull request for {branch}", exc) from exc
        except requests.RequestException as exc:
            raise self._error(f"opening the pull request for {branch}", exc) from exc
        self._pulls[pull.number] = pull
        return self._to_pull_request(pull)

    def _with_closing(self, body: str) -> str:
        """`Closes #N` for issues of this repository named in the body, so merging closes the ticket's issue."""
        numbers = re.findall(rf"(?<![\w/]){re.escape(self.full_name)}#(\d+)", body)
        lines = [f"Closes #{n}" for n in dict.fromkeys(numbers) if not re.search(rf"(?i)\bcloses #{n}\b", body)]
        return body if not lines else body.rstrip() + "\n\n" + "\n".join(lines) + "\n"

    def _pull(self, number: int) -> GhPull:
        """The pull request, refreshed: the first time read, then re-validated with its ETag (a 304 is free)."""
        try:
            pull = self._pulls.get(number)
            if pull is None:
                pull = self._repository().get_pull(number)  # lazy: the update() below is its first read
                self._pulls[number] = pull
            pull.update()  # If-None-Match with the ETag of the last read; a 304 keeps what we have
        except (GithubException, requests.RequestException) as exc:
            raise self._error(f"reading pull request #{number}", exc) from exc
        return pull

    def get_pull_request(self, pr_id: str) -> PullRequest:
        return self._to_pull_request(self._pull(int(str(pr_id).lstrip("#"))))

    def _to_pull_request(self, pull: GhPull) -> PullRequest:
        data: dict[str, Any] = pull.raw_data
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
            review, feedback = self._review_state(number, data)
            if head_sha:
                checks, failing = self._checks_state(head_sha)
                feedback += failing
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
            # GitHub computes mergeability in the background: `mergeable` is null until it knows (no conflict yet)
            conflicts=state is PullRequestState.OPEN
            and (data.get("mergeable") is False or data.get("mergeable_state") == "dirty"),
            base_sha=(data.get("base") or {}).get("sha"),
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

    # --- review requests -------------------------------------------------------------------------------------------

    def request_review(self, pr_id: str, username: str) -> None:
        """POST /pulls/{n}/requested_reviewers (PyGithub `create_review_request`); GitHub answers 422 for a login
        that is not a collaborator or is the pull request's author."""
        number = int(str(pr_id).lstrip("#"))
        try:
            pull = self._pulls.get(number) or self._pull(number)
            pull.create_review_request(reviewers=[username])
        except (GithubException, requests.RequestException) as exc:
            raise self._error(f"requesting a review of #{number} from {username}", exc) from exc

    # --- follow-up comments ----------------------------------------------------------------------------------------

    def _login(self) -> str:
        """The token's own account (its comments never ask the agent for anything), read once."""
        if self._me is None:
            self._me = str((self.client.rest("GET", "/user").data or {}).get("login") or "")
        return self._me

    def pull_request_comments(self, pr_id: str) -> list[PullRequestComment]:
        """The pull request's conversation comments (an issue's, on GitHub) and its review comments, oldest first."""
        number = int(str(pr_id).lstrip("#"))
        me = self._login().lower()
        found: list[PullRequestComment] = []
        for kind, suffix in (("issue", f"/issues/{number}/comments"), ("review", f"/pulls/{number}/comments")):
            for c in self._call("GET", suffix, params={"per_page": 100}, conditional=True).data or []:
                author = str((c.get("user") or {}).get("login") or "")
                found.append(
                    PullRequestComment(f"{kind}:{c.get('id')}", author, str(c.get("body") or ""), author.lower() == me)
                )
        return found

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

    # --- CI logs ---------------------------------------------------------------------------------------------------

    def failed_check_logs(self, pr_id: str) -> dict[str, str]:
        """Failed GitHub Actions jobs of the pull request's head: name -> the tail of the job's log.

        An Actions job is a check run of the `github-actions` app whose id is the job's id; its log comes from
        `GET /actions/jobs/{id}/logs` (PyGithub's `WorkflowJob.logs_url()`), which redirects to a signed download
        URL on another host, fetched without the token. Check runs of other apps have no log here and are left out
        (their title is already in the pull request's feedback).
        """
        sha = self._pull(int(str(pr_id).lstrip("#"))).raw_data.get("head", {}).get("sha")
        if not sha:
            return {}
        runs = self._call("GET", f"/commits/{sha}/check-runs", params={"per_page": 100}, conditional=True).data or {}
        logs: dict[str, str] = {}
        for run in runs.get("check_runs") or []:
            failed = run.get("status") == "completed" and run.get("conclusion") in _FAILED_CONCLUSIONS
            if not failed or (run.get("app") or {}).get("slug") != "github-actions":
                continue
            name = str(run.get("name"))
            try:
                location = self._repository().get_workflow_job(int(run["id"])).logs_url()
                with httpx.Client(timeout=30, follow_redirects=True) as plain:  # no token may go to that host
                    download = plain.get(location, headers={"User-Agent": "tracker-bridge"})
                download.raise_for_status()
            except GithubException as exc:
                if exc.status in (404, 410):  # logs expired (90 days by default) or deleted
                    continue
                raise self._error(f"reading the log of check {name}", exc) from exc
            except (httpx.HTTPError, requests.RequestException) as exc:
                raise self._error(f"downloading the log of check {name}", exc) from exc
            logs[name] = log_tail(download.text)
        return logs
