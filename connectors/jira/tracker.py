"""JiraTracker: tracker-bridge's Tracker protocol on Jira Cloud (REST v3) and Jira Data Center (REST v2).

Built on the `jira` package's client (session, authentication, URL building, error parsing). Most calls go through
`_call`, a thin wrapper over the client's session, because several of the package's helpers either cost extra
requests (add_remote_link lists application links first; search translates field names through GET /field) or send
what REST v3 rejects (transition_issue sends the transition id as a number; v3 describes it as a string).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import structlog
from jira import JIRA
from jira.exceptions import JIRAError

from tracker_bridge.config import Settings, TrackerConfig
from tracker_bridge.models import PullRequest, Ticket
from tracker_bridge.protocols import PollResult, Problem, TrackerError, same_name
from tracker_bridge_connectors.jira.adf import adf_to_text, markdown_to_adf
from tracker_bridge_connectors.jira.columns import Columns
from tracker_bridge_connectors.jira.cursor import Cursor, build_jql, jql_string, parse_jira_time, prune
from tracker_bridge_connectors.jira.errors import to_tracker_error
from tracker_bridge_connectors.jira.options import JiraOptions
from tracker_bridge_connectors.jira.session import RetryingSession, make_client
from tracker_bridge_connectors.jira.wiki import markdown_to_wiki


def label_spellings(label: str) -> list[str]:
    """`label` as people write it: as configured, lower, upper, Title-Case and Capitalized (spaces trimmed)."""
    core = label.strip()
    return list(dict.fromkeys([core, core.lower(), core.upper(), core.title(), core.capitalize()]))


def same_name_in(name: str, names: set[str]) -> bool:
    return any(same_name(name, n) for n in names)


log = structlog.get_logger(__name__)

# Issue entity property holding tracker-bridge's bookkeeping on the ticket itself: the id of the status comment
# and of notes already posted, so a lost state store never means a second comment.
ISSUE_PROPERTY = "tracker-bridge"
# Comment property marking a comment as tracker-bridge's status comment (ADF cannot hide an HTML marker).
COMMENT_PROPERTY = "tracker-bridge"
FIELDS = ["summary", "description", "labels", "status", "updated", "comment"]
AGILE = "{server}/rest/{agile_rest_path}/{agile_rest_api_version}/{path}"
JIRA_API = "{server}/rest/{rest_path}/{rest_api_version}/{path}"


class JiraTracker:
    """One `[[trackers]]` entry of kind "jira"."""

    def __init__(
        self,
        name: str,
        client: JIRA,
        *,
        query: str,
        trigger_label: str,
        trigger_column: str,
        allowed_actors: list[str],
        options: JiraOptions,
        token_env: str | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.query = query
        self.trigger_label = trigger_label
        self.trigger_column = trigger_column
        self.allowed_actors = list(allowed_actors)
        self.options = options
        self.token_env = token_env
        self.v3 = options.api_version == "3"
        self.server = client.server_url
        self.columns = Columns(self._call, board=options.board)
        self._trigger_status_missing = False
        self._comment_cache: dict[str, tuple[str, str]] = {}  # ref -> (comment id, digest of the body shown)
        self._email_to_account: dict[str, str] | None = None

    @classmethod
    def from_config(cls, cfg: TrackerConfig, settings: Settings) -> JiraTracker:
        options = JiraOptions.parse(cfg)
        token = cfg.token()
        if not token:
            raise TrackerError(
                f"tracker {cfg.name!r}: the environment variable {cfg.token_env} is empty. "
                f"Fix: export {cfg.token_env}=<Jira API token (Cloud) or personal access token (Data Center)>"
            )
        client = make_client(
            cfg.url,
            user=cfg.user,
            token=token,
            pat=options.pat,
            api_version=options.api_version,
            timeout=options.timeout,
        )
        return cls(
            cfg.name,
            client,
            query=cfg.query,
            trigger_label=settings.trigger.label,
            trigger_column=settings.trigger.column,
            allowed_actors=settings.trigger.allowed_actors,
            options=options,
            token_env=cfg.token_env,
        )

    # --- HTTP ------------------------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        doing: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        agile: bool = False,
        idempotent: bool | None = None,
    ) -> tuple[Any, requests.Response]:
        """One request to Jira; errors become TrackerError naming what failed and how to fix it."""
        url = self.client._get_url(path, base=AGILE if agile else JIRA_API)
        try:
            session = self.client._session
            if isinstance(session, RetryingSession):
                response = session.request(method, url, params=params, json=json, idempotent=idempotent)
            else:
                response = session.request(method, url, params=params, json=json)
        except JIRAError as exc:
            raise to_tracker_error(exc, doing, token_env=self.token_env) from None
        except requests.RequestException as exc:
            raise TrackerError(f"Jira could not be reached while {doing}: {exc}. Fix: check the url") from None
        if not response.content:
            return None, response
        try:
            return response.json(), response
        except ValueError:
            raise TrackerError(f"Jira answered {doing} with something that is not JSON (is the url right?)") from None

    # --- polling ---------------------------------------------------------------------------------------------------

    def _trigger_clause(self) -> str:
        # The trigger ignores case (protocols.same_name); JQL's label match may not, so ask for the usual spellings.
        clause = f"labels in ({', '.join(jql_string(v) for v in label_spellings(self.trigger_label))})"
        if self._trigger_status_missing or not self.trigger_column:
            return clause
        if self.options.board is not None:
            ids = self.columns.status_ids(self.trigger_column)
            if not ids:
                return clause
            return f"{clause} OR status in ({', '.join(ids)})"
        return f"{clause} OR status = {jql_string(self.trigger_column.strip())}"

    def poll(self, cursor: str | None) -> PollResult:
        state = Cursor.decode(cursor)
        overlap = timedelta(minutes=self.options.overlap_minutes)
        if state.since is not None and state.tz is None:
            state.tz = str(self._myself().get("timeZone") or "UTC")
        try:
            issues, server_now = self._search(
                build_jql(self.query, self._trigger_clause(), state.since, overlap, state.tz)
            )
        except TrackerError as exc:
            if "does not exist for the field 'status'" not in str(exc) or self._trigger_status_missing:
                raise
            # No status of that name in this Jira: the trigger is the label alone. Said once, in the log.
            log.warning("jira.trigger_status_missing", tracker=self.name, status=self.trigger_column)
            self._trigger_status_missing = True
            issues, server_now = self._search(
                build_jql(self.query, self._trigger_clause(), state.since, overlap, state.tz)
            )
        if state.tz is None:
            state.tz = str(self._myself().get("timeZone") or "UTC")
        tickets: list[Ticket] = []
        seen = dict(state.seen)
        newest = state.since
        for raw in issues:
            key, updated = raw["key"], raw["fields"].get("updated") or ""
            if updated:
                moment = parse_jira_time(updated)
                newest = moment if newest is None or moment > newest else newest
            if key in state.seen and state.seen[key] == updated:
                continue  # returned by the overlap window, unchanged since we returned it
            seen[key] = updated
            tickets.append(self._ticket(raw))
        since = server_now if server_now is not None else newest
        if since is not None and newest is not None and newest > since:
            since = newest
        state.since = since
        state.seen = prune(seen, since, overlap) if since is not None else seen
        return PollResult(tickets=tickets, cursor=state.encode())

    def _search(self, jql: str) -> tuple[list[dict[str, Any]], datetime | None]:
        """Every page of a JQL search; Jira's clock (the Date header of the first answer) for the next cursor."""
        issues: list[dict[str, Any]] = []
        server_now: datetime | None = None
        token: str | None = None
        start = 0
        while True:
            params: dict[str, Any] = {
                "jql": jql,
                "fields": ",".join(FIELDS),
                "maxResults": self.options.page_size,
                "properties": ISSUE_PROPERTY,
            }
            if self.v3:
                if token:
                    params["nextPageToken"] = token
                data, response = self._call("GET", "search/jql", "searching issues with JQL", params=params)
            else:
                params["startAt"] = start
                data, response = self._call("GET", "search", "searching issues with JQL", params=params)
            if server_now is None and response.headers.get("Date"):
                try:
                    server_now = parsedate_to_datetime(response.headers["Date"]).astimezone(UTC)
                except (TypeError, ValueError):
                    server_now = None
            page = list(data.get("issues") or [])
            issues.extend(page)
            if self.v3:
                token = data.get("nextPageToken")
                if not token or data.get("isLast") is True:
                    break
            else:
                start += len(page)
                if not page or start >= int(data.get("total", 0)):
                    break
        return issues, server_now

    # --- reading tickets -------------------------------------------------------------------------------------------

    def get_ticket(self, ref: str) -> Ticket:
        data, _ = self._call(
            "GET",
            f"issue/{ref}",
            f"reading {ref}",
            params={"fields": ",".join(FIELDS), "properties": ISSUE_PROPERTY},
        )
        return self._ticket(data)

    def _ticket(self, raw: dict[str, Any]) -> Ticket:
        fields = raw.get("fields") or {}
        status = fields.get("status") or {}
        ours = self._our_comment_ids(raw)
        comments = [
            adf_to_text(c.get("body"))
            for c in (fields.get("comment") or {}).get("comments", [])
            if str(c.get("id")) not in ours
        ]
        updated = fields.get("updated")
        return Ticket(
            ref=raw["key"],
            tracker=self.name,
            title=str(fields.get("summary") or ""),
            description=adf_to_text(fields.get("description")),
            labels=tuple(fields.get("labels") or ()),
            column=self.columns.column_of(status) if status else None,
            url=f"{self.server}/browse/{raw['key']}",
            updated_at=parse_jira_time(updated) if updated else None,
            comments=tuple(c for c in comments if c),
        )

    @staticmethod
    def _our_comment_ids(raw: dict[str, Any]) -> set[str]:
        prop = (raw.get("properties") or {}).get(ISSUE_PROPERTY) or {}
        ids = {str(prop["statusCommentId"])} if prop.get("statusCommentId") else set()
        ids.update(str(i) for i in (prop.get("notes") or {}).values())
        return ids

    # --- moving cards ----------------------------------------------------------------------------------------------

    def move(self, ref: str, column: str) -> None:
        targets = self.columns.statuses_of(column)
        if not targets:
            raise TrackerError(
                f"cannot move {ref} to {column!r}: {self.columns.describe_missing(column)}. "
                "Fix: correct the [stages] mapping or create the status/column in Jira"
            )
        data, _ = self._call(
            "GET", f"issue/{ref}", f"reading the status of {ref}", params={"fields": "status", "expand": "transitions"}
        )
        current = (data.get("fields") or {}).get("status") or {}
        if self.columns.matches(current, targets):
            return
        transitions = data.get("transitions") or []
        chosen = next((t for t in transitions if self.columns.matches(t.get("to") or {}, targets)), None)
        if chosen is None:
            reachable = ", ".join(sorted({str((t.get("to") or {}).get("name")) for t in transitions})) or "none"
            message = (
                f"tracker-bridge cannot move {ref} from {current.get('name')!r} to {column!r}: no transition of the "
                f"workflow leads there from {current.get('name')!r} (reachable from here: {reachable}). "
                "Fix: add that transition to the workflow (or make the status reachable from any status), "
                "or map the stage to a reachable status in [stages]."
            )
            self._note(ref, f"move:{column}:{current.get('id')}", message)
            raise TrackerError(message)
        try:
            self._call(
                "POST",
                f"issue/{ref}/transitions",
                f"moving {ref} to {column!r} (transition {chosen.get('name')!r})",
                json={"transition": {"id": str(chosen["id"])}},
            )
        except TrackerError as exc:
            if "HTTP 400" in str(exc):  # e.g. a transition screen with a required field: a person must fix it
                self._note(
                    ref,
                    f"transition:{chosen.get('id')}",
                    f"tracker-bridge cannot move {ref} to {column!r}: {exc}. Fix: remove required fields from the "
                    "transition's screen (set them with a post-function) or map the stage to another status.",
                )
            raise

    # --- comments --------------------------------------------------------------------------------------------------

    def _body(self, markdown: str) -> Any:
        return markdown_to_adf(markdown) if self.v3 else markdown_to_wiki(markdown)

    def _issue_state(self, ref: str) -> dict[str, Any]:
        try:
            data, _ = self._call("GET", f"issue/{ref}/properties/{ISSUE_PROPERTY}", f"reading {ref}'s bookkeeping")
        except TrackerError as exc:
            if "HTTP 404" in str(exc):
                return {}
            raise
        value = (data or {}).get("value")
        return dict(value) if isinstance(value, dict) else {}

    def _save_state(self, ref: str, state: dict[str, Any]) -> None:
        self._call("PUT", f"issue/{ref}/properties/{ISSUE_PROPERTY}", f"saving {ref}'s bookkeeping", json=state)

    def upsert_status_comment(self, ref: str, body: str) -> None:
        digest = hashlib.sha256(body.encode()).hexdigest()
        cached = self._comment_cache.get(ref)
        if cached is not None:
            if cached[1] == digest:
                return
            if self._edit_comment(ref, cached[0], body):
                self._comment_cache[ref] = (cached[0], digest)
                return
        state = self._issue_state(ref)
        comment_id = str(state["statusCommentId"]) if state.get("statusCommentId") else None
        if comment_id and self._edit_comment(ref, comment_id, body):
            self._comment_cache[ref] = (comment_id, digest)
            return
        # The property is missing (or points at a deleted comment): look for our comment by its comment property,
        # which covers a crash between creating the comment and saving the property.
        found = self._find_status_comments(ref)
        if found:
            comment_id = found[0]
            for extra in found[1:]:  # a retried create may have left a second one: keep the oldest
                self._call("DELETE", f"issue/{ref}/comment/{extra}", f"deleting a duplicate status comment on {ref}")
            self._edit_comment(ref, comment_id, body)
        else:
            created, _ = self._call(
                "POST",
                f"issue/{ref}/comment",
                f"adding the status comment to {ref}",
                json={"body": self._body(body), "properties": [{"key": COMMENT_PROPERTY, "value": {"kind": "status"}}]},
            )
            comment_id = str(created["id"])
        state["statusCommentId"] = comment_id
        self._save_state(ref, state)
        self._comment_cache[ref] = (comment_id, digest)

    def _edit_comment(self, ref: str, comment_id: str, body: str) -> bool:
        """Edit in place; False when the comment is gone (deleted by a person)."""
        try:
            self._call(
                "PUT",
                f"issue/{ref}/comment/{comment_id}",
                f"editing the status comment on {ref}",
                json={"body": self._body(body)},
            )
        except TrackerError as exc:
            if "HTTP 404" in str(exc):
                return False
            raise
        return True

    def _find_status_comments(self, ref: str) -> list[str]:
        found: list[str] = []
        start = 0
        while True:
            data, _ = self._call(
                "GET",
                f"issue/{ref}/comment",
                f"reading the comments of {ref}",
                params={"startAt": start, "maxResults": 100, "orderBy": "created", "expand": "properties"},
            )
            comments = data.get("comments") or []
            for c in comments:
                for prop in c.get("properties") or []:
                    if prop.get("key") == COMMENT_PROPERTY and (prop.get("value") or {}).get("kind") == "status":
                        found.append(str(c["id"]))
            start += len(comments)
            if not comments or start >= int(data.get("total", 0)):
                return found

    def _note(self, ref: str, key: str, text: str) -> None:
        """A one-off explanatory comment (e.g. a missing transition), posted once per key, never repeated."""
        try:
            state = self._issue_state(ref)
            notes = dict(state.get("notes") or {})
            if key in notes:
                return
            created, _ = self._call(
                "POST",
                f"issue/{ref}/comment",
                f"adding a note to {ref}",
                json={"body": self._body(text), "properties": [{"key": COMMENT_PROPERTY, "value": {"kind": "note"}}]},
            )
            notes[key] = str(created["id"])
            state["notes"] = notes
            self._save_state(ref, state)
        except TrackerError as exc:  # the note is a courtesy: the caller's error is the one that matters
            log.warning("jira.note_failed", ref=ref, error=str(exc))

    # --- labels and links ------------------------------------------------------------------------------------------

    def _edit_labels(self, ref: str, op: str, label: str) -> None:
        self._call(
            "PUT",
            f"issue/{ref}",
            f"{'adding' if op == 'add' else 'removing'} the label {label!r} on {ref}",
            json={"update": {"labels": [{op: label}]}},
        )

    def add_label(self, ref: str, label: str) -> None:
        self._edit_labels(ref, "add", label)

    def remove_label(self, ref: str, label: str) -> None:
        self._edit_labels(ref, "remove", label)

    def link_pull_request(self, ref: str, pr: PullRequest) -> None:
        # Jira creates or updates the remote link that has this globalId: calling twice leaves one link.
        title = f"Pull request: {pr.title}" if pr.title else f"Pull request {pr.id}"
        self._call(
            "POST",
            f"issue/{ref}/remotelink",
            f"linking the pull request to {ref}",
            idempotent=True,
            json={
                "globalId": f"tracker-bridge:pr:{pr.url}"[:255],
                "relationship": "pull request",
                "object": {
                    "url": pr.url,
                    "title": title[:255],
                    "summary": f"{pr.branch} -> {pr.base} ({pr.state.value})",
                    "status": {"resolved": pr.merged},
                },
            },
        )

    # --- who triggered ---------------------------------------------------------------------------------------------

    def trigger_actor(self, ticket: Ticket) -> str | None:
        """Who last added the trigger label or moved the card into the trigger column.

        Returns the Jira accountId (REST v3) or user name (v2). When `allowed_actors` lists emails, the actor is
        returned as the listed email that belongs to that account, so the engine can compare
        `actor in allowed_actors` whichever form the configuration uses.
        """
        author = self._trigger_author(ticket.ref)
        if author is None:
            return None
        ident = str(author.get("accountId") or author.get("name") or author.get("key") or "")
        if not ident:
            return None
        if ident in self.allowed_actors:
            return ident
        email = str(author.get("emailAddress") or "").lower()
        for allowed in self.allowed_actors:
            if "@" in allowed and (allowed.lower() == email or self._account_for_email(allowed) == ident):
                return allowed
        return ident

    def _trigger_author(self, ref: str) -> dict[str, Any] | None:
        histories = self._changelog(ref)
        # With a board the trigger column is a set of status ids; otherwise the status name in the history suffices.
        board = self.options.board is not None and bool(self.trigger_column)
        trigger_ids = set(self.columns.status_ids(self.trigger_column)) if board else set()
        for history in reversed(histories):
            for item in history.get("items") or []:
                field = item.get("field")
                if field == "labels":
                    before = set((item.get("fromString") or "").split())
                    after = set((item.get("toString") or "").split())
                    if same_name_in(self.trigger_label, after) and not same_name_in(self.trigger_label, before):
                        return dict(history.get("author") or {})
                elif field == "status" and (
                    str(item.get("to")) in trigger_ids
                    or (not board and same_name(str(item.get("toString") or ""), self.trigger_column))
                ):
                    return dict(history.get("author") or {})
        return None

    def _changelog(self, ref: str) -> list[dict[str, Any]]:
        """The newest page of the changelog (the trigger is recent); one more request only for long histories."""
        if not self.v3:
            data, _ = self._call(
                "GET", f"issue/{ref}", f"reading {ref}'s history", params={"expand": "changelog", "fields": "status"}
            )
            return list((data.get("changelog") or {}).get("histories") or [])
        data, _ = self._call("GET", f"issue/{ref}/changelog", f"reading {ref}'s history", params={"maxResults": 100})
        values = list(data.get("values") or [])
        total = int(data.get("total", len(values)))
        if not data.get("isLast", True) and total > len(values):
            data, _ = self._call(
                "GET",
                f"issue/{ref}/changelog",
                f"reading {ref}'s history",
                params={"startAt": max(0, total - 100), "maxResults": 100},
            )
            values = list(data.get("values") or [])
        return values

    def _account_for_email(self, email: str) -> str | None:
        if self._email_to_account is None:
            self._email_to_account = {}
        key = email.lower()
        if key not in self._email_to_account:
            data, _ = self._call(
                "GET", "user/search", f"looking up the Jira account of {email}", params={"query": email}
            )
            users = data if isinstance(data, list) else []
            exact = [u for u in users if str(u.get("emailAddress", "")).lower() == key] or users[:1]
            self._email_to_account[key] = str(exact[0].get("accountId") or exact[0].get("name") or "") if exact else ""
        return self._email_to_account[key] or None

    def _myself(self) -> dict[str, Any]:
        data, _ = self._call("GET", "myself", "reading the bot account (myself)")
        return dict(data or {})

    # --- doctor ----------------------------------------------------------------------------------------------------

    def check(self, columns: Mapping[str, str]) -> list[Problem]:
        from tracker_bridge_connectors.jira.doctor import check

        return check(self, columns)
