"""GitLab as a code host: git over HTTPS with the token given per command, merge requests through python-gitlab.

The token never lands in a clone: every git command gets `http.extraHeader` through GIT_CONFIG_COUNT/KEY/VALUE
environment variables (not in argv, where `ps` would show it, and not in .git/config, where the agent could read
it). GitLab accepts an access token as the password of HTTP Basic with any user name; `oauth2` is the convention.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from gitlab.exceptions import GitlabCreateError, GitlabGetError
from gitlab.v4.objects import Project, ProjectMergeRequest

from tracker_bridge.agents.ci_logs import log_tail
from tracker_bridge.config import ConfigError, RepoConfig, Settings
from tracker_bridge.gitutil import GitError, git, git_env
from tracker_bridge.models import ChecksState, PullRequest, PullRequestState, ReviewState
from tracker_bridge.protocols import CodeHostError, Problem, PullRequestComment
from tracker_bridge_connectors.gitlab.client import (
    GitLabClient,
    explain,
    option_int,
    read_project,
    read_token,
    translated,
)

KNOWN_OPTIONS = ("project", "max_retries", "timeout")
_CHECKS = {
    "success": ChecksState.PASSING,
    "failed": ChecksState.FAILING,
    "canceled": ChecksState.FAILING,
    "skipped": ChecksState.NONE,
    "manual": ChecksState.PENDING,
}
_STATES = {"opened": PullRequestState.OPEN, "locked": PullRequestState.OPEN, "merged": PullRequestState.MERGED}
_CLOSING = re.compile(
    r"\b(?:clos(?:e|es|ed|ing)|fix(?:|es|ed|ing)|resolv(?:e|es|ed|ing))\s*:?\s+(\S*#\d+)", re.IGNORECASE
)


def project_path_of(url: str) -> str:
    """https://gitlab.example.com/group/sub/proj.git -> group/sub/proj"""
    path = urlsplit(url).path.strip("/")
    return path.removesuffix(".git")


def closing_line(body: str, base_url: str, project_path: str) -> str:
    """`Closes #N` lines for the GitLab issues the body links to and does not close yet ("" when none)."""
    base = re.escape(base_url.rstrip("/"))
    refs: list[str] = []
    for path, num in re.findall(base + r"/([\w.\-/]+?)/-/issues/(\d+)", body):
        refs.append(f"#{num}" if path == project_path else f"{path}#{num}")
    namespace, _, name = project_path.rpartition("/")
    closed = set()
    for ref in _CLOSING.findall(body):
        path, _, num = ref.rpartition("#")
        # GitLab resolves `proj#N` within the namespace and `group/proj#N` in full: both close this project's #N.
        same = path in ("", name, project_path) or f"{namespace}/{path}" == project_path
        closed.add(f"#{num}" if same else ref)
    wanted = [r for r in dict.fromkeys(refs) if r not in closed]
    return "\n".join(f"Closes {r}" for r in wanted)


class GitLabHost:
    """CodeHost protocol for a GitLab project (gitlab.com or self-managed)."""

    def __init__(
        self, name: str, client: GitLabClient, git_url: str, project_path: str, token: str, base_branch: str
    ) -> None:
        self.name = name
        self.gl = client
        self.git_url = git_url
        self.project_path = project_path
        self.base_branch = base_branch
        self._me: int | None = None  # the token's user id, read when first needed
        self._auth = "Authorization: Basic " + base64.b64encode(f"oauth2:{token}".encode()).decode()

    @classmethod
    def from_config(cls, cfg: RepoConfig, settings: Settings) -> GitLabHost:
        who = f'repos (name "{cfg.name}")'
        opts: dict[str, Any] = dict(cfg.options or {})
        problems = [
            f"{who}.options.{k}: unknown option. Fix: remove it; known options: {', '.join(KNOWN_OPTIONS)}"
            for k in opts
            if k not in KNOWN_OPTIONS
        ]
        parts = urlsplit(cfg.url)
        if parts.scheme not in ("http", "https"):
            problems.append(
                f"{who}.url = {cfg.url!r}: GitLab repositories are pushed over HTTPS. "
                "Fix: use the project's HTTPS clone URL, e.g. https://gitlab.com/group/project.git"
            )
        if problems:
            raise ConfigError(problems)
        api_url = cfg.api_url or f"{parts.scheme}://{parts.netloc}"
        project = str(opts.get("project") or project_path_of(cfg.url))
        token = read_token(cfg.token_env, CodeHostError, who)
        client = GitLabClient(
            api_url,
            token,
            max_retries=option_int(opts, "max_retries", 6, who),
            timeout=float(opts.get("timeout", 30)),
        )
        return cls(cfg.name, client, cfg.url, project, token, cfg.base_branch)

    # --- git -------------------------------------------------------------------------------------------------------

    def _git_env(self) -> dict[str, str]:
        env = git_env()
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader", GIT_CONFIG_VALUE_0=self._auth)
        return env

    def _git(self, cwd: Path, *args: str, what: str, check: bool = True) -> str:
        try:
            return git(cwd, *args, env=self._git_env(), check=check)
        except GitError as exc:
            raise CodeHostError(
                f"{what} ({self.git_url}) failed: {exc.stderr}. Fix: check the repository URL and that the token "
                "has the api (or write_repository) scope and the bot user is a Developer"
            ) from exc

    def clone(self, dest: Path, branch: str | None = None) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._git(dest.parent, "clone", "-q", "--branch", self.base_branch, self.git_url, str(dest), what="git clone")
        if branch:
            # The branch may not exist yet (a first run): then the clone stays at the base branch.
            refspec = f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
            self._git(dest, "fetch", "-q", "origin", refspec, what="git fetch", check=False)
            if self._git(dest, "rev-parse", "--verify", "-q", f"refs/remotes/origin/{branch}", what="git", check=False):
                self._git(dest, "checkout", "-q", "-B", branch, f"origin/{branch}", what="git checkout")

    def push(self, workspace: Path, branch: str) -> None:
        # The branch belongs to the agent: a forced push replaces an earlier attempt of the same ticket.
        self._git(workspace, "push", "-q", self.git_url, f"+refs/heads/{branch}:refs/heads/{branch}", what="git push")

    # --- REST ------------------------------------------------------------------------------------------------------

    def _project(self) -> Project:
        return self.gl.projects.get(self.project_path, lazy=True)

    def branch_exists(self, branch: str) -> bool:
        try:
            self._project().branches.get(branch)
        except GitlabGetError as exc:
            if exc.response_code == 404:
                return False
            with translated(CodeHostError, f"reading branch {branch} of {self.project_path}", self.gl.url):
                raise
        return True

    def find_pull_request(self, branch: str) -> PullRequest | None:
        with translated(CodeHostError, f"looking for the merge request of {branch}", self.gl.url):
            mrs = self._project().mergerequests.list(
                source_branch=branch, state="all", order_by="created_at", sort="desc", per_page=20, get_all=False
            )
        if not mrs:
            return None
        chosen = next((m for m in mrs if m.state == "opened"), mrs[0])
        return self.get_pull_request(str(chosen.iid))

    def open_pull_request(self, branch: str, title: str, body: str) -> PullRequest:
        closes = closing_line(body, self.gl.url, self.project_path)
        description = f"{body.rstrip()}\n\n{closes}" if closes else body
        data = {
            "source_branch": branch,
            "target_branch": self.base_branch,
            "title": title,
            "description": description,
            "remove_source_branch": True,
        }
        what = f"opening the merge request for {branch}"
        try:
            mr = self._project().mergerequests.create(data)
        except GitlabCreateError as exc:
            if exc.response_code == 409:  # GitLab: "Another open merge request already exists for this source branch"
                found = self.find_pull_request(branch)
                if found is not None:
                    return found
            raise CodeHostError(explain(exc, what, self.gl.url)) from exc
        except requests.RequestException as exc:
            raise CodeHostError(explain(exc, what, self.gl.url)) from exc
        return self.get_pull_request(str(mr.iid))

    def get_pull_request(self, pr_id: str) -> PullRequest:
        what = f"reading merge request !{pr_id} of {self.project_path}"
        with translated(CodeHostError, what, self.gl.url):
            mr = self._project().mergerequests.get(int(pr_id))
            approvals = mr.approvals.get()
            # user_notes_count leaves out system notes: with none, there is no review thread to read.
            notes = mr.notes.list(get_all=True, sort="asc", order_by="created_at") if mr.user_notes_count else []
            checks, failing = self._checks(mr)
        threads = [n.body for n in notes if not n.system and n.attributes.get("resolvable") and not n.resolved]
        if threads:
            review = ReviewState.CHANGES_REQUESTED
        elif approvals.attributes.get("approved") and approvals.attributes.get("approved_by"):
            review = ReviewState.APPROVED
        elif mr.attributes.get("reviewers"):
            review = ReviewState.REVIEW_REQUESTED
        else:
            review = ReviewState.NONE
        return PullRequest(
            id=str(mr.iid),
            url=mr.web_url,
            branch=mr.source_branch,
            base=mr.target_branch,
            title=mr.title,
            state=_STATES.get(mr.state, PullRequestState.CLOSED),
            draft=bool(mr.attributes.get("draft") or mr.attributes.get("work_in_progress")),
            head_sha=mr.attributes.get("sha"),
            checks=checks,
            review=review,
            feedback=[*threads, *failing],
            conflicts=_conflicts(mr.attributes),
            base_sha=(mr.attributes.get("diff_refs") or {}).get("start_sha"),
        )

    def _checks(self, mr: ProjectMergeRequest) -> tuple[ChecksState, list[str]]:
        pipeline = mr.attributes.get("head_pipeline")
        if not pipeline:
            return ChecksState.NONE, []
        state = _CHECKS.get(pipeline.get("status", ""), ChecksState.PENDING)
        if state is not ChecksState.FAILING:
            return state, []
        jobs = self._project().pipelines.get(pipeline["id"], lazy=True).jobs.list(scope="failed", get_all=True)
        names = [f"CI job {j.name!r} failed: {j.web_url}" for j in jobs] or [
            f"CI pipeline failed: {pipeline.get('web_url')}"
        ]
        return state, names

    # --- review requests -------------------------------------------------------------------------------------------

    def request_review(self, pr_id: str, username: str) -> None:
        """Make `username` the merge request's reviewer: GitLab takes user ids (`reviewer_ids`), so the username is
        looked up first (GET /users?username=)."""
        what = f"requesting a review of !{pr_id} of {self.project_path} from {username}"
        with translated(CodeHostError, what, self.gl.url):
            users = self.gl.users.list(username=username, get_all=False)
            if not users:
                raise CodeHostError(f"{what}: GitLab has no user named {username!r}", transient=False)
            mr = self._project().mergerequests.get(int(pr_id), lazy=True)
            mr.reviewer_ids = [users[0].id]
            mr.save()

    # --- follow-up comments ----------------------------------------------------------------------------------------

    def pull_request_comments(self, pr_id: str) -> list[PullRequestComment]:
        """The merge request's notes by people (system notes left out), oldest first."""
        what = f"reading the notes of merge request !{pr_id} of {self.project_path}"
        with translated(CodeHostError, what, self.gl.url):
            if self._me is None:
                self.gl.auth()
                assert self.gl.user is not None
                self._me = int(self.gl.user.id)
            mr = self._project().mergerequests.get(int(pr_id), lazy=True)
            notes = mr.notes.list(get_all=True, sort="asc", order_by="created_at")
        return [
            PullRequestComment(
                str(n.id),
                str((n.author or {}).get("username") or ""),
                str(n.body or ""),
                int((n.author or {}).get("id") or 0) == self._me,
            )
            for n in notes
            if not n.attributes.get("system")
        ]

    # --- CI logs ---------------------------------------------------------------------------------------------------

    def failed_check_logs(self, pr_id: str) -> dict[str, str]:
        """Failed jobs of the merge request's head pipeline: job name -> the tail of its trace (the job's log)."""
        what = f"reading the failed CI jobs of merge request !{pr_id} of {self.project_path}"
        with translated(CodeHostError, what, self.gl.url):
            mr = self._project().mergerequests.get(int(pr_id))
            pipeline = mr.attributes.get("head_pipeline")
            if not pipeline or _CHECKS.get(pipeline.get("status", "")) is not ChecksState.FAILING:
                return {}
            project = self._project()
            jobs = project.pipelines.get(pipeline["id"], lazy=True).jobs.list(scope="failed", get_all=True)
            logs: dict[str, str] = {}
            for job in jobs:
                raw = project.jobs.get(job.id, lazy=True).trace()
                text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
                logs[str(job.name)] = log_tail(text)
        return logs

    # --- doctor ----------------------------------------------------------------------------------------------------

    def check(self) -> list[Problem]:
        key = f"repos.{self.name}"
        try:
            with translated(CodeHostError, f"reading {self.project_path}", self.gl.url):
                project = read_project(self.gl, self.project_path)
        except CodeHostError as exc:
            return [Problem(f"{key}.url", str(exc), "check the project path, token_env and the bot's membership")]
        perms = project.attributes.get("permissions") or {}
        level = max((perms.get(k) or {}).get("access_level") or 0 for k in ("project_access", "group_access"))
        problems = []
        if level < 30:
            problems.append(
                Problem(
                    f"{key}.token_env",
                    f"the token's user has access level {level} in {self.project_path}",
                    "make the bot user at least Developer so it can push branches and open merge requests",
                )
            )
        # The project's default branch exists by definition: only another base branch costs a request to check.
        if self.base_branch != project.attributes.get("default_branch") and not self.branch_exists(self.base_branch):
            problems.append(
                Problem(
                    f"{key}.base_branch",
                    f"{self.project_path} has no branch {self.base_branch!r}",
                    f"set base_branch to an existing branch (the project's default is {project.default_branch!r})",
                )
            )
        return problems


def _conflicts(mr: dict[str, Any]) -> bool:
    """Does an open merge request no longer merge into its target? GitLab says it three ways, depending on its
    version: `has_conflicts`, `merge_status` (deprecated in 15.6) and `detailed_merge_status` (15.6 and later)."""
    if mr.get("state") != "opened":
        return False
    return bool(
        mr.get("has_conflicts")
        or mr.get("merge_status") == "cannot_be_merged"
        or mr.get("detailed_merge_status") in ("conflict", "cannot_be_merged")
    )
