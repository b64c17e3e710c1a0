"""procrastinate's schema in the queue's database: made once, and brought up to a newer procrastinate after an
upgrade of the package (procrastinate keeps no record of its own migrations; jobs.py keeps one)."""

from __future__ import annotations

import psycopg
import pytest

from tests import pg
from tracker_bridge import jobs

pytest.importorskip("procrastinate", reason="procrastinate is not installed: pip install 'tracker-bridge[postgres]'")

pytestmark = pytest.mark.postgres

# A schema as procrastinate 3.1 made it: every migration script up to that release's last one.
OLD = "03.01.00_50_post_add_heartbeat"


def functions(url: str) -> set[str]:
    with psycopg.connect(jobs.conninfo(url)) as conn:
        rows = conn.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'procrastinate%'").fetchall()
    return {str(r[0]) for r in rows}


def mark(url: str) -> str | None:
    with psycopg.connect(jobs.conninfo(url)) as conn:
        row = conn.execute(f"SELECT migration FROM {jobs.MARK_TABLE}").fetchone()
    return None if row is None else str(row[0])


def test_a_new_queue_gets_the_schema_once_marked_with_the_newest_migration(pg_server: pg.PostgresServer) -> None:
    url = pg_server.new_database()
    assert jobs.ensure_schema(url).created
    again = jobs.ensure_schema(url)
    assert not again.created and not again.migrated
    assert again.describe() == "procrastinate's schema already there (up to date)"
    assert mark(url) == jobs.migrations()[-1][0]


def test_a_schema_of_an_older_procrastinate_is_upgraded_and_then_works(pg_server: pg.PostgresServer) -> None:
    url = pg_server.new_database()
    with psycopg.connect(jobs.conninfo(url), autocommit=True) as conn:
        for name, sql in jobs.migrations():
            if name <= OLD:
                conn.execute(sql)  # type: ignore[arg-type]  # procrastinate's own scripts
        conn.execute(f"CREATE TABLE {jobs.MARK_TABLE} (id int PRIMARY KEY, migration text NOT NULL)")
        conn.execute(f"INSERT INTO {jobs.MARK_TABLE} VALUES (1, %s)", (OLD,))
    assert "procrastinate_retry_job_v2" not in functions(url)  # what the installed procrastinate calls is missing

    done = jobs.ensure_schema(url)
    newer = [name for name, _ in jobs.migrations() if name > OLD]
    assert not done.created and list(done.migrated) == newer and newer
    assert done.describe().startswith(f"procrastinate's schema upgraded ({len(newer)} migration(s)")
    assert mark(url) == newer[-1]
    # The upgraded schema has what a fresh one has, and the installed procrastinate works on it.
    fresh = pg_server.new_database()
    jobs.ensure_schema(fresh)
    assert functions(url) == functions(fresh)
    app = jobs.make_app(url)
    app.open()
    try:
        job_id = app.configure_task(jobs.TASK, queue=jobs.QUEUE).defer(run_id=1)
        [job] = app.job_manager.list_jobs(id=job_id)
        assert job.status == "todo"
    finally:
        app.close()
    assert not jobs.ensure_schema(url).migrated  # nothing twice


def test_a_schema_made_before_the_mark_was_kept_is_taken_as_current(pg_server: pg.PostgresServer) -> None:
    url = pg_server.new_database()
    jobs.ensure_schema(url)
    with psycopg.connect(jobs.conninfo(url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE {jobs.MARK_TABLE}")  # as an earlier tracker-bridge left it
    done = jobs.ensure_schema(url)
    assert not done.created and not done.migrated
    assert mark(url) == jobs.migrations()[-1][0]
