"""Connector jobs: those leased now, by connector.

Before a worker claims a paced connector's jobs it asks whether another worker holds
one (SqlSyncJobs.held_elsewhere). The probe walked the connector's due jobs to find a
leased one: in a storm, the thousand or more waiting behind Slack's pace, on every look,
and with one worker it never found one and walked them all.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_sync_jobs_leased", "sync_jobs", ["connector_id", "lease_expires_at"],
        sqlite_where=sa.text("status = 'pending' AND lease_expires_at IS NOT NULL"),
        postgresql_where=sa.text("status = 'pending' AND lease_expires_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_sync_jobs_leased", table_name="sync_jobs")
