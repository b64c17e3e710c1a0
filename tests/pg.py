"""A real PostgreSQL server for the tests: started once per session from the distribution's binaries, one fresh
database per test.

Why start our own server instead of using the system cluster: it works the same on a developer's machine and in CI,
needs no password or pg_hba edits, listens only on loopback, and disappears with the session. The server's data
directory is a temporary folder; fsync is off (nothing here must survive a power cut, and it makes the journeys fast).

Where the binaries come from: $TB_TEST_PG_BIN, else the newest /usr/lib/postgresql/<version>/bin
(Debian/Ubuntu's `postgresql` package), else `pg_ctl` on PATH. initdb refuses to run as root, so as root (CI) the
server runs as the `postgres` system user that the package creates.

An existing server can be used instead: $TB_TEST_POSTGRES_URL (a SQLAlchemy URL of a role allowed to
CREATE DATABASE, e.g. postgresql+psycopg://me@127.0.0.1/postgres).

When none of this is available the tests that need PostgreSQL skip and say why.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Not TRACKER_BRIDGE_*: conftest clears those so that a developer's overrides never change what a test sees.
BIN_ENV = "TB_TEST_PG_BIN"
URL_ENV = "TB_TEST_POSTGRES_URL"


class Unavailable(Exception):
    """PostgreSQL cannot be used here; the message is the skip reason."""


def find_bin_dir() -> Path:
    explicit = os.environ.get(BIN_ENV)
    if explicit:
        path = Path(explicit)
        if not (path / "initdb").exists():
            raise Unavailable(f"{BIN_ENV}={explicit} holds no initdb")
        return path
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0
    )
    if versions:
        return versions[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).parent / "initdb").exists():
        return Path(on_path).parent
    raise Unavailable(
        "PostgreSQL server binaries not found (install the `postgresql` package, or set "
        f"{BIN_ENV} to the folder holding initdb and pg_ctl, or {URL_ENV} to a server's URL)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server (ours or the one named by $TB_TEST_POSTGRES_URL) and the databases made on it."""

    admin_url: str  # psycopg conninfo URL (no SQLAlchemy driver suffix) of a role that may create databases
    _stop: list[list[str]] = field(default_factory=list)
    _folder: Path | None = None
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def new_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"tb_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = self.admin_url.rpartition("/")
        return base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name

    def stop(self) -> None:
        for cmd in self._stop:
            subprocess.run(cmd, capture_output=True, check=False, timeout=60)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def _as_server_user(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the `postgres` system user when we are root."""
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise Unavailable("running as root and there is no `postgres` system user to run the server as") from exc
    return ["runuser", "-u", "postgres", "--", *cmd]


def start() -> PostgresServer:
    """Start a server for this session (or adopt $TB_TEST_POSTGRES_URL). Raises Unavailable."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise Unavailable("the PostgreSQL driver is not installed: pip install 'tracker-bridge[postgres]'") from exc
    existing = os.environ.get(URL_ENV)
    if existing:
        return PostgresServer(admin_url=existing.replace("postgresql+psycopg://", "postgresql://", 1))

    bin_dir = find_bin_dir()
    # As root the server runs as `postgres`, which must reach the folder: /tmp, not a private $TMPDIR.
    folder = Path(tempfile.mkdtemp(prefix="tb-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    data, sockets = folder / "data", folder / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise Unavailable("running as root and there is no `postgres` system user to run the server as") from exc
        for p in (folder, sockets):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    init = subprocess.run(
        _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                         "--no-sync", "--no-instructions"]),
        capture_output=True, text=True, check=False, timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise Unavailable(f"initdb failed: {(init.stderr or init.stdout).strip()[-400:]}")
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB"
    )
    server = PostgresServer(admin_url=f"postgresql://postgres@127.0.0.1:{port}/postgres", _folder=folder)
    server._stop.append(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]))
    ctl = subprocess.run(
        _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w",
                         "-t", "60", "-o", options, "start"]),
        capture_output=True, text=True, check=False, timeout=90,
    )
    if ctl.returncode != 0:
        log = (folder / "server.log").read_text(errors="replace") if (folder / "server.log").exists() else ""
        server.stop()
        raise Unavailable(f"the PostgreSQL server did not start: {(ctl.stderr + log).strip()[-400:]}")
    _wait_ready(server.admin_url)
    return server


def _wait_ready(url: str, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
