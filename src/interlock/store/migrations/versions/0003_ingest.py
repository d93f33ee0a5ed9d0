"""Alert ingestion: sources, received payloads, alerts, correlations, maintenance.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlock.store.types import BigSerial, Json, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("token_digest", sa.String(64), nullable=False),
        sa.Column("signing_secret", sa.Text(), nullable=True),
        sa.Column("timestamp_header", sa.String(100), nullable=True),
        sa.Column("options", Json, nullable=False),
        sa.Column("grouping", sa.String(200), nullable=False),
        sa.Column("auto_resolve", sa.Boolean(), nullable=False),
        sa.Column("reopen_window_seconds", sa.Float(), nullable=False),
        sa.Column("rate_limit", sa.Float(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
        sa.UniqueConstraint("token_digest", name="uq_sources_token_digest"),
    )
    op.create_table(
        "payloads",
        sa.Column("position", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(40), nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", UtcDateTime, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime, nullable=True),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"],
                                name="fk_payloads_source_id_sources", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("position", name="pk_payloads"),
        sa.UniqueConstraint("id", name="uq_payloads_id"),
    )
    op.create_index("ix_payloads_status_position", "payloads", ["status", "position"])
    op.create_index("ix_payloads_source_id_position", "payloads", ["source_id", "position"])
    op.create_table(
        "alerts",
        sa.Column("position", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(40), nullable=False),
        sa.Column("fingerprint", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("service", sa.String(200), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("labels", Json, nullable=False),
        sa.Column("annotations", Json, nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("starts_at", UtcDateTime, nullable=True),
        sa.Column("ends_at", UtcDateTime, nullable=True),
        sa.Column("first_seen_at", UtcDateTime, nullable=False),
        sa.Column("last_seen_at", UtcDateTime, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=True),
        sa.Column("group_key", sa.String(400), nullable=True),
        sa.Column("suppressed_by", sa.String(40), nullable=True),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"],
                                name="fk_alerts_source_id_sources", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("position", name="pk_alerts"),
        sa.UniqueConstraint("id", name="uq_alerts_id"),
        sa.UniqueConstraint("source_id", "fingerprint",
                            name="uq_alerts_source_id_fingerprint"),
    )
    op.create_index("ix_alerts_incident_id_status", "alerts", ["incident_id", "status"])
    op.create_table(
        "correlations",
        sa.Column("source_id", sa.String(40), nullable=False),
        sa.Column("group_key", sa.String(400), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"],
                                name="fk_correlations_source_id_sources", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("source_id", "group_key", name="pk_correlations"),
    )
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("starts_at", UtcDateTime, nullable=False),
        sa.Column("ends_at", UtcDateTime, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("matchers", Json, nullable=False),
        sa.Column("source_id", sa.String(40), nullable=True),
        sa.Column("dropped", sa.Integer(), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_maintenance_windows"),
    )
    op.create_index("ix_maintenance_windows_ends_at", "maintenance_windows", ["ends_at"])


def downgrade() -> None:
    for table in ("maintenance_windows", "correlations", "alerts", "payloads", "sources"):
        op.drop_table(table)
