"""Alembic's entry point: runs the revisions on the connection schema.py hands over (never a URL of its own, so the
upgrade happens under the caller's advisory lock and with the store's own engine settings)."""

from __future__ import annotations

from alembic import context

from tracker_bridge.store import Base

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it; Alembic's batch mode does that when a revision needs it.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
