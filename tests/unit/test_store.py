"""The state store: WAL, schema version, and what a restart finds."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from tests import pg
from tracker_bridge import schema
from tracker_bridge.models import RunOutcome, RunUsage, Stage
from tracker_bridge.schema import SchemaTooNew
from tracker_bridge.store import SCHEMA_VERSION, Base, Store


def test_sqlite_file_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    s = Store(f"sqlite:///{db}")
    assert s.schema_version == SCHEMA_VERSION
    s.close()
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_runs_left_running_are_marked_interrupted_on_the_next_start(state_url: str) -> None:
    url = state_url
    s = Store(url)
    row, created = s.get_or_create_ticket("t", "A-1", title="x")
    assert created and not s.get_or_create_ticket("t", "A-1")[1]
    run = s.start_run(row.id, backend="command", branch="b", workspace="w", trace_path="p")
    s.close()
    again = Store(url)
    assert again.interrupt_running() == 1
    assert again.runs(row.id)[0].status == "interrupted"
    second = again.start_run(row.id, backend="command", branch="b", workspace="w", trace_path="p")
    assert second.attempt == run.attempt + 1
    again.finish_run(second.id, RunOutcome.SUCCEEDED, RunUsage(turns=3, cost_usd=0.25))
    assert again.ticket_cost(row.id) == pytest.approx(0.25)


def test_a_newer_schema_revision_is_refused_with_the_fix(state_url: str) -> None:
    Store(state_url).close()
    engine = create_engine(state_url)
    with engine.begin() as conn:  # what a later release's `tracker-bridge migrate` leaves behind
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(SchemaTooNew, match=r"revision 0099, newer than this tracker-bridge .* upgrade tracker-bridge"):
        Store(state_url)


def test_a_pre_alembic_store_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "newer.db"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SCHEMA.replace("('schema_version', '1')", "('schema_version', '7')"))
    conn.close()
    with pytest.raises(SchemaTooNew, match="revision 0007"):
        Store(f"sqlite:///{db}")


def test_the_migrations_make_exactly_the_schema_the_models_describe(state_url: str) -> None:
    """A model change without its revision would work in the tests' new stores and break every existing one."""
    s = Store(state_url)
    assert s.upgrade.before is None and s.upgrade.after == schema.head() == f"{SCHEMA_VERSION:04d}"
    with s.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    s.close()
    assert diff == [], "add a revision under tracker_bridge/migrations/versions for: " + repr(diff)


def test_a_version_1_store_is_stamped_and_upgraded_on_either_database(state_url: str) -> None:
    """A store made before Alembic (meta.schema_version = 1, no alembic_version) is stamped 0001, then upgraded."""
    engine = create_engine(state_url)
    with engine.begin() as conn:
        command.upgrade(schema._config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO meta VALUES ('schema_version', '1')"))
        conn.execute(
            text(
                "INSERT INTO tickets (id, tracker, ref, title, url, stage, reason, content_hash, iterations, pr_state,"
                " created_at, updated_at) VALUES (1, 'demo', 'DEMO-1', 't', '', 'review', 'open', '', 0, 'open',"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()
    s = Store(state_url)
    assert (s.upgrade.before, s.upgrade.after, s.schema_version) == ("0001", "0003", 3)
    row = s.ticket("demo", "DEMO-1")
    assert row is not None and row.stage is Stage.REVIEW and row.publish_attempts == 0 and not row.synced
    assert [r.ref for r in s.tickets_following_prs()] == ["DEMO-1"]
    with s.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0003"
    s.close()


V1_SCHEMA = """
CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE tickets (id INTEGER PRIMARY KEY, tracker VARCHAR(128), ref VARCHAR(256), title TEXT, url TEXT,
  stage VARCHAR(32), reason TEXT, repo VARCHAR(128), branch TEXT, content_hash VARCHAR(64), score FLOAT,
  score_json TEXT, actor TEXT, trigger_via VARCHAR(16), pr_id TEXT, pr_url TEXT, pr_state VARCHAR(32),
  iterations INTEGER, feedback_json TEXT, iterated_sha VARCHAR(64), column_applied TEXT, comment_hash VARCHAR(64),
  progress TEXT, created_at DATETIME, updated_at DATETIME, UNIQUE (tracker, ref));
CREATE TABLE runs (id INTEGER PRIMARY KEY, ticket_id INTEGER REFERENCES tickets(id), attempt INTEGER,
  status VARCHAR(16), backend VARCHAR(32), branch TEXT, workspace TEXT, trace_path TEXT, outcome VARCHAR(32),
  reason TEXT, summary TEXT, commit_sha VARCHAR(64), turns INTEGER, input_tokens INTEGER, output_tokens INTEGER,
  cost_usd FLOAT, started_at DATETIME, finished_at DATETIME);
CREATE TABLE effects (id INTEGER PRIMARY KEY, ticket_id INTEGER REFERENCES tickets(id), kind VARCHAR(32),
  detail TEXT, done_at DATETIME);
CREATE TABLE cursors (tracker VARCHAR(128) PRIMARY KEY, cursor TEXT, polled_at DATETIME, last_error TEXT,
  error_at DATETIME);
INSERT INTO tickets (id, tracker, ref, title, url, stage, reason, content_hash, iterations, pr_state,
  created_at, updated_at) VALUES (1, 'demo', 'DEMO-1', 't', '', 'review', 'open', '', 0, 'open',
  '2026-01-01 00:00:00', '2026-01-01 00:00:00');
"""


def test_a_version_1_file_gets_the_new_columns_and_the_indexes_the_cycle_needs(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SCHEMA)
    conn.close()
    s = Store(f"sqlite:///{db}")
    assert s.schema_version == SCHEMA_VERSION
    row = s.ticket("demo", "DEMO-1")
    assert row is not None and row.stage is Stage.REVIEW and row.publish_attempts == 0 and not row.synced
    assert [r.ref for r in s.tickets_following_prs()] == ["DEMO-1"]
    s.close()
    indexes = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_runs_ticket_id", "ix_effects_ticket_id", "ix_tickets_stage"} <= indexes



# Replicas start together (systemd, a rolling deploy): each opens the store, and the schema must be made only once.
OPEN_AT = (
    "import sys, time\n"
    "from tracker_bridge.store import Store\n"
    "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
    "Store(sys.argv[1]).close()\n"
)


@pytest.mark.postgres
def test_replicas_opening_a_new_postgresql_store_at_once_all_start(pg_server: pg.PostgresServer) -> None:
    for _ in range(2):
        url = pg_server.new_database()
        at = time.time() + 2.5  # after every interpreter has imported SQLAlchemy
        procs = [
            subprocess.Popen([sys.executable, "-c", OPEN_AT, url, str(at)], stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
        assert Store(url).schema_version == SCHEMA_VERSION
