"""Status page subscribers (email with double opt-in, webhooks through their own
endpoint) and the outgoing mail queue.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlock.store.types import BigSerial, Json, UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outgoing_mail",
        sa.Column("position", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("headers", Json, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subscriber_id", sa.String(40)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", UtcDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("sent_at", UtcDateTime),
        sa.PrimaryKeyConstraint("position", name="pk_outgoing_mail"),
        sa.UniqueConstraint("id", name="uq_outgoing_mail_id"),
    )
    op.create_index(
        "ix_outgoing_mail_due", "outgoing_mail", ["next_attempt_at", "position"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_outgoing_mail_subscriber_id_position", "outgoing_mail",
                    ["subscriber_id", "position"])


    op.create_table(
        "status_subscribers",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("page_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("endpoint_id", sa.String(40), nullable=True),
        sa.Column("url", sa.String(2048), nullable=True),
        sa.Column("components", Json, nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("requested_at", UtcDateTime, nullable=True),
        sa.Column("confirmed_at", UtcDateTime, nullable=True),
        sa.Column("unsubscribed_at", UtcDateTime, nullable=True),
        sa.ForeignKeyConstraint(["page_id"], ["status_pages.id"], ondelete="CASCADE",
                                name="fk_status_subscribers_page_id_status_pages"),
        sa.ForeignKeyConstraint(["endpoint_id"], ["endpoints.id"], ondelete="CASCADE",
                                name="fk_status_subscribers_endpoint_id_endpoints"),
        sa.PrimaryKeyConstraint("id", name="pk_status_subscribers"),
        sa.UniqueConstraint("page_id", "email", name="uq_status_subscribers_page_id_email"),
    )
    op.create_index("ix_status_subscribers_page_id_status", "status_subscribers",
                    ["page_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_status_subscribers_page_id_status", table_name="status_subscribers")
    op.drop_table("status_subscribers")
    op.drop_index("ix_outgoing_mail_subscriber_id_position", table_name="outgoing_mail")
    op.drop_index("ix_outgoing_mail_due", table_name="outgoing_mail")
    op.drop_table("outgoing_mail")
