"""GitHub Projects (v2) as a tracker: cards are project items, columns are the options of the Status field.

Cost model (what an idle poll spends): the project's Status field and options are read once (one small GraphQL
query) and cached. Each poll then sends two conditional REST requests to the Projects v2 items endpoint, filtered
on the server (`q=status:"Agent"` and `q=label:"agent-ready"`); when nothing changed GitHub answers 304, which costs
no rate limit and no GraphQL points. Only a changed answer costs anything: its items are read, and every item changed
since the cursor is fetched as a ticket (one GraphQL query each). GraphQL's `items` connection has no filter, so it
would mean a full scan of the project; the REST endpoint's `q` avoids that.

Moves go through GraphQL's `updateProjectV2ItemFieldValue`; comments, labels, label events and permissions through
REST. The status comment is found again on GitHub by its hidden marker, so a lost state store never duplicates it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from tracker_bridge.config import ConfigError, Settings, TrackerConfig
from tracker_bridge.models import PullRequest, Ticket, TicketComment
from tracker_bridge.protocols import STATUS_MARKER, PollResult, Problem, TrackerError, Trigger
from tracker_bridge_connectors.github.client import GitHubAPIError, GitHubClient
from tracker_bridge_connectors.github.refs import IssueRef
from tracker_bridge_connectors.github_projects import queries

_PERMISSION_ORDER = ["none", "read", "triage", "write", "maintain", "admin"]
_KNOWN_OPTIONS = {"status_field", "min_permission", "page_limit"}
# Timestamps on GitHub have second precision and clocks differ: look back a little so nothing is missed;
# the engine recognises a ticket it already knows.
_CURSOR_SKEW = timedelta(seconds=5)


@dataclass(frozen=True)
class ProjectScope:
    """Which project: an organisation's ("acme/5") or a user's ("user:octocat/3")."""

    owner: str
    number: int
    is_user: bool

    @classmethod
    def parse(cls, query: str) -> ProjectScope:
        m = re.fullmatch(r"\s*(?:(user|org):)?([A-Za-z0-9][A-Za-z0-9-]*)/(\d+)\s*", query)
        if not m:
            raise ValueError(f"{query!r} is not a project like 'acme/5' (organisation) or 'user:octocat/3' (user)")
        return cls(owner=m[2], number=int(m[3]), is_user=m[1] == "user")

    @property
    def rest_base(self) -> str:
        kind = "users" if self.is_user else "orgs"
        return f"/{kind}/{self.owner}/projectsV2/{self.number}"

    def __str__(self) -> str:
        return f"{'user:' if self.is_user else ''}{self.owner}/{self.number}"


@dataclass(frozen=True)
class Project:
    id: str
    title: str
    url: str
    field_id: str
    field_database_id: int | None
    options: dict[str, str]  # column name -> option id


@dataclass(frozen=True)
class IssueView:
    """What ISSUE_QUERY returned for one issue, with our project's item picked out."""

    ticket: Ticket
    node_id: str
    item_id: str | None
    status_setter: str | None


def _filter_value(value: str) -> str:
    return f'"{value}"' if re.search(r"[\s:\"]", value) else value


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class GitHubProjectsTracker:
    # Issue comments come with their authors' logins and database ids: `@mention` follow-ups on the issue.
    comments_with_authors = True

    def __init__(
        self,
        name: str,
        scope: ProjectScope,
        client: GitHubClient,
        trigger: Trigger,
        *,
        status_field: str = "Status",
        min_permission: str = "write",
        page_limit: int = 10,
    ) -> None:
        self.name = name
        self.scope = scope
        self.client = client
        self.trigger = trigger
        self.status_field = status_field
        self.min_permission = min_permission
        self.page_limit = page_limit
        self._project: Project | None = None
        # filter -> {ref: (item updated_at, issue updated_at)} from the last full answer, to tell news apart
        self._seen: dict[str, dict[str, tuple[str, str]]] = {}

    @classmethod
    def from_config(cls, cfg: TrackerConfig, settings: Settings) -> GitHubProjectsTracker:
        key = f'trackers (name "{cfg.name}")'
        problems: list[str] = []
        try:
            scope = ProjectScope.parse(cfg.query)
        except ValueError as exc:
            fix = "set query to 'ORG/NUMBER' or 'user:LOGIN/NUMBER'"
            problems.append(f"{key}.query = {cfg.query!r}: {exc}. Fix: {fix}")
        unknown = sorted(set(cfg.options) - _KNOWN_OPTIONS)
        if unknown:
            problems.append(
                f"{key}.options: unknown option(s) {', '.join(unknown)}. Fix: use {', '.join(sorted(_KNOWN_OPTIONS))}"
            )
        min_permission = str(cfg.options.get("min_permission", "write"))
        if min_permission not in _PERMISSION_ORDER:
            problems.append(
                f"{key}.options.min_permission = {min_permission!r}: unknown. Fix: use one of {_PERMISSION_ORDER}"
            )
        page_limit = cfg.options.get("page_limit", 10)
        if not isinstance(page_limit, int) or isinstance(page_limit, bool) or page_limit < 1:
            problems.append(f"{key}.options.page_limit = {page_limit!r}: not a positive whole number. Fix: e.g. 10")
        token = cfg.token()
        if not token:
            env = cfg.token_env or "GITHUB_TOKEN"
            problems.append(f"{key}.token_env: no GitHub token. Fix: set token_env and export {env}=<token>")
        if problems:
            raise ConfigError(problems)
        assert token is not None
        client = GitHubClient(cfg.url or None, token, token_env=cfg.token_env or "GITHUB_TOKEN")
        return cls(
            cfg.name,
            scope,
            client,
            Trigger(settings.trigger.label, settings.trigger.column),
            status_field=str(cfg.options.get("status_field", "Status")),
            min_permission=min_permission,
            page_limit=int(page_limit),
        )

    # --- the project, read once ------------------------------------------------------------------------------------

    def project(self) -> Project:
        if self._project is None:
            self._project = self._load_project()
        return self._project

    def _load_project(self) -> Project:
        document = queries.USER_PROJECT_QUERY if self.scope.is_user else queries.ORG_PROJECT_QUERY
        variables = {"login": self.scope.owner, "number": self.scope.number, "statusField": self.status_field}
        try:
            data = self.client.graphql(document, variables)
        except GitHubAPIError as exc:
            if exc.not_found:
                raise TrackerError(
                    f"GitHub project {self.scope} was not found ({exc}). Fix: check the owner and number in the "
                    "project's URL (github.com/orgs/OWNER/projects/NUMBER), and that the token can see it"
                ) from exc
            raise TrackerError(
                f"GitHub project {self.scope}: {exc}. Fix: check the query and that the token has the project scope "
                "(classic: read:project/project; fine-grained: Projects read and write)"
            ) from exc
        owner = data.get("user" if self.scope.is_user else "organization") or {}
        project = owner.get("projectV2")
        if not project:
            raise TrackerError(
                f"GitHub project {self.scope} was not found. Fix: check the owner and number in the project's URL, "
                "and that the token can see it"
            )
        field = project.get("field") or {}
        if field.get("__typename") != "ProjectV2SingleSelectField":
            raise TrackerError(
                f"GitHub project {self.scope} has no single-select field named {self.status_field!r}. Fix: set "
                "options.status_field to the field that holds the board's columns"
            )
        options = {o["name"]: o["id"] for o in field.get("options") or []}
        return Project(
            id=project["id"],
            title=project.get("title", ""),
            url=project.get("url", ""),
            field_id=field["id"],
            field_database_id=field.get("databaseId"),
            options=options,
        )

    # --- doctor ----------------------------------------------------------------------------------------------------

    def check(self, columns: Mapping[str, str]) -> list[Problem]:
        key = f'trackers (name "{self.name}")'
        try:
            self._project = None
            project = self.project()
        except TrackerError as exc:
            message, _, fix = str(exc).partition(". Fix: ")
            return [Problem(key, message, fix or "see docs/github.md")]
        problems: list[Problem] = []
        wanted = dict(columns)
        wanted.setdefault("trigger", self.trigger.column)
        for stage, column in wanted.items():
            if column not in project.options and not (
                stage == "trigger" and any(self.trigger.in_column(option) for option in project.options)
            ):
                problems.append(
                    Problem(
                        f"[stages] {stage}" if stage != "trigger" else "[trigger] column",
                        f"{column!r} is not an option of the {self.status_field!r} field of project {self.scope} "
                        f"(options: {', '.join(project.options) or 'none'})",
                        f"add the option {column!r} to the {self.status_field} field on GitHub, or map the stage "
                        "to an existing option",
                    )
                )
        try:
            self.client.rest("GET", f"{self.scope.rest_base}/items", params={"per_page": 1})
        except GitHubAPIError as exc:
            problems.append(Problem(key, f"cannot list the project's items: {exc}", "see docs/github.md for scopes"))
        return problems

    # --- polling ---------------------------------------------------------------------------------------------------

    def _filters(self) -> list[str]:
        field = self.status_field.lower().replace(" ", "-")
        return [
            # GitHub's filters ignore case; the spaces around a configured name are not part of it.
            f"is:issue is:open {field}:{_filter_value(self.trigger.column.strip())}",
            f"is:issue is:open label:{_filter_value(self.trigger.label.strip())}",
        ]

    def _items(self, q: str) -> tuple[list[dict[str, Any]], bool]:
        """Items matching `q` (first page conditional) and whether the answer changed since the last poll."""
        project = self.project()
        params: dict[str, Any] = {"q": q, "per_page": 100}
        if project.field_database_id is not None:
            params["fields"] = str(project.field_database_id)
        path = f"{self.scope.rest_base}/items"
        try:
            first = self.client.rest("GET", path, params=params, conditional=True)
            if first.not_modified:
                return [], False
            items = list(first.data or [])
            result = first
            for _ in range(self.page_limit - 1):
                nxt = result.next_url
                if not nxt:
                    break
                result = self.client.rest("GET", nxt)
                items.extend(result.data or [])
        except GitHubAPIError as exc:
            raise TrackerError(f"GitHub project {self.scope}: polling items failed: {exc}") from exc
        return items, True

    def poll(self, cursor: str | None) -> PollResult:
        since = _parse_time(cursor) if cursor else None
        started = datetime.now(UTC)
        changed: list[str] = []
        for q in self._filters():
            items, fresh = self._items(q)
            if not fresh:
                continue
            seen = self._seen.setdefault(q, {})
            known = dict(seen)
            seen.clear()
            for item in items:
                content = item.get("content") or {}
                if item.get("content_type") != "Issue" or item.get("archived_at") or not content.get("number"):
                    continue
                ref = self._ref_from_content(content)
                if ref is None:
                    continue
                stamps = (str(item.get("updated_at")), str(content.get("updated_at")))
                seen[ref] = stamps
                if ref in changed:
                    continue
                if known:
                    # This process saw the previous answer: only items whose stamps moved are news.
                    if known.get(ref) != stamps:
                        changed.append(ref)
                    continue
                times = [_parse_time(t) for t in stamps if t != "None"]
                updated = max((t for t in times if t is not None), default=None)
                if since is None or updated is None or updated >= since - _CURSOR_SKEW:
                    changed.append(ref)
        tickets = []
        for ref in changed:
            ticket = self.get_ticket(ref)
            if self.trigger.matches(ticket):
                tickets.append(ticket)
        return PollResult(tickets=tickets, cursor=started.isoformat())

    def _ref_from_content(self, content: dict[str, Any]) -> str | None:
        html = str(content.get("html_url") or "")
        m = re.search(r"/([^/]+)/([^/]+)/issues/(\d+)$", html)
        if m:
            return f"{m[1]}/{m[2]}#{m[3]}"
        api = str(content.get("repository_url") or "")
        m = re.search(r"/repos/([^/]+)/([^/]+)$", api)
        return f"{m[1]}/{m[2]}#{content['number']}" if m else None

    # --- tickets ---------------------------------------------------------------------------------------------------

    def _issue_ref(self, ref: str) -> IssueRef:
        try:
            return IssueRef.parse(ref)
        except ValueError as exc:
            raise TrackerError(str(exc)) from exc

    def _view(self, ref: str) -> IssueView:
        issue_ref = self._issue_ref(ref)
        project = self.project()
        variables = {
            "owner": issue_ref.owner,
            "repo": issue_ref.repo,
            "number": issue_ref.number,
            "statusField": self.status_field,
        }
        try:
            data = self.client.graphql(queries.ISSUE_QUERY, variables)
        except GitHubAPIError as exc:
            raise TrackerError(f"GitHub issue {ref}: {exc}") from exc
        issue = (data.get("repository") or {}).get("issue")
        if not issue:
            raise TrackerError(
                f"GitHub issue {ref} was not found (or the token cannot see its repository)", transient=False
            )
        item_id = column = setter = None
        for item in (issue.get("projectItems") or {}).get("nodes") or []:
            if item and (item.get("project") or {}).get("id") == project.id and not item.get("isArchived"):
                item_id = item["id"]
                value = item.get("fieldValueByName") or {}
                column = value.get("name")
                setter = (value.get("creator") or {}).get("login")
                break
        people = [
            c
            for c in (issue.get("comments") or {}).get("nodes") or []
            if c and STATUS_MARKER not in (c.get("body") or "")
        ]
        comments = tuple(c["body"] for c in people)
        discussion = tuple(
            TicketComment(id=str(c.get("databaseId")), author=(c.get("author") or {}).get("login"), body=c["body"])
            for c in people
            if c.get("databaseId") is not None and c.get("body") is not None
        )
        ticket = Ticket(
            ref=str(issue_ref),
            tracker=self.name,
            title=issue.get("title") or "",
            description=issue.get("body") or "",
            labels=tuple(n["name"] for n in (issue.get("labels") or {}).get("nodes") or [] if n),
            column=column,
            url=issue.get("url") or "",
            updated_at=_parse_time(issue.get("updatedAt")),
            comments=comments,
            discussion=discussion,
            closed=issue.get("state") == "CLOSED",
        )
        return IssueView(ticket=ticket, node_id=issue["id"], item_id=item_id, status_setter=setter)

    def get_ticket(self, ref: str) -> Ticket:
        return self._view(ref).ticket

    # --- changes ---------------------------------------------------------------------------------------------------

    def move(self, ref: str, column: str) -> None:
        project = self.project()
        option = project.options.get(column)
        if option is None:
            raise TrackerError(
                f"cannot move {ref} to {column!r}: the project's {self.status_field} field has no such option "
                f"(options: {', '.join(project.options)}). Fix: add it on GitHub or change [stages]"
            )
        view = self._view(ref)
        if view.ticket.column == column:
            return
        try:
            item_id = view.item_id
            if item_id is None:
                added = self.client.graphql(queries.ADD_ITEM_MUTATION, {"project": project.id, "content": view.node_id})
                item_id = added["addProjectV2ItemById"]["item"]["id"]
            self.client.graphql(
                queries.MOVE_ITEM_MUTATION,
                {"project": project.id, "item": item_id, "field": project.field_id, "option": option},
            )
        except GitHubAPIError as exc:
            raise TrackerError(
                f"cannot move {ref} to {column!r} on project {self.scope}: {exc}. Fix: the token needs write access "
                "to the project (classic: project scope; fine-grained: Projects read and write)"
            ) from exc

    def _repo_call(self, ref: str, method: str, suffix: str, **kwargs: Any) -> Any:
        r = self._issue_ref(ref)
        try:
            return self.client.rest(method, f"/repos/{r.owner}/{r.repo}{suffix}", **kwargs)
        except GitHubAPIError as exc:
            raise TrackerError(f"GitHub issue {ref}: {exc}") from exc

    def upsert_status_comment(self, ref: str, body: str) -> None:
        r = self._issue_ref(ref)
        text = body if STATUS_MARKER in body else f"{STATUS_MARKER}\n{body}"
        ours = self._find_status_comment(ref)
        if ours is None:
            self._repo_call(ref, "POST", f"/issues/{r.number}/comments", json_body={"body": text})
        elif ours.get("body") != text:
            self._repo_call(ref, "PATCH", f"/issues/comments/{ours['id']}", json_body={"body": text})

    def _find_status_comment(self, ref: str) -> dict[str, Any] | None:
        r = self._issue_ref(ref)
        path = f"/repos/{r.owner}/{r.repo}/issues/{r.number}/comments"
        try:
            comments = self.client.rest_pages(path, limit=self.page_limit)
        except GitHubAPIError as exc:
            raise TrackerError(f"GitHub issue {ref}: reading comments failed: {exc}") from exc
        for comment in comments:
            if STATUS_MARKER in (comment.get("body") or ""):
                return dict(comment)
        return None

    def status_comment(self, ref: str) -> str | None:
        """The body of our status comment as GitHub has it (for tests and `status`)."""
        found = self._find_status_comment(ref)
        return str(found["body"]) if found else None

    def add_label(self, ref: str, label: str) -> None:
        # POST .../labels adds to the issue's labels; PUT would replace (clobber) them.
        r = self._issue_ref(ref)
        self._repo_call(ref, "POST", f"/issues/{r.number}/labels", json_body={"labels": [label]})

    def remove_label(self, ref: str, label: str) -> None:
        r = self._issue_ref(ref)
        self._repo_call(ref, "DELETE", f"/issues/{r.number}/labels/{quote(label, safe='')}", allow=(404,))

    def trigger_actor(self, ticket: Ticket) -> str | None:
        if self.trigger.has_label(ticket.labels):
            actor = self._label_actor(ticket.ref)
        elif self.trigger.in_column(ticket.column):
            actor = self._view(ticket.ref).status_setter
        else:
            actor = None
        if actor is None:
            return None
        permission = self._permission(ticket.ref, actor)
        if _PERMISSION_ORDER.index(permission) < _PERMISSION_ORDER.index(self.min_permission):
            # Still named, so the engine's message says who; never equal to an allowed login.
            return f"{actor} (only {permission} permission on {self._issue_ref(ticket.ref).full_name})"
        return actor

    def _label_actor(self, ref: str) -> str | None:
        r = self._issue_ref(ref)
        try:
            path = f"/repos/{r.owner}/{r.repo}/issues/{r.number}/events"
            events = self.client.rest_pages(path, limit=self.page_limit)
        except GitHubAPIError as exc:
            raise TrackerError(f"GitHub issue {ref}: reading issue events failed: {exc}") from exc
        for event in reversed(events):
            name = str((event.get("label") or {}).get("name") or "")
            if event.get("event") == "labeled" and self.trigger.has_label([name]):
                return str((event.get("actor") or {}).get("login") or "") or None
        return None

    def _permission(self, ref: str, login: str) -> str:
        if self.min_permission == "none":
            return "none"
        result = self._repo_call(ref, "GET", f"/collaborators/{login}/permission", allow=(404,))
        if result.status == 404:
            return "none"
        permission = str((result.data or {}).get("permission") or "none")
        role = str((result.data or {}).get("role_name") or "")
        # `permission` is the legacy name (maintain shows as write, triage as read); role_name is exact.
        return role if role in _PERMISSION_ORDER else (permission if permission in _PERMISSION_ORDER else "none")

    def link_pull_request(self, ref: str, pr: PullRequest) -> None:
        # GitHub links the pull request to the issue itself from "Closes #N" in the PR body, and the status
        # comment carries the link: nothing to add here.
        return None
