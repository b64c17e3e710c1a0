"""A Linear simulator: POST /graphql executed by graphql-core against Linear's official schema.

State is kept like Linear keeps it: teams with workflow states, workspace and team labels, issues with identifiers
(ENG-7), comments, attachments (unique per issue and url), issue history (who added which label, which state change),
users. Requests are parsed and validated against tests/schemas/linear/schema.graphql, so a query the real API would
reject is rejected here with Linear's error shape. What is simulated of Linear's behaviour:

- authentication: personal API keys in `Authorization: <key>`, OAuth tokens in `Authorization: Bearer <token>`;
- rate limits: a request budget and a complexity budget (objects 1 point, scalars 0.1, connections multiply by
  `first`, default 50), reported in X-RateLimit-* and X-Complexity headers; running out answers HTTP 400 with
  `errors[].extensions.code == "RATELIMITED"`; a single query above 10,000 points is refused;
- Markdown: Linear stores comment bodies as a rich-text document and serialises them back to Markdown, so raw HTML
  (including `<!-- comments -->`) does not survive; the simulator drops HTML comments from stored bodies, which is
  the pessimistic reading a connector must cope with;
- fault injection: `inject_5xx(count)` and `inject_ratelimited(count)` on the shared SimServer.

Only the resolvers tracker-bridge's Linear connector uses are implemented; a filter key the simulator does not know
is an error, never silently ignored.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

from graphql import GraphQLError, GraphQLResolveInfo

from tests.sims.graphql_exec import ExecResult, execute, load_schema
from tests.sims.http import Request, Response, SimServer

Info: TypeAlias = "GraphQLResolveInfo[Context]"
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "linear" / "schema.graphql"
MAX_COMPLEXITY = 10_000
MAX_PAGE = 250
HTML_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)


def schema() -> Any:
    return load_schema(str(SCHEMA_PATH))


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _err(message: str, code: str = "INVALID_INPUT", kind: str = "invalid input") -> GraphQLError:
    return GraphQLError(
        message,
        extensions={
            "type": kind,
            "code": code,
            "statusCode": 400,
            "userError": True,
            "userPresentableMessage": message,
        },
    )


# --- state ---------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class User:
    id: str
    name: str
    email: str
    active: bool = True

    @property
    def displayName(self) -> str:
        return self.name.split()[0].lower()

    def isMe(self, info: Info) -> bool:
        return info.context.viewer is self


@dataclass(eq=False)
class WorkflowState:
    id: str
    name: str
    type: str
    position: float
    team: Team
    color: str = "#bec2c8"


@dataclass(eq=False)
class IssueLabel:
    id: str
    name: str
    team: Team | None
    color: str = "#95a2b3"
    isGroup: bool = False


@dataclass(eq=False)
class Team:
    id: str
    key: str
    name: str
    sim: LinearSim
    state_list: list[WorkflowState] = field(default_factory=list)
    issue_count: int = 0

    def states(self, info: Info, **args: Any) -> dict[str, Any]:
        items = [s for s in self.state_list if _match(s, args.get("filter"), _STATE_FILTER, info)]
        return _connection(sorted(items, key=lambda s: s.position), args)

    def labels(self, info: Info, **args: Any) -> dict[str, Any]:
        mine = [lb for lb in self.sim.labels if lb.team is self]
        return _connection([lb for lb in mine if _match(lb, args.get("filter"), _LABEL_FILTER, info)], args)


@dataclass(eq=False)
class Comment:
    id: str
    body: str
    user: User | None
    issue: Issue
    createdAt: str
    updatedAt: str
    editedAt: str | None = None

    @property
    def url(self) -> str:
        return f"{self.issue.url}#comment-{self.id[:8]}"

    @property
    def issueId(self) -> str:
        return self.issue.id


@dataclass(eq=False)
class Attachment:
    id: str
    url: str
    title: str
    subtitle: str | None
    issue: Issue
    creator: User | None
    createdAt: str
    updatedAt: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class IssueHistory:
    id: str
    issue: Issue
    actor: User | None
    createdAt: str
    addedLabelIds: list[str] | None = None
    removedLabelIds: list[str] | None = None
    fromState: WorkflowState | None = None
    toState: WorkflowState | None = None

    @property
    def updatedAt(self) -> str:
        return self.createdAt

    @property
    def actorId(self) -> str | None:
        return self.actor.id if self.actor else None

    @property
    def addedLabels(self) -> list[IssueLabel] | None:
        return None if self.addedLabelIds is None else [self.issue.sim.label_by_id(i) for i in self.addedLabelIds]

    @property
    def removedLabels(self) -> list[IssueLabel] | None:
        return None if self.removedLabelIds is None else [self.issue.sim.label_by_id(i) for i in self.removedLabelIds]

    @property
    def toStateId(self) -> str | None:
        return self.toState.id if self.toState else None

    @property
    def fromStateId(self) -> str | None:
        return self.fromState.id if self.fromState else None


@dataclass(eq=False)
class Issue:
    id: str
    number: int
    team: Team
    title: str
    description: str | None
    state: WorkflowState
    label_ids: list[str]
    createdAt: str
    updatedAt: str
    creator: User | None
    sim: LinearSim
    comment_list: list[Comment] = field(default_factory=list)
    attachment_list: list[Attachment] = field(default_factory=list)
    history_list: list[IssueHistory] = field(default_factory=list)

    @property
    def identifier(self) -> str:
        return f"{self.team.key}-{self.number}"

    @property
    def url(self) -> str:
        return f"https://linear.app/acme/issue/{self.identifier}/{re.sub(r'[^a-z0-9]+', '-', self.title.lower())[:40]}"

    @property
    def labelIds(self) -> list[str]:
        return list(self.label_ids)

    @property
    def priority(self) -> float:
        return 0.0

    def label_objects(self) -> list[IssueLabel]:
        return [self.sim.label_by_id(i) for i in self.label_ids]

    def labels(self, info: Info, **args: Any) -> dict[str, Any]:
        items = [lb for lb in self.label_objects() if _match(lb, args.get("filter"), _LABEL_FILTER, info)]
        return _connection(items, args)

    def comments(self, info: Info, **args: Any) -> dict[str, Any]:
        # Newest first, like Linear's default for issue comments.
        items = [c for c in reversed(self.comment_list) if _match(c, args.get("filter"), _COMMENT_FILTER, info)]
        return _connection(items, args)

    def attachments(self, info: Info, **args: Any) -> dict[str, Any]:
        return _connection(list(self.attachment_list), args)

    def history(self, info: Info, **args: Any) -> dict[str, Any]:
        # Linear lists history newest first.
        return _connection(list(reversed(self.history_list)), args)


# --- connections and filters ---------------------------------------------------------------------------------------


def _connection(items: list[Any], args: dict[str, Any]) -> dict[str, Any]:
    first, last, after = args.get("first"), args.get("last"), args.get("after")
    if first is not None and (first < 0 or first > MAX_PAGE):
        raise _err(f"first must be between 0 and {MAX_PAGE}", "INVALID_INPUT")
    start = 0
    if after:
        ids = [getattr(i, "id", None) for i in items]
        if after not in ids:
            raise _err("Invalid cursor", "INVALID_INPUT")
        start = ids.index(after) + 1
    page_size = first if first is not None else (last if last is not None else 50)
    page = items[start : start + page_size]
    has_next = start + page_size < len(items)
    return {
        "nodes": page,
        "edges": [{"node": n, "cursor": n.id} for n in page],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": start > 0,
            "startCursor": page[0].id if page else None,
            "endCursor": page[-1].id if page else None,
        },
    }


def _string_op(op: str, value: str | None, arg: Any) -> bool:
    v = value or ""
    if op == "eq":
        return bool(value == arg)
    if op == "neq":
        return bool(value != arg)
    if op == "in":
        return value in arg
    if op == "nin":
        return value not in arg
    if op == "eqIgnoreCase":
        return bool(v.lower() == arg.lower())
    if op == "neqIgnoreCase":
        return bool(v.lower() != arg.lower())
    if op == "contains":
        return arg in v
    if op == "containsIgnoreCase":
        return bool(arg.lower() in v.lower())
    if op == "notContains":
        return arg not in v
    if op == "startsWith":
        return v.startswith(arg)
    if op == "endsWith":
        return v.endswith(arg)
    raise _err(f"simulator: string comparator {op!r} is not implemented")


def _cmp_string(value: str | None, cmp: dict[str, Any]) -> bool:
    return all(_string_op(op, value, arg) for op, arg in cmp.items())


def _cmp_date(value: str, cmp: dict[str, Any]) -> bool:
    mine = _parse(value)
    for op, arg in cmp.items():
        if arg is None:
            raise _err(f"updatedAt.{op}: expected a date or duration, got null")
        other = _parse(arg) if "T" in str(arg) else None
        if other is None:
            raise _err(f"simulator: only ISO dates are implemented in date comparators, got {arg!r}")
        ok = {
            "eq": mine == other,
            "gt": mine > other,
            "gte": mine >= other,
            "lt": mine < other,
            "lte": mine <= other,
            "neq": mine != other,
        }.get(op)
        if ok is None:
            raise _err(f"simulator: date comparator {op!r} is not implemented")
        if not ok:
            return False
    return True


def _cmp_bool(value: bool, cmp: dict[str, Any]) -> bool:
    return all(not ((op == "eq" and value != arg) or (op == "neq" and value == arg)) for op, arg in cmp.items())


Matcher = dict[str, Any]


def _check_keys(flt: dict[str, Any] | None, spec: Matcher) -> None:
    """Refuse an unimplemented filter key even when there is nothing to filter (else it would pass unnoticed)."""
    for key, sub in (flt or {}).items():
        if key in ("and", "or"):
            for f in sub or ():
                _check_keys(f, spec)
        elif key not in spec:
            raise _err(f"simulator: filter field {key!r} is not implemented")


def _match(obj: Any, flt: dict[str, Any] | None, spec: Matcher, info: Info) -> bool:
    _check_keys(flt, spec)
    if not flt:
        return True
    for key, sub in flt.items():
        if sub is None:
            continue
        if key == "and":
            if not all(_match(obj, f, spec, info) for f in sub):
                return False
            continue
        if key == "or":
            if not any(_match(obj, f, spec, info) for f in sub):
                return False
            continue
        check = spec.get(key)
        if check is None:
            raise _err(f"simulator: filter field {key!r} is not implemented")
        if not check(obj, sub, info):
            return False
    return True


def _labels_collection(issue: Issue, sub: dict[str, Any], info: Info) -> bool:
    labels = issue.label_objects()
    for key, value in sub.items():
        if key == "some":
            ok = any(_match(lb, value, _LABEL_FILTER, info) for lb in labels)
        elif key == "every":
            ok = all(_match(lb, value, _LABEL_FILTER, info) for lb in labels)
        elif key == "length":
            ok = _cmp_number(len(labels), value)
        elif key == "null":
            ok = (not labels) == value
        else:  # element fields directly on the collection filter mean "some label matches"
            ok = any(_match(lb, {key: value}, _LABEL_FILTER, info) for lb in labels)
        if not ok:
            return False
    return True


def _cmp_number(value: float, cmp: dict[str, Any]) -> bool:
    for op, arg in cmp.items():
        ok = {
            "eq": value == arg,
            "neq": value != arg,
            "gt": value > arg,
            "gte": value >= arg,
            "lt": value < arg,
            "lte": value <= arg,
        }.get(op)
        if not ok:
            return False
    return True


def _user_match(user: User | None, sub: dict[str, Any], info: Info) -> bool:
    if "null" in sub:
        if (user is None) != sub["null"]:
            return False
        sub = {k: v for k, v in sub.items() if k != "null"}
    if user is None:
        return not sub
    return _match(user, sub, _USER_FILTER, info)


_USER_FILTER: Matcher = {
    "id": lambda u, c, i: _cmp_string(u.id, c),
    "email": lambda u, c, i: _cmp_string(u.email, c),
    "name": lambda u, c, i: _cmp_string(u.name, c),
    "isMe": lambda u, c, i: _cmp_bool(i.context.viewer is u, c),
}
_TEAM_FILTER: Matcher = {
    "id": lambda t, c, i: _cmp_string(t.id, c),
    "key": lambda t, c, i: _cmp_string(t.key, c),
    "name": lambda t, c, i: _cmp_string(t.name, c),
}
_STATE_FILTER: Matcher = {
    "id": lambda s, c, i: _cmp_string(s.id, c),
    "name": lambda s, c, i: _cmp_string(s.name, c),
    "type": lambda s, c, i: _cmp_string(s.type, c),
    "team": lambda s, c, i: _match(s.team, c, _TEAM_FILTER, i),
}
_LABEL_FILTER: Matcher = {
    "id": lambda lb, c, i: _cmp_string(lb.id, c),
    "name": lambda lb, c, i: _cmp_string(lb.name, c),
    "team": lambda lb, c, i: (
        ((lb.team is None) == c["null"])
        if "null" in c
        else (lb.team is not None and _match(lb.team, c, _TEAM_FILTER, i))
    ),
}
_ISSUE_FILTER: Matcher = {
    "id": lambda s, c, i: _cmp_string(s.id, c),
    "number": lambda s, c, i: _cmp_number(s.number, c),
    "team": lambda s, c, i: _match(s.team, c, _TEAM_FILTER, i),
    "state": lambda s, c, i: _match(s.state, c, _STATE_FILTER, i),
    "labels": _labels_collection,
    "updatedAt": lambda s, c, i: _cmp_date(s.updatedAt, c),
    "createdAt": lambda s, c, i: _cmp_date(s.createdAt, c),
    "title": lambda s, c, i: _cmp_string(s.title, c),
}
_COMMENT_FILTER: Matcher = {
    "id": lambda s, c, i: _cmp_string(s.id, c),
    "body": lambda s, c, i: _cmp_string(s.body, c),
    "user": lambda s, c, i: _user_match(s.user, c, i),
    "issue": lambda s, c, i: _match(s.issue, c, _ISSUE_FILTER, i),
    "updatedAt": lambda s, c, i: _cmp_date(s.updatedAt, c),
}


# --- a seeded workspace for tests -----------------------------------------------------------------------------------


@dataclass
class Workspace:
    """The usual test set-up: team ENG with the default workflow, labels, and two people besides the bot."""

    sim: LinearSim
    team: Team
    alice: User
    mallory: User

    def issue(self, title: str, description: str = "", **kwargs: Any) -> Issue:
        return self.sim.add_issue(self.team, title, description, **kwargs)


def seed(sim: LinearSim, key: str = "ENG") -> Workspace:
    team = sim.add_team(key, "Engineering")
    sim.add_label_def("agent-ready", team)
    sim.add_label_def("bug")  # a workspace label
    sim.add_label_def("frontend", team)
    other = sim.add_team("OPS", "Operations")
    sim.add_label_def("agent-ready", other)  # same name in another team: must never be applied to ENG issues
    alice = sim.add_user("Alice Lead", "alice@acme.dev")
    mallory = sim.add_user("Mallory Guest", "mallory@acme.dev")
    return Workspace(sim, team, alice, mallory)


# --- the GraphQL root --------------------------------------------------------------------------------------------


@dataclass
class Context:
    viewer: User
    sim: LinearSim


class Root:
    """Query and Mutation fields (graphql-core uses one root value for both)."""

    def __init__(self, sim: LinearSim) -> None:
        self.sim = sim

    # Query
    def viewer(self, info: Info) -> User:
        return info.context.viewer

    def issue(self, info: Info, id: str) -> Issue:
        return self.sim.find_issue(id)

    def issues(self, info: Info, **args: Any) -> dict[str, Any]:
        _check_keys(args.get("filter"), _ISSUE_FILTER)
        items = [i for i in self.sim.issues if _match(i, args.get("filter"), _ISSUE_FILTER, info)]
        order = args.get("orderBy") or "createdAt"
        items.sort(key=lambda i: (getattr(i, order), i.number), reverse=True)
        return _connection(items, args)

    def team(self, info: Info, id: str) -> Team:
        for t in self.sim.teams:
            if t.id == id:
                return t
        raise _err("Entity not found: Team - Could not find referenced Team.", "INVALID_INPUT")

    def teams(self, info: Info, **args: Any) -> dict[str, Any]:
        items = [t for t in self.sim.teams if _match(t, args.get("filter"), _TEAM_FILTER, info)]
        return _connection(items, args)

    def workflowStates(self, info: Info, **args: Any) -> dict[str, Any]:
        items = [s for t in self.sim.teams for s in t.state_list]
        return _connection([s for s in items if _match(s, args.get("filter"), _STATE_FILTER, info)], args)

    def issueLabels(self, info: Info, **args: Any) -> dict[str, Any]:
        return _connection([lb for lb in self.sim.labels if _match(lb, args.get("filter"), _LABEL_FILTER, info)], args)

    # Mutation
    def issueUpdate(self, info: Info, id: str, input: dict[str, Any]) -> dict[str, Any]:
        issue = self.sim.find_issue(id)
        self.sim.update_issue(issue, info.context.viewer, input)
        return {"success": True, "lastSyncId": self.sim.sync_id(), "issue": issue}

    def issueLabelCreate(self, info: Info, input: dict[str, Any], **_: Any) -> dict[str, Any]:
        team = None
        if input.get("teamId"):
            team = next((t for t in self.sim.teams if t.id == input["teamId"]), None)
            if team is None:
                raise _err("Entity not found: Team - Could not find referenced Team.")
        if input.get("id") and any(lb.id == input["id"] for lb in self.sim.labels):
            raise _err("IssueLabel with this id already exists", "INVALID_INPUT")
        if any(lb.name.lower() == input["name"].lower() and lb.team in (None, team) for lb in self.sim.labels):
            raise _err("Duplicate label name", "INVALID_INPUT")
        label = self.sim.add_label_def(input["name"], team=team, label_id=input.get("id"))
        return {"success": True, "lastSyncId": self.sim.sync_id(), "issueLabel": label}

    def commentCreate(self, info: Info, input: dict[str, Any]) -> dict[str, Any]:
        if not input.get("issueId"):
            raise _err("simulator: only comments on issues are implemented (issueId is required)")
        issue = self.sim.find_issue(input["issueId"])
        if input.get("id") and any(c.id == input["id"] for i in self.sim.issues for c in i.comment_list):
            raise _err("Comment with this id already exists", "INVALID_INPUT")
        comment = self.sim.add_comment(issue, input.get("body") or "", info.context.viewer, comment_id=input.get("id"))
        return {"success": True, "lastSyncId": self.sim.sync_id(), "comment": comment}

    def commentUpdate(self, info: Info, id: str, input: dict[str, Any], **_: Any) -> dict[str, Any]:
        comment = self.sim.find_comment(id)
        if comment.user is not info.context.viewer:
            raise _err("You can only edit your own comments.", "FORBIDDEN", "forbidden")
        if "body" in input:
            self.sim.edit_comment(comment, input["body"] or "")
        return {"success": True, "lastSyncId": self.sim.sync_id(), "comment": comment}

    def attachmentCreate(self, info: Info, input: dict[str, Any]) -> dict[str, Any]:
        issue = self.sim.find_issue(input["issueId"])
        viewer = info.context.viewer
        att = self.sim.upsert_attachment(issue, input["url"], input["title"], input.get("subtitle"), viewer)
        return {"success": True, "lastSyncId": self.sim.sync_id(), "attachment": att}

    def attachmentLinkURL(self, info: Info, issueId: str, url: str, **args: Any) -> dict[str, Any]:
        issue = self.sim.find_issue(issueId)
        att = self.sim.upsert_attachment(issue, url, args.get("title") or url, None, info.context.viewer)
        return {"success": True, "lastSyncId": self.sim.sync_id(), "attachment": att}


# --- the simulator ------------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One GraphQL request as the simulator saw it (the benchmark and tests count these)."""

    operation: str | None
    query: str
    variables: dict[str, Any]
    complexity: float
    status: int
    error_codes: list[str]


class LinearSim:
    """Linear's GraphQL API on a SimServer. Start with `with LinearSim() as sim:`; `sim.url` is the API base."""

    DEFAULT_STATES = (
        ("Backlog", "backlog"),
        ("Todo", "unstarted"),
        ("Agent", "unstarted"),
        ("In Progress", "started"),
        ("In Review", "started"),
        ("Done", "completed"),
        ("Needs Refinement", "backlog"),
        ("Needs Human", "started"),
        ("Canceled", "canceled"),
    )

    def __init__(self, server: SimServer | None = None) -> None:
        self.server = server or SimServer()
        self.lock = threading.RLock()
        schema()  # built once per test session (cached); not while a request waits, which would skew rate-limit clocks
        self.reset()
        self.server.add_route("POST", "/graphql", self._handle)

    def reset(self) -> None:
        """Forget every team, issue, user, budget, fault and logged call (one server can serve many tests)."""
        self.teams: list[Team] = []
        self.labels: list[IssueLabel] = []
        self.issues: list[Issue] = []
        self.users: list[User] = []
        self.api_keys: dict[str, User] = {}
        self.oauth_tokens: dict[str, User] = {}
        self.calls: list[Call] = []
        self._lost: list[str | None] = []
        self._sync = itertools.count(1000)
        self._last_ts = datetime.now(UTC) - timedelta(days=1)
        # Rate limits (per token, one window each): Linear's published defaults for API keys.
        self.request_limit = 5000
        self.complexity_limit = 250_000
        self.window_s = 3600.0
        self._buckets: dict[str, list[float]] = {}  # token -> [requests_left, complexity_left, reset_epoch_s]
        self.bot = self.add_user("tracker-bridge bot", "bot@acme.dev", api_key="lin_api_bot")
        with self.server.lock:
            self.server.faults.clear()
            self.server.log.clear()

    # --- lifecycle ---

    def start(self) -> LinearSim:
        self.server.start()  # SimServer disables Nagle's algorithm for every simulator
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> LinearSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    # --- seeding and acting as people (tests) ---

    def now(self) -> str:
        """A strictly increasing timestamp (ms resolution), like Linear's updatedAt."""
        with self.lock:
            ts = max(datetime.now(UTC), self._last_ts + timedelta(milliseconds=1))
            self._last_ts = ts
            return _iso(ts)

    def sync_id(self) -> float:
        return float(next(self._sync))

    def add_user(self, name: str, email: str, *, api_key: str | None = None, oauth_token: str | None = None) -> User:
        user = User(id=str(uuid.uuid4()), name=name, email=email)
        self.users.append(user)
        if api_key:
            self.api_keys[api_key] = user
        if oauth_token:
            self.oauth_tokens[oauth_token] = user
        return user

    def add_team(self, key: str, name: str | None = None, states: tuple[tuple[str, str], ...] | None = None) -> Team:
        team = Team(id=str(uuid.uuid4()), key=key, name=name or key.title(), sim=self)
        for pos, (state_name, state_type) in enumerate(states or self.DEFAULT_STATES):
            team.state_list.append(WorkflowState(str(uuid.uuid4()), state_name, state_type, float(pos), team))
        self.teams.append(team)
        return team

    def add_label_def(self, name: str, team: Team | None = None, label_id: str | None = None) -> IssueLabel:
        label = IssueLabel(id=label_id or str(uuid.uuid4()), name=name, team=team)
        self.labels.append(label)
        return label

    def label_by_id(self, label_id: str) -> IssueLabel:
        for lb in self.labels:
            if lb.id == label_id:
                return lb
        raise _err("Entity not found: IssueLabel - Could not find referenced IssueLabel.")

    def label_named(self, name: str, team: Team | None = None) -> IssueLabel:
        for lb in self.labels:
            if lb.name.lower() == name.lower() and (lb.team is None or lb.team is team):
                return lb
        raise KeyError(name)

    def state_named(self, team: Team, name: str) -> WorkflowState:
        return next(s for s in team.state_list if s.name == name)

    def add_issue(
        self,
        team: Team,
        title: str,
        description: str = "",
        *,
        state: str = "Todo",
        labels: tuple[str, ...] = (),
        creator: User | None = None,
    ) -> Issue:
        with self.lock:
            team.issue_count += 1
            ts = self.now()
            issue = Issue(
                id=str(uuid.uuid4()),
                number=team.issue_count,
                team=team,
                title=title,
                description=description,
                state=self.state_named(team, state),
                label_ids=[self.label_named(n, team).id for n in labels],
                createdAt=ts,
                updatedAt=ts,
                creator=creator,
                sim=self,
            )
            self.issues.append(issue)
            return issue

    def find_issue(self, ref: str) -> Issue:
        """Linear's `issue(id:)` and mutations accept the UUID or the identifier (ENG-7)."""
        for issue in self.issues:
            if ref in (issue.id, issue.identifier):
                return issue
        raise _err("Entity not found: Issue - Could not find referenced Issue.")

    def find_comment(self, comment_id: str) -> Comment:
        for issue in self.issues:
            for c in issue.comment_list:
                if c.id == comment_id:
                    return c
        raise _err("Entity not found: Comment - Could not find referenced Comment.")

    def update_issue(self, issue: Issue, actor: User | None, data: dict[str, Any]) -> None:
        with self.lock:
            entry = IssueHistory(id=str(uuid.uuid4()), issue=issue, actor=actor, createdAt="")
            changed = False
            if data.get("stateId") is not None:
                new_state = next((s for s in issue.team.state_list if s.id == data["stateId"]), None)
                if new_state is None:
                    raise _err("Entity not found: WorkflowState - Could not find referenced WorkflowState.")
                if new_state is not issue.state:
                    entry.fromState, entry.toState, issue.state = issue.state, new_state, new_state
                    changed = True
            before = list(issue.label_ids)
            if data.get("labelIds") is not None:
                issue.label_ids = list(dict.fromkeys(data["labelIds"]))
            for label_id in data.get("addedLabelIds") or ():
                self.label_by_id(label_id)
                if label_id not in issue.label_ids:
                    issue.label_ids.append(label_id)
            for label_id in data.get("removedLabelIds") or ():
                if label_id in issue.label_ids:
                    issue.label_ids.remove(label_id)
            added = [i for i in issue.label_ids if i not in before]
            removed = [i for i in before if i not in issue.label_ids]
            if added or removed:
                entry.addedLabelIds, entry.removedLabelIds = added, removed
                changed = True
            for key in ("title", "description"):
                if data.get(key) is not None and getattr(issue, key) != data[key]:
                    setattr(issue, key, data[key])
                    changed = True
            if changed:
                entry.createdAt = issue.updatedAt = self.now()
                issue.history_list.append(entry)

    # People's actions (what a user does in Linear's UI).
    def label(self, issue: Issue, name: str, actor: User) -> None:
        self.update_issue(issue, actor, {"addedLabelIds": [self.label_named(name, issue.team).id]})

    def unlabel(self, issue: Issue, name: str, actor: User) -> None:
        self.update_issue(issue, actor, {"removedLabelIds": [self.label_named(name, issue.team).id]})

    def move(self, issue: Issue, state: str, actor: User) -> None:
        self.update_issue(issue, actor, {"stateId": self.state_named(issue.team, state).id})

    def add_comment(self, issue: Issue, body: str, user: User | None, comment_id: str | None = None) -> Comment:
        with self.lock:
            ts = self.now()
            comment = Comment(comment_id or str(uuid.uuid4()), self.normalise_markdown(body), user, issue, ts, ts)
            issue.comment_list.append(comment)
            issue.updatedAt = ts
            return comment

    def edit_comment(self, comment: Comment, body: str) -> None:
        with self.lock:
            stored = self.normalise_markdown(body)
            if stored != comment.body:
                comment.body = stored
                comment.updatedAt = comment.editedAt = self.now()

    def upsert_attachment(self, issue: Issue, url: str, title: str, subtitle: str | None, user: User) -> Attachment:
        """Linear keys attachments by (issue, url): creating one for a url already attached updates it."""
        with self.lock:
            ts = self.now()
            for att in issue.attachment_list:
                if att.url == url:
                    att.title, att.subtitle, att.updatedAt = title, subtitle, ts
                    return att
            att = Attachment(str(uuid.uuid4()), url, title, subtitle, issue, user, ts, ts)
            issue.attachment_list.append(att)
            issue.updatedAt = ts
            return att

    @staticmethod
    def normalise_markdown(body: str) -> str:
        """Linear converts Markdown to its rich-text document and back: raw HTML such as comments is lost."""
        return HTML_COMMENT.sub("", body).strip()

    # --- fault injection ---

    def inject_5xx(self, count: int = 1, status: int = 503) -> None:
        self.server.inject(status, count, headers={"Content-Type": "text/html"}, body=b"<html>upstream error</html>")

    def inject_ratelimited(self, count: int = 1, reset_in_s: float = 0.05) -> None:
        reset_ms = int((time.time() + reset_in_s) * 1000)
        self.server.inject(
            400,
            count,
            body=self.ratelimited_body(),
            headers={
                "X-RateLimit-Requests-Limit": str(self.request_limit),
                "X-RateLimit-Requests-Remaining": "0",
                "X-RateLimit-Requests-Reset": str(reset_ms),
            },
        )

    def lose_responses(self, count: int = 1, operation: str | None = None) -> None:
        """Execute the next `count` requests (of `operation`, when given) but answer 502, as if a proxy dropped the
        answer: the change is made, the client cannot know it, and a blind retry would repeat it."""
        self._lost.extend([operation] * count)

    @staticmethod
    def ratelimited_body() -> dict[str, Any]:
        return {
            "errors": [
                {
                    "message": "Rate limit exceeded",
                    "extensions": {
                        "code": "RATELIMITED",
                        "type": "ratelimited",
                        "statusCode": 400,
                        "userError": True,
                        "userPresentableMessage": "Rate limit exceeded. Please try again later.",
                    },
                }
            ]
        }

    # --- counting ---

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()
            self.server.reset_log()

    @property
    def operations(self) -> list[str | None]:
        return [c.operation for c in self.calls]

    # --- HTTP ---

    def _authenticate(self, req: Request) -> tuple[User | None, str]:
        header = req.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
            return self.oauth_tokens.get(token), token
        return self.api_keys.get(header.strip()), header.strip()

    def _bucket(self, token: str) -> list[float]:
        now = time.time()
        bucket = self._buckets.get(token)
        if bucket is None or now >= bucket[2]:
            bucket = [float(self.request_limit), float(self.complexity_limit), now + self.window_s]
            self._buckets[token] = bucket
        return bucket

    def exhaust(self, token: str = "lin_api_bot", reset_in_s: float = 0.2) -> None:
        """Use up the token's request budget until `reset_in_s` from now (a real, header-reported limit)."""
        self._buckets[token] = [0.0, float(self.complexity_limit), time.time() + reset_in_s]

    def _handle(self, req: Request) -> Response:
        with self.lock:
            viewer, token = self._authenticate(req)
            if viewer is None:
                body = {
                    "errors": [
                        {
                            "message": "Authentication required, not authenticated",
                            "extensions": {
                                "type": "authentication error",
                                "code": "AUTHENTICATION_ERROR",
                                "statusCode": 401,
                                "userError": True,
                                "userPresentableMessage": "You need to authenticate to access this operation.",
                            },
                        }
                    ]
                }
                self.calls.append(Call(None, "", {}, 0.0, 400, ["AUTHENTICATION_ERROR"]))
                return Response(400, body)
            bucket = self._bucket(token)
            try:
                payload = req.json()
            except ValueError:
                payload = None
            refused: dict[str, Any] = {}

            def limits(document: Any, complexity: float) -> ExecResult | None:
                if complexity > MAX_COMPLEXITY:
                    body = {
                        "errors": [
                            {
                                "message": f"Query too complex ({complexity} > {MAX_COMPLEXITY})",
                                "extensions": {"code": "INVALID_INPUT", "type": "invalid input", "userError": True},
                            }
                        ]
                    }
                    return ExecResult(body, False, "limits")
                if bucket[0] < 1 or bucket[1] < complexity:
                    refused["ratelimited"] = True
                    return ExecResult(self.ratelimited_body(), False, "limits")
                bucket[0] -= 1
                bucket[1] -= complexity
                return None

            result = execute(
                schema(),
                payload,
                root_value=Root(self),
                context=Context(viewer, self),
                validation_extensions={"code": "GRAPHQL_VALIDATION_FAILED", "type": "graphql error", "userError": True},
                before_execute=limits,
            )
            headers = {
                "X-RateLimit-Requests-Limit": str(self.request_limit),
                "X-RateLimit-Requests-Remaining": str(int(bucket[0])),
                "X-RateLimit-Requests-Reset": str(int(bucket[2] * 1000)),
                "X-RateLimit-Complexity-Limit": str(self.complexity_limit),
                "X-RateLimit-Complexity-Remaining": str(int(bucket[1])),
                "X-RateLimit-Complexity-Reset": str(int(bucket[2] * 1000)),
                "X-Complexity": str(int(result.complexity + 0.999)),
            }
            # Linear answers malformed and invalid requests (and rate limits) with 400; resolver errors with 200.
            status = 400 if result.phase in ("parse", "validate", "limits") else 200
            if result.phase == "execute" and result.body.get("data") is None and result.errors:
                status = 400 if any(e.path is None for e in result.errors) else 200  # bad variables -> 400
            codes = [str((e.get("extensions") or {}).get("code")) for e in result.body.get("errors", [])]
            query = payload.get("query", "") if isinstance(payload, dict) else ""
            variables = payload.get("variables") or {} if isinstance(payload, dict) else {}
            self.calls.append(Call(result.operation, query, variables, result.complexity, status, codes))
            if self._lost and self._lost[0] in (None, result.operation):
                self._lost.pop(0)
                return Response(502, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
            return Response(status, result.body, headers)
