"""A Jira Cloud simulator on loopback: state kept like Jira, every request checked against Atlassian's description.

It holds projects, issues (summary, ADF description, labels, status, timestamps), a workflow (statuses and
transitions, some needing fields), comments with comment properties, issue entity properties, the changelog,
remote links (upserted by globalId), agile board configuration, users with time zones, and the bot's permissions.

Every request is validated against the official OpenAPI descriptions copied into tests/schemas/jira/ (platform
REST v3 and agile 1.0). REST v2 requests (Jira Data Center's dialect, and the `jira` package's default) are
validated against the v3 description with the version in the path mapped, since Atlassian publishes the two with
the same paths; v2 bodies are plain strings where v3 takes ADF. Invalid or unknown requests are answered as Jira
answers them: {"errorMessages": [...], "errors": {...}} with 400/404. Faults (429 with Retry-After, 5xx) are
injected through `sim.server.inject`.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.sims.http import Request, Response, SimServer
from tests.sims.jira_jql import JQLError, parse
from tests.sims.openapi import OpenAPIValidator

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "jira"
PLATFORM = SCHEMAS / "platform-swagger-v3.v3.json"
AGILE = SCHEMAS / "software-swagger.v3.json"

DEFAULT_STATUSES = ["To Do", "Agent", "In Progress", "In Review", "Done", "Needs Refinement", "Needs Human"]
PERMISSIONS = [
    "BROWSE_PROJECTS",
    "TRANSITION_ISSUES",
    "EDIT_ISSUES",
    "ADD_COMMENTS",
    "EDIT_OWN_COMMENTS",
    "LINK_ISSUES",
]
ADF_BLOCKS = {
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "listItem",
    "codeBlock",
    "blockquote",
    "rule",
    "table",
    "tableRow",
    "tableHeader",
    "tableCell",
    "panel",
    "mediaSingle",
    "expand",
}
ADF_INLINE = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status"}
ADF_MARKS = {"strong", "em", "code", "link", "strike", "underline", "subsup", "textColor"}

_VALIDATORS: dict[Path, OpenAPIValidator] = {}


def _validator(path: Path) -> OpenAPIValidator:
    # Loading the 2.4 MB description takes a moment: once per test session.
    if path not in _VALIDATORS:
        _VALIDATORS[path] = OpenAPIValidator.from_file(path)
    return _VALIDATORS[path]


def error(status: int, *messages: str, **errors: str) -> Response:
    return Response(status, {"errorMessages": list(messages), "errors": dict(errors)})


def adf_problems(doc: Any) -> list[str]:
    """What Jira Cloud rejects in an ADF document (a subset of its schema, enough to catch a bad converter)."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return ["Operation value must be an Atlassian Document (see the Atlassian Document Format)"]
    problems: list[str] = []

    def walk(node: Any, inline_ok: bool) -> None:
        if not isinstance(node, dict) or "type" not in node:
            problems.append(f"ADF node is not an object with a type: {node!r}")
            return
        kind = node["type"]
        if kind == "text":
            if not inline_ok:
                problems.append("ADF text node outside an inline container")
            if not isinstance(node.get("text"), str) or not node["text"]:
                problems.append("ADF text node with empty text")
            for mark in node.get("marks", []):
                if mark.get("type") not in ADF_MARKS:
                    problems.append(f"unknown ADF mark {mark.get('type')!r}")
                if mark.get("type") == "link" and not (mark.get("attrs") or {}).get("href"):
                    problems.append("ADF link mark without href")
            return
        if kind not in ADF_BLOCKS and kind not in ADF_INLINE:
            problems.append(f"unknown ADF node type {kind!r}")
            return
        if kind == "heading" and (node.get("attrs") or {}).get("level") not in range(1, 7):
            problems.append("ADF heading without a level 1-6")
        children = node.get("content", [])
        if not isinstance(children, list):
            problems.append(f"ADF {kind}.content is not a list")
            return
        for child in children:
            walk(child, inline_ok=kind in ("paragraph", "heading", "codeBlock"))

    for block in doc.get("content", []):
        walk(block, inline_ok=False)
    return problems


def adf_text(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        if node.get("type") == "text":
            return str(node.get("text", ""))
        sep = "\n" if node.get("type") in ("doc", "bulletList", "orderedList", "table", "tableRow") else ""
        return sep.join(adf_text(c) for c in node.get("content", []))
    return ""


def as_adf(text: str) -> dict[str, Any]:
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs],
    }


@dataclass
class User:
    account_id: str
    email: str
    name: str
    time_zone: str = "UTC"
    token: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            "accountId": self.account_id,
            "accountType": "atlassian",
            "emailAddress": self.email,
            "displayName": self.name,
            "active": True,
            "timeZone": self.time_zone,
        }


@dataclass
class Transition:
    id: str
    name: str
    to: str  # status id
    sources: set[str] | None = None  # None: from any status (a global transition)
    required_fields: list[str] = field(default_factory=list)


@dataclass
class Comment:
    id: str
    author: str
    body: Any  # ADF (v3) or a string (v2)
    created: datetime
    updated: datetime
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Issue:
    id: str
    key: str
    project: str
    summary: str
    description: Any
    labels: list[str]
    status: str
    created: datetime
    updated: datetime
    comments: list[Comment] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    changelog: list[dict[str, Any]] = field(default_factory=list)
    remote_links: list[dict[str, Any]] = field(default_factory=list)

    def jql_view(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "project": self.project,
            "labels": self.labels,
            "status": self.status,
            "updated": self.updated,
            "created": self.created,
            "summary": self.summary,
        }


class JiraSim:
    """Start with `with JiraSim() as sim:`; `sim.url` is the base URL for the tracker's `url`."""

    def __init__(self, *, bot_email: str = "bot@acme.test", bot_token: str = "s3cret", bot_tz: str = "Europe/Paris"):
        self.server = SimServer()
        self.platform = _validator(PLATFORM)
        self.agile = _validator(AGILE)
        self._ids = itertools.count(10000)
        self.users: dict[str, User] = {}
        self.bot = self.add_user("bot", bot_email, "tracker-bridge bot", time_zone=bot_tz, token=bot_token)
        self.pat: str | None = None  # a Data Center personal access token accepted as Bearer
        self.statuses: dict[str, str] = {}  # id -> name
        for name in DEFAULT_STATUSES:
            self.add_status(name)
        # By default every status is reachable from every other one (Jira's "any status" transitions).
        self.transitions: list[Transition] = [
            Transition(id=str(10 * (i + 1)), name=f"Move to {name}", to=sid)
            for i, (sid, name) in enumerate(self.statuses.items())
        ]
        self.projects: dict[str, dict[str, Any]] = {}
        self.issues: dict[str, Issue] = {}
        self.boards: dict[int, list[tuple[str, list[str]]]] = {}
        self.permissions: set[str] = set(PERMISSIONS)
        self.screen_fields: set[str] = {"labels", "summary", "description"}
        self.rejected: list[tuple[Request, list[str]]] = []  # requests refused as invalid, for tests to inspect
        self.page_limit = 100
        self.hide_emails = False
        # Faults that strike after the request was carried out (a 5xx whose change was applied anyway):
        # (status, method, path prefix) -> how many more times.
        self.after_faults: dict[tuple[int, str, str], int] = {}
        self._register()

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def __enter__(self) -> JiraSim:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def fail_after(self, status: int, *, method: str, path_prefix: str, count: int = 1) -> None:
        """Carry out the next `count` matching requests, then answer `status` as if they had failed."""
        self.after_faults[(status, method, path_prefix)] = count

    def _after(self, req: Request, resp: Response) -> Response:
        for (status, method, prefix), left in list(self.after_faults.items()):
            if left > 0 and req.method == method and req.path.startswith(prefix):
                self.after_faults[(status, method, prefix)] = left - 1
                return error(status, "Internal server error")
        return resp

    # --- state set-up and people's actions (what a person does in the Jira UI) ------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC)

    def add_user(
        self, account: str, email: str, name: str, *, time_zone: str = "UTC", token: str | None = None
    ) -> User:
        user = User(account_id=f"acc-{account}", email=email, name=name, time_zone=time_zone, token=token)
        self.users[user.account_id] = user
        return user

    def add_status(self, name: str) -> str:
        sid = str(len(self.statuses) + 1)
        self.statuses[sid] = name
        return sid

    def status_id(self, name: str) -> str:
        return next(sid for sid, n in self.statuses.items() if n.lower() == name.lower())

    def add_project(self, key: str) -> None:
        self.projects[key] = {"id": str(next(self._ids)), "key": key, "name": key.title(), "counter": 0}

    def add_board(self, board_id: int, columns: list[tuple[str, list[str]]]) -> None:
        """Columns as (column name, [status names])."""
        self.boards[board_id] = [(name, [self.status_id(s) for s in statuses]) for name, statuses in columns]

    def set_workflow(self, transitions: list[tuple[str, list[str] | None, str, list[str]]]) -> None:
        """(name, from status names or None for any, to status name, required fields)."""
        self.transitions = [
            Transition(
                id=str(100 + i),
                name=name,
                to=self.status_id(to),
                sources={self.status_id(s) for s in sources} if sources is not None else None,
                required_fields=list(required),
            )
            for i, (name, sources, to, required) in enumerate(transitions)
        ]

    def create_issue(
        self,
        project: str,
        summary: str,
        description: str = "",
        *,
        labels: list[str] | None = None,
        status: str = "To Do",
        by: User | None = None,
        updated: datetime | None = None,
    ) -> Issue:
        if project not in self.projects:
            self.add_project(project)
        with self.server.lock:
            self.projects[project]["counter"] += 1
            key = f"{project}-{self.projects[project]['counter']}"
            now = updated or self.now()
            issue = Issue(
                id=str(next(self._ids)),
                key=key,
                project=project,
                summary=summary,
                description=as_adf(description) if description else None,
                labels=list(labels or []),
                status=self.status_id(status),
                created=now,
                updated=now,
            )
            self.issues[key] = issue
            if labels:
                self._history(issue, by or self.bot, [self._labels_item([], issue.labels)], at=now)
        return issue

    def add_label(self, key: str, label: str, *, by: User) -> None:
        with self.server.lock:
            issue = self.issues[key]
            before = list(issue.labels)
            if label not in issue.labels:
                issue.labels.append(label)
                self._history(issue, by, [self._labels_item(before, issue.labels)])

    def set_status(self, key: str, status: str, *, by: User) -> None:
        with self.server.lock:
            issue = self.issues[key]
            self._change_status(issue, self.status_id(status), by)

    def comment(self, key: str, text: str, *, by: User) -> None:
        with self.server.lock:
            issue = self.issues[key]
            now = self.now()
            issue.comments.append(Comment(str(next(self._ids)), by.account_id, as_adf(text), now, now))
            issue.updated = now

    def touch(self, key: str, at: datetime) -> None:
        """Set `updated` as if a change at `at` only now reached the search index (index lag)."""
        with self.server.lock:
            self.issues[key].updated = at

    # --- what tests read -------------------------------------------------------------------------------------------

    def status_name(self, key: str) -> str:
        return self.statuses[self.issues[key].status]

    def bot_comments(self, key: str) -> list[Comment]:
        return [c for c in self.issues[key].comments if c.author == self.bot.account_id]

    def status_comments(self, key: str) -> list[Comment]:
        return [
            c for c in self.issues[key].comments if (c.properties.get("tracker-bridge") or {}).get("kind") == "status"
        ]

    def comment_text(self, comment: Comment) -> str:
        return adf_text(comment.body)

    # --- internals -------------------------------------------------------------------------------------------------

    @staticmethod
    def _labels_item(before: list[str], after: list[str]) -> dict[str, Any]:
        return {
            "field": "labels",
            "fieldtype": "jira",
            "fieldId": "labels",
            "from": None,
            "fromString": " ".join(before),
            "to": None,
            "toString": " ".join(after),
        }

    def _history(self, issue: Issue, by: User, items: list[dict[str, Any]], at: datetime | None = None) -> None:
        now = at or self.now()
        issue.changelog.append({"id": str(next(self._ids)), "author": by.account_id, "created": now, "items": items})
        issue.updated = now

    def _change_status(self, issue: Issue, to: str, by: User) -> None:
        item = {
            "field": "status",
            "fieldtype": "jira",
            "fieldId": "status",
            "from": issue.status,
            "fromString": self.statuses[issue.status],
            "to": to,
            "toString": self.statuses[to],
        }
        issue.status = to
        self._history(issue, by, [item])

    def _time(self, moment: datetime, user: User) -> str:
        local = moment.astimezone(ZoneInfo(user.time_zone))
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")

    def _user_json(self, account_id: str) -> dict[str, Any]:
        user = self.users[account_id]
        out = {**user.json(), "self": f"{self.url}/rest/api/3/user?accountId={account_id}"}
        if self.hide_emails and account_id != self.bot.account_id:
            del out["emailAddress"]  # Jira Cloud hides emails that their owners keep private
        return out

    def _status_json(self, sid: str) -> dict[str, Any]:
        name = self.statuses[sid]
        category = "done" if name == "Done" else ("new" if name == "To Do" else "indeterminate")
        return {
            "self": f"{self.url}/rest/api/3/status/{sid}",
            "id": sid,
            "name": name,
            "statusCategory": {"key": category, "name": category.title()},
        }

    # --- request handling ------------------------------------------------------------------------------------------

    def _authenticate(self, req: Request) -> User | None:
        auth = req.headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                email, _, token = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
            return next((u for u in self.users.values() if u.email == email and u.token and u.token == token), None)
        if auth.startswith("Bearer ") and self.pat and auth[7:] == self.pat:
            return self.bot
        return None

    def _before(self, req: Request) -> Response | None:
        if not req.path.startswith("/rest/"):
            return error(404, f"null for uri: {self.url}{req.path}")
        user = self._authenticate(req)
        if user is None:
            return error(401, "You are not authenticated. Authentication required to perform this operation.")
        req.headers["x-sim-user"] = user.account_id
        version = "3"
        if req.path.startswith("/rest/agile/"):
            problems = self.agile.check(req)
        else:
            path = req.path
            if path.startswith("/rest/api/2/"):
                version = "2"
                path = "/rest/api/3/" + path[len("/rest/api/2/") :]
            elif path.startswith("/rest/api/latest/"):
                path = "/rest/api/3/" + path[len("/rest/api/latest/") :]
            mapped = Request(req.method, path, req.query, req.headers, req.body)
            problems = self.platform.check(mapped)
        req.headers["x-sim-version"] = version
        if problems:
            self.rejected.append((req, problems))
            if any(p.startswith(("unknown path", "method")) for p in problems):
                status = 405 if problems[0].startswith("method") else 404
                return error(status, f"null for uri: {self.url}{req.path}", *problems)
            return error(400, *problems)
        return None

    def _register(self) -> None:
        s = self.server
        s.before.append(self._before)

        def add(method: str, pattern: str, fn: Callable[..., Response]) -> None:
            s.add_route(method, pattern, lambda req, **kw: self._after(req, fn(req, **kw)))

        for v in ("2", "3", "latest"):
            api = f"/rest/api/{v}"
            add("GET", f"{api}/serverInfo", self.h_server_info)
            add("GET", f"{api}/myself", self.h_myself)
            add("GET", f"{api}/search/jql", self.h_search_jql)
            add("GET", f"{api}/search", self.h_search_v2)
            add("GET", f"{api}/status", self.h_statuses)
            add("GET", f"{api}/project/{{project}}/statuses", self.h_project_statuses)
            add("GET", f"{api}/mypermissions", self.h_permissions)
            add("GET", f"{api}/user/search", self.h_user_search)
            add("GET", f"{api}/issue/{{key}}", self.h_get_issue)
            add("PUT", f"{api}/issue/{{key}}", self.h_edit_issue)
            add("GET", f"{api}/issue/{{key}}/transitions", self.h_get_transitions)
            add("POST", f"{api}/issue/{{key}}/transitions", self.h_do_transition)
            add("GET", f"{api}/issue/{{key}}/comment", self.h_get_comments)
            add("POST", f"{api}/issue/{{key}}/comment", self.h_add_comment)
            add("GET", f"{api}/issue/{{key}}/comment/{{cid}}", self.h_get_comment)
            add("PUT", f"{api}/issue/{{key}}/comment/{{cid}}", self.h_edit_comment)
            add("DELETE", f"{api}/issue/{{key}}/comment/{{cid}}", self.h_delete_comment)
            add("GET", f"{api}/issue/{{key}}/properties/{{prop}}", self.h_get_property)
            add("PUT", f"{api}/issue/{{key}}/properties/{{prop}}", self.h_put_property)
            add("DELETE", f"{api}/issue/{{key}}/properties/{{prop}}", self.h_delete_property)
            add("GET", f"{api}/comment/{{cid}}/properties/{{prop}}", self.h_get_comment_property)
            add("PUT", f"{api}/comment/{{cid}}/properties/{{prop}}", self.h_put_comment_property)
            add("GET", f"{api}/issue/{{key}}/remotelink", self.h_get_links)
            add("POST", f"{api}/issue/{{key}}/remotelink", self.h_add_link)
            add("GET", f"{api}/issue/{{key}}/changelog", self.h_changelog)
        add("GET", "/rest/agile/1.0/board/{board}/configuration", self.h_board_configuration)

    # helpers for handlers

    def _user(self, req: Request) -> User:
        return self.users[req.headers["x-sim-user"]]

    @staticmethod
    def _v2(req: Request) -> bool:
        return req.headers.get("x-sim-version") == "2"

    def _issue(self, key: str) -> Issue | None:
        issue = self.issues.get(key) or next((i for i in self.issues.values() if i.id == key), None)
        return issue if issue is not None and "BROWSE_PROJECTS" in self.permissions else None

    @staticmethod
    def _no_issue() -> Response:
        return error(404, "Issue does not exist or you do not have permission to see it.")

    def _body_out(self, body: Any, req: Request) -> Any:
        if self._v2(req):
            return adf_text(body)
        return body if isinstance(body, dict) else as_adf(str(body))

    def _body_in(self, body: Any, req: Request, field_name: str = "comment") -> tuple[Any, Response | None]:
        if self._v2(req):
            if not isinstance(body, str):
                return None, error(400, **{field_name: "Operation value must be a string"})
            return body, None
        problems = adf_problems(body)
        if problems:
            return None, error(400, **{field_name: "; ".join(problems)})
        return body, None

    def _comment_json(self, issue: Issue, c: Comment, req: Request, *, expand: bool = False) -> dict[str, Any]:
        viewer = self._user(req)
        out: dict[str, Any] = {
            "self": f"{self.url}/rest/api/3/issue/{issue.id}/comment/{c.id}",
            "id": c.id,
            "author": self._user_json(c.author),
            "updateAuthor": self._user_json(c.author),
            "body": self._body_out(c.body, req),
            "created": self._time(c.created, viewer),
            "updated": self._time(c.updated, viewer),
        }
        if expand:
            out["properties"] = [{"key": k, "value": v} for k, v in c.properties.items()]
        return out

    def _fields(self, req: Request) -> set[str]:
        raw = ",".join(req.query.get("fields", []))
        names = {f.strip() for f in raw.split(",") if f.strip()}
        return names or {"*navigable"}

    def _issue_json(self, issue: Issue, req: Request, fields: set[str]) -> dict[str, Any]:
        viewer = self._user(req)
        every = "*all" in fields or "*navigable" in fields
        out_fields: dict[str, Any] = {}
        if every or "summary" in fields:
            out_fields["summary"] = issue.summary
        if every or "description" in fields:
            out_fields["description"] = self._body_out(issue.description, req) if issue.description else None
        if every or "labels" in fields:
            out_fields["labels"] = list(issue.labels)
        if every or "status" in fields:
            out_fields["status"] = self._status_json(issue.status)
        if every or "updated" in fields:
            out_fields["updated"] = self._time(issue.updated, viewer)
        if every or "created" in fields:
            out_fields["created"] = self._time(issue.created, viewer)
        if every or "comment" in fields:
            comments = [self._comment_json(issue, c, req) for c in issue.comments]
            out_fields["comment"] = {
                "comments": comments,
                "maxResults": len(comments),
                "total": len(comments),
                "startAt": 0,
            }
        out: dict[str, Any] = {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.url}/rest/api/3/issue/{issue.id}",
            "fields": out_fields,
        }
        wanted_props = {p for raw in req.query.get("properties", []) for p in raw.split(",") if p}
        if wanted_props:
            out["properties"] = {
                k: v for k, v in issue.properties.items() if k in wanted_props or "*all" in wanted_props
            }
        expand = {e for raw in req.query.get("expand", []) for e in raw.split(",")}
        if "transitions" in expand:
            out["transitions"] = self._available(issue)
        if "changelog" in expand:
            histories = [self._history_json(h, viewer) for h in issue.changelog]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(histories),
                "total": len(histories),
                "histories": histories,
            }
        return out

    def _history_json(self, h: dict[str, Any], viewer: User) -> dict[str, Any]:
        return {
            "id": h["id"],
            "author": self._user_json(h["author"]),
            "created": self._time(h["created"], viewer),
            "items": h["items"],
        }

    def _available(self, issue: Issue) -> list[dict[str, Any]]:
        return [
            {
                "id": t.id,
                "name": t.name,
                "to": self._status_json(t.to),
                "hasScreen": bool(t.required_fields),
                "isGlobal": t.sources is None,
                "isAvailable": True,
            }
            for t in self.transitions
            if (t.sources is None or issue.status in t.sources) and t.to != issue.status
        ]

    # --- handlers --------------------------------------------------------------------------------------------------

    def h_server_info(self, req: Request) -> Response:
        return Response(
            200,
            {
                "baseUrl": self.url,
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100000,
                "serverTitle": "Jira simulator",
            },
        )

    def h_myself(self, req: Request) -> Response:
        return Response(200, self._user_json(self._user(req).account_id))

    def _search(self, req: Request) -> tuple[list[Issue], Response | None]:
        jql = req.arg("jql", "") or ""
        user = self._user(req)
        if "BROWSE_PROJECTS" not in self.permissions:
            return [], None
        try:
            query = parse(
                jql, statuses={n.lower(): sid for sid, n in self.statuses.items()}, tz=user.time_zone, now=self.now()
            )
        except JQLError as exc:
            return [], error(400, str(exc))
        found = [i for i in self.issues.values() if query.predicate(i.jql_view())]
        for name, desc in reversed(query.order or [("created", True)]):
            field_name = "key" if name == "issuekey" else name

            def sort_key(i: Issue, f: str = field_name) -> Any:
                if f == "key":
                    return (i.project, int(i.key.rsplit("-", 1)[1]))
                return i.jql_view().get(f)

            found.sort(key=sort_key, reverse=desc)
        return found, None

    def h_search_jql(self, req: Request) -> Response:
        found, err = self._search(req)
        if err is not None:
            return err
        try:
            start = (
                int(base64.b64decode(req.arg("nextPageToken", "") or "").decode() or 0)
                if req.arg("nextPageToken")
                else 0
            )
        except ValueError:
            return error(400, "The provided next page token is invalid or expired.")
        size = min(int(req.arg("maxResults", "50") or 50), self.page_limit)
        page = found[start : start + size]
        fields = self._fields(req)
        body: dict[str, Any] = {
            "issues": [self._issue_json(i, req, fields) for i in page],
            "isLast": start + size >= len(found),
        }
        if start + size < len(found):
            body["nextPageToken"] = base64.b64encode(str(start + size).encode()).decode()
        return Response(200, body)

    def h_search_v2(self, req: Request) -> Response:
        found, err = self._search(req)
        if err is not None:
            return err
        start = int(req.arg("startAt", "0") or 0)
        size = min(int(req.arg("maxResults", "50") or 50), self.page_limit)
        fields = self._fields(req)
        page = found[start : start + size]
        return Response(
            200,
            {
                "startAt": start,
                "maxResults": size,
                "total": len(found),
                "issues": [self._issue_json(i, req, fields) for i in page],
            },
        )

    def h_statuses(self, req: Request) -> Response:
        return Response(200, [self._status_json(sid) for sid in self.statuses])

    def h_project_statuses(self, req: Request, project: str) -> Response:
        if project not in self.projects:
            return error(404, f"No project could be found with key '{project}'.")
        used = {t.to for t in self.transitions} | {i.status for i in self.issues.values() if i.project == project}
        return Response(
            200,
            [
                {
                    "id": "1",
                    "name": "Task",
                    "subtask": False,
                    "statuses": [self._status_json(sid) for sid in self.statuses if sid in used],
                }
            ],
        )

    def h_permissions(self, req: Request) -> Response:
        wanted = (req.arg("permissions") or "").split(",")
        return Response(
            200,
            {
                "permissions": {
                    p: {
                        "id": str(i),
                        "key": p,
                        "name": p.replace("_", " ").title(),
                        "type": "PROJECT",
                        "havePermission": p in self.permissions,
                    }
                    for i, p in enumerate(w for w in wanted if w)
                }
            },
        )

    def h_user_search(self, req: Request) -> Response:
        q = (req.arg("query") or "").lower()
        return Response(
            200,
            [
                self._user_json(u.account_id)
                for u in self.users.values()
                if q and (q in u.email.lower() or q in u.name.lower())
            ],
        )

    def h_get_issue(self, req: Request, key: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        return Response(200, self._issue_json(issue, req, self._fields(req)))

    def h_edit_issue(self, req: Request, key: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        if "EDIT_ISSUES" not in self.permissions:
            return error(403, "You do not have permission to edit issues in this project.")
        data = req.json() or {}
        touched = set(data.get("fields") or {}) | set(data.get("update") or {})
        for name in touched:
            if name not in self.screen_fields:
                return error(
                    400, **{name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."}
                )
        before = list(issue.labels)
        labels = list(issue.labels)
        if "labels" in (data.get("fields") or {}):
            labels = list(data["fields"]["labels"])
        for op in (data.get("update") or {}).get("labels", []):
            for verb, value in op.items():
                if verb == "add" and value not in labels:
                    labels.append(value)
                elif verb == "remove" and value in labels:
                    labels.remove(value)
                elif verb == "set":
                    labels = list(value)
        for label in labels:
            if " " in str(label):
                return error(400, labels=f"The label '{label}' contains spaces which is invalid.")
        if "summary" in (data.get("fields") or {}):
            issue.summary = data["fields"]["summary"]
        if labels != before:
            issue.labels = labels
            self._history(issue, self._user(req), [self._labels_item(before, labels)])
        return Response(204)

    def h_get_transitions(self, req: Request, key: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        return Response(200, {"transitions": self._available(issue)})

    def h_do_transition(self, req: Request, key: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        if "TRANSITION_ISSUES" not in self.permissions:
            return error(403, "You do not have permission to transition this issue.")
        data = req.json() or {}
        tid = str((data.get("transition") or {}).get("id", ""))
        chosen = next((t for t in self._available(issue) if t["id"] == tid), None)
        if chosen is None:
            return error(400, f"Transition id '{tid}' is not valid for this issue.")
        transition = next(t for t in self.transitions if t.id == tid)
        missing = [f for f in transition.required_fields if f not in (data.get("fields") or {})]
        if missing:
            return error(400, **{f: f"{f.title()} is required." for f in missing})
        self._change_status(issue, transition.to, self._user(req))
        return Response(204)

    def h_get_comments(self, req: Request, key: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        start = int(req.arg("startAt", "0") or 0)
        size = min(int(req.arg("maxResults", "100") or 100), 100)
        expand = "properties" in (req.arg("expand") or "")
        ordered = sorted(issue.comments, key=lambda c: c.created, reverse=(req.arg("orderBy") or "") == "-created")
        page = ordered[start : start + size]
        return Response(
            200,
            {
                "startAt": start,
                "maxResults": size,
                "total": len(ordered),
                "comments": [self._comment_json(issue, c, req, expand=expand) for c in page],
            },
        )

    def h_add_comment(self, req: Request, key: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        if "ADD_COMMENTS" not in self.permissions:
            return error(403, "You do not have permission to add comments to this issue.")
        data = req.json() or {}
        body, err = self._body_in(data.get("body"), req)
        if err is not None:
            return err
        now = self.now()
        props = {p["key"]: p.get("value") for p in data.get("properties") or []}
        c = Comment(str(next(self._ids)), self._user(req).account_id, body, now, now, props)
        issue.comments.append(c)
        issue.updated = now
        return Response(201, self._comment_json(issue, c, req))

    def _find_comment(self, issue: Issue, cid: str) -> Comment | None:
        return next((c for c in issue.comments if c.id == cid), None)

    def h_get_comment(self, req: Request, key: str, cid: str) -> Response:
        issue = self._issue(key)
        c = self._find_comment(issue, cid) if issue else None
        if issue is None or c is None:
            return error(404, "Can not find a comment for the id: " + cid + ".")
        return Response(200, self._comment_json(issue, c, req, expand="properties" in (req.arg("expand") or "")))

    def h_edit_comment(self, req: Request, key: str, cid: str) -> Response:
        issue = self._issue(key)
        c = self._find_comment(issue, cid) if issue else None
        if issue is None or c is None:
            return error(404, "Can not find a comment for the id: " + cid + ".")
        if c.author != self._user(req).account_id and "EDIT_ALL_COMMENTS" not in self.permissions:
            return error(403, "You do not have the permission to edit this comment.")
        if "EDIT_OWN_COMMENTS" not in self.permissions:
            return error(403, "You do not have the permission to edit this comment.")
        body, err = self._body_in((req.json() or {}).get("body"), req)
        if err is not None:
            return err
        c.body = body
        c.updated = self.now()
        issue.updated = c.updated
        return Response(200, self._comment_json(issue, c, req))

    def h_delete_comment(self, req: Request, key: str, cid: str) -> Response:
        issue = self._issue(key)
        c = self._find_comment(issue, cid) if issue else None
        if issue is None or c is None:
            return error(404, "Can not find a comment for the id: " + cid + ".")
        issue.comments.remove(c)
        return Response(204)

    def h_get_property(self, req: Request, key: str, prop: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        if prop not in issue.properties:
            return error(404, f"The property with key '{prop}' does not exist.")
        return Response(200, {"key": prop, "value": issue.properties[prop]})

    def h_put_property(self, req: Request, key: str, prop: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        if "EDIT_ISSUES" not in self.permissions:
            return error(403, "You do not have permission to edit issues in this project.")
        if len(req.body) > 32768:
            return error(400, "The property value is too long.")
        created = prop not in issue.properties
        issue.properties[prop] = req.json()
        return Response(201 if created else 200)

    def h_delete_property(self, req: Request, key: str, prop: str) -> Response:
        issue = self._issue(key)
        if issue is None or prop not in issue.properties:
            return error(404, f"The property with key '{prop}' does not exist.")
        del issue.properties[prop]
        return Response(204)

    def _comment_anywhere(self, cid: str) -> Comment | None:
        return next((c for i in self.issues.values() for c in i.comments if c.id == cid), None)

    def h_get_comment_property(self, req: Request, cid: str, prop: str) -> Response:
        c = self._comment_anywhere(cid)
        if c is None or prop not in c.properties:
            return error(404, f"The property with key '{prop}' does not exist.")
        return Response(200, {"key": prop, "value": c.properties[prop]})

    def h_put_comment_property(self, req: Request, cid: str, prop: str) -> Response:
        c = self._comment_anywhere(cid)
        if c is None:
            return error(404, "Can not find a comment for the id: " + cid + ".")
        created = prop not in c.properties
        c.properties[prop] = req.json()
        return Response(201 if created else 200)

    def h_get_links(self, req: Request, key: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        return Response(200, issue.remote_links)

    def h_add_link(self, req: Request, key: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        if "LINK_ISSUES" not in self.permissions:
            return error(403, "You do not have permission to link issues in this project.")
        data = req.json() or {}
        obj = data.get("object") or {}
        if not obj.get("url") or not obj.get("title"):
            return error(400, **{"object": "The remote link object needs url and title."})
        existing = next(
            (link for link in issue.remote_links if data.get("globalId") and link.get("globalId") == data["globalId"]),
            None,
        )
        if existing is not None:
            existing.update({k: v for k, v in data.items()})
            return Response(200, {"id": existing["id"], "self": existing["self"]})
        lid = next(self._ids)
        link = {"id": lid, "self": f"{self.url}/rest/api/3/issue/{key}/remotelink/{lid}", **data}
        issue.remote_links.append(link)
        issue.updated = self.now()
        return Response(201, {"id": lid, "self": link["self"]})

    def h_changelog(self, req: Request, key: str) -> Response:
        issue = self._issue(key)
        if issue is None:
            return self._no_issue()
        start = int(req.arg("startAt", "0") or 0)
        size = min(int(req.arg("maxResults", "100") or 100), 100)
        viewer = self._user(req)
        values = [self._history_json(h, viewer) for h in issue.changelog[start : start + size]]
        return Response(
            200,
            {
                "startAt": start,
                "maxResults": size,
                "total": len(issue.changelog),
                "isLast": start + size >= len(issue.changelog),
                "values": values,
            },
        )

    def h_board_configuration(self, req: Request, board: str) -> Response:
        columns = self.boards.get(int(board))
        if columns is None:
            return error(404, f"Board {board} does not exist or you do not have permission to see it.")
        return Response(
            200,
            {
                "id": int(board),
                "name": f"Board {board}",
                "type": "kanban",
                "columnConfig": {
                    "constraintType": "none",
                    "columns": [
                        {
                            "name": name,
                            "statuses": [{"id": sid, "self": f"{self.url}/rest/api/3/status/{sid}"} for sid in ids],
                        }
                        for name, ids in columns
                    ],
                },
            },
        )
