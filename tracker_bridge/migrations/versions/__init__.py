"""Alembic revisions of the state store, oldest first (one file per schema version)."""
