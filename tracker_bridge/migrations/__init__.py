"""The state store's schema history as Alembic revisions, shipped inside the package so that an installed
tracker-bridge upgrades its own store (`tracker-bridge migrate`, or automatically at start; see schema.py).

Each revision is frozen once released: it spells out its own columns instead of importing the current models, so
that an old store is brought through every step exactly as it was then. Revision ids are the schema version numbers
("0001", "0002", ...) so the store's `meta.schema_version` row, which older releases read, stays meaningful.
"""
