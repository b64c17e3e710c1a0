"""`tracker-bridge migrate` and the upgrade every command does at start, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.journey_helpers import make_journey
from tracker_bridge import schema
from tracker_bridge.cli import app


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_migrate_creates_then_reports_the_store_up_to_date(tmp_path: Path, state_url: str) -> None:
    journey = make_journey(tmp_path, state_url=state_url)
    code, output = _cli("migrate", "-c", str(journey.config))
    assert code == 0 and f"created at schema revision {schema.head()}" in output, output
    code, output = _cli("migrate", "-c", str(journey.config))
    assert code == 0 and f"already at schema revision {schema.head()} (the newest)" in output, output


def test_migrate_upgrades_a_version_1_store(tmp_path: Path, state_url: str) -> None:
    engine = create_engine(state_url)
    with engine.begin() as conn:  # a store as a release before Alembic left it
        command.upgrade(schema._config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO meta VALUES ('schema_version', '1')"))
    engine.dispose()
    journey = make_journey(tmp_path, state_url=state_url)
    code, output = _cli("migrate", "-c", str(journey.config))
    assert code == 0 and "upgraded from schema revision 0001 to 0003" in output, output


def test_every_command_refuses_a_store_from_a_newer_release_with_exit_2_and_the_fix(
    tmp_path: Path, state_url: str
) -> None:
    journey = make_journey(tmp_path, state_url=state_url)
    assert _cli("migrate", "-c", str(journey.config))[0] == 0
    engine = create_engine(state_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0042'"))
    engine.dispose()
    for args in (["migrate"], ["status"], ["run", "--once"], ["doctor"]):
        code, output = _cli(*args, "-c", str(journey.config))
        assert code == 2, (args, output)
        assert "revision 0042, newer than this tracker-bridge" in output, (args, output)
        assert "upgrade tracker-bridge" in output and "Traceback" not in output, (args, output)
