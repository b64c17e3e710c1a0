"""The procrastinate side of `[bridge] queue = "postgresql://..."`: the app, the one task, and its schema.

procrastinate keeps its jobs in PostgreSQL tables of its own (in the state store's database, usually), so a queue
needs no other server (docs/scaling.md has the measurements behind the choice). Its schema is applied here, once,
under an advisory lock, by `tracker-bridge migrate` and by `run` and `worker` at start: replicas and workers that
start together take turns, and the later ones find the tables made.
"""

from __future__ import annotations

import logging
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


def conninfo(url: str) -> str:
    """The libpq form of a queue URL (SQLAlchemy's `postgresql+psycopg://` names the driver; libpq does not)."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme in ("postgresql+psycopg", "postgres") else url


def make_app(url: str) -> Any:
    """A procrastinate App on the queue's database (not opened)."""
    import procrastinate

    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)))


def ensure_schema(url: str) -> bool:
    """Apply procrastinate's schema unless its tables exist; True when it was applied now."""
    import psycopg
    from procrastinate.schema import SchemaManager

    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
            if row is not None and row[0] is not None:
                return False
            with conn.transaction():
                conn.execute(SchemaManager.get_schema())
            log.info("queue.schema_applied")
            return True
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
