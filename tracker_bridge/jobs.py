"""The procrastinate side of `[bridge] queue = "postgresql://..."`: the app, the one task, and its schema.

procrastinate keeps its jobs in PostgreSQL tables of its own (in the state store's database, usually), so a queue
needs no other server (docs/scaling.md has the measurements behind the choice). Its schema is applied here, once,
under an advisory lock, by `tracker-bridge migrate` and by `run` and `worker` at start: replicas and workers that
start together take turns, and the later ones find the tables made. After an upgrade of the procrastinate package
the same call applies its newer migration scripts (`ensure_schema` says how it knows which).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)
# procrastinate narrates every job at INFO (deferred, started, finished, with its whole row); the run rows and our
# own `queue.*` and `worker.*` lines say what matters, so only its warnings are worth a line.
logging.getLogger("procrastinate").setLevel(logging.WARNING)

QUEUE = "tracker-bridge"  # procrastinate's queue name: the jobs of this tool only
TASK = "tracker_bridge.run_agent"  # the one task: execute the agent run whose id it carries
# PostgreSQL advisory-lock key held while procrastinate's schema is applied (a fixed number of our own).
SCHEMA_LOCK_KEY = 0x7472_6B62_7072_6F63
# Our record of the last procrastinate migration script the queue's schema matches (see ensure_schema).
MARK_TABLE = "tracker_bridge_queue_schema"


def conninfo(url: str) -> str:
    """The libpq form of a queue URL (SQLAlchemy's `postgresql+psycopg://` names the driver; libpq does not)."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme in ("postgresql+psycopg", "postgres") else url


def make_app(url: str) -> Any:
    """A procrastinate App on the queue's database (not opened)."""
    import procrastinate

    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)))


def close_stale_jobs(app: Any, run_id: int, keep: int | None = None) -> None:
    """Close the `doing` jobs of a run whose previous holder's lease ran out (all but `keep`, the caller's own).

    procrastinate would keep a dead worker's job `doing` for ever (and count it in its own views); the run goes on
    under another job. Called by the leader when it sees the lease run out, and by the worker that takes the run
    over (the leader may never see the lapse: a worker can claim the run first). A worker cut off, not dead, finds
    its job closed when it finishes: its result was refused already, since the claim moved on."""
    from procrastinate import sql

    try:
        stale = app.job_manager.list_jobs(queueing_lock=f"run-{run_id}", status="doing")
        connector = app.connector.get_sync_connector()
        for job in stale:
            if job.id == keep:
                continue
            connector.execute_query(query=sql.queries["finish_job"], job_id=job.id, status="failed", delete_job=False)
            log.info("queue.stale_job_closed", run_id=run_id, job_id=job.id)
    except Exception as exc:  # bookkeeping only: the run goes on either way
        log.warning("queue.stale_job_close_failed", run_id=run_id, error=str(exc))


def migrations() -> list[tuple[str, str]]:
    """procrastinate's migration scripts shipped with the installed version, oldest first: (name, SQL). Their names
    start with the zero-padded version that introduced them, so sorting by name is their order."""
    from importlib import resources

    folder = resources.files("procrastinate.sql") / "migrations"
    scripts = [f for f in folder.iterdir() if f.name.endswith(".sql")]
    return sorted((f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in scripts)


@dataclass(frozen=True)
class QueueSchema:
    created: bool = False  # the tables were made now
    migrated: tuple[str, ...] = ()  # migration scripts applied now (a newer procrastinate than the schema's)

    def describe(self) -> str:
        if self.created:
            return "procrastinate's schema applied"
        if self.migrated:
            return f"procrastinate's schema upgraded ({len(self.migrated)} migration(s), to {self.migrated[-1]})"
        return "procrastinate's schema already there (up to date)"


def ensure_schema(url: str) -> QueueSchema:
    """Make procrastinate's tables, or bring them up to the installed procrastinate.

    procrastinate keeps no record of which of its migrations a database has had (it leaves that to the project's
    migration tool), so this keeps one: `MARK_TABLE` holds the name of the last migration script the schema
    matches. Tables made from `schema.sql` match the newest script shipped with it; after an upgrade of the package
    the newer scripts are applied in order, each in a transaction with its mark. A schema made before the mark was
    kept is taken to match the installed version (what a fresh install would have applied then)."""
    import psycopg
    from procrastinate.schema import SchemaManager

    scripts = migrations()
    newest = scripts[-1][0] if scripts else ""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {MARK_TABLE} (id int PRIMARY KEY, migration text NOT NULL)")
            made = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
            marked = conn.execute(f"SELECT migration FROM {MARK_TABLE} WHERE id = 1").fetchone()
            if made is None or made[0] is None:
                with conn.transaction():
                    conn.execute(SchemaManager.get_schema())
                    _mark(conn, newest)
                log.info("queue.schema_applied", migration=newest)
                return QueueSchema(created=True)
            if marked is None:
                _mark(conn, newest)
                return QueueSchema()
            applied: list[str] = []
            for name, sql in scripts:
                if name <= str(marked[0]):
                    continue
                with conn.transaction():
                    conn.execute(sql)  # type: ignore[arg-type]  # procrastinate's own script, not user input
                    _mark(conn, name)
                applied.append(name)
                log.info("queue.schema_migrated", migration=name)
            return QueueSchema(migrated=tuple(applied))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


def _mark(conn: Any, migration: str) -> None:
    conn.execute(
        f"INSERT INTO {MARK_TABLE} (id, migration) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET migration = %s",
        (migration, migration),
    )
