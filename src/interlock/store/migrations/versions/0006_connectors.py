"""Connectors: their configuration, incident links, the sync job queue, the activity
log and inbound delivery receipts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlock.store.types import BigSerial, Json, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connectors",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("settings", Json, nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("mapping", Json, nullable=False),
        sa.Column("filter", Json, nullable=True),
        sa.Column("state", Json, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_success_at", UtcDateTime, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", UtcDateTime, nullable=True),
        sa.Column("failing_since", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_connectors"),
    )
    op.create_table(
        "incident_links",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("connector_id", sa.String(40), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(400), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("state", Json, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("reconciled_at", UtcDateTime, nullable=True),
        sa.ForeignKeyConstraint(["connector_id"], ["connectors.id"], ondelete="CASCADE",
                                name="fk_incident_links_connector_id_connectors"),
        sa.PrimaryKeyConstraint("id", name="pk_incident_links"),
        sa.UniqueConstraint("connector_id", "incident_id",
                            name="uq_incident_links_connector_id_incident_id"),
    )
    op.create_index("ix_incident_links_connector_id_external_id", "incident_links",
                    ["connector_id", "external_id"])
    op.create_index("ix_incident_links_incident_id", "incident_links", ["incident_id"])
    op.create_table(
        "sync_jobs",
        sa.Column("position", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("connector_id", sa.String(40), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(["connector_id"], ["connectors.id"], ondelete="CASCADE",
                                name="fk_sync_jobs_connector_id_connectors"),
        sa.PrimaryKeyConstraint("position", name="pk_sync_jobs"),
        sa.UniqueConstraint("id", name="uq_sync_jobs_id"),
    )
    op.create_index(
        "ix_sync_jobs_due", "sync_jobs", ["next_attempt_at", "position"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_sync_jobs_connector_id_incident_id_status_position", "sync_jobs",
                    ["connector_id", "incident_id", "status", "position"])
    op.create_table(
        "connector_activity",
        sa.Column("position", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("connector_id", sa.String(40), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=True),
        sa.Column("job_id", sa.String(40), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("calls", Json, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UtcDateTime, nullable=True),
        sa.ForeignKeyConstraint(["connector_id"], ["connectors.id"], ondelete="CASCADE",
                                name="fk_connector_activity_connector_id_connectors"),
        sa.PrimaryKeyConstraint("position", name="pk_connector_activity"),
        sa.UniqueConstraint("id", name="uq_connector_activity_id"),
    )
    op.create_index("ix_connector_activity_connector_id_position", "connector_activity",
                    ["connector_id", "position"])
    op.create_table(
        "hook_receipts",
        sa.Column("connector_id", sa.String(40), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(["connector_id"], ["connectors.id"], ondelete="CASCADE",
                                name="fk_hook_receipts_connector_id_connectors"),
        sa.PrimaryKeyConstraint("connector_id", "delivery_id", name="pk_hook_receipts"),
    )
    op.create_index("ix_hook_receipts_received_at", "hook_receipts", ["received_at"])


def downgrade() -> None:
    for table in ("hook_receipts", "connector_activity", "sync_jobs", "incident_links",
                  "connectors"):
        op.drop_table(table)
