"""Payloads: a partial index over pending payloads by source, for the ingest queue.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_payloads_status_position", table_name="payloads")
    op.create_index(
        "ix_payloads_pending", "payloads", ["source_id", "position"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_payloads_pending", table_name="payloads")
    op.create_index("ix_payloads_status_position", "payloads", ["status", "position"])
