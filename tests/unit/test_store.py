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
from tracker_bridge.models import RunOutcome, RunUsage
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
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(store_mod, "MIGRATIONS", [lambda engine: applied.append(2)])
    s = Store(url)
    assert applied == [2] and s.schema_version == 2


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
