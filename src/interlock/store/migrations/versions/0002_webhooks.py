"""Webhooks: endpoints, deliveries, attempts, and the events outbox flag.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlock.store.types import BigSerial, Json, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("event_types", Json, nullable=False),
        sa.Column("filter", Json, nullable=False),
        sa.Column("headers", Json, nullable=False),
        sa.Column("template", sa.Text(), nullable=True),
        sa.Column("timeout", sa.Float(), nullable=False),
        sa.Column("rate_limit", sa.Float(), nullable=True),
        sa.Column("secrets", Json, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("disabled_at", UtcDateTime, nullable=True),
        sa.Column("failing_since", UtcDateTime, nullable=True),
        sa.Column("last_success_at", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_endpoints"),
    )
    op.create_table(
        "deliveries",
        sa.Column("position", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event_sequence", sa.BigInteger(), nullable=False),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime, nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_failure", sa.String(32), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(["endpoint_id"], ["endpoints.id"],
                                name="fk_deliveries_endpoint_id_endpoints", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("position", name="pk_deliveries"),
        sa.UniqueConstraint("event_id", "endpoint_id",
                            name="uq_deliveries_event_id_endpoint_id"),
        sa.UniqueConstraint("id", name="uq_deliveries_id"),
    )
    op.create_index("ix_deliveries_endpoint_id_incident_id_status_event_sequence",
                    "deliveries", ["endpoint_id", "incident_id", "status", "event_sequence"])
    op.create_index("ix_deliveries_endpoint_id_status_created_at", "deliveries",
                    ["endpoint_id", "status", "created_at"])
    op.create_index("ix_deliveries_status_next_attempt_at", "deliveries",
                    ["status", "next_attempt_at"])
    op.create_table(
        "attempts",
        sa.Column("position", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("delivery_id", sa.String(40), nullable=False),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("failure", sa.String(32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UtcDateTime, nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"],
                                name="fk_attempts_delivery_id_deliveries", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["endpoint_id"], ["endpoints.id"],
                                name="fk_attempts_endpoint_id_endpoints", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("position", name="pk_attempts"),
        sa.UniqueConstraint("id", name="uq_attempts_id"),
    )
    op.create_index("ix_attempts_delivery_id_position", "attempts", ["delivery_id", "position"])
    op.create_index("ix_attempts_endpoint_id_position", "attempts", ["endpoint_id", "position"])
    op.add_column("events", sa.Column("dispatched_at", UtcDateTime, nullable=True))
    op.create_index(
        "ix_events_undispatched", "events", ["sequence"],
        sqlite_where=sa.text("dispatched_at IS NULL"),
        postgresql_where=sa.text("dispatched_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_undispatched", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("dispatched_at")
    for table in ("attempts", "deliveries", "endpoints"):
        op.drop_table(table)
