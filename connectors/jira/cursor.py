"""The incremental poll cursor and the JQL built from it.

Jira's JQL compares `updated` at minute precision, in the time zone of the user who asks, and the search index can
lag a little behind a change. So each poll asks for everything updated since the high-water mark minus an overlap
window, and the cursor remembers (key, updated) of what it already returned inside that window: a ticket seen
twice with the same `updated` is dropped, one that changed again is returned again. Nothing is missed (the window
reaches back past the minute floor and the index lag) and nothing unchanged is repeated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CURSOR_VERSION = 1


@dataclass
class Cursor:
    since: datetime | None = None  # UTC high-water mark: Jira's clock when the last poll ran
    seen: dict[str, str] = field(default_factory=dict)  # key -> `updated` as Jira wrote it, inside the window
    tz: str | None = None  # the bot user's Jira time zone, in which JQL dates are read

    @classmethod
    def decode(cls, raw: str | None) -> Cursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            if data.get("v") != CURSOR_VERSION:
                return cls()
            since = datetime.fromisoformat(data["since"]) if data.get("since") else None
            return cls(since=since, seen=dict(data.get("seen") or {}), tz=data.get("tz"))
        except (ValueError, TypeError, KeyError, AttributeError):
            # An unreadable cursor costs one full poll, never a crash.
            return cls()

    def encode(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "since": self.since.isoformat() if self.since else None,
                "seen": self.seen,
                "tz": self.tz,
            },
            sort_keys=True,
        )


def parse_jira_time(value: str) -> datetime:
    """Jira writes '2024-05-01T10:05:33.123+0200'; Python 3.11 reads that offset form."""
    return datetime.fromisoformat(value).astimezone(UTC)


def jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jql_date(moment: datetime, tz: str | None) -> str:
    """A UTC moment as a JQL date in the user's zone, floored to the minute (JQL's precision)."""
    try:
        zone = ZoneInfo(tz) if tz else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = moment.astimezone(zone)
    return local.strftime('"%Y/%m/%d %H:%M"')


def build_jql(scope: str, trigger: str, since: datetime | None, overlap: timedelta, tz: str | None) -> str:
    """The poll's JQL. Ordered by creation, not by `updated`: a ticket changed while the pages are read must not
    move between pages, which would shift the others and make the next page skip one."""
    clauses = [f"({scope})"] if scope.strip() else []
    clauses.append(f"({trigger})")
    if since is not None:
        clauses.append(f"updated >= {jql_date(since - overlap, tz)}")
    return " AND ".join(clauses) + " ORDER BY created ASC, key ASC"


def prune(seen: dict[str, str], since: datetime, overlap: timedelta) -> dict[str, str]:
    """Keep only what the next query's window can return again (one extra minute for the floor)."""
    floor = since - overlap - timedelta(minutes=1)
    return {k: v for k, v in seen.items() if parse_jira_time(v) >= floor}
