from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg
from tests.journey_helpers import Journey, make_journey
from tests.processes import Proc


@pytest.fixture(autouse=True)
def _no_stray_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own TRACKER_BRIDGE__* overrides must not change what a test sees.
    import os

    for key in list(os.environ):
        if key.startswith("TRACKER_BRIDGE"):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def journey(tmp_path: Path) -> Journey:
    return make_journey(tmp_path)


# --- the state store: SQLite by default, and a real PostgreSQL server for the tests that ask for `state_url` ---------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PostgresServer]:
    """One PostgreSQL server for the whole session (see tests/pg.py); skips, saying why, where there is none."""
    try:
        server = pg.start()
    except pg.Unavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty state store: a SQLite file, then a fresh database on the session's PostgreSQL server.
    A test that takes this fixture runs once on each."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    server: pg.PostgresServer = request.getfixturevalue("pg_server")
    return server.new_database()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """The `tracker-bridge` processes a test starts (tests/processes.py), killed when it ends."""
    started: list[Proc] = []
    yield started
    for p in started:
        p.kill()
