"""Checking `[bridge] state` before anything opens the store, so a wrong URL or a missing driver is a configuration
error (exit 2, the key and the fix) instead of a SQLAlchemy traceback at the first query.

Two stores are supported: SQLite (the default, one file, no server) and PostgreSQL through psycopg 3
(`postgresql+psycopg://`), whose driver ships in the `tracker-bridge[postgres]` extra. Everything SQLAlchemy could
open beyond those is refused on purpose: the tests prove these two and no other.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from tracker_bridge.config import ConfigError

EXAMPLES = "sqlite:///tracker-bridge.db or postgresql+psycopg://USER@HOST:5432/DATABASE"
POSTGRES_EXTRA = "pip install 'tracker-bridge[postgres]'"


def _shown(url: str, parsed: URL | None = None) -> str:
    """The URL as it may be printed: never the password."""
    if parsed is None:
        return repr(url)
    return repr(parsed.render_as_string(hide_password=True))


def state_url_problems(url: str) -> list[str]:
    """What is wrong with the state store URL `url` (already resolved by Settings.state_url); empty when usable."""
    key = "[bridge] state"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return [f"{key} = {_shown(url)}: not a database URL. Fix: write {EXAMPLES}"]
    shown = _shown(url, parsed)
    # Split by hand: asking SQLAlchemy for the driver loads the dialect, which fails for names it does not know.
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("pysqlite", ""):
            return [f"{key} = {shown}: the SQLite driver {driver!r} is not supported. Fix: write sqlite:///PATH"]
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).parent
            if not folder.is_dir():
                return [f"{key} = {shown}: the folder {folder} does not exist. Fix: create it or change the path"]
        return []
    if backend in ("postgresql", "postgres"):
        if parsed.drivername != "postgresql+psycopg":
            fixed = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=True)
            return [
                f"{key} = {shown}: PostgreSQL is reached through psycopg 3, named in the URL. Fix: write {fixed!r}"
            ]
        try:
            importlib.import_module("psycopg")
        except ImportError as exc:
            return [
                f"{key} = {shown}: the PostgreSQL driver (psycopg 3) is not installed ({exc}). Fix: {POSTGRES_EXTRA}"
            ]
        if not parsed.database:
            return [f"{key} = {shown}: no database named. Fix: end the URL with /DATABASE"]
        return []
    return [f"{key} = {shown}: {backend!r} is not a supported state store. Fix: write {EXAMPLES}"]


def check_state_url(url: str) -> None:
    """Raise ConfigError (which the CLI turns into exit 2) when `url` cannot be used as the state store."""
    problems = state_url_problems(url)
    if problems:
        raise ConfigError(problems)


# What PostgreSQL says when the URL itself is wrong (waiting will not help), as opposed to a server down or starting.
_WRONG_URL = ("password authentication failed", "does not exist", "could not translate host name", "no password")


def unreachable(exc: OperationalError) -> tuple[int, str]:
    """(exit status, message) for a state store that would not open: 2 when the URL is wrong (bad credentials, no
    such database or host), 1 when waiting may help (the server is down or starting)."""
    detail = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else type(exc).__name__
    if any(marker in detail for marker in _WRONG_URL):
        return 2, f"[bridge] state: the state store refused the URL: {detail}. Fix: correct the user, password, " \
            "host or database in the URL (the database must exist: createdb it first)"
    return 1, f"[bridge] state: the state store cannot be reached: {detail}. Waiting may help: check that the " \
        "server is running and reachable at the URL's host and port"
