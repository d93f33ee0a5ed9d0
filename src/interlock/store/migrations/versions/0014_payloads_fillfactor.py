"""Payloads (PostgreSQL): pages filled half at insert, so a claim is a HOT update.

A worker's claim sets a payload's lease, columns no index holds. On a full page the new
row version goes to another page and every index of the table gets an entry for it; in
a storm of single-alert payloads (bench/storm.py) 3,632 of 15,000 claims found room on
their page. Pages half full leave room for every row's claimed version: in alert
processing alone (bench/processing.py), every claim was HOT. Pages written before this
revision keep their fill; the setting applies to those written after.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE payloads SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE payloads RESET (fillfactor)")
