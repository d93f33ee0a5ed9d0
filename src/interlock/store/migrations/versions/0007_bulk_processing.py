"""Bulk alert processing: payloads are claimed in arrival order across sources, and an
alert remembers which payload last reported it, so workers applying payloads out of
order never let an older one overwrite a newer one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
    op.drop_index("ix_payloads_pending", table_name="payloads")
    op.create_index(
        "ix_payloads_pending", "payloads", ["source_id", "position"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("payload_position")
