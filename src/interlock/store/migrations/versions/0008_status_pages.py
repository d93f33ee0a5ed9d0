"""Status pages: pages, their components and each component's status history, the
public updates published on incidents, and each page's view of an incident.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlock.store.types import BigSerial, Json, UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_pages",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("logo_url", sa.Text(), nullable=True),
        sa.Column("link_url", sa.Text(), nullable=True),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_status_pages"),
        sa.UniqueConstraint("slug", name="uq_status_pages_slug"),
    )
    op.create_table(
        "status_components",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("page_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("services", Json, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(["page_id"], ["status_pages.id"], ondelete="CASCADE",
                                name="fk_status_components_page_id_status_pages"),
        sa.PrimaryKeyConstraint("id", name="pk_status_components"),
    )
    op.create_index("ix_status_components_page_id_position", "status_components",
                    ["page_id", "position"])
    op.create_table(
        "component_status_changes",
        sa.Column("position", BigSerial, autoincrement=True, nullable=False),
        sa.Column("component_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(["component_id"], ["status_components.id"], ondelete="CASCADE",
                                name="fk_component_status_changes_component_id_"
                                     "status_components"),
        sa.PrimaryKeyConstraint("position", name="pk_component_status_changes"),
    )
    op.create_index("ix_component_status_changes_component_id_at",
                    "component_status_changes", ["component_id", "at"])
    op.create_table(
        "public_updates",
        sa.Column("position", BigSerial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("components", Json, nullable=False),
        sa.Column("page_ids", Json, nullable=False),
        sa.Column("estimated_resolution_at", UtcDateTime, nullable=True),
        sa.Column("published_at", UtcDateTime, nullable=False),
        sa.Column("author", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name="fk_public_updates_incident_id_incidents"),
        sa.PrimaryKeyConstraint("position", name="pk_public_updates"),
        sa.UniqueConstraint("id", name="uq_public_updates_id"),
    )
    op.create_index("ix_public_updates_incident_id_position", "public_updates",
                    ["incident_id", "position"])
    op.create_table(
        "public_incidents",
        sa.Column("page_id", sa.String(40), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("impact", sa.String(16), nullable=False),
        sa.Column("components", Json, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("resolved_at", UtcDateTime, nullable=True),
        sa.Column("monitoring_at", UtcDateTime, nullable=True),
        sa.Column("estimated_resolution_at", UtcDateTime, nullable=True),
        sa.ForeignKeyConstraint(["page_id"], ["status_pages.id"], ondelete="CASCADE",
                                name="fk_public_incidents_page_id_status_pages"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name="fk_public_incidents_incident_id_incidents"),
        sa.PrimaryKeyConstraint("page_id", "incident_id", name="pk_public_incidents"),
    )
    op.create_index("ix_public_incidents_page_id_updated_at", "public_incidents",
                    ["page_id", "updated_at"])
    op.create_index("ix_public_incidents_incident_id", "public_incidents", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_public_incidents_incident_id", table_name="public_incidents")
    op.drop_index("ix_public_incidents_page_id_updated_at", table_name="public_incidents")
    op.drop_table("public_incidents")
    op.drop_index("ix_public_updates_incident_id_position", table_name="public_updates")
    op.drop_table("public_updates")
    op.drop_index("ix_component_status_changes_component_id_at",
                  table_name="component_status_changes")
    op.drop_table("component_status_changes")
    op.drop_index("ix_status_components_page_id_position", table_name="status_components")
    op.drop_table("status_components")
    op.drop_table("status_pages")
