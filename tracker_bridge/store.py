"""The state store: tickets, scores, runs, pull requests, per-tracker cursors and a record of every side effect.

SQLAlchemy 2 on SQLite by default (WAL mode, one file, no server); any SQLAlchemy URL works (PostgreSQL for several
replicas). The schema is versioned with Alembic (schema.py, tracker_bridge/migrations): an older store is brought up
to date at open, and one written by a newer release is refused.

An idle cycle must cost the same with 10 or 10,000 stored tickets, so every query the cycle makes selects by an
indexed column (`stage`, `synced`, `ticket_id`) and never walks the whole table: `synced` is cleared by every
write that can change what the board shows and set again once the card and the status comment match the store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Unpack

from sqlalchemy import (
    Boolean,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from tracker_bridge.models import (
    Phase,
    PullRequest,
    PullRequestState,
    Run,
    RunOutcome,
    RunUsage,
    Score,
    Stage,
    TicketFields,
)
from tracker_bridge.schema import Upgrade
from tracker_bridge.schema import upgrade as upgrade_schema

# The head Alembic revision as a number (revision ids are "0001", "0002", ...); kept in `meta.schema_version`.
SCHEMA_VERSION = 3

# Writes to these fields record what the board already shows; every other ticket write may change it.
_SYNC_FIELDS = frozenset({"column_applied", "comment_hash", "synced"})


def _enum(enum: type[StrEnum]) -> SAEnum:
    """A StrEnum stored as its value in a plain VARCHAR (no native type: SQLite and PostgreSQL alike)."""
    return SAEnum(
        enum, native_enum=False, create_constraint=False, length=32, validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )  # fmt: skip


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TicketRow(Base):
    """What the daemon knows of one ticket; `stage` is the truth the board is brought to."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("tracker", "ref"),
        Index("ix_tickets_stage", "stage"),
        Index("ix_tickets_synced", "synced"),
        Index("ix_tickets_ref", "ref"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tracker: Mapped[str] = mapped_column(String(128))
    ref: Mapped[str] = mapped_column(String(256))
    title: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text, default="")
    stage: Mapped[Stage] = mapped_column(_enum(Stage), default=Stage.SEEN)
    # The sub-state of a `running` ticket (None in every other stage); see models.Phase.
    phase: Mapped[Phase | None] = mapped_column(_enum(Phase), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    repo: Mapped[str | None] = mapped_column(String(128), nullable=True)
    branch: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str | None] = mapped_column(Text, nullable=True)
    trigger_via: Mapped[str | None] = mapped_column(String(16), nullable=True)  # label | column
    pr_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    pr_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    pr_state: Mapped[PullRequestState | None] = mapped_column(_enum(PullRequestState), nullable=True)
    iterations: Mapped[int] = mapped_column(Integer, default=0)
    feedback_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    iterated_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)  # PR head already iterated on
    # The column and status comment last written to the tracker: effects are applied until these match the stage.
    column_applied: Mapped[str | None] = mapped_column(Text, nullable=True)
    comment_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    progress: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Publishing a finished run: attempts so far (shown in the comment) and when the next one is due.
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Transient failures (an outage while cloning the workspace, ...) of the current step, and when to retry.
    retry_attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # False until the card and the status comment show what this row says; an idle cycle skips synced rows.
    synced: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def stage_enum(self) -> Stage:
        return Stage(self.stage)

    @property
    def score_model(self) -> Score | None:
        return Score.model_validate_json(self.score_json) if self.score_json else None

    @property
    def feedback(self) -> list[str]:
        return list(json.loads(self.feedback_json)) if self.feedback_json else []


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_ticket_id", "ticket_id"), Index("ix_runs_started_at", "started_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | finished | interrupted
    backend: Mapped[str] = mapped_column(String(32))
    branch: Mapped[str] = mapped_column(Text)
    workspace: Mapped[str] = mapped_column(Text)
    trace_path: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Dollars of today's budget set aside for this run while it is `running` (what it has not spent yet counts
    # against the budget): on the row, so a leader that takes over counts the runs under way on workers too.
    reserved_usd: Mapped[float] = mapped_column(Float, default=0.0)
    # A run executed by a `tracker-bridge worker` (issue 16; see worker.py): what the worker needs besides the
    # configuration (`plan_json`), who executes it and until when (`holder`, `lease_until`, renewed by the worker;
    # `claims` counts the claims and fences the result write), a stop asked for by the leader, the latest progress
    # line, and the result (`result_json`, the JSON of the RunReport; the commit as a git bundle in `bundle`).
    plan_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    holder: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    claims: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    bundle: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)  # read by run_bundle

    def to_model(self, tracker: str, ref: str) -> Run:
        return Run(
            id=self.id,
            tracker=tracker,
            ref=ref,
            attempt=self.attempt,
            branch=self.branch,
            workspace=self.workspace,
            backend=self.backend,
            usage=RunUsage(
                turns=self.turns,
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                cost_usd=self.cost_usd,
            ),
            outcome=RunOutcome(self.outcome) if self.outcome else None,
            reason=self.reason,
            summary=self.summary,
            started_at=self.started_at,
            finished_at=self.finished_at,
        )


class WorkerRow(Base):
    """A `tracker-bridge worker` process: its heartbeat says it is alive; the runs it holds say what it runs."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class EffectRow(Base):
    """One side effect done on a remote, for the audit trail (`status`, the dashboard, tests)."""

    __tablename__ = "effects"
    __table_args__ = (Index("ix_effects_ticket_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(32))  # move | comment | label | push | open_pr | link_pr
    detail: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[datetime] = mapped_column(default=utcnow)


class CursorRow(Base):
    __tablename__ = "cursors"

    tracker: Mapped[str] = mapped_column(String(128), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    polled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RejectionRow(Base):
    """A ticket a tracker showed but that could not be read, parsed or routed: reported, skipped, never fatal."""

    __tablename__ = "rejections"
    __table_args__ = (UniqueConstraint("tracker", "ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tracker: Mapped[str] = mapped_column(String(128))
    ref: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text, default="")
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers (status, dashboard) never block the daemon's writes; a crash never corrupts the file.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# PostgreSQL advisory-lock key held while the schema is created or upgraded (any fixed 64-bit number of our own).
SCHEMA_LOCK_KEY = 0x7472_6B62_7363_6D61


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """Replicas that start together must not create or upgrade the schema at the same time: PostgreSQL fails all but
    one with "relation already exists". A session-level advisory lock makes them take turns; the later ones then find
    the schema made. (SQLite is one file on one machine: nothing to do.)"""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})


class Store:
    def __init__(self, url: str) -> None:
        is_sqlite = url.startswith("sqlite")
        self.engine = create_engine(
            url, connect_args={"check_same_thread": False} if is_sqlite else {}, pool_pre_ping=not is_sqlite
        )
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer; worker threads and the poll loop take turns here instead of hitting "locked".
        self.lock = threading.RLock()
        self._local = threading.local()
        with _schema_lock(self.engine):
            self._migrate()

    def _migrate(self) -> None:
        """Bring the schema to this release's with the Alembic revisions in tracker_bridge/migrations (see schema.py);
        a store written by a newer release raises schema.SchemaTooNew."""
        self.upgrade: Upgrade = upgrade_schema(self.engine)

    @property
    def schema_version(self) -> int:
        with self.session() as s:
            row = s.get(Meta, "schema_version")
            return int(row.value) if row else 0

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction; inside `transaction()` the store calls of this thread share the enclosing one."""
        current: Session | None = getattr(self._local, "session", None)
        if current is not None:
            yield current
            return
        with self.lock, self._session() as s, s.begin():
            self._local.session = s
            try:
                yield s
            finally:
                self._local.session = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several store calls as one transaction (all or nothing, one commit)."""
        with self.session():
            yield

    def close(self) -> None:
        self.engine.dispose()

    # --- tickets ---------------------------------------------------------------------------------------------------

    def ticket(self, tracker: str, ref: str) -> TicketRow | None:
        with self.session() as s:
            return s.scalars(select(TicketRow).where(TicketRow.tracker == tracker, TicketRow.ref == ref)).first()

    def get_or_create_ticket(self, tracker: str, ref: str, **fields: Any) -> tuple[TicketRow, bool]:
        with self.session() as s:
            row = s.scalars(select(TicketRow).where(TicketRow.tracker == tracker, TicketRow.ref == ref)).first()
            if row is not None:
                return row, False
            row = TicketRow(tracker=tracker, ref=ref, **fields)
            s.add(row)
            s.flush()
            return row, True

    def update_ticket(self, row_id: int, **fields: Unpack[TicketFields]) -> TicketRow:
        with self.session() as s:
            row = s.get(TicketRow, row_id)
            assert row is not None
            for k, v in fields.items():
                setattr(row, k, v)
            if not _SYNC_FIELDS.issuperset(fields):
                row.synced = False
                row.updated_at = utcnow()
            s.flush()
            return row

    def tickets(
        self,
        *,
        tracker: str | None = None,
        stages: tuple[Stage, ...] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[TicketRow]:
        with self.session() as s:
            q = select(TicketRow).order_by(TicketRow.id)
            if tracker is not None:
                q = q.where(TicketRow.tracker == tracker)
            if stages is not None:
                q = q.where(TicketRow.stage.in_(stages))
            if limit is not None:
                q = q.limit(limit).offset(offset)
            return list(s.scalars(q))

    def stage_counts(self) -> dict[Stage, int]:
        with self.session() as s:
            q = select(TicketRow.stage, func.count()).group_by(TicketRow.stage)
            return {Stage(stage): int(n) for stage, n in s.execute(q)}

    def tickets_to_sync(self) -> list[TicketRow]:
        """Tickets whose card or status comment may lag the store (see `synced`)."""
        with self.session() as s:
            return list(s.scalars(select(TicketRow).where(TicketRow.synced.is_(False)).order_by(TicketRow.id)))

    def tickets_following_prs(self) -> list[TicketRow]:
        """Tickets whose pull request the engine watches: in review, or failed with the pull request still open."""
        with self.session() as s:
            q = select(TicketRow).where(
                (TicketRow.stage == Stage.REVIEW)
                | ((TicketRow.stage == Stage.FAILED) & (TicketRow.pr_state == PullRequestState.OPEN))
            )
            return list(s.scalars(q.order_by(TicketRow.id)))

    def ticket_costs(self, ticket_ids: list[int] | None = None) -> dict[int, float]:
        """Tickets' total run costs in one query (a listing must not ask once per ticket)."""
        with self.session() as s:
            q = select(RunRow.ticket_id, func.sum(RunRow.cost_usd)).group_by(RunRow.ticket_id)
            if ticket_ids is not None:
                q = q.where(RunRow.ticket_id.in_(ticket_ids))
            return {int(tid): float(cost or 0.0) for tid, cost in s.execute(q)}

    def total_cost(self) -> float:
        with self.session() as s:
            return float(s.scalar(select(func.coalesce(func.sum(RunRow.cost_usd), 0.0))) or 0.0)

    def find_ticket(self, ref: str) -> TicketRow | None:
        with self.session() as s:
            return s.scalars(select(TicketRow).where(TicketRow.ref == ref)).first()

    # --- runs ------------------------------------------------------------------------------------------------------

    def start_run(self, ticket_id: int, **fields: Any) -> RunRow:
        with self.session() as s:
            previous = s.scalar(select(func.max(RunRow.attempt)).where(RunRow.ticket_id == ticket_id)) or 0
            run = RunRow(ticket_id=ticket_id, attempt=previous + 1, **fields)
            s.add(run)
            s.flush()
            return run

    def update_run(self, run_id: int, **fields: Any) -> RunRow:
        with self.session() as s:
            run = s.get(RunRow, run_id)
            assert run is not None
            for k, v in fields.items():
                setattr(run, k, v)
            ticket = s.get(TicketRow, run.ticket_id)
            if ticket is not None:
                ticket.synced = False  # the status comment shows the last run's usage and outcome
            s.flush()
            return run

    def finish_run(self, run_id: int, outcome: RunOutcome, usage: RunUsage, **fields: Any) -> RunRow:
        return self.update_run(
            run_id,
            status="finished",
            outcome=outcome.value,
            turns=usage.turns,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=usage.cost_usd,
            finished_at=utcnow(),
            **fields,
        )

    def runs(self, ticket_id: int) -> list[RunRow]:
        with self.session() as s:
            return list(s.scalars(select(RunRow).where(RunRow.ticket_id == ticket_id).order_by(RunRow.id)))

    def run(self, run_id: int) -> RunRow | None:
        with self.session() as s:
            return s.get(RunRow, run_id)

    def all_runs(self) -> list[RunRow]:
        with self.session() as s:
            return list(s.scalars(select(RunRow).order_by(RunRow.id)))

    def last_run(self, ticket_id: int) -> RunRow | None:
        with self.session() as s:
            return s.scalars(select(RunRow).where(RunRow.ticket_id == ticket_id).order_by(RunRow.id.desc())).first()

    def interrupt_running(self, keep: Collection[int] = ()) -> int:
        """Mark runs left 'running' by a previous process as interrupted (but those in `keep`); returns how many."""
        with self.session() as s:
            rows = [r for r in s.scalars(select(RunRow).where(RunRow.status == "running")) if r.id not in keep]
            for r in rows:
                r.status = "interrupted"
                r.finished_at = utcnow()
                r.reason = r.reason or "the daemon stopped during the run"
            return len(rows)

    def reserved_outstanding(self) -> float:
        """What the runs under way have set aside of today's budget and not spent yet."""
        with self.session() as s:
            rows = s.execute(select(RunRow.reserved_usd, RunRow.cost_usd).where(RunRow.status == "running"))
            return sum(max(0.0, float(reserved or 0.0) - float(cost or 0.0)) for reserved, cost in rows)

    def has_bundle(self, run_id: int) -> bool:
        """Whether a worker handed the run's commit over as a bundle (without reading the bundle)."""
        with self.session() as s:
            return s.scalar(select(RunRow.id).where(RunRow.id == run_id, RunRow.bundle.is_not(None))) is not None

    def run_bundle(self, run_id: int) -> bytes | None:
        """The commit a worker made for the run, as a git bundle (None for runs executed in the daemon)."""
        with self.session() as s:
            return s.scalar(select(RunRow.bundle).where(RunRow.id == run_id))

    def ticket_cost(self, ticket_id: int) -> float:
        with self.session() as s:
            return float(s.scalar(select(func.coalesce(func.sum(RunRow.cost_usd), 0.0)).where(
                RunRow.ticket_id == ticket_id
            )) or 0.0)

    def spent_on(self, day: date) -> float:
        start = datetime(day.year, day.month, day.day)
        with self.session() as s:
            total = s.scalar(select(func.coalesce(func.sum(RunRow.cost_usd), 0.0)).where(RunRow.started_at >= start))
            return float(total or 0.0)

    # --- effects and cursors ---------------------------------------------------------------------------------------

    def record_effect(self, ticket_id: int, kind: str, detail: str = "") -> None:
        with self.session() as s:
            s.add(EffectRow(ticket_id=ticket_id, kind=kind, detail=detail))

    def effects(self, ticket_id: int | None = None, kind: str | None = None) -> list[EffectRow]:
        with self.session() as s:
            q = select(EffectRow).order_by(EffectRow.id)
            if ticket_id is not None:
                q = q.where(EffectRow.ticket_id == ticket_id)
            if kind is not None:
                q = q.where(EffectRow.kind == kind)
            return list(s.scalars(q))

    def cursor(self, tracker: str) -> CursorRow | None:
        with self.session() as s:
            return s.get(CursorRow, tracker)

    def save_cursor(self, tracker: str, cursor: str | None) -> None:
        with self.session() as s:
            row = s.get(CursorRow, tracker) or CursorRow(tracker=tracker)
            row.cursor = cursor
            row.polled_at = utcnow()
            row.last_error = None
            s.merge(row)

    def save_poll_error(self, tracker: str, error: str) -> None:
        with self.session() as s:
            row = s.get(CursorRow, tracker) or CursorRow(tracker=tracker)
            row.last_error = error
            row.error_at = utcnow()
            s.merge(row)

    def record_rejection(self, tracker: str, ref: str, reason: str) -> bool:
        """Remember why a ticket was skipped; True when this is news (a new ticket or a new reason)."""
        with self.session() as s:
            row = s.scalars(
                select(RejectionRow).where(RejectionRow.tracker == tracker, RejectionRow.ref == ref)
            ).first()
            if row is not None and row.reason == reason:
                return False
            if row is None:
                row = RejectionRow(tracker=tracker, ref=ref)
                s.add(row)
            row.reason = reason
            row.seen_at = utcnow()
            return True

    def clear_rejection(self, tracker: str, ref: str) -> None:
        with self.session() as s:
            for row in s.scalars(
                select(RejectionRow).where(RejectionRow.tracker == tracker, RejectionRow.ref == ref)
            ):
                s.delete(row)

    def rejections(self) -> list[RejectionRow]:
        with self.session() as s:
            return list(s.scalars(select(RejectionRow).order_by(RejectionRow.id)))

    def cursors(self) -> list[CursorRow]:
        with self.session() as s:
            return list(s.scalars(select(CursorRow)))


def pr_fields(pr: PullRequest) -> TicketFields:
    return {"pr_id": pr.id, "pr_url": pr.url, "pr_state": pr.state}


# Modules whose tables live in this store; imported here so that Store's create_all makes them.
from tracker_bridge import control as _control  # noqa: E402, F401
from tracker_bridge import lease as _lease  # noqa: E402, F401
