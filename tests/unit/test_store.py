"""The state store: WAL, schema version, and what a restart finds."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import pg
from tracker_bridge import store as store_mod
from tracker_bridge.models import RunOutcome, RunUsage, Stage
from tracker_bridge.store import SCHEMA_VERSION, Store


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


def test_a_newer_schema_is_refused(state_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = state_url
    Store(url).close()
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 0)
    with pytest.raises(RuntimeError, match="newer than this tracker-bridge"):
        Store(url)


def test_migrations_run_in_order(state_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = state_url
    Store(url).close()
    applied: list[int] = []
    nxt = SCHEMA_VERSION + 1
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", nxt)
    monkeypatch.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS, lambda engine: applied.append(nxt)])
    s = Store(url)
    assert applied == [nxt] and s.schema_version == nxt


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
