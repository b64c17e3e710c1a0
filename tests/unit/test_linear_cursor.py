"""The Linear poll cursor: newest updatedAt plus the issues seen within the overlap."""

from __future__ import annotations

from tracker_bridge_connectors.linear.cursor import PollCursor, advance


def node(issue_id: str, ts: str) -> dict[str, str]:
    return {"id": issue_id, "updatedAt": ts}


def test_round_trip_and_overlap_pruning() -> None:
    cur = advance(None, [node("a", "2026-01-01T00:00:00.000Z"), node("b", "2026-01-01T00:00:30.000Z")], 10)
    assert cur is not None and cur.newest == "2026-01-01T00:00:30.000Z"
    assert dict(cur.seen) == {"b": "2026-01-01T00:00:30.000Z"}  # a is older than the overlap: forgotten
    again = PollCursor.decode(cur.encode())
    assert again == cur
    assert cur.since(10) == "2026-01-01T00:00:20.000Z"
    assert not cur.is_new("b", "2026-01-01T00:00:30.000Z") and cur.is_new("b", "2026-01-01T00:00:31.000Z")


def test_nothing_seen_keeps_no_cursor_and_bad_cursors_mean_poll_everything() -> None:
    assert advance(None, [], 10) is None
    assert PollCursor.decode(None) is None
    assert PollCursor.decode("{not json") is None
    bare = PollCursor.decode("2026-01-01T00:00:00Z")
    assert bare is not None and bare.newest == "2026-01-01T00:00:00.000Z" and not bare.seen
