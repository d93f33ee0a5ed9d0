"""The SQL store: one class for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from interlock.domain.errors import StoreUnavailable
from interlock.store.access import SqlFlags, SqlIdempotency, SqlKeys
from interlock.store.alerts import SqlAlerts, SqlCorrelations, SqlPayloads
from interlock.store.deliveries import SqlDeliveries
from interlock.store.endpoints import SqlEndpoints
from interlock.store.engine import WRITE_OPTION
from interlock.store.incidents import SqlIncidents
from interlock.store.records import SqlEvents, SqlTimeline
from interlock.store.sources import SqlMaintenance, SqlSources


class SqlTransaction:
    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.incidents = SqlIncidents(connection)
        self.events = SqlEvents(connection)
        self.timeline = SqlTimeline(connection)
        self.keys = SqlKeys(connection)
        self.idempotency = SqlIdempotency(connection)
        self.flags = SqlFlags(connection)
        self.endpoints = SqlEndpoints(connection)
        self.deliveries = SqlDeliveries(connection)
        self.sources = SqlSources(connection)
        self.payloads = SqlPayloads(connection)
        self.alerts = SqlAlerts(connection)
        self.correlations = SqlCorrelations(connection)
        self.maintenance = SqlMaintenance(connection)


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._listeners: list[Callable[[], None]] = []
        self._serialise_writes = engine.dialect.name == "sqlite"
        self._writers = threading.RLock()
        self._listeners_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[SqlTransaction]:
        # SQLite has one writer at a time. Waiting threads of this process queue on a
        # lock, which hands over the moment it is free; SQLite's own busy handler would
        # have them sleep in growing steps (seconds under load). Other processes still
        # meet the busy handler.
        with self._writers if write and self._serialise_writes else contextlib.nullcontext():
            tx = yield from self._transaction(write)
        if tx.events.appended or tx.payloads.inserted:
            for listener in self._listeners:
                listener()

    def _transaction(self, write: bool) -> Generator[SqlTransaction, None, SqlTransaction]:
        try:
            with self.engine.connect() as connection:
                if write:
                    connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    tx = SqlTransaction(connection)
                    yield tx
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
            raise StoreUnavailable(f"the database failed: {_first_line(error)}") from error
        return tx

    def on_work_committed(self, callback: Callable[[], None]) -> None:
        with self._listeners_lock:
            self._listeners = [*self._listeners, callback]

    def ping(self) -> None:
        with self.transaction() as tx:
            tx.connection.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", error))
    return text.splitlines()[0] if text else type(error).__name__
