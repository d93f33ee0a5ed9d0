"""The SQL store: one class for SQLite and PostgreSQL."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from interlock.domain.errors import StoreUnavailable
from interlock.store.access import SqlFlags, SqlIdempotency, SqlKeys
from interlock.store.activity import SqlActivity
from interlock.store.alerts import SqlAlerts, SqlCorrelations, SqlPayloads
from interlock.store.connectors import (
    SqlConnectorActivity,
    SqlConnectors,
    SqlHookReceipts,
    SqlLinks,
    SqlSyncJobs,
)
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
        self.connectors = SqlConnectors(connection)
        self.links = SqlLinks(connection)
        self.sync_jobs = SqlSyncJobs(connection)
        self.connector_activity = SqlConnectorActivity(connection)
        self.hook_receipts = SqlHookReceipts(connection)
        self.activity = SqlActivity(connection)


class FairLock:
    """A reentrant lock that hands over in arrival order. Python's own locks do not, and
    a thread that writes in a loop (the alert processor) would retake the lock ahead of
    threads that have been waiting (the ingest writer)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: collections.deque[tuple[int, threading.Event]] = collections.deque()
        self._owner: int | None = None
        self._depth = 0

    def __enter__(self) -> None:
        me = threading.get_ident()
        with self._guard:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None and not self._waiting:
                self._owner, self._depth = me, 1
                return
            turn = threading.Event()
            self._waiting.append((me, turn))
        turn.wait()  # release() made us the owner before setting it

    def __exit__(self, *_: object) -> None:
        with self._guard:
            self._depth -= 1
            if self._depth:
                return
            if self._waiting:
                self._owner, turn = self._waiting.popleft()
                self._depth = 1
                turn.set()
            else:
                self._owner = None


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._listeners: list[Callable[[], None]] = []
        self._serialise_writes = engine.dialect.name == "sqlite"
        self._writers = FairLock()
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
        if tx.events.appended or tx.payloads.inserted or tx.sync_jobs.inserted:
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
