"""Version 3 (issue 16): agent runs executed by `tracker-bridge worker` processes.

On `runs`: the budget reservation (`reserved_usd`, so a leader that takes over counts the runs under way), what a
worker needs to rebuild the run (`plan_json`), the run lease (`holder`, `lease_until`, `claims`), a stop asked by the
leader (`cancel_requested`), the latest progress line, and the result (`result_json`, `bundle`). The `workers` table
holds each worker's heartbeat for `status` and `doctor`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _run_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("reserved_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("plan_json", sa.Text(), nullable=True),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("claims", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("progress", sa.Text(), nullable=True),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("bundle", sa.LargeBinary(), nullable=True),
    ]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = {c["name"] for c in inspector.get_columns("runs")}
    for column in _run_columns():
        if column.name not in existing:
            op.add_column("runs", column)
    if "workers" not in set(inspector.get_table_names()):
        op.create_table(
            "workers",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("host", sa.String(255), nullable=False),
            sa.Column("pid", sa.Integer(), nullable=False),
            sa.Column("concurrency", sa.Integer(), nullable=False),
            sa.Column("started_at", sa.DateTime(), nullable=False),
            sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("workers")
    with op.batch_alter_table("runs") as batch:
        for column in reversed(_run_columns()):
            batch.drop_column(column.name)
