"""Bulk alert processing: payloads are claimed in arrival order across sources, and an
alert remembers which payload last reported it, so workers applying payloads out of
order never let an older one overwrite a newer one. Worker processes report what they
run, and how it goes, in ``workers``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlock.store.types import Json, UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("beat_at", UtcDateTime, nullable=False),
        sa.Column("tasks", Json, nullable=False),
    )
    op.create_index("ix_workers_beat_at", "workers", ["beat_at"])
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("payload_position", sa.BigInteger, nullable=False,
                                   server_default="0"))
    op.drop_index("ix_payloads_pending", table_name="payloads")
    op.create_index(
        "ix_payloads_pending", "payloads", ["position"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_workers_beat_at", table_name="workers")
    op.drop_table("workers")
    op.drop_index("ix_payloads_pending", table_name="payloads")
    op.create_index(
        "ix_payloads_pending", "payloads", ["source_id", "position"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("payload_position")
