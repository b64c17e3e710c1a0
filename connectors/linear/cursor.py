"""The poll cursor: the newest `updatedAt` seen, plus the issues seen within a short overlap before it.

Asking only for `updatedAt > newest` would lose an update that became visible to queries a moment after a later one
was read (replication lag, or two updates in the same millisecond). So the poll asks for `updatedAt > newest -
overlap` and drops the issues it has already seen at that very `updatedAt`: a change is reported once, and none is
lost. The overlap costs nothing in requests; the few issues inside it come back and are filtered here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_ts(value: datetime) -> str:
    """Linear's own format (2026-01-02T03:04:05.678Z), so timestamps compare correctly as strings too."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PollCursor:
    newest: str
    seen: Mapping[str, str] = field(default_factory=dict)  # issue id -> updatedAt, within the overlap

    @classmethod
    def decode(cls, text: str | None) -> PollCursor | None:
        if not text:
            return None
        if not text.startswith("{"):
            return cls(format_ts(parse_ts(text)))  # a bare timestamp is a valid cursor too
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(str(data["newest"]), {str(k): str(v) for k, v in dict(data.get("seen") or {}).items()})
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: poll everything once, which is safe (the engine is idempotent)

    def encode(self) -> str:
        return json.dumps({"newest": self.newest, "seen": dict(sorted(self.seen.items()))}, separators=(",", ":"))

    def since(self, overlap_s: float) -> str:
        return format_ts(parse_ts(self.newest) - timedelta(seconds=overlap_s))

    def is_new(self, issue_id: str, updated_at: str) -> bool:
        return self.seen.get(issue_id) != updated_at


def advance(cursor: PollCursor | None, nodes: Iterable[Mapping[str, Any]], overlap_s: float) -> PollCursor | None:
    """The cursor after seeing `nodes` (each with id and updatedAt)."""
    seen = dict(cursor.seen) if cursor else {}
    newest = cursor.newest if cursor else None
    for node in nodes:
        seen[str(node["id"])] = str(node["updatedAt"])
        if newest is None or node["updatedAt"] > newest:
            newest = str(node["updatedAt"])
    if newest is None:
        return None
    floor = format_ts(parse_ts(newest) - timedelta(seconds=overlap_s))
    return PollCursor(newest, {k: v for k, v in seen.items() if v > floor})
