"""Version 2: ticket phases, publish and retry counters, the `synced` flag, the indexes an idle cycle needs, and the
rejections, controls and leases tables.

Before Alembic, a store at version 2 got these tables from `create_all` whenever the release that added them first
opened it, so a stamped version 1 store may already hold some of them: every step here checks before it adds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_tickets_stage", "tickets", "stage"),
    ("ix_tickets_synced", "tickets", "synced"),
    ("ix_tickets_ref", "tickets", "ref"),
    ("ix_runs_ticket_id", "runs", "ticket_id"),
    ("ix_runs_started_at", "runs", "started_at"),
    ("ix_effects_ticket_id", "effects", "ticket_id"),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = {c["name"] for c in inspector.get_columns("tickets")}
    for column in (
        sa.Column("phase", sa.String(32), nullable=True),
        sa.Column("publish_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("retry_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("retry_at", sa.DateTime(), nullable=True),
        sa.Column("synced", sa.Boolean(), nullable=False, server_default=sa.false()),
    ):
        if column.name not in existing:
            op.add_column("tickets", column)
    tables = set(inspector.get_table_names())
    indexed = {ix["name"] for table in ("tickets", "runs", "effects") for ix in inspector.get_indexes(table)}
    for name, table, column_name in INDEXES:
        if name not in indexed:
            op.create_index(name, table, [column_name])
    if "rejections" not in tables:
        op.create_table(
            "rejections",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("tracker", sa.String(128), nullable=False),
            sa.Column("ref", sa.String(256), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("seen_at", sa.DateTime(), nullable=False),
            sa.UniqueConstraint("tracker", "ref"),
        )
    if "controls" not in tables:
        op.create_table(
            "controls",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("ref", sa.String(256), nullable=True),
            sa.Column("requested_at", sa.DateTime(), nullable=False),
            sa.Column("requested_by", sa.String(128), nullable=False),
            sa.Column("done_at", sa.DateTime(), nullable=True),
        )
    if "leases" not in tables:
        op.create_table(
            "leases",
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("holder", sa.String(64), nullable=False),
            sa.Column("host", sa.String(255), nullable=False),
            sa.Column("pid", sa.Integer(), nullable=False),
            sa.Column("machine", sa.String(128), nullable=False),
            sa.Column("acquired_at", sa.DateTime(), nullable=False),
            sa.Column("expires_at", sa.DateTime(), nullable=False),
        )


def downgrade() -> None:
    for table in ("leases", "controls", "rejections"):
        op.drop_table(table)
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    for name in ("synced", "retry_at", "retry_attempts", "publish_attempts", "phase"):
        with op.batch_alter_table("tickets") as batch:
            batch.drop_column(name)
