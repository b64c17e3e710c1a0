"""LinearTracker: the Tracker protocol on Linear's GraphQL API.

Columns are the team's workflow states; a ticket is an issue of the team named by `query` (its key, e.g. ENG). The
team, its states and the labels used are looked up once and cached for the life of the tracker. Polling asks for
issues of the team that carry the trigger (label or state) and changed after the cursor (see cursor.py), and the
server leaves out what was already seen: an idle cycle is one request of about 290 complexity points.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from tracker_bridge.config import Settings, TrackerConfig
from tracker_bridge.models import PullRequest, Ticket
from tracker_bridge.protocols import PollResult, Problem, TrackerError, Trigger
from tracker_bridge_connectors.linear import documents as docs
from tracker_bridge_connectors.linear.client import LinearAuthError, LinearClient, LinearNotFound
from tracker_bridge_connectors.linear.cursor import PollCursor, advance
from tracker_bridge_connectors.linear.marker import MARKER_URL, has_marker, same_content, with_marker
from tracker_bridge_connectors.linear.options import LinearOptions

log = structlog.get_logger(__name__)

MAX_HISTORY_PAGES = 10
# Beyond this many issues seen in the overlap (a bulk edit), a late-visible second change to one of them is left to
# the next change of that issue, to keep the filter small.
MAX_SEEN_CLAUSES = 50


@dataclass(frozen=True)
class TeamInfo:
    id: str
    key: str
    name: str
    states: dict[str, str]  # workflow state name -> id

    def state_id(self, name: str) -> str | None:
        if name in self.states:
            return self.states[name]
        folded = {k.lower(): v for k, v in self.states.items()}
        return folded.get(name.strip().lower())


class LinearTracker:
    kind = "linear"

    def __init__(
        self,
        name: str,
        client: LinearClient,
        team_key: str,
        trigger: Trigger,
        *,
        allowed_actors: tuple[str, ...] = (),
        page_size: int = 10,
        poll_overlap: float = 10.0,
        token_env: str = "LINEAR_API_KEY",
    ) -> None:
        self.name = name
        self.client = client
        self.team_key = team_key
        self.trigger = trigger
        self.allowed_actors = allowed_actors
        self.page_size = page_size
        self.poll_overlap = poll_overlap
        self.token_env = token_env
        self._teams: dict[str, TeamInfo] = {}
        self._labels: dict[str, str] = {}  # lower-cased label name -> id
        self._issue_ids: dict[str, str] = {}  # identifier (ENG-7) -> UUID

    @classmethod
    def from_config(cls, cfg: TrackerConfig, settings: Settings) -> LinearTracker:
        opts = LinearOptions.from_config(cfg)
        client = LinearClient(
            base_url=opts.api_base,
            token=opts.token,
            auth_scheme=opts.auth,
            timeout=opts.timeout,
            max_wait=opts.max_rate_limit_wait,
            token_env=cfg.token_env or "LINEAR_API_KEY",
        )
        return cls(
            cfg.name,
            client,
            opts.team_key,
            Trigger(settings.trigger.label, settings.trigger.column),
            allowed_actors=tuple(settings.trigger.allowed_actors),
            page_size=opts.page_size,
            poll_overlap=opts.poll_overlap,
            token_env=cfg.token_env or "LINEAR_API_KEY",
        )

    # --- cached look-ups -------------------------------------------------------------------------------------------

    def _team(self, key: str | None = None) -> TeamInfo:
        key = key or self.team_key
        cached = self._teams.get(key)
        if cached is not None:
            return cached
        data = self.client.execute(docs.TEAM_BY_KEY, {"key": key})
        nodes = data["teams"]["nodes"]
        if not nodes:
            raise TrackerError(
                f"Linear team {key!r} not found (or not visible to this API key). "
                f"Fix: set the tracker's query to a team key shown in Linear (Settings > Teams), e.g. ENG"
            )
        team = nodes[0]
        info = TeamInfo(team["id"], team["key"], team["name"], {s["name"]: s["id"] for s in team["states"]["nodes"]})
        self._teams[key] = info
        return info

    def _label_id(self, name: str, *, create: bool) -> str | None:
        cached = self._labels.get(name.lower())
        if cached is not None:
            return cached
        team = self._team()
        nodes = self.client.execute(docs.LABELS_BY_NAME, {"name": name})["issueLabels"]["nodes"]
        # A team label wins over a workspace label of the same name; other teams' labels cannot be applied.
        usable = [n for n in nodes if n.get("team") is None or n["team"]["id"] == team.id]
        usable.sort(key=lambda n: n.get("team") is None)
        if usable:
            label_id = str(usable[0]["id"])
        elif create:
            label_id = str(uuid.uuid4())
            try:
                self.client.execute(docs.CREATE_LABEL, {"id": label_id, "name": name, "teamId": team.id})
            except TrackerError:
                if not self._created(docs.LABELS_BY_NAME, {"name": name}, "issueLabels", label_id):
                    raise
            log.info("linear.label_created", tracker=self.name, label=name, team=team.key)
        else:
            return None
        self._labels[name.lower()] = label_id
        return label_id

    def _issue_state(self, ref: str) -> dict[str, Any]:
        try:
            issue: dict[str, Any] = self.client.execute(docs.ISSUE_STATE, {"id": ref})["issue"]
        except LinearNotFound as exc:
            raise TrackerError(f"Linear issue {ref} not found: {exc}. Fix: check the reference") from exc
        self._issue_ids[issue["identifier"]] = issue["id"]
        return issue

    def _issue_id(self, ref: str) -> str:
        return self._issue_ids.get(ref) or str(self._issue_state(ref)["id"])

    # --- reading -----------------------------------------------------------------------------------------------------

    def _ticket(self, node: Mapping[str, Any], comments: list[str] | None = None) -> Ticket:
        self._issue_ids[node["identifier"]] = node["id"]
        updated = node.get("updatedAt")
        return Ticket(
            ref=node["identifier"],
            tracker=self.name,
            title=node["title"],
            description=node.get("description") or "",
            labels=tuple(lb["name"] for lb in node["labels"]["nodes"]),
            column=(node.get("state") or {}).get("name"),
            url=node.get("url") or "",
            updated_at=datetime.fromisoformat(updated.replace("Z", "+00:00")) if updated else None,
            comments=tuple(comments or ()),
        )

    def poll_filter(self, cursor: PollCursor | None) -> dict[str, Any]:
        flt: dict[str, Any] = {
            "team": {"key": {"eq": self.team_key}},
            "or": [
                {"labels": {"some": {"name": {"eqIgnoreCase": self.trigger.label.strip()}}}},
                {"state": {"name": {"eqIgnoreCase": self.trigger.column.strip()}}},
            ],
        }
        if cursor is None:
            return flt
        if not cursor.seen:
            flt["updatedAt"] = {"gt": cursor.newest}
            return flt
        # Newer than the cursor; or inside the overlap and either not seen there or changed since we saw it. The
        # server leaves out what we already have, so an idle poll answers nothing and stays one request however
        # many issues changed just before the cursor.
        window: list[dict[str, Any]] = [
            {"updatedAt": {"gt": cursor.newest}},
            {"updatedAt": {"gt": cursor.since(self.poll_overlap)}, "id": {"nin": sorted(cursor.seen)}},
        ]
        if len(cursor.seen) <= MAX_SEEN_CLAUSES:
            window += [{"id": {"eq": i}, "updatedAt": {"gt": ts}} for i, ts in sorted(cursor.seen.items())]
        flt["and"] = [{"or": window}]
        return flt

    def poll(self, cursor: str | None) -> PollResult:
        previous = PollCursor.decode(cursor)
        flt = self.poll_filter(previous)
        nodes: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            data = self.client.execute(docs.POLL_ISSUES, {"filter": flt, "first": self.page_size, "after": after})
            conn = data["issues"]
            nodes.extend(conn["nodes"])
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
        fresh = [n for n in nodes if previous is None or previous.is_new(n["id"], n["updatedAt"])]
        following = advance(previous, nodes, self.poll_overlap)
        return PollResult([self._ticket(n) for n in fresh], following.encode() if following else None)

    def get_ticket(self, ref: str) -> Ticket:
        try:
            node = self.client.execute(docs.GET_ISSUE, {"id": ref})["issue"]
        except LinearNotFound as exc:
            raise TrackerError(f"Linear issue {ref} not found: {exc}. Fix: check the reference") from exc
        # The Ticket wants people's comments oldest first, whatever order the connection lists them in.
        ordered = sorted(node["comments"]["nodes"], key=lambda c: c["createdAt"])
        return self._ticket(node, [c["body"] for c in ordered if not has_marker(c["body"] or "")])

    # --- writing -------------------------------------------------------------------------------------------------

    def move(self, ref: str, column: str) -> None:
        issue = self._issue_state(ref)
        if issue["state"]["name"] == column:
            return
        team = self._team(issue["team"]["key"])
        state_id = team.state_id(column)
        if state_id is None:
            raise TrackerError(
                f"Linear team {team.key} has no workflow state {column!r} (it has: {', '.join(team.states)}). "
                f"Fix: add the state in Linear (Settings > Teams > {team.key} > Workflow) or change [stages]"
            )
        if issue["state"]["id"] == state_id:
            return
        self.client.execute(docs.MOVE_ISSUE, {"id": issue["id"], "stateId": state_id})

    def add_label(self, ref: str, label: str) -> None:
        label_id = self._label_id(label, create=True)
        assert label_id is not None
        self.client.execute(docs.ADD_LABEL, {"id": self._issue_id(ref), "labelId": label_id})

    def remove_label(self, ref: str, label: str) -> None:
        label_id = self._label_id(label, create=False)
        if label_id is None:
            return  # a label that does not exist is on no issue
        self.client.execute(docs.REMOVE_LABEL, {"id": self._issue_id(ref), "labelId": label_id})

    def upsert_status_comment(self, ref: str, body: str) -> None:
        wanted = with_marker(body)
        try:
            issue = self.client.execute(docs.FIND_STATUS_COMMENT, {"id": ref, "marker": MARKER_URL})["issue"]
        except LinearNotFound as exc:
            raise TrackerError(f"Linear issue {ref} not found: {exc}. Fix: check the reference") from exc
        ours = [
            c
            for c in issue["comments"]["nodes"]
            if has_marker(c["body"] or "") and (c.get("user") or {}).get("isMe", False)
        ]
        if ours:
            existing = min(ours, key=lambda c: c["createdAt"])  # the first one is the one people know
            if same_content(existing["body"], wanted):
                return
            self.client.execute(docs.UPDATE_COMMENT, {"id": existing["id"], "body": wanted})
            return
        comment_id = str(uuid.uuid4())
        try:
            self.client.execute(docs.CREATE_COMMENT, {"id": comment_id, "issueId": issue["id"], "body": wanted})
        except TrackerError:
            # A retry after a lost response is refused as a duplicate id: the comment exists, which is the goal.
            found = self.client.execute(docs.FIND_STATUS_COMMENT, {"id": ref, "marker": MARKER_URL})["issue"]
            if not any(c["id"] == comment_id for c in found["comments"]["nodes"]):
                raise

    def _created(self, document: docs.Document, variables: dict[str, Any], field: str, entity_id: str) -> bool:
        """Whether an entity we created with our own id exists (its create was retried after a lost response)."""
        nodes = self.client.execute(document, variables)[field]["nodes"]
        return any(n["id"] == entity_id for n in nodes)

    def link_pull_request(self, ref: str, pr: PullRequest) -> None:
        self.client.execute(
            docs.ATTACH_PULL_REQUEST,
            {
                "issueId": self._issue_id(ref),
                "url": pr.url,
                "title": f"Pull request: {pr.title or pr.branch}",
                "subtitle": f"{pr.state.value} · {pr.branch} -> {pr.base}",
            },
        )

    # --- who triggered -----------------------------------------------------------------------------------------------

    def trigger_actor(self, ticket: Ticket) -> str | None:
        best: tuple[str, dict[str, Any]] | None = None
        after: str | None = None
        for _ in range(MAX_HISTORY_PAGES):
            data = self.client.execute(docs.ISSUE_HISTORY, {"id": ticket.ref, "after": after})
            history = data["issue"]["history"]
            for entry in history["nodes"]:
                added = [str(lb["name"]) for lb in entry.get("addedLabels") or ()]
                to_state = (entry.get("toState") or {}).get("name")
                hit = self.trigger.has_label(added) or self.trigger.in_column(to_state)
                if hit and (best is None or entry["createdAt"] > best[0]):
                    best = (entry["createdAt"], entry)
            if not history["pageInfo"]["hasNextPage"]:
                break
            after = history["pageInfo"]["endCursor"]
        if best is None or not best[1].get("actor"):
            return None
        actor = best[1]["actor"]
        # People are named by email; when the allow-list names this person by Linear user id, answer with the id.
        if actor["id"] in self.allowed_actors and actor.get("email") not in self.allowed_actors:
            return str(actor["id"])
        return str(actor.get("email") or actor["id"])

    # --- doctor ------------------------------------------------------------------------------------------------------

    def check(self, columns: Mapping[str, str]) -> list[Problem]:
        key = f"trackers.{self.name}"
        try:
            self.client.execute(docs.VIEWER)
        except LinearAuthError as exc:
            return [Problem(f"{key}.token_env", str(exc), f"export {self.token_env}=<a Linear API key>")]
        except TrackerError as exc:
            return [Problem(f"{key}.url", str(exc), "check url (e.g. https://api.linear.app) and the network")]
        try:
            team = self._team()
        except TrackerError:
            known = self.client.execute(docs.TEAM_KEYS)["teams"]["nodes"]
            listed = ", ".join(f"{t['key']} ({t['name']})" for t in known) or "none visible to this key"
            return [
                Problem(
                    f"{key}.query",
                    f"Linear team key {self.team_key!r} not found",
                    f"set query to one of: {listed}",
                )
            ]
        problems: list[Problem] = []
        wanted = dict(columns)
        wanted.setdefault("trigger.column", self.trigger.column)
        for stage, column in wanted.items():
            if team.state_id(column) is None:
                problems.append(
                    Problem(
                        f"stages.{stage}" if stage != "trigger.column" else "trigger.column",
                        f"Linear team {team.key} has no workflow state {column!r} (it has: {', '.join(team.states)})",
                        f"add the state in Linear (Settings > Teams > {team.key} > Workflow), or map {stage} to one of "
                        "the existing states; any state of a team can be reached from any other in Linear",
                    )
                )
        return problems
