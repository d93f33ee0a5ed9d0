"""Planned maintenance announced on status pages.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlock.store.types import Json, UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_maintenances",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("page_id", sa.String(40), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("components", Json, nullable=False),
        sa.Column("scheduled_for", UtcDateTime, nullable=False),
        sa.Column("scheduled_until", UtcDateTime, nullable=False),
        sa.Column("cancelled_at", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(["page_id"], ["status_pages.id"], ondelete="CASCADE",
                                name="fk_status_maintenances_page_id_status_pages"),
        sa.PrimaryKeyConstraint("id", name="pk_status_maintenances"),
    )
    op.create_index("ix_status_maintenances_page_id_scheduled_for", "status_maintenances",
                    ["page_id", "scheduled_for"])


def downgrade() -> None:
    op.drop_index("ix_status_maintenances_page_id_scheduled_for",
                  table_name="status_maintenances")
    op.drop_table("status_maintenances")
