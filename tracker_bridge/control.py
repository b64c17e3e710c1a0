"""Operator requests (stop a run, retry a ticket, pause or resume the daemon), kept in the state store.

The dashboard and the CLI only *record* a request here; the engine reads the pending ones and acts on them. Going
through the store rather than calling the engine keeps the web process, the CLI and the daemon decoupled (they may
be different processes, or different replicas) and leaves an audit trail of who asked for what, and when.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from tracker_bridge.store import Base, Store, utcnow

KINDS = ("stop", "retry", "pause", "resume")


class ControlRow(Base):
    __tablename__ = "controls"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # stop | retry | pause | resume
    ref: Mapped[str | None] = mapped_column(String(256), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(64), default="cli")
    done_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Controls:
    def __init__(self, store: Store) -> None:
        self.store = store
        # A store opened before this module was imported has no `controls` table yet.
        ControlRow.__table__.create(store.engine, checkfirst=True)  # type: ignore[attr-defined]

    def request(self, kind: str, ref: str | None = None, by: str = "cli") -> int:
        if kind not in KINDS:
            raise ValueError(f"unknown control {kind!r}; use one of {', '.join(KINDS)}")
        with self.store.session() as s:
            row = ControlRow(kind=kind, ref=ref, requested_by=by, requested_at=utcnow())
            s.add(row)
            s.flush()
            return row.id

    def pending(self, kind: str | None = None) -> list[ControlRow]:
        with self.store.session() as s:
            q = select(ControlRow).where(ControlRow.done_at.is_(None)).order_by(ControlRow.id)
            if kind is not None:
                q = q.where(ControlRow.kind == kind)
            return list(s.scalars(q))

    def mark_done(self, id: int) -> None:
        with self.store.session() as s:
            row = s.get(ControlRow, id)
            if row is not None and row.done_at is None:
                row.done_at = utcnow()

    def paused(self) -> bool:
        """The newest pause or resume request decides, whether or not the engine has acted on it yet."""
        with self.store.session() as s:
            kind = s.scalars(
                select(ControlRow.kind)
                .where(ControlRow.kind.in_(("pause", "resume")))
                .order_by(ControlRow.id.desc())
                .limit(1)
            ).first()
            return kind == "pause"
