"""A real PostgreSQL server for tests, started from the Debian server binaries in a throwaway folder.

Skips (with the reason) when the binaries or the psycopg driver are missing. As root, the server runs as the
`postgres` user (initdb refuses root). Loopback only, trust authentication, stopped at the end.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("TB_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[Callable[[], str]]:
    """Yields a function that creates a fresh database and returns its SQLAlchemy URL."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN} (set TB_TEST_PG_BIN)")
    psycopg = pytest.importorskip("psycopg", reason="the psycopg driver is not installed (dev extra)")
    preexec: Callable[[], None] | None = None
    folder = Path(tempfile.mkdtemp(prefix="tb-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
        os.chown(folder, user.pw_uid, user.pw_gid)

        def preexec() -> None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

    data, port = folder / "data", _free_port()
    try:
        initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "tb", "--auth=trust", "-E", "UTF8"]
        subprocess.run(initdb, preexec_fn=preexec, capture_output=True, check=True, cwd=folder, timeout=120)
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        # -l: the server's output goes to a file; a pipe would stay open in the server and never reach EOF.
        log_file = str(folder / "server.log")
        start = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", log_file, "-w", "start"]
        subprocess.run(start, preexec_fn=preexec, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       cwd=folder, timeout=60)  # fmt: skip
        admin = f"host=127.0.0.1 port={port} user=tb dbname=postgres"

        def new_database() -> str:
            name = "tb_" + uuid.uuid4().hex[:12]
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            return f"postgresql+psycopg://tb@127.0.0.1:{port}/{name}"

        yield new_database
    finally:
        subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       preexec_fn=preexec, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                       cwd=folder, timeout=60)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
