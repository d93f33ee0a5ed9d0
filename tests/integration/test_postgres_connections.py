"""Pooled PostgreSQL connections that died while idle (the server restarted, a proxy
cut them) are replaced before use: the next request works, it does not fail once per
dead connection. Connections in steady use are not pinged (store.engine)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from interlock.store import engine as engines
from interlock.store.engine import create_engine, normalise_url
from interlock.store.sql import SqlStore
from tests.conftest import _truncate_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(postgres_database: str) -> Iterator[SqlStore]:
    _truncate_postgres(postgres_database)
    engine = create_engine(postgres_database)
    yield SqlStore(engine)
    engine.dispose()


def _backends(store: SqlStore) -> set[int]:
    with store.transaction() as tx:
        return {tx.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()}


def _kill(postgres_database: str, pids: set[int]) -> None:
    admin = sa.create_engine(normalise_url(postgres_database))
    with admin.begin() as connection:
        for pid in pids:
            assert connection.exec_driver_sql(
                "SELECT pg_terminate_backend(%s, 5000)", (pid,)).scalar_one()
    admin.dispose()


def test_a_connection_that_died_while_idle_is_replaced_before_it_is_used(
        store: SqlStore, postgres_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "PING_AFTER_IDLE_SECONDS", 0.0)
    before = _backends(store)
    _kill(postgres_database, before)

    after = _backends(store)  # would raise StoreUnavailable on the dead connection
    assert after and after.isdisjoint(before)
