"""Alembic migrations produce exactly the schema the code declares, on both databases."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from interlock.store import migrate
from interlock.store.engine import create_engine
from interlock.store.tables import metadata


def _drop_everything(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def _differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_migrated_schema_equals_the_declared_one(database_url: str) -> None:
    engine = create_engine(database_url)
    _drop_everything(engine)
    assert _differences(engine) != []  # the comparison does see a missing schema
    migrate.upgrade(engine)
    assert _differences(engine) == []
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_fresh_create_all_equals_migrated(database_url: str) -> None:
    engine = create_engine(database_url)
    _drop_everything(engine)
    with engine.begin() as connection:
        metadata.create_all(connection)
    fresh = _inspect(engine)
    _drop_everything(engine)
    migrate.upgrade(engine)
    migrated = _inspect(engine)
    migrated.pop("alembic_version")
    assert fresh == migrated
    engine.dispose()


def test_upgrading_twice_and_concurrently_is_harmless(database_url: str) -> None:
    engine = create_engine(database_url)
    _drop_everything(engine)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate.upgrade(engine)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    migrate.upgrade(engine)
    assert _differences(engine) == []
    engine.dispose()


def _inspect(engine: sa.Engine) -> dict[str, object]:
    """Tables, columns (name, type, nullability), indexes and constraints, comparable."""
    inspector = sa.inspect(engine)
    schema: dict[str, object] = {}
    for table in inspector.get_table_names():
        schema[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"])
                        for c in inspector.get_columns(table)],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in inspector.get_indexes(table)),
            "unique": sorted(tuple(u["column_names"]) for u in
                             inspector.get_unique_constraints(table)),
            "foreign_keys": sorted((tuple(f["constrained_columns"]), f["referred_table"])
                                   for f in inspector.get_foreign_keys(table)),
        }
    return schema
