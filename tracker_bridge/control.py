"""Operator requests to a running daemon (stop a run, retry a ticket, pause or resume dispatch), kept in the state
store so they work from another shell or another machine: the CLI and the web API write a row, the daemon reads
the pending rows each cycle, acts, and marks them done.

Pause and resume are not consumed like the others: the newest of them says whether dispatch is paused now, so a
daemon restarted while paused stays paused.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from tracker_bridge.store import Base, Store, utcnow

KINDS = ("stop", "retry", "pause", "resume")


class ControlRow(Base):
    __tablename__ = "controls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # one of KINDS
    ref: Mapped[str | None] = mapped_column(String(256), nullable=True)  # the ticket, for stop and retry
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(128), default="cli")
    done_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Controls:
    def __init__(self, store: Store) -> None:
        self.store = store

    def request(self, kind: str, ref: str | None = None, by: str = "cli") -> int:
        """Record a request; its id. stop and retry need the ticket's `ref`; pause and resume take none."""
        if kind not in KINDS:
            raise ValueError(f"unknown control {kind!r}; known: {', '.join(KINDS)}")
        if (kind in ("stop", "retry")) != (ref is not None):
            raise ValueError(f"{kind} {'needs' if kind in ('stop', 'retry') else 'takes no'} ticket reference")
        with self.store.session() as s:
            row = ControlRow(kind=kind, ref=ref, requested_at=utcnow(), requested_by=by)
            s.add(row)
            s.flush()
            return row.id

    def pending(self, kind: str | None = None) -> list[ControlRow]:
        """Requests not yet carried out, oldest first."""
        with self.store.session() as s:
            q = select(ControlRow).where(ControlRow.done_at.is_(None)).order_by(ControlRow.id)
            if kind is not None:
                q = q.where(ControlRow.kind == kind)
            return list(s.scalars(q))

    def mark_done(self, control_id: int) -> None:
        with self.store.session() as s:
            row = s.get(ControlRow, control_id)
            if row is not None and row.done_at is None:
                row.done_at = utcnow()

    def paused(self) -> bool:
        """Is dispatch paused? The newest pause or resume request decides."""
        with self.store.session() as s:
            newest = s.scalars(
                select(ControlRow.kind)
                .where(ControlRow.kind.in_(("pause", "resume")))
                .order_by(ControlRow.id.desc())
                .limit(1)
            ).first()
            return newest == "pause"
