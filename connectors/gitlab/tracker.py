"""GitLab issues as a tracker: a project's (or group's) issues, its issue board's lists as columns.

- poll: one `GET /projects/:id/issues?state=opened&updated_after=...` per cycle (plus a notes read per triggered
  ticket that changed), filtered here for the trigger label or the trigger list's label; GitLab cannot OR labels.
- move: one issue edit (`add_labels` + `remove_labels`, `state_event`) after reading the issue: a list is a label,
  so the other list labels go and the target's comes; the closed list is "close the issue".
- the status comment is the bot's note carrying STATUS_MARKER, found again among the issue's notes.
- trigger_actor: the newest resource label event that added the trigger label (or the trigger list's label), and,
  with `options.min_access_level`, the person's role in the project.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
import structlog
from gitlab.exceptions import GitlabError, GitlabGetError
from gitlab.v4.objects import Group, Project, ProjectIssue

from tracker_bridge.config import ConfigError, Settings, TrackerConfig
from tracker_bridge.models import PullRequest, Ticket, TicketComment
from tracker_bridge.protocols import STATUS_MARKER, PollResult, Problem, TrackerError, Trigger
from tracker_bridge_connectors.gitlab.board import CLOSED, Board
from tracker_bridge_connectors.gitlab.client import (
    GitLabClient,
    explain,
    option_int,
    read_project,
    read_token,
    translated,
)

ACCESS_LEVELS = {"guest": 10, "planner": 15, "reporter": 20, "developer": 30, "maintainer": 40, "owner": 50}
ROLE_NAMES = {v: k.title() for k, v in ACCESS_LEVELS.items()}
KNOWN_OPTIONS = ("scope", "board", "lists", "min_access_level", "max_retries", "timeout", "overlap_seconds")
log = structlog.get_logger(__name__)
_REF = re.compile(r"^(?P<path>[\w.\-]+(?:/[\w.\-]+)+)#(?P<iid>\d+)$")


def parse_ref(ref: str) -> tuple[str, int]:
    """`group/sub/proj#12` -> ("group/sub/proj", 12)."""
    m = _REF.match(ref.strip())
    if not m:
        raise TrackerError(f"{ref!r} is not a GitLab issue reference. Fix: use the form group/project#12")
    return m["path"], int(m["iid"])


@dataclass
class _Cursor:
    """Where polling stands: the newest `updated_at` seen, and the issues already returned near it.

    Polls look back `overlap` before `after` (GitLab's updated_at is the transaction's time, so a slow write can
    land just behind the cursor); `seen` ("ref@updated_at") keeps the overlap from returning an issue twice.
    """

    after: str | None = None
    seen: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, raw: str | None) -> _Cursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(data.get("after"), set(data.get("seen", [])))
        except (ValueError, AttributeError):
            return cls()  # a cursor from another version: poll everything once, the engine is idempotent

    def dump(self) -> str:
        return json.dumps({"after": self.after, "seen": sorted(self.seen)})


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class GitLabTracker:
    """Tracker protocol over GitLab issues and issue boards (gitlab.com or self-managed through `url`)."""

    # Notes come with their authors' usernames and ids: `@mention` follow-ups on the issue read them.
    comments_with_authors = True

    def __init__(
        self,
        name: str,
        client: GitLabClient,
        scope_path: str,
        *,
        trigger: Trigger,
        columns: list[str],
        done_column: str | None,
        scope: str = "project",
        board: str | None = None,
        lists: Mapping[str, str] | None = None,
        min_access_level: int | None = None,
        overlap_seconds: int = 5,
    ) -> None:
        self.name = name
        self.gl = client
        self.scope_path = scope_path
        self.scope = scope
        self.trigger = trigger
        self.columns = columns
        self.done_column = done_column
        self.board_name = board
        self.explicit_lists = dict(lists or {})
        self.min_access_level = min_access_level
        self.overlap = timedelta(seconds=overlap_seconds)
        self._board: Board | None = None
        self._me: int | None = None

    # --- construction ----------------------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: TrackerConfig, settings: Settings) -> GitLabTracker:
        who = f'trackers (name "{cfg.name}")'
        opts: dict[str, Any] = dict(cfg.options or {})
        problems = [
            f"{who}.options.{k}: unknown option. Fix: remove it; known options: {', '.join(KNOWN_OPTIONS)}"
            for k in opts
            if k not in KNOWN_OPTIONS
        ]
        if not cfg.url:
            problems.append(f"{who}.url: missing. Fix: set url to the GitLab base URL, e.g. https://gitlab.com")
        if not cfg.query or "#" in cfg.query:
            problems.append(f"{who}.query = {cfg.query!r}: Fix: set query to the project path, e.g. group/project")
        scope = opts.get("scope", "project")
        if scope not in ("project", "group"):
            problems.append(f'{who}.options.scope = {scope!r}: Fix: use "project" or "group"')
        lists = opts.get("lists", {})
        if not isinstance(lists, dict) or not all(isinstance(v, str) for v in lists.values()):
            problems.append(f'{who}.options.lists: Fix: use a table of column = "list label", e.g. {{"Done" = "done"}}')
        level = opts.get("min_access_level")
        if level is not None and str(level).lower() not in ACCESS_LEVELS and not str(level).isdigit():
            problems.append(f"{who}.options.min_access_level = {level!r}: Fix: use one of {', '.join(ACCESS_LEVELS)}")
        if problems:
            raise ConfigError(problems)
        min_level = None
        if level is not None:
            min_level = int(level) if str(level).isdigit() else ACCESS_LEVELS[str(level).lower()]
        client = GitLabClient(
            cfg.url or "",
            read_token(cfg.token_env, TrackerError, who),
            max_retries=option_int(opts, "max_retries", 6, who),
            timeout=float(opts.get("timeout", 30)),
        )
        stages = settings.stages.as_mapping()
        columns = list(dict.fromkeys([*stages.values(), settings.trigger.column]))
        return cls(
            cfg.name,
            client,
            (cfg.query or "").strip("/"),
            trigger=Trigger(settings.trigger.label, settings.trigger.column),
            columns=columns,
            done_column=stages.get("done"),
            scope=scope,
            board=opts.get("board"),
            lists=lists,
            min_access_level=min_level,
            overlap_seconds=option_int(opts, "overlap_seconds", 5, who),
        )

    # --- GitLab objects, lazily (a lazy object costs no request) --------------------------------------------------

    def _container(self) -> Project | Group:
        if self.scope == "group":
            return self.gl.groups.get(self.scope_path, lazy=True)
        return self.gl.projects.get(self.scope_path, lazy=True)

    def _project(self, path: str) -> Project:
        return self.gl.projects.get(path, lazy=True)

    def _issue(self, ref: str) -> ProjectIssue:
        path, iid = parse_ref(ref)
        with translated(TrackerError, f"reading GitLab issue {ref}", self.gl.url):
            return self._project(path).issues.get(iid)

    def board(self) -> Board:
        """Column <-> list-label mapping, read once from the board (one request) and kept for the process."""
        if self._board is None:
            with translated(TrackerError, f"reading the issue boards of {self.scope_path}", self.gl.url):
                boards = self._container().boards.list(get_all=True)
            chosen = None
            for b in boards:
                if self.board_name is None or b.name == self.board_name or str(b.id) == str(self.board_name):
                    chosen = b
                    break
            if self.board_name is not None and chosen is None:
                raise TrackerError(
                    f"{self.scope_path} has no issue board named {self.board_name!r}. "
                    f"Fix: use one of {', '.join(b.name for b in boards) or '(none)'} in options.board"
                )
            lists = sorted(chosen.attributes.get("lists") or [], key=lambda x: x.get("position") or 0) if chosen else []
            labels = [x["label"]["name"] for x in lists if x.get("label")]
            self._board = Board.build(labels, self.columns, explicit=self.explicit_lists, done_column=self.done_column)
        return self._board

    def _me_id(self) -> int:
        if self._me is None:
            with translated(TrackerError, "reading the token's GitLab user", self.gl.url):
                self.gl.auth()
            assert self.gl.user is not None
            self._me = int(self.gl.user.id)
        return self._me

    # --- reading ---------------------------------------------------------------------------------------------------

    def _ref_of(self, issue: Any) -> str:
        refs = issue.attributes.get("references") or {}
        if refs.get("full"):
            return str(refs["full"])
        return f"{self.scope_path}#{issue.iid}"

    def _to_ticket(self, issue: Any, comments: list[TicketComment]) -> Ticket:
        labels = tuple(issue.labels or ())
        return Ticket(
            ref=self._ref_of(issue),
            tracker=self.name,
            title=issue.title,
            description=issue.description or "",
            labels=labels,
            column=self.board().column_of(labels, closed=issue.state == "closed"),
            closed=issue.state == "closed",
            url=issue.web_url,
            updated_at=_time(issue.updated_at) if issue.updated_at else None,
            comments=tuple(c.body for c in comments),
            discussion=tuple(comments),
        )

    def _comments_of(self, issue: Any, ref: str) -> list[TicketComment]:
        # user_notes_count counts people's notes and ours, not system notes: 0 means there is nothing to read.
        if issue.attributes.get("user_notes_count") == 0:
            return []
        return self._comments(ref)

    def _comments(self, ref: str) -> list[TicketComment]:
        """People's notes, oldest first: system notes ("changed the label") and our status note left out."""
        path, iid = parse_ref(ref)
        issue = self._project(path).issues.get(iid, lazy=True)
        with translated(TrackerError, f"reading the notes of {ref}", self.gl.url):
            notes = issue.notes.list(get_all=True, sort="asc", order_by="created_at")
        return [
            TicketComment(id=str(n.id), author=(n.attributes.get("author") or {}).get("username"), body=n.body)
            for n in notes
            if not n.system and n.body is not None and STATUS_MARKER not in n.body
        ]

    def poll(self, cursor: str | None) -> PollResult:
        state = _Cursor.load(cursor)
        params: dict[str, Any] = {"state": "opened", "order_by": "updated_at", "sort": "asc", "get_all": True}
        if state.after:
            params["updated_after"] = (_time(state.after) - self.overlap).isoformat().replace("+00:00", "Z")
        with translated(TrackerError, f"polling GitLab issues of {self.scope_path}", self.gl.url):
            issues = self._container().issues.list(**params)
        if not issues:
            return PollResult([], cursor)
        newest = max([_time(i.updated_at) for i in issues] + ([_time(state.after)] if state.after else []))
        horizon = newest - self.overlap
        tickets: list[Ticket] = []
        seen = {k for k in state.seen if _time(k.rsplit("@", 1)[1]) >= horizon}
        for issue in issues:
            key = f"{self._ref_of(issue)}@{issue.updated_at}"
            if key in state.seen:
                continue
            if _time(issue.updated_at) >= horizon:
                seen.add(key)
            ticket = self._to_ticket(issue, [])
            if self.trigger.matches(ticket):
                tickets.append(self._to_ticket(issue, self._comments_of(issue, ticket.ref)))
        after = newest.isoformat().replace("+00:00", "Z")
        return PollResult(tickets, _Cursor(after, seen).dump())

    def get_ticket(self, ref: str) -> Ticket:
        issue = self._issue(ref)
        return self._to_ticket(issue, self._comments_of(issue, ref))

    # --- writing ---------------------------------------------------------------------------------------------------

    def _edit(self, ref: str, data: dict[str, Any], what: str) -> None:
        path, iid = parse_ref(ref)
        with translated(TrackerError, f"{what} on GitLab issue {ref}", self.gl.url):
            self._project(path).issues.update(iid, data)

    def move(self, ref: str, column: str) -> None:
        board = self.board()
        target = board.label_for(column)
        if target is None:
            where = f"board {self.board_name!r}" if self.board_name else f"the issue board of {self.scope_path}"
            raise TrackerError(
                f"cannot move {ref} to {column!r}: {where} has no list for it. Fix: add a list whose label is "
                f"{column!r} (a scoped label like workflow::{column} works too), or map it in options.lists"
            )
        issue = self._issue(ref)
        closed = issue.state == "closed"
        add, remove = board.edit_for(issue.labels or [], target)
        data: dict[str, Any] = {}
        if target == CLOSED:
            # A merge request's "Closes #N" closes the issue but leaves its list label: drop it even then, or
            # reopening the issue would put the card back in that list.
            if not closed:
                data["state_event"] = "close"
        elif closed:
            data["state_event"] = "reopen"
        if add:
            data["add_labels"] = ",".join(add)
        if remove:
            data["remove_labels"] = ",".join(remove)
        if data:
            self._edit(ref, data, f"moving the card to {column!r}")

    def upsert_status_comment(self, ref: str, body: str) -> None:
        text = body if STATUS_MARKER in body else f"{STATUS_MARKER}\n{body}"
        me = self._me_id()
        path, iid = parse_ref(ref)
        issue = self._project(path).issues.get(iid, lazy=True)
        with translated(TrackerError, f"writing the status note on {ref}", self.gl.url):
            # Oldest first: our note is written when the ticket is first seen, so it is on the first page.
            for note in issue.notes.list(iterator=True, sort="asc", order_by="created_at"):
                if note.author["id"] == me and not note.system and STATUS_MARKER in (note.body or ""):
                    if note.body != text:
                        issue.notes.update(note.id, {"body": text})
                    return
            issue.notes.create({"body": text})

    def add_label(self, ref: str, label: str) -> None:
        self._edit(ref, {"add_labels": label}, f"adding the label {label!r}")

    def remove_label(self, ref: str, label: str) -> None:
        self._edit(ref, {"remove_labels": label}, f"removing the label {label!r}")

    def link_pull_request(self, ref: str, pr: PullRequest) -> None:
        # A GitLab merge request whose description says "Closes #N" already shows on the issue (GitLab links it),
        # and the status note carries the link for any other host: nothing more to write.
        return None

    # --- who triggered ---------------------------------------------------------------------------------------------

    def trigger_actor(self, ticket: Ticket) -> str | None:
        wanted: set[str] = set()
        # Names compared as the trigger compares them: case and surrounding spaces do not matter.
        wanted.update(label.strip().casefold() for label in ticket.labels if self.trigger.has_label([label]))
        if self.trigger.in_column(ticket.column) and ticket.column is not None:
            label = self.board().label_for(ticket.column)
            if label and label != CLOSED:
                wanted.add(label.strip().casefold())
        if not wanted:
            return None
        path, iid = parse_ref(ticket.ref)
        project = self._project(path)
        issue = project.issues.get(iid, lazy=True)
        with translated(TrackerError, f"reading the label events of {ticket.ref}", self.gl.url):
            events = issue.resourcelabelevents.list(get_all=True)
        adds = [
            e
            for e in events
            if e.action == "add" and str((e.label or {}).get("name") or "").strip().casefold() in wanted and e.user
        ]
        if not adds:
            return None
        latest = max(adds, key=lambda e: (_time(e.created_at), e.id))
        username = str(latest.user["username"])
        if self.min_access_level is None:
            return username
        level = self._access_level(project, int(latest.user["id"]), ticket.ref)
        if level >= self.min_access_level:
            return username
        # The engine compares this with [trigger] allowed_actors, so it never matches, and the status note says why.
        need = ROLE_NAMES.get(self.min_access_level, str(self.min_access_level))
        have = ROLE_NAMES.get(level, "not a member") if level else "not a member"
        return f"{username} (GitLab role {have}, below the required {need})"

    def _access_level(self, project: Project, user_id: int, ref: str) -> int:
        try:
            member = project.members_all.get(user_id)
        except GitlabGetError as exc:
            if exc.response_code == 404:
                return 0
            raise TrackerError(explain(exc, f"reading the role of a member of {ref}", self.gl.url)) from exc
        return int(member.access_level)

    # --- doctor ----------------------------------------------------------------------------------------------------

    def check(self, columns: Mapping[str, str]) -> list[Problem]:
        key = f"trackers.{self.name}"
        try:
            self._me_id()
        except TrackerError as exc:
            return [Problem(f"{key}.token_env", str(exc), "export a valid GitLab access token with the api scope")]
        problems: list[Problem] = []
        try:
            token = self.gl.personal_access_tokens.get("self")
            scopes = set(token.scopes or [])
            if "api" not in scopes:
                problems.append(
                    Problem(
                        f"{key}.token_env",
                        f"the token's scopes are {', '.join(sorted(scopes)) or 'none'}; labels, notes and moves need "
                        "api (read_api is read-only)",
                        "create a token with the api scope",
                    )
                )
        except (GitlabError, requests.RequestException) as exc:
            # Project and group access tokens, and GitLab before 15.5, cannot read themselves (python-gitlab raises
            # GitlabGetError for that): not a reason to stop, the first write will tell if the scope is short.
            log.warning(
                f"{key}: cannot verify the token's scopes "
                f"({explain(exc, 'GET /personal_access_tokens/self', self.gl.url)}); "
                "going on - make sure the token has the api scope",
                tracker=self.name,
            )
        try:
            with translated(TrackerError, f"reading {self.scope_path}", self.gl.url):
                container = (
                    self.gl.groups.get(self.scope_path)
                    if self.scope == "group"
                    else read_project(self.gl, self.scope_path)
                )
        except TrackerError as exc:
            return [
                *problems,
                Problem(f"{key}.query", str(exc), f"check the {self.scope} path and the bot's membership"),
            ]
        perms = container.attributes.get("permissions") or {}
        levels = [(perms.get(k) or {}).get("access_level") or 0 for k in ("project_access", "group_access")]
        if self.scope == "project" and max(levels) < ACCESS_LEVELS["reporter"]:
            problems.append(
                Problem(
                    f"{key}.query",
                    f"the token's user has role {ROLE_NAMES.get(max(levels), 'none')} in {self.scope_path}",
                    "make the bot user at least Reporter (labels, notes) - Developer for merge requests",
                )
            )
        try:
            board = self.board()
        except TrackerError as exc:
            return [*problems, Problem(f"{key}.options.board", str(exc), "create the board or fix options.board")]
        for stage, column in columns.items():
            if board.label_for(column) is None:
                problems.append(
                    Problem(
                        f"[stages] {stage}",
                        f"column {column!r} is not a list on the issue board of {self.scope_path}",
                        f"add a list for the label {column!r} (or a scoped label ending in ::{column}), "
                        f"or map it in options.lists",
                    )
                )
        return problems
