"""`[bridge] state`: a URL that cannot work, or PostgreSQL without its driver, is exit 2 with the key and the fix."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import pg
from tests.journey_helpers import make_journey
from tracker_bridge.cli import app
from tracker_bridge.state_url import state_url_problems

PG_URL = "postgresql+psycopg://bridge:s3cret@db.internal:5432/tracker_bridge"
# Importing psycopg fails as it does where the extra is not installed (a None entry in sys.modules blocks the import).
WITHOUT_DRIVER = "import sys; sys.modules['psycopg'] = None; from tracker_bridge.cli import main; main()"


def test_postgresql_without_its_driver_is_exit_2_naming_the_key_and_the_extra(tmp_path: Path) -> None:
    journey = make_journey(tmp_path, state_url=PG_URL)
    for command in (["status"], ["run", "--once"]):
        proc = subprocess.run(
            [sys.executable, "-c", WITHOUT_DRIVER, *command, "-c", str(journey.config)],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "[bridge] state" in proc.stderr
        assert "pip install 'tracker-bridge[postgres]'" in proc.stderr
        assert "s3cret" not in proc.stderr  # the password is never printed


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql+pymysql://u@h/db", "'mysql' is not a supported state store"),
        ("tracker-bridge.db", "not a database URL"),
        ("postgresql://bridge:s3cret@db/tb", "postgresql+psycopg://bridge:***@db/tb"),
        ("postgres://bridge@db/tb", "postgresql+psycopg://bridge@db/tb"),
        ("sqlite:////no/such/folder/state.db", "the folder /no/such/folder does not exist"),
    ],
)
def test_an_unusable_state_url_is_exit_2_with_the_fix(tmp_path: Path, url: str, says: str) -> None:
    journey = make_journey(tmp_path, state_url=url)
    result = CliRunner().invoke(app, ["status", "-c", str(journey.config)])
    assert result.exit_code == 2, result.output
    assert "[bridge] state" in result.output and says in result.output
    assert "s3cret" not in result.output


def test_the_two_supported_stores_pass(tmp_path: Path) -> None:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    assert state_url_problems(f"sqlite:///{tmp_path / 'state.db'}") == []
    assert state_url_problems("sqlite:///:memory:") == []
    assert state_url_problems(PG_URL) == []


def _status(journey_config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker_bridge.cli", "status", "-c", str(journey_config)],
        capture_output=True, text=True, timeout=60, cwd=cwd,
    )


@pytest.mark.postgres
def test_a_state_store_that_will_not_open_says_whether_waiting_helps(
    tmp_path: Path, pg_server: pg.PostgresServer
) -> None:
    good = pg_server.new_database()
    missing_db = good.rsplit("/", 1)[0] + "/no_such_database"
    journey = make_journey(tmp_path / "wrong", state_url=missing_db)
    wrong = _status(journey.config, tmp_path)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "[bridge] state" in wrong.stderr and "no_such_database" in wrong.stderr and "createdb" in wrong.stderr

    with socket.socket() as s:  # a port where nothing listens: the server is down
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    down = "postgresql+psycopg://postgres@127.0.0.1:" + str(closed_port) + "/tb"
    journey = make_journey(tmp_path / "down", state_url=down)
    result = _status(journey.config, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "[bridge] state" in result.stderr and "Waiting may help" in result.stderr
