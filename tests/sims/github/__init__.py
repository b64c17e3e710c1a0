"""A GitHub simulator: REST (checked against the official OpenAPI description) and GraphQL (executed against the
official schema) on loopback, with git over smart HTTP on a second loopback server.

    with GitHubSim(tmp_path) as gh:
        gh.create_org("acme")
        repo = gh.create_repo("acme/widgets", seed=workdir)
        project = gh.create_project("acme", 1)                 # Status options: DEFAULT_COLUMNS
        issue = gh.create_issue(repo, "Fix parse_amount", body, by="alice")
        gh.add_to_project(project, issue, status="Agent", by="alice")
        ... connector with url=gh.url, token=gh.token, remote gh.clone_url("acme/widgets") ...
        gh.merge_pull(repo.pulls[1])                            # real git merge into the base branch

Behaviour as on GitHub: a request without a valid token gets 401 "Bad credentials"; a request the REST description
does not allow gets 404 (unknown path or method) or 422 (bad body/parameters); GET answers carry an ETag and answer
If-None-Match with 304, which does not count against the rate limit; every answer carries x-ratelimit-* headers, and
an exhausted limit answers 403 with x-ratelimit-remaining: 0. `server.inject(...)` injects faults (429/5xx/403 with
retry-after); `server.log` counts requests; `world.graphql_points` counts GraphQL points.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote

from tests.sims.git_http import GitHttpServer
from tests.sims.github import gql, rest
from tests.sims.github.render import Renderer
from tests.sims.github.world import (
    CheckRun,
    Comment,
    CommitStatus,
    Event,
    Field,
    Issue,
    Item,
    Option,
    Project,
    Pull,
    Repo,
    Review,
    ReviewComment,
    World,
    next_id,
    now,
)
from tests.sims.http import Request, Response, SimServer
from tests.sims.openapi import OpenAPIValidator

SPEC_PATH = Path(__file__).resolve().parents[2] / "schemas" / "github" / "api.github.com.trimmed.json"
DEFAULT_COLUMNS = ("Todo", "Agent", "In Progress", "In Review", "Done", "Needs Refinement", "Needs Human")
BOT = "tracker-bot"
TOKEN = "ghp_simulated_token_0123456789"

_validator: OpenAPIValidator | None = None


def _spec_validator() -> OpenAPIValidator:
    global _validator
    if _validator is None:
        _validator = OpenAPIValidator.from_file(SPEC_PATH)
    return _validator


class GitHubSim:
    def __init__(self, root: Path, *, token: str = TOKEN, bot: str = BOT) -> None:
        self.root = Path(root)
        self.token = token
        self.bot = bot
        self.world = World(git_root=self.root / "git")
        self.world.user(bot)
        self.world.tokens[token] = (bot, None)
        self.server = SimServer()
        self.server.not_found = lambda req: rest.not_found()  # type: ignore[method-assign]
        self.server.before.append(self._gate)
        self.git = GitHttpServer(self.world.git_root, token=token)
        self.validator = _spec_validator()
        self.validation_errors: list[str] = []  # requests GitHub would have rejected (tests assert it stays empty)
        self.render: Renderer = Renderer(self.world, "http://unstarted")
        rest.install(self)
        self.server.add_route("POST", "/graphql", self._graphql)

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> Self:
        self.server.start()
        self.git.start()
        self.render.base = self.server.url
        return self

    def stop(self) -> None:
        self.server.stop()
        self.git.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def clone_url(self, full_name: str) -> str:
        return self.git.repo_url(full_name)

    # --- the HTTP face ---------------------------------------------------------------------------------------------

    def add_token(self, token: str, login: str, scopes: str | None = None) -> None:
        """Another token; `scopes` (e.g. "repo, project") makes it a classic token that reports X-OAuth-Scopes."""
        self.world.user(login)
        self.world.tokens[token] = (login, scopes)

    def _token(self, req: Request) -> str | None:
        scheme, _, value = (req.headers.get("authorization") or "").partition(" ")
        return value.strip() if scheme.lower() in ("bearer", "token") else None

    def viewer(self, req: Request) -> str:
        return self.world.tokens[self._token(req) or ""][0]

    def _gate(self, req: Request) -> Response | None:
        """Before any route: credentials, then the REST description (as GitHub's router and validator would)."""
        token = self._token(req)
        if req.path.startswith(rest.DOWNLOADS):
            if req.headers.get("authorization"):  # the signed URL is on another host: no token may follow it
                self.validation_errors.append(f"{req.method} {req.path}: the API token was sent to the download URL")
            return None
        if token is None or token not in self.world.tokens:
            return Response(401, {"message": "Bad credentials", "documentation_url": rest.DOCS, "status": "401"})
        if req.path == "/graphql":
            return None
        errors = self.validator.check(req)
        if errors:
            self.validation_errors.append(f"{req.method} {req.path}: {'; '.join(errors)}")
            if errors[0].startswith(("unknown path", "method ")):
                return rest.not_found()
            return rest.error(422, "Invalid request.\n\n" + "\n".join(errors))
        return None

    def _rate_headers(self, req: Request, graphql: bool = False) -> dict[str, str]:
        limit = self.world.graphql if graphql else self.world.core
        headers = {
            "x-ratelimit-limit": str(limit.limit),
            "x-ratelimit-remaining": str(limit.remaining),
            "x-ratelimit-used": str(limit.used),
            "x-ratelimit-reset": str(limit.reset),
            "x-ratelimit-resource": "graphql" if graphql else "core",
        }
        scopes = self.world.tokens.get(self._token(req) or "", ("", None))[1]
        if scopes is not None:
            headers["x-oauth-scopes"] = scopes
        return headers

    def _exhausted(self, req: Request, graphql: bool = False) -> Response | None:
        limit = self.world.graphql if graphql else self.world.core
        if limit.remaining > 0:
            return None
        if time.time() >= limit.reset:
            limit.remaining, limit.reset = limit.limit, int(time.time()) + 3600
            return None
        uid = self.world.user(self.viewer(req))
        return Response(
            403,
            {"message": f"API rate limit exceeded for user ID {uid}.", "documentation_url": rest.DOCS},
            self._rate_headers(req, graphql),
        )

    def rest_route(self, method: str, pattern: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        """Register a REST handler wrapped with the rate limit, ETag/304 and x-ratelimit headers."""

        def register(fn: Callable[..., Response]) -> Callable[..., Response]:
            def handler(req: Request, **params: str) -> Response:
                limited = self._exhausted(req)
                if limited is not None:
                    return limited
                resp = fn(req, **{k: unquote(v) for k, v in params.items()})
                if req.method == "GET" and resp.status == 200:
                    digest = hashlib.sha1(json.dumps(resp.body, sort_keys=True).encode()).hexdigest()
                    etag = f'W/"{digest}"'
                    if req.headers.get("if-none-match") == etag:
                        return Response(304, None, {"ETag": etag, **self._rate_headers(req)})
                    resp.headers["ETag"] = etag
                self.world.core.spend(1)
                resp.headers.update(self._rate_headers(req))
                return resp

            self.server.add_route(method, pattern, handler)
            return fn

        return register

    def _graphql(self, req: Request) -> Response:
        limited = self._exhausted(req, graphql=True)
        if limited is not None:
            return limited
        try:
            body = req.json()
        except json.JSONDecodeError:
            return Response(400, {"message": "Problems parsing JSON", "documentation_url": rest.DOCS})
        scopes = self.world.tokens[self._token(req) or ""][1]
        status, out = gql.execute(self, self.viewer(req), body, scopes)
        return Response(status, out, self._rate_headers(req, graphql=True))

    def graphql_documents(self) -> list[str]:
        """Every GraphQL document the simulator received (for tests that check what a connector sends)."""
        docs = []
        for r in self.server.log:
            if r.path == "/graphql" and r.method == "POST":
                try:
                    docs.append(str(r.json()["query"]))
                except (ValueError, KeyError, TypeError):
                    continue
        return docs

    # --- people's actions (what tests do to the world) ----------------------------------------------------------------

    def create_org(self, login: str) -> None:
        self.world.orgs.add(login)
        self.world.user(login)

    def create_repo(
        self, full_name: str, seed: Path | None = None, *, collaborators: dict[str, str] | None = None
    ) -> Repo:
        owner, name = full_name.split("/")
        self.world.user(owner)
        bare = self.git.create_repo(full_name, seed=seed)
        repo = Repo(owner=owner, name=name, bare=bare)
        repo.collaborators = {self.bot: "write", **(collaborators or {})}
        for login in repo.collaborators:
            self.world.user(login)
        self.world.repos[full_name] = repo
        return repo

    def create_project(
        self, owner: str, number: int, columns: tuple[str, ...] = DEFAULT_COLUMNS, *, is_user: bool = False
    ) -> Project:
        status = Field(id=next_id(), name="Status", data_type="single_select")
        status.options = [Option(id=f"{abs(hash((owner, number, c))) % 16**8:08x}", name=c) for c in columns]
        fields = [Field(id=next_id(), name="Title", data_type="title"), status]
        project = Project(owner=owner, is_user=is_user, number=number, title=f"{owner} board {number}", fields=fields)
        self.world.projects.append(project)
        return project

    def project(self, owner: str, number: int, is_user: bool | None = None) -> Project | None:
        for p in self.world.projects:
            if p.owner == owner and p.number == number and (is_user is None or p.is_user == is_user):
                return p
        return None

    def create_issue(
        self, repo: Repo, title: str, body: str = "", *, labels: tuple[str, ...] = (), by: str = "alice"
    ) -> Issue:
        self.world.user(by)
        issue = Issue(repo=repo, number=repo.next_number(), title=title, body=body, user=by)
        repo.issues[issue.number] = issue
        for label in labels:
            self.add_label(issue, label, by=by)
        return issue

    def issue(self, ref: str) -> Issue:
        full_name, _, number = ref.partition("#")
        return self.world.repos[full_name].issues[int(number)]

    def add_to_project(self, project: Project, issue: Issue, status: str | None = None, by: str = "alice") -> Item:
        item = Item(id=next_id(), project=project, issue=issue)
        project.items.append(item)
        if status is not None:
            self.set_status(item, status, by=by)
        return item

    def set_status(self, item: Item, column: str, by: str = "alice") -> None:
        """A person (or the connector) drags the card to `column`."""
        self.world.user(by)
        item.status = item.project.status.option(column).id
        item.status_setter = by
        item.status_updated = item.updated_at = now()
        item.history.append((column, by))

    def item(self, issue: Issue, project: Project | None = None) -> Item | None:
        for p in [project] if project else self.world.projects:
            found = p.item_for(issue)
            if found is not None:
                return found
        return None

    def column(self, issue: Issue) -> str | None:
        item = self.item(issue)
        return item.status_name if item else None

    def add_label(self, issue: Issue, name: str, by: str = "alice") -> None:
        self.world.user(by)
        if name not in issue.labels:
            issue.labels.append(name)
            issue.events.append(Event(id=next_id(), event="labeled", actor=by, created_at=now(), label=name))
            issue.touch()

    def remove_label(self, issue: Issue, name: str, by: str = "alice") -> None:
        if name in issue.labels:
            issue.labels.remove(name)
            issue.events.append(Event(id=next_id(), event="unlabeled", actor=by, created_at=now(), label=name))
            issue.touch()

    def comment(self, issue: Issue, body: str, by: str = "alice") -> Comment:
        self.world.user(by)
        c = Comment(id=next_id(), body=body, user=by, created_at=now(), updated_at=now())
        issue.comments.append(c)
        issue.touch()
        return c

    def pr_comment(self, pr: Pull, body: str, by: str = "alice") -> Comment:
        """A comment in the pull request's conversation (not on a line of its diff)."""
        self.world.user(by)
        c = Comment(id=next_id(), body=body, user=by, created_at=now(), updated_at=now())
        pr.comments.append(c)
        pr.updated_at = now()
        return c

    def open_pull(self, repo: Repo, head: str, title: str, body: str = "", by: str = "alice") -> Pull:
        pr = Pull(
            repo=repo, number=repo.next_number(), title=title, body=body, head=head, base=repo.default_branch, user=by
        )
        repo.pulls[pr.number] = pr
        return pr

    def merge_pull(self, pr: Pull) -> str:
        """Merge as GitHub's merge button does: a real merge commit on the base branch of the bare repository."""
        repo = pr.repo
        head, base = pr.head_sha, repo.branch_sha(pr.base)
        assert head and base, "head and base branches must exist"
        tree = repo.git("merge-tree", "--write-tree", base, head).splitlines()[0]
        env_args = ["-c", "user.name=GitHub", "-c", "user.email=noreply@github.com"]
        commit = subprocess.run(
            ["git", *env_args, "commit-tree", tree, "-p", base, "-p", head, "-m", f"Merge pull request #{pr.number}"],
            cwd=repo.bare,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        repo.git("update-ref", f"refs/heads/{pr.base}", commit)
        pr.head_sha_at_close = head
        pr.state, pr.merged, pr.merged_at, pr.merge_commit_sha = "closed", True, now(), commit
        pr.updated_at = now()
        self._close_linked_issues(pr)
        return commit

    def _close_linked_issues(self, pr: Pull) -> None:
        import re

        for number in re.findall(r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?) #(\d+)", pr.body):
            issue = pr.repo.issues.get(int(number))
            if issue is not None and issue.state == "open":
                issue.state = "closed"
                issue.events.append(Event(id=next_id(), event="closed", actor=pr.user, created_at=now()))
                issue.touch()

    def close_pull(self, pr: Pull) -> None:
        pr.head_sha_at_close = pr.head_sha
        pr.state = "closed"
        pr.updated_at = now()

    def request_review(self, pr: Pull, login: str) -> None:
        self.world.user(login)
        pr.requested_reviewers.append(login)
        pr.updated_at = now()

    def review(
        self, pr: Pull, login: str, state: str, body: str = "", comments: tuple[tuple[str, int, str], ...] = ()
    ) -> Review:
        self.world.user(login)
        rv = Review(id=next_id(), user=login, state=state, body=body)
        pr.reviews.append(rv)
        for path, line, text in comments:
            pr.review_comments.append(
                ReviewComment(id=next_id(), review_id=rv.id, user=login, path=path, line=line, body=text)
            )
        if login in pr.requested_reviewers:
            pr.requested_reviewers.remove(login)
        pr.updated_at = now()
        return rv

    def add_check_run(
        self,
        sha: str,
        name: str,
        status: str = "completed",
        conclusion: str | None = "success",
        title: str = "",
        log: str | None = None,
    ) -> CheckRun:
        """A check run on `sha`; with `log` it is a GitHub Actions job whose log the Actions API serves."""
        run = CheckRun(
            id=next_id(), name=name, head_sha=sha, status=status, conclusion=conclusion, title=title, log=log
        )
        self.world.check_runs.append(run)
        return run

    def add_status(self, sha: str, context: str, state: str, description: str = "") -> None:
        self.world.statuses.setdefault(sha, []).append(
            CommitStatus(id=next_id(), context=context, state=state, description=description)
        )

    def status_comments(self, issue: Issue, marker: str = "<!-- tracker-bridge:status -->") -> list[Comment]:
        return [c for c in issue.comments if marker in c.body]

    def requests(self, *, exclude_git: bool = True) -> list[Request]:
        return list(self.server.log)

    def spent(self) -> dict[str, Any]:
        """Requests and points so far (for the benchmarks)."""
        log = self.server.log
        return {
            "requests": len(log),
            "graphql_requests": sum(1 for r in log if r.path == "/graphql"),
            "graphql_points": self.world.graphql_points,
            "core_used": self.world.core.used,
        }
