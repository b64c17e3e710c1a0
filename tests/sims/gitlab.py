"""A GitLab simulator: REST v4 on loopback, stateful, as python-gitlab uses it.

It keeps projects, issues, labels, issue boards and their lists, notes, resource label events, members, merge
requests, pipelines and approvals, and answers like gitlab.com: `PRIVATE-TOKEN` authentication, pagination headers
(X-Page, X-Per-Page, X-Next-Page, X-Prev-Page, X-Total, X-Total-Pages, Link), RateLimit-* headers on every answer,
scoped labels (`workflow::a` replaces `workflow::b`), "Closes #N" in a merged merge request's description closing
the issue, a system note on an issue a merge request mentions. Every /api/v4 request is checked against the trimmed
GitLab description in tests/schemas/gitlab first; what it rejects gets GitLab's error shape ({"error": ...},
400/404/405).

Git itself (clone, push) is served by tests.sims.git_http.GitHttpServer; give the simulator that server so it knows
which branches exist and what their head commits are.

People act through helper methods (`label`, `move_to_list`, `comment`, `merge`, ...) named after what a person does
in GitLab's web UI; they record resource label events and bump `updated_at` exactly as the UI would.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlencode

from tests.sims.git_http import GitHttpServer
from tests.sims.http import Request, Response, SimServer
from tests.sims.openapi import OpenAPIValidator

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "gitlab" / "gitlab-v4-trimmed.json"
API = "/api/v4"

GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50

# Issue references as GitLab reads them in Markdown: #N, proj#N (same namespace), group/proj#N.
_ISSUE_REF = re.compile(r"(?<![\w/#])((?:[\w.-]+(?:/[\w.-]+)*)?#\d+)\b")
_CLOSING = re.compile(
    r"\b(?:clos(?:e|es|ed|ing)|fix(?:|es|ed|ing)|resolv(?:e|es|ed|ing))\s*:?\s+((?:[\w.-]+(?:/[\w.-]+)*)?#\d+)",
    re.IGNORECASE,
)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class User:
    id: int
    username: str
    name: str

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "name": self.name, "state": "active"}


@dataclass
class Label:
    id: int
    name: str
    color: str = "#428BCA"

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "color": self.color, "description": None, "text_color": "#FFFFFF"}


@dataclass
class BoardList:
    id: int
    label: Label
    position: int


@dataclass
class Board:
    id: int
    name: str
    lists: list[BoardList] = field(default_factory=list)


@dataclass
class Note:
    id: int
    body: str
    author: User
    created_at: datetime
    updated_at: datetime
    system: bool = False
    resolvable: bool = False
    resolved: bool = False


@dataclass
class LabelEvent:
    id: int
    user: User
    created_at: datetime
    label: Label
    action: str  # add | remove


@dataclass
class Issue:
    id: int
    iid: int
    title: str
    description: str
    author: User
    created_at: datetime
    updated_at: datetime
    state: str = "opened"
    closed_at: datetime | None = None
    labels: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    label_events: list[LabelEvent] = field(default_factory=list)


@dataclass
class Job:
    id: int
    name: str
    status: str
    stage: str = "test"
    trace: str = ""  # the job's log, as GET /projects/:id/jobs/:job_id/trace serves it


@dataclass
class Pipeline:
    id: int
    iid: int
    sha: str
    ref: str
    status: str
    created_at: datetime
    updated_at: datetime
    jobs: list[Job] = field(default_factory=list)


@dataclass
class MergeRequest:
    id: int
    iid: int
    title: str
    description: str
    source_branch: str
    target_branch: str
    author: User
    created_at: datetime
    updated_at: datetime
    state: str = "opened"
    sha: str | None = None
    merge_commit_sha: str | None = None
    head_pipeline: Pipeline | None = None
    approved_by: list[User] = field(default_factory=list)
    reviewers: list[User] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    merged_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def draft(self) -> bool:
        return bool(re.match(r"^\s*(\[draft\]|draft:|\(draft\))", self.title, re.IGNORECASE))


@dataclass
class Project:
    id: int
    path: str  # path_with_namespace
    default_branch: str = "main"
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level
    labels: list[Label] = field(default_factory=list)
    boards: list[Board] = field(default_factory=list)
    issues: dict[int, Issue] = field(default_factory=dict)
    mrs: dict[int, MergeRequest] = field(default_factory=dict)
    pipelines: dict[int, Pipeline] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.path.rsplit("/", 1)[0]


class GitLabError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def _not_found(what: str = "404 Not found") -> GitLabError:
    return GitLabError(404, {"message": what})


class GitLabSim:
    """The simulated GitLab instance. `url` is the base URL (python-gitlab adds /api/v4)."""

    def __init__(self, git: GitHttpServer | None = None, *, rate_limit: int = 2000) -> None:
        self.server = SimServer()
        self.validator = OpenAPIValidator.from_file(SCHEMA, base_path=API)
        self.git = git
        self.rate_limit = rate_limit
        self.users: dict[int, User] = {}
        self.tokens: dict[str, tuple[int, list[str]]] = {}
        self.projects: dict[int, Project] = {}
        self.group_boards: dict[str, list[Board]] = {}
        self.validation_errors: list[str] = []
        self._ids = itertools.count(1)
        self._clock = datetime.now(UTC)
        self.server.before.append(self._gate)
        self._routes()

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> GitLabSim:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    # --- setup and what people do in the web UI ---------------------------------------------------------------------

    def now(self) -> datetime:
        """A clock that moves forward at least a millisecond per change, so updated_at values are distinct."""
        real = datetime.now(UTC)
        self._clock = max(real, self._clock + timedelta(milliseconds=1))
        return self._clock

    def next_id(self) -> int:
        return next(self._ids)

    def add_user(self, username: str, *, token: str | None = None, scopes: list[str] | None = None) -> User:
        user = User(self.next_id(), username, username.replace("-", " ").title())
        self.users[user.id] = user
        if token:
            self.tokens[token] = (user.id, scopes if scopes is not None else ["api"])
        return user

    def user(self, username: str) -> User:
        for u in self.users.values():
            if u.username == username:
                return u
        raise KeyError(username)

    def add_project(
        self, path: str, *, default_branch: str = "main", members: dict[User, int] | None = None
    ) -> Project:
        project = Project(self.next_id(), path, default_branch)
        for user, level in (members or {}).items():
            project.members[user.id] = level
        self.projects[project.id] = project
        return project

    def project(self, ref: str | int) -> Project:
        if isinstance(ref, int) or str(ref).isdigit():
            found = self.projects.get(int(ref))
            if found:
                return found
            raise _not_found("404 Project Not Found")
        path = unquote(str(ref))
        for p in self.projects.values():
            if p.path == path:
                return p
        raise _not_found("404 Project Not Found")

    def label_named(self, project: Project, name: str, *, create: bool = True) -> Label | None:
        for lab in project.labels:
            if lab.name == name:
                return lab
        if not create:
            return None
        lab = Label(self.next_id(), name)
        project.labels.append(lab)
        return lab

    def add_board(self, project: Project, list_labels: list[str], name: str = "Development") -> Board:
        board = Board(self.next_id(), name)
        for pos, label_name in enumerate(list_labels):
            lab = self.label_named(project, label_name)
            assert lab is not None
            board.lists.append(BoardList(self.next_id(), lab, pos))
        project.boards.append(board)
        return board

    def age(self, delta: timedelta) -> None:
        """Move every timestamp `delta` into the past, as if the set-up had happened that long ago."""
        for project in self.projects.values():
            for issue in project.issues.values():
                issue.created_at -= delta
                issue.updated_at -= delta
                for note in issue.notes:
                    note.created_at -= delta
                    note.updated_at -= delta
                for event in issue.label_events:
                    event.created_at -= delta

    def add_group_board(self, group: str, list_labels: list[str], name: str = "Development") -> Board:
        board = Board(self.next_id(), name)
        for pos, label_name in enumerate(list_labels):
            board.lists.append(BoardList(self.next_id(), Label(self.next_id(), label_name), pos))
        self.group_boards.setdefault(group, []).append(board)
        return board

    def create_issue(
        self, project: Project, title: str, description: str = "", *, author: User, labels: list[str] | None = None
    ) -> Issue:
        ts = self.now()
        iid = len(project.issues) + 1
        issue = Issue(self.next_id(), iid, title, description, author, ts, ts)
        project.issues[iid] = issue
        if labels:
            self.change_labels(project, issue, author, add=labels)
        return issue

    def change_labels(
        self, project: Project, issue: Issue, actor: User, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        """Apply a label edit the way GitLab does: scoped labels replace their siblings, events are recorded."""
        ts = self.now()
        changed = False
        for name in remove:
            if name in issue.labels:
                issue.labels.remove(name)
                lab = self.label_named(project, name)
                assert lab is not None
                issue.label_events.append(LabelEvent(self.next_id(), actor, ts, lab, "remove"))
                changed = True
        for name in add:
            if name in issue.labels:
                continue
            if "::" in name:
                scope = name.rsplit("::", 1)[0]
                for other in [x for x in issue.labels if "::" in x and x.rsplit("::", 1)[0] == scope]:
                    issue.labels.remove(other)
                    lab = self.label_named(project, other)
                    assert lab is not None
                    issue.label_events.append(LabelEvent(self.next_id(), actor, ts, lab, "remove"))
            lab = self.label_named(project, name)
            assert lab is not None
            issue.labels.append(name)
            issue.label_events.append(LabelEvent(self.next_id(), actor, ts, lab, "add"))
            changed = True
        if changed:
            issue.updated_at = ts

    def label(self, project: Project, iid: int, name: str, *, by: User) -> None:
        self.change_labels(project, project.issues[iid], by, add=[name])

    def unlabel(self, project: Project, iid: int, name: str, *, by: User) -> None:
        self.change_labels(project, project.issues[iid], by, remove=[name])

    def move_to_list(self, project: Project, iid: int, list_label: str, *, by: User, board: int = 0) -> None:
        """Drag a card to another list: GitLab removes the other list labels of the board and adds the target's."""
        issue = project.issues[iid]
        others = [bl.label.name for bl in project.boards[board].lists if bl.label.name != list_label]
        self.change_labels(project, issue, by, add=[list_label], remove=[x for x in others if x in issue.labels])

    def comment(self, project: Project, iid: int, body: str, *, by: User) -> Note:
        issue = project.issues[iid]
        ts = self.now()
        note = Note(self.next_id(), body, by, ts, ts)
        issue.notes.append(note)
        issue.updated_at = ts
        return note

    def set_state(self, project: Project, issue: Issue, state: str) -> None:
        ts = self.now()
        issue.state = state
        issue.closed_at = ts if state == "closed" else None
        issue.updated_at = ts

    def set_pipeline(
        self,
        project: Project,
        mr_iid: int,
        status: str,
        jobs: dict[str, str] | None = None,
        traces: dict[str, str] | None = None,
    ) -> Pipeline:
        mr = project.mrs[mr_iid]
        ts = self.now()
        pipeline = Pipeline(
            self.next_id(), len(project.pipelines) + 1, mr.sha or "0" * 40, mr.source_branch, status, ts, ts
        )
        pipeline.jobs = [
            Job(self.next_id(), name, st, trace=(traces or {}).get(name, "")) for name, st in (jobs or {}).items()
        ]
        project.pipelines[pipeline.id] = pipeline
        mr.head_pipeline = pipeline
        mr.updated_at = ts
        return pipeline

    def approve(self, project: Project, mr_iid: int, *, by: User) -> None:
        mr = project.mrs[mr_iid]
        mr.approved_by.append(by)
        mr.updated_at = self.now()

    def review_comment(self, project: Project, mr_iid: int, body: str, *, by: User) -> Note:
        mr = project.mrs[mr_iid]
        ts = self.now()
        note = Note(self.next_id(), body, by, ts, ts, resolvable=True)
        mr.notes.append(note)
        mr.updated_at = ts
        return note

    def mr_comment(self, project: Project, mr_iid: int, body: str, *, by: User) -> Note:
        """A plain comment on the merge request (not a thread to resolve)."""
        mr = project.mrs[mr_iid]
        ts = self.now()
        note = Note(self.next_id(), body, by, ts, ts)
        mr.notes.append(note)
        mr.updated_at = ts
        return note

    def merge(self, project: Project, mr_iid: int, *, by: User) -> None:
        """Merge as the web UI does: the target branch gets the source's commits, "Closes #N" issues close."""
        mr = project.mrs[mr_iid]
        if mr.state != "opened":
            raise GitLabError(405, {"message": "405 Method Not Allowed"})
        ts = self.now()
        if self.git is not None:
            bare = self.git.repo_path(project.path)
            head = _git(bare, "rev-parse", f"refs/heads/{mr.source_branch}")
            _git(bare, "update-ref", f"refs/heads/{mr.target_branch}", head)
            mr.merge_commit_sha = head
        mr.state, mr.merged_at, mr.updated_at = "merged", ts, ts
        for ref in _CLOSING.findall(mr.description):
            found = self.resolve_issue(project, ref)
            if found is not None and found[1].state == "opened":
                self.set_state(found[0], found[1], "closed")

    def resolve_issue(self, project: Project, ref: str) -> tuple[Project, Issue] | None:
        """`#N`, `proj#N` (a project of the same namespace) or `group/proj#N`, seen from `project`."""
        path, _, num = ref.rpartition("#")
        if path and "/" not in path:
            path = f"{project.group}/{path}"
        try:
            target = self.project(path) if path else project
        except GitLabError:
            return None
        issue = target.issues.get(int(num))
        return (target, issue) if issue is not None else None

    def close_mr(self, project: Project, mr_iid: int) -> None:
        mr = project.mrs[mr_iid]
        ts = self.now()
        mr.state, mr.closed_at, mr.updated_at = "closed", ts, ts

    # --- the gate: authentication and validation --------------------------------------------------------------------

    def _current(self, req: Request) -> tuple[User, list[str]]:
        token = req.headers.get("private-token")
        auth = req.headers.get("authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        found = self.tokens.get(token or "")
        if found is None:
            raise GitLabError(401, {"message": "401 Unauthorized"})
        return self.users[found[0]], found[1]

    def _gate(self, req: Request) -> Response | None:
        if not req.path.startswith(API + "/"):
            return Response(404, {"error": "404 Not Found"})
        errors = self.validator.check(req)
        if errors:
            self.validation_errors.extend(f"{req.method} {req.path}: {e}" for e in errors)
            first = errors[0]
            if first.startswith("unknown path"):
                return Response(404, {"error": "404 Not Found"})
            if first.startswith("method"):
                return Response(405, {"error": "405 Method Not Allowed"})
            return Response(400, {"error": "; ".join(errors)})
        try:
            _user, scopes = self._current(req)
        except GitLabError as exc:
            return Response(exc.status, exc.body)
        if req.method != "GET" and "api" not in scopes:
            return Response(
                403,
                {
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the access token.",
                    "scope": "api",
                },
            )
        if not any(s in scopes for s in ("api", "read_api")):
            return Response(403, {"error": "insufficient_scope", "scope": "api read_api"})
        return None

    # --- answering -------------------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        reset = int(datetime.now(UTC).timestamp()) + 60
        return {
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Observed": "1",
            "RateLimit-Remaining": str(self.rate_limit - 1),
            "RateLimit-Reset": str(reset),
        }

    def _ok(self, body: Any, status: int = 200) -> Response:
        return Response(status, body, self._headers())

    def _page(self, req: Request, items: list[Any]) -> Response:
        """One page of `items` with GitLab's offset-pagination headers and Link."""
        per_page = max(1, min(100, int(req.arg("per_page") or 20)))
        page = max(1, int(req.arg("page") or 1))
        total = len(items)
        pages = max(1, -(-total // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        host = req.headers.get("host", "127.0.0.1")
        base_query = {k: v[-1] for k, v in req.query.items() if k not in ("page", "per_page")}

        def link(p: int) -> str:
            query = urlencode({**base_query, "page": p, "per_page": per_page})
            return f"http://{host}{req.path}?{query}"

        links = []
        headers = {
            **self._headers(),
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(total),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        if page < pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        links.append(f'<{link(1)}>; rel="first"')
        links.append(f'<{link(pages)}>; rel="last"')
        headers["Link"] = ", ".join(links)
        return Response(200, chunk, headers)

    def _member(self, req: Request, project: Project) -> User:
        user, _ = self._current(req)
        if user.id not in project.members:
            raise _not_found("404 Project Not Found")
        return user

    def _require(self, req: Request, project: Project, level: int) -> User:
        user = self._member(req, project)
        if project.members[user.id] < level:
            raise GitLabError(403, {"message": "403 Forbidden"})
        return user

    # --- JSON shapes -----------------------------------------------------------------------------------------------

    def web_url(self, project: Project) -> str:
        return f"{self.url}/{project.path}"

    def issue_json(self, project: Project, issue: Issue) -> dict[str, Any]:
        return {
            "id": issue.id,
            "iid": issue.iid,
            "project_id": project.id,
            "title": issue.title,
            "description": issue.description,
            "state": issue.state,
            "created_at": _iso(issue.created_at),
            "updated_at": _iso(issue.updated_at),
            "closed_at": _iso(issue.closed_at) if issue.closed_at else None,
            "labels": list(issue.labels),
            "author": issue.author.json(),
            "assignees": [],
            "milestone": None,
            "type": "ISSUE",
            "issue_type": "issue",
            "user_notes_count": sum(1 for n in issue.notes if not n.system),
            "web_url": f"{self.web_url(project)}/-/issues/{issue.iid}",
            "references": {
                "short": f"#{issue.iid}",
                "relative": f"#{issue.iid}",
                "full": f"{project.path}#{issue.iid}",
            },
            "confidential": False,
            "discussion_locked": None,
        }

    def note_json(self, note: Note, noteable_type: str, noteable: Issue | MergeRequest) -> dict[str, Any]:
        return {
            "id": note.id,
            "type": "DiscussionNote" if note.resolvable else None,
            "body": note.body,
            "author": note.author.json(),
            "created_at": _iso(note.created_at),
            "updated_at": _iso(note.updated_at),
            "system": note.system,
            "noteable_id": noteable.id,
            "noteable_type": noteable_type,
            "noteable_iid": noteable.iid,
            "resolvable": note.resolvable,
            "resolved": note.resolved if note.resolvable else False,
            "confidential": False,
            "internal": False,
        }

    def pipeline_json(self, project: Project, p: Pipeline) -> dict[str, Any]:
        return {
            "id": p.id,
            "iid": p.iid,
            "project_id": project.id,
            "sha": p.sha,
            "ref": p.ref,
            "status": p.status,
            "source": "merge_request_event",
            "created_at": _iso(p.created_at),
            "updated_at": _iso(p.updated_at),
            "web_url": f"{self.web_url(project)}/-/pipelines/{p.id}",
        }

    def mr_json(self, project: Project, mr: MergeRequest, *, detail: bool = False) -> dict[str, Any]:
        if mr.state == "opened":  # a push to the source branch moves an open merge request's head, as on GitLab
            mr.sha = self.branch_sha(project, mr.source_branch) or mr.sha
        conflicts = mr.state == "opened" and self.conflicts(project, mr.target_branch, mr.source_branch)
        body: dict[str, Any] = {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": project.id,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": _iso(mr.created_at),
            "updated_at": _iso(mr.updated_at),
            "merged_at": _iso(mr.merged_at) if mr.merged_at else None,
            "closed_at": _iso(mr.closed_at) if mr.closed_at else None,
            "target_branch": mr.target_branch,
            "source_branch": mr.source_branch,
            "source_project_id": project.id,
            "target_project_id": project.id,
            "author": mr.author.json(),
            "reviewers": [u.json() for u in mr.reviewers],
            "draft": mr.draft,
            "work_in_progress": mr.draft,
            # GitLab's mergeability check, with real git: a test merge of source into target in the bare repository
            "has_conflicts": conflicts,
            "merge_status": "cannot_be_merged" if conflicts else "can_be_merged",
            "detailed_merge_status": "conflict" if conflicts else "draft_status" if mr.draft else "mergeable",
            "sha": mr.sha,
            "merge_commit_sha": mr.merge_commit_sha,
            "user_notes_count": sum(1 for n in mr.notes if not n.system),
            "web_url": f"{self.web_url(project)}/-/merge_requests/{mr.iid}",
            "references": {"short": f"!{mr.iid}", "relative": f"!{mr.iid}", "full": f"{project.path}!{mr.iid}"},
        }
        if detail:
            body["head_pipeline"] = self.pipeline_json(project, mr.head_pipeline) if mr.head_pipeline else None
            body["pipeline"] = body["head_pipeline"]
        return body

    # --- routes ----------------------------------------------------------------------------------------------------

    def _routes(self) -> None:
        r = self.server.add_route
        p = API + "/projects/{pid}"
        r("GET", API + "/version", lambda req: self._ok({"version": "17.5.0-ee", "revision": "sim"}))
        r("GET", API + "/user", self._get_user)
        r("GET", API + "/personal_access_tokens/self", self._get_token_self)
        r("GET", API + "/users", self._wrap(self._list_users))
        r("GET", p, self._wrap(self._get_project))
        r("GET", p + "/members/all/{uid}", self._wrap(self._get_member))
        r(
            "GET",
            p + "/labels",
            self._wrap(lambda req, pid: self._page(req, [lab.json() for lab in self.project(pid).labels])),
        )
        r("GET", p + "/boards", self._wrap(self._list_boards))
        r("GET", p + "/boards/{bid}/lists", self._wrap(self._list_board_lists))
        r("GET", API + "/groups/{gid}/boards", self._wrap(self._list_group_boards))
        r("GET", p + "/issues", self._wrap(self._list_issues))
        r("GET", API + "/groups/{gid}/issues", self._wrap(self._list_group_issues))
        r("GET", p + "/issues/{iid}", self._wrap(self._get_issue))
        r("PUT", p + "/issues/{iid}", self._wrap(self._edit_issue))
        r("GET", p + "/issues/{iid}/notes", self._wrap(self._list_issue_notes))
        r("POST", p + "/issues/{iid}/notes", self._wrap(self._create_issue_note))
        r("GET", p + "/issues/{iid}/notes/{nid}", self._wrap(self._get_issue_note))
        r("PUT", p + "/issues/{iid}/notes/{nid}", self._wrap(self._edit_issue_note))
        r("GET", p + "/issues/{iid}/resource_label_events", self._wrap(self._label_events))
        r("GET", p + "/repository/branches/{branch}", self._wrap(self._get_branch))
        r("GET", p + "/merge_requests", self._wrap(self._list_mrs))
        r("POST", p + "/merge_requests", self._wrap(self._create_mr))
        r("GET", p + "/merge_requests/{iid}", self._wrap(self._get_mr))
        r("PUT", p + "/merge_requests/{iid}", self._wrap(self._edit_mr))
        r("GET", p + "/merge_requests/{iid}/approvals", self._wrap(self._mr_approvals))
        r("GET", p + "/merge_requests/{iid}/notes", self._wrap(self._mr_notes))
        r("GET", p + "/pipelines/{plid}/jobs", self._wrap(self._pipeline_jobs))
        r("GET", p + "/jobs/{jid}/trace", self._wrap(self._job_trace))

    def _wrap(self, fn: Any) -> Any:
        def handler(req: Request, **params: str) -> Response:
            with self.server.lock:
                try:
                    response: Response = fn(req, **params)
                    return response
                except GitLabError as exc:
                    return Response(exc.status, exc.body, self._headers())

        return handler

    def _get_user(self, req: Request) -> Response:
        user, _ = self._current(req)
        return self._ok({**user.json(), "is_admin": False, "bot": False})

    def _list_users(self, req: Request) -> Response:
        self._current(req)
        wanted = req.arg("username")
        users = [u for u in self.users.values() if wanted is None or u.username.lower() == wanted.lower()]
        return self._page(req, [u.json() for u in users])

    def _get_token_self(self, req: Request) -> Response:
        user, scopes = self._current(req)
        return self._ok(
            {
                "id": 1,
                "name": "tracker-bridge",
                "active": True,
                "revoked": False,
                "scopes": scopes,
                "user_id": user.id,
                "expires_at": None,
            }
        )

    def _get_project(self, req: Request, pid: str) -> Response:
        project = self.project(pid)
        user = self._member(req, project)
        return self._ok(
            {
                "id": project.id,
                "path_with_namespace": project.path,
                "name": project.path.rsplit("/", 1)[1],
                "path": project.path.rsplit("/", 1)[1],
                "default_branch": project.default_branch,
                "web_url": self.web_url(project),
                "http_url_to_repo": self.git.repo_url(project.path) if self.git else f"{self.web_url(project)}.git",
                "namespace": {"full_path": project.group, "kind": "group"},
                "permissions": {"project_access": {"access_level": project.members[user.id]}, "group_access": None},
            }
        )

    def _get_member(self, req: Request, pid: str, uid: str) -> Response:
        project = self.project(pid)
        self._member(req, project)
        level = project.members.get(int(uid))
        if level is None:
            raise _not_found("404 Member Not Found")
        return self._ok({**self.users[int(uid)].json(), "access_level": level})

    def _list_boards(self, req: Request, pid: str) -> Response:
        project = self.project(pid)
        self._member(req, project)
        return self._page(
            req,
            [{"id": b.id, "name": b.name, "lists": [self._list_json(bl) for bl in b.lists]} for b in project.boards],
        )

    def _list_group_boards(self, req: Request, gid: str) -> Response:
        group = unquote(gid)
        user, _ = self._current(req)
        if not any(p.path.startswith(group + "/") and user.id in p.members for p in self.projects.values()):
            raise _not_found("404 Group Not Found")
        boards = self.group_boards.get(group, [])
        return self._page(
            req, [{"id": b.id, "name": b.name, "lists": [self._list_json(bl) for bl in b.lists]} for b in boards]
        )

    @staticmethod
    def _list_json(bl: BoardList) -> dict[str, Any]:
        return {"id": bl.id, "label": bl.label.json(), "position": bl.position, "list_type": "label"}

    def _list_board_lists(self, req: Request, pid: str, bid: str) -> Response:
        project = self.project(pid)
        self._member(req, project)
        for b in project.boards:
            if b.id == int(bid):
                return self._page(req, [self._list_json(bl) for bl in b.lists])
        raise _not_found("404 Board Not Found")

    def _filter_issues(self, req: Request, pairs: list[tuple[Project, Issue]]) -> list[dict[str, Any]]:
        state = req.arg("state") or "all"
        labels = [x for x in (req.arg("labels") or "").split(",") if x]
        after = req.arg("updated_after")
        iids = {int(x) for x in req.query.get("iids[]", [])}
        out = []
        for project, issue in pairs:
            if state != "all" and issue.state != state:
                continue
            if labels and not all(lab in issue.labels for lab in labels):
                continue
            if after and issue.updated_at < _parse_time(after):
                continue
            if iids and issue.iid not in iids:
                continue
            out.append((project, issue))
        order = req.arg("order_by") or "created_at"
        reverse = (req.arg("sort") or "desc") == "desc"
        out.sort(
            key=lambda pi: getattr(pi[1], order if order in ("created_at", "updated_at") else "created_at"),
            reverse=reverse,
        )
        return [self.issue_json(p, i) for p, i in out]

    def _list_issues(self, req: Request, pid: str) -> Response:
        project = self.project(pid)
        self._member(req, project)
        return self._page(req, self._filter_issues(req, [(project, i) for i in project.issues.values()]))

    def _list_group_issues(self, req: Request, gid: str) -> Response:
        group = unquote(gid)
        user, _ = self._current(req)
        projects = [p for p in self.projects.values() if p.path.startswith(group + "/") and user.id in p.members]
        if not projects:
            raise _not_found("404 Group Not Found")
        return self._page(req, self._filter_issues(req, [(p, i) for p in projects for i in p.issues.values()]))

    def _issue(self, req: Request, pid: str, iid: str) -> tuple[Project, Issue]:
        project = self.project(pid)
        self._member(req, project)
        issue = project.issues.get(int(iid))
        if issue is None:
            raise _not_found()
        return project, issue

    def _get_issue(self, req: Request, pid: str, iid: str) -> Response:
        project, issue = self._issue(req, pid, iid)
        return self._ok(self.issue_json(project, issue))

    @staticmethod
    def _names(value: Any) -> list[str]:
        if value is None:
            return []
        items = value if isinstance(value, list) else str(value).split(",")
        return [x.strip() for x in items if x.strip()]

    def _edit_issue(self, req: Request, pid: str, iid: str) -> Response:
        project, issue = self._issue(req, pid, iid)
        user = self._require(req, project, REPORTER)
        data = req.json() or {}
        if "labels" in data:
            wanted = self._names(data["labels"])
            self.change_labels(project, issue, user, add=wanted, remove=[x for x in issue.labels if x not in wanted])
        if "add_labels" in data or "remove_labels" in data:
            self.change_labels(
                project,
                issue,
                user,
                add=self._names(data.get("add_labels")),
                remove=self._names(data.get("remove_labels")),
            )
        for key in ("title", "description"):
            if key in data and data[key] != getattr(issue, key):
                setattr(issue, key, data[key])
                issue.updated_at = self.now()
        event = data.get("state_event")
        if event == "close" and issue.state == "opened":
            self.set_state(project, issue, "closed")
        elif event == "reopen" and issue.state == "closed":
            self.set_state(project, issue, "opened")
        elif event not in (None, "close", "reopen"):
            raise GitLabError(400, {"error": "state_event does not have a valid value"})
        return self._ok(self.issue_json(project, issue))

    def _sorted_notes(self, req: Request, notes: list[Note]) -> list[Note]:
        order = req.arg("order_by") or "created_at"
        key = (lambda n: n.updated_at) if order == "updated_at" else (lambda n: n.created_at)
        return sorted(notes, key=key, reverse=(req.arg("sort") or "desc") == "desc")

    def _list_issue_notes(self, req: Request, pid: str, iid: str) -> Response:
        _project, issue = self._issue(req, pid, iid)
        return self._page(req, [self.note_json(n, "Issue", issue) for n in self._sorted_notes(req, issue.notes)])

    def _create_issue_note(self, req: Request, pid: str, iid: str) -> Response:
        project, issue = self._issue(req, pid, iid)
        user = self._require(req, project, GUEST)
        body = (req.json() or {}).get("body", "")
        if not body.strip():
            raise GitLabError(400, {"message": {"note": ["can't be blank"]}})
        note = self.comment(project, issue.iid, body, by=user)
        return self._ok(self.note_json(note, "Issue", issue), 201)

    def _note(self, issue: Issue, nid: str) -> Note:
        for n in issue.notes:
            if n.id == int(nid):
                return n
        raise _not_found("404 Note Not Found")

    def _get_issue_note(self, req: Request, pid: str, iid: str, nid: str) -> Response:
        _project, issue = self._issue(req, pid, iid)
        return self._ok(self.note_json(self._note(issue, nid), "Issue", issue))

    def _edit_issue_note(self, req: Request, pid: str, iid: str, nid: str) -> Response:
        project, issue = self._issue(req, pid, iid)
        user = self._member(req, project)
        note = self._note(issue, nid)
        if note.author.id != user.id or note.system:
            raise GitLabError(403, {"message": "403 Forbidden"})
        body = (req.json() or {}).get("body")
        if body is not None and body != note.body:
            note.body = body
            note.updated_at = self.now()
            issue.updated_at = note.updated_at
        return self._ok(self.note_json(note, "Issue", issue))

    def _label_events(self, req: Request, pid: str, iid: str) -> Response:
        _project, issue = self._issue(req, pid, iid)
        return self._page(
            req,
            [
                {
                    "id": e.id,
                    "user": e.user.json(),
                    "created_at": _iso(e.created_at),
                    "resource_type": "Issue",
                    "resource_id": issue.id,
                    "label": e.label.json(),
                    "action": e.action,
                }
                for e in issue.label_events
            ],
        )

    def conflicts(self, project: Project, target: str, source: str) -> bool:
        """Would merging `source` into `target` conflict? `git merge-tree` in the bare repository (objects only)."""
        target_sha, source_sha = self.branch_sha(project, target), self.branch_sha(project, source)
        if self.git is None or target_sha is None or source_sha is None:
            return False
        proc = subprocess.run(
            ["git", "merge-tree", "--write-tree", "--name-only", target_sha, source_sha],
            cwd=self.git.repo_path(project.path), capture_output=True, text=True, check=False,
        )  # fmt: skip
        return proc.returncode == 1

    def branch_sha(self, project: Project, branch: str) -> str | None:
        if self.git is None:
            return None
        bare = self.git.repo_path(project.path)
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
            cwd=bare,
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.strip() if proc.returncode == 0 else None

    def _get_branch(self, req: Request, pid: str, branch: str) -> Response:
        project = self.project(pid)
        self._member(req, project)
        name = unquote(branch)
        sha = self.branch_sha(project, name)
        if sha is None:
            raise _not_found("404 Branch Not Found")
        return self._ok(
            {
                "name": name,
                "merged": False,
                "protected": name == project.default_branch,
                "default": name == project.default_branch,
                "commit": {"id": sha, "short_id": sha[:8]},
                "web_url": f"{self.web_url(project)}/-/tree/{name}",
            }
        )

    def _list_mrs(self, req: Request, pid: str) -> Response:
        project = self.project(pid)
        self._member(req, project)
        state = req.arg("state") or "all"
        source = req.arg("source_branch")
        target = req.arg("target_branch")
        mrs = [
            m
            for m in project.mrs.values()
            if (state == "all" or m.state == state)
            and (source is None or m.source_branch == source)
            and (target is None or m.target_branch == target)
        ]
        mrs.sort(key=lambda m: m.created_at, reverse=(req.arg("sort") or "desc") == "desc")
        return self._page(req, [self.mr_json(project, m) for m in mrs])

    def _create_mr(self, req: Request, pid: str) -> Response:
        project = self.project(pid)
        user = self._require(req, project, DEVELOPER)
        data = req.json() or {}
        source, target = data["source_branch"], data["target_branch"]
        for m in project.mrs.values():
            if m.source_branch == source and m.target_branch == target and m.state == "opened":
                message = f"Another open merge request already exists for this source branch: !{m.iid}"
                raise GitLabError(409, {"message": [message]})
        sha = self.branch_sha(project, source)
        if self.git is not None and sha is None:
            raise GitLabError(422, {"message": ["Source branch does not exist"]})
        if self.git is not None and self.branch_sha(project, target) is None:
            raise GitLabError(422, {"message": ["Target branch does not exist"]})
        ts = self.now()
        mr = MergeRequest(
            self.next_id(),
            len(project.mrs) + 1,
            data["title"],
            data.get("description") or "",
            source,
            target,
            user,
            ts,
            ts,
            sha=sha,
        )
        project.mrs[mr.iid] = mr
        # GitLab cross-references: the mentioned issue gets a system note.
        mentioned = {
            f[1].id: f for ref in _ISSUE_REF.findall(mr.description) if (f := self.resolve_issue(project, ref))
        }
        for found in mentioned.values():
            if found is not None:
                found[1].notes.append(
                    Note(self.next_id(), f"mentioned in merge request !{mr.iid}", user, ts, ts, system=True)
                )
        return self._ok(self.mr_json(project, mr, detail=True), 201)

    def _mr(self, req: Request, pid: str, iid: str) -> tuple[Project, MergeRequest]:
        project = self.project(pid)
        self._member(req, project)
        mr = project.mrs.get(int(iid))
        if mr is None:
            raise _not_found()
        return project, mr

    def _get_mr(self, req: Request, pid: str, iid: str) -> Response:
        project, mr = self._mr(req, pid, iid)
        return self._ok(self.mr_json(project, mr, detail=True))

    def _edit_mr(self, req: Request, pid: str, iid: str) -> Response:
        project, mr = self._mr(req, pid, iid)
        self._require(req, project, DEVELOPER)
        data = req.json() or {}
        for key in ("title", "description"):
            if key in data:
                setattr(mr, key, data[key])
        if "reviewer_ids" in data:  # GitLab keeps only users who exist; an empty list removes every reviewer
            mr.reviewers = [self.users[i] for i in data["reviewer_ids"] or [] if i in self.users]
        if data.get("state_event") == "close" and mr.state == "opened":
            self.close_mr(project, mr.iid)
        elif data.get("state_event") == "reopen" and mr.state == "closed":
            mr.state = "opened"
        mr.updated_at = self.now()
        return self._ok(self.mr_json(project, mr, detail=True))

    def _mr_approvals(self, req: Request, pid: str, iid: str) -> Response:
        project, mr = self._mr(req, pid, iid)
        return self._ok(
            {
                "id": mr.id,
                "iid": mr.iid,
                "project_id": project.id,
                "state": mr.state,
                "approved": bool(mr.approved_by),
                "approvals_required": 1,
                "approvals_left": 0 if mr.approved_by else 1,
                "approved_by": [{"user": u.json()} for u in mr.approved_by],
            }
        )

    def _mr_notes(self, req: Request, pid: str, iid: str) -> Response:
        _project, mr = self._mr(req, pid, iid)
        return self._page(req, [self.note_json(n, "MergeRequest", mr) for n in self._sorted_notes(req, mr.notes)])

    def _pipeline_jobs(self, req: Request, pid: str, plid: str) -> Response:
        project = self.project(pid)
        self._member(req, project)
        pipeline = project.pipelines.get(int(plid))
        if pipeline is None:
            raise _not_found("404 Pipeline Not Found")
        scopes = set(req.query.get("scope[]", []) + req.query.get("scope", []))
        jobs = [j for j in pipeline.jobs if not scopes or j.status in scopes]
        return self._page(
            req,
            [
                {
                    "id": j.id,
                    "name": j.name,
                    "status": j.status,
                    "stage": j.stage,
                    "web_url": f"{self.web_url(project)}/-/jobs/{j.id}",
                    "pipeline": {"id": pipeline.id},
                }
                for j in jobs
            ],
        )

    def _job_trace(self, req: Request, pid: str, jid: str) -> Response:
        project = self.project(pid)
        self._member(req, project)
        for pipeline in project.pipelines.values():
            for job in pipeline.jobs:
                if job.id == int(jid):
                    return Response(200, job.trace, {**self._headers(), "Content-Type": "text/plain; charset=utf-8"})
        raise _not_found("404 Job Not Found")


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


# --- a ready-made instance for tests -------------------------------------------------------------------------------

BOT_TOKEN = "glpat-bot-token"
LISTS = ["Agent", "workflow::In Progress", "workflow::In Review", "Needs Refinement", "Needs Human"]


@dataclass
class World:
    """A GitLab with a bot, two people, one project `acme/shop` and its board (lists: LISTS; Done = Closed list)."""

    sim: GitLabSim
    bot: User
    alice: User  # a Developer on the project
    guest: User  # a Guest on the project
    project: Project
    board: Board

    def issue(self, title: str, description: str = "", labels: list[str] | None = None) -> Issue:
        return self.sim.create_issue(self.project, title, description, author=self.alice, labels=labels)


def make_world(sim: GitLabSim, path: str = "acme/shop") -> World:
    bot = sim.add_user("tracker-bot", token=BOT_TOKEN)
    alice = sim.add_user("alice", token="glpat-alice")
    guest = sim.add_user("gary-guest", token="glpat-guest")
    project = sim.add_project(path, members={bot: MAINTAINER, alice: DEVELOPER, guest: GUEST})
    for name in ("bug", "agent-ready"):
        sim.label_named(project, name)
    board = sim.add_board(project, LISTS)
    return World(sim, bot, alice, guest, project, board)
