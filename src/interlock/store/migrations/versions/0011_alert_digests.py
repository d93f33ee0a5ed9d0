"""Alert digests: incident.alert_attached at most once per incident per window.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlock.store.types import Json, UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_digests",
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("last_event_at", UtcDateTime, nullable=False),
        sa.Column("waiting", sa.Integer, nullable=False),
        sa.Column("alert_ids", Json, nullable=False),
        sa.Column("source_id", sa.String(40), nullable=True),
        sa.Column("due_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("incident_id", name="pk_alert_digests"),
    )
    op.create_index("ix_alert_digests_due_at", "alert_digests", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_digests_due_at", table_name="alert_digests")
    op.drop_table("alert_digests")
