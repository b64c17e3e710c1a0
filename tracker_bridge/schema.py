"""Bringing a state store's schema to this release's, on SQLite and PostgreSQL alike, with Alembic.

The revisions live in tracker_bridge/migrations (package data: an installed tracker-bridge upgrades its own store).
Stores made before Alembic have no `alembic_version` table but a `meta.schema_version` row; they are stamped at the
matching revision first, then upgraded like any other. A store at a revision this release does not know was
upgraded by a newer tracker-bridge: running against it could corrupt it, so it is refused with the fix.
`meta.schema_version` keeps following the head so that a release from before Alembic refuses a newer store too.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import resources

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

log = structlog.get_logger()
# Alembic narrates every open at INFO ("Context impl ...", plugin set-up); every command opens the store, so only its
# warnings are worth a line. What changed is logged once below as `schema.upgraded`.
logging.getLogger("alembic").setLevel(logging.WARNING)


class SchemaTooNew(RuntimeError):
    """The store was upgraded by a newer tracker-bridge."""

    fix = "upgrade tracker-bridge on this machine to the release that wrote the store (or newer)"


@dataclass(frozen=True)
class Upgrade:
    before: str | None  # None: a new, empty store
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("tracker_bridge") / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    """The revisions shipped with this release; read once per process (every command opens the store)."""
    return ScriptDirectory.from_config(_config())


def head() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    return {s.revision for s in _scripts().walk_revisions()}


def current(conn: Connection) -> str | None:
    """The store's revision: Alembic's, else the legacy `meta.schema_version`, else None (a new store)."""
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is not None:
        return revision
    tables = set(inspect(conn).get_table_names())
    if "tickets" not in tables:
        return None
    version = None
    if "meta" in tables:
        version = conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
    return f"{int(version or 1):04d}"


def upgrade(engine: Engine) -> Upgrade:
    """Stamp a pre-Alembic store, refuse a newer one, and upgrade to the head. The caller serialises replicas (see
    store._schema_lock)."""
    with engine.begin() as conn:
        before = current(conn)
        legacy = before is not None and MigrationContext.configure(conn).get_current_revision() is None
    target = head()
    if before is not None and before not in known_revisions():
        raise SchemaTooNew(
            f"the state store is at schema revision {before}, newer than this tracker-bridge (which knows up to "
            f"{target}); {SchemaTooNew.fix}"
        )
    with engine.begin() as conn:
        if legacy:
            command.stamp(_config(conn), before or "base")
        if before != target:
            command.upgrade(_config(conn), "head")
        conn.execute(text("UPDATE meta SET value = :v WHERE key = 'schema_version'"), {"v": str(int(target))})
        if conn.execute(text("SELECT count(*) FROM meta WHERE key = 'schema_version'")).scalar() == 0:
            conn.execute(text("INSERT INTO meta (key, value) VALUES ('schema_version', :v)"), {"v": str(int(target))})
    if before != target:
        log.info("schema.upgraded", before=before or "none", after=target)
    return Upgrade(before, target)
