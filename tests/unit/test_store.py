"""The state store: WAL, schema version, and what a restart finds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

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
