"""The SQL store: one class for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from interlock.domain.errors import ConcurrentUpdate, StoreUnavailable
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
from interlock.store.digests import SqlDigests
from interlock.store.endpoints import SqlEndpoints
from interlock.store.engine import WRITE_OPTION
from interlock.store.incidents import SqlIncidents
from interlock.store.mail import SqlMail
from interlock.store.records import EVENTS_CHANNEL, SqlEvents, SqlTimeline
from interlock.store.signals import WorkSignals, listen_postgres
from interlock.store.sources import SqlMaintenance, SqlSources
from interlock.store.status_pages import SqlStatusPages
from interlock.store.subscribers import SqlSubscribers
from interlock.store.workers import SqlWorkers

#: SQLSTATEs of transactions PostgreSQL undid and that may succeed again: deadlock
#: detected, serialization failure.
_RETRY_STATES = ("40P01", "40001")


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
        self.digests = SqlDigests(connection)
        self.connectors = SqlConnectors(connection)
        self.links = SqlLinks(connection)
        self.sync_jobs = SqlSyncJobs(connection)
        self.connector_activity = SqlConnectorActivity(connection)
        self.hook_receipts = SqlHookReceipts(connection)
        self.activity = SqlActivity(connection)
        self.workers = SqlWorkers(connection)
        self.status_pages = SqlStatusPages(connection)
        self.mail = SqlMail(connection)
        self.subscribers = SqlSubscribers(connection)


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


class FileLock:
    """An exclusive ``flock`` on the database file, held for each write transaction, so
    processes sharing one SQLite file (``serve`` and its worker) take turns. A waiting
    process sleeps in the kernel and wakes the moment the lock is free; SQLite's own busy
    handler would poll it in growing sleeps (seconds under load). ``flock`` locks are
    independent of the POSIX locks SQLite takes on the same file."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._fd is None:
            # As SQLite would, create the file if it is not there yet (an empty database).
            self._fd = os.open(self._path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # releases the GIL while it waits

    def __exit__(self, *_: object) -> None:
        if self._fd is not None:  # closed meanwhile: closing released the lock
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._listeners: list[Callable[[], None]] = []
        self._serialise_writes = engine.dialect.name == "sqlite"
        self._writers = FairLock()
        self._listeners_lock = threading.Lock()
        path = sqlite_file(engine)
        self._file_lock = FileLock(path) if path else None
        #: Wakes workers of other processes using the same SQLite file.
        self.signals = WorkSignals(path) if path else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[SqlTransaction]:
        # SQLite has one writer at a time. Waiting threads of this process queue on a
        # lock, which hands over the moment it is free; SQLite's own busy handler would
        # have them sleep in growing steps (seconds under load). Other processes still
        # meet the busy handler.
        with contextlib.ExitStack() as locks:
            if write and self._serialise_writes:
                locks.enter_context(self._writers)  # threads of this process, in turn
                if self._file_lock is not None:
                    locks.enter_context(self._file_lock)  # then other processes
            tx = yield from self._transaction(write)
        if (tx.events.appended or tx.payloads.inserted or tx.sync_jobs.inserted
                or tx.mail.inserted):
            for listener in self._listeners:
                listener()
            if self.signals is not None:
                self.signals.send()

    def _transaction(self, write: bool) -> Generator[SqlTransaction, None, SqlTransaction]:
        try:
            with self.engine.connect() as connection:
                if write:
                    connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    tx = SqlTransaction(connection)
                    yield tx
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
            if getattr(error.orig, "sqlstate", None) in _RETRY_STATES:
                # PostgreSQL chose this transaction to undo (a deadlock, a
                # serialisation failure): doing it again can succeed.
                raise ConcurrentUpdate(f"the database undid it: {_first_line(error)}"
                                       ) from error
            raise StoreUnavailable(f"the database failed: {_first_line(error)}") from error
        return tx

    def on_work_committed(self, callback: Callable[[], None]) -> None:
        with self._listeners_lock:
            self._listeners = [*self._listeners, callback]

    async def listen_for_work(self, wake: Callable[[], None], stop: asyncio.Event) -> None:
        """Call ``wake`` whenever another process commits work, until ``stop``."""
        if self.dialect == "postgresql":
            url = self.engine.url.render_as_string(hide_password=False)
            await listen_postgres(url, EVENTS_CHANNEL, wake, stop)
        elif self.signals is not None:
            await self.signals.receive(wake, stop)
        else:
            await stop.wait()  # in memory: there is no other process

    def ping(self) -> None:
        with self.transaction() as tx:
            tx.connection.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()
        if self._file_lock is not None:
            self._file_lock.close()


def sqlite_file(engine: Engine) -> str | None:
    """The SQLite database file, or None (PostgreSQL, or SQLite in memory)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", error))
    return text.splitlines()[0] if text else type(error).__name__
