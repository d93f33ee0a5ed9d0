"""Alembic environment: always run programmatically by interlock.store.migrate, which
hands over a connection already inside a transaction (and, on PostgreSQL, holding the
migration lock)."""

from __future__ import annotations

from alembic import context

from interlock.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
