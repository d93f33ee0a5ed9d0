"""Core: incidents, timeline, events, API keys, idempotency, flags.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlock.store.types import BigSerial, Json, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("number", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("service", sa.String(200), nullable=True),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("labels", Json, nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("acknowledged_at", UtcDateTime, nullable=True),
        sa.Column("resolved_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("number", name="pk_incidents"),
        sa.UniqueConstraint("id", name="uq_incidents_id"),
    )
    op.create_index("ix_incidents_status_number", "incidents", ["status", "number"])
    op.create_index("ix_incidents_service_number", "incidents", ["service", "number"])
    op.create_index("ix_incidents_created_at", "incidents", ["created_at"])

    op.create_table(
        "timeline_entries",
        sa.Column("position", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("origin", Json, nullable=False),
        sa.Column("incident_version", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("changes", Json, nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_timeline_entries_incident_id_incidents"
        ),
        sa.PrimaryKeyConstraint("position", name="pk_timeline_entries"),
        sa.UniqueConstraint("id", name="uq_timeline_entries_id"),
    )
    op.create_index(
        "ix_timeline_entries_incident_id_position", "timeline_entries",
        ["incident_id", "position"],
    )

    op.create_table(
        "events",
        sa.Column("sequence", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("origin", Json, nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=True),
        sa.Column("incident_version", sa.Integer(), nullable=True),
        sa.Column("data", Json, nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_events"),
        sa.UniqueConstraint("id", name="uq_events_id"),
    )
    op.create_index("ix_events_incident_id_sequence", "events", ["incident_id", "sequence"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scopes", Json, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("revoked_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("digest", name="uq_api_keys_digest"),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.String(40), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", Json, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])

    op.create_table(
        "flags",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_flags"),
    )


def downgrade() -> None:
    for table in ("flags", "idempotency_keys", "api_keys", "events", "timeline_entries",
                  "incidents"):
        op.drop_table(table)
