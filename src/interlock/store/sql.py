"""The SQL store: one class for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from interlock.domain.alerts import ReceivedPayload
from interlock.domain.errors import ConcurrentUpdate, StoreUnavailable
from interlock.ports.store import Work
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
from interlock.store.locks import Role, Turn, WriteLock, turn_holder
from interlock.store.mail import SqlMail
from interlock.store.records import SqlEvents, SqlTimeline
from interlock.store.signals import (
    EVENTS_CHANNEL,
    WorkSignals,
    listen_postgres,
    notification,
)
from interlock.store.sources import SqlMaintenance, SqlSources
from interlock.store.spool import IngestSpool
from interlock.store.status_pages import SqlStatusPages
from interlock.store.subscribers import SqlSubscribers
from interlock.store.workers import SqlWorkers

R = TypeVar("R")

#: SQLSTATEs of transactions PostgreSQL undid and that may succeed again: deadlock
#: detected, serialization failure.
_RETRY_STATES = ("40P01", "40001")
#: Work a worker claims from the shared queues, so that its own loops take what its
#: own commits made (see SqlStore._for_others). Not payloads (the API's) nor handed
#: deliveries (handed to a named worker, perhaps in another process).
CLAIMED_HERE = Work.EVENTS | Work.SYNC | Work.MAIL


class _Repository(Generic[R]):
    """A repository of a transaction, made when first used (then kept on it)."""

    def __init__(self, make: Callable[[sa.Connection], R]) -> None:
        self._make = make
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, tx: SqlTransaction, owner: type | None = None) -> R:
        made = tx.__dict__[self._name] = self._make(tx.connection)
        return made


class SqlTransaction:
    """The repositories of one transaction, each made when first used: a transaction
    uses two or three of them, and making all two dozen cost an API read a noticeable
    share of its CPU."""

    incidents = _Repository(SqlIncidents)
    events = _Repository(SqlEvents)
    timeline = _Repository(SqlTimeline)
    keys = _Repository(SqlKeys)
    idempotency = _Repository(SqlIdempotency)
    flags = _Repository(SqlFlags)
    endpoints = _Repository(SqlEndpoints)
    deliveries = _Repository(SqlDeliveries)
    sources = _Repository(SqlSources)
    payloads = _Repository(SqlPayloads)
    alerts = _Repository(SqlAlerts)
    correlations = _Repository(SqlCorrelations)
    maintenance = _Repository(SqlMaintenance)
    digests = _Repository(SqlDigests)
    connectors = _Repository(SqlConnectors)
    links = _Repository(SqlLinks)
    sync_jobs = _Repository(SqlSyncJobs)
    connector_activity = _Repository(SqlConnectorActivity)
    hook_receipts = _Repository(SqlHookReceipts)
    activity = _Repository(SqlActivity)
    workers = _Repository(SqlWorkers)
    status_pages = _Repository(SqlStatusPages)
    mail = _Repository(SqlMail)
    subscribers = _Repository(SqlSubscribers)

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.connection.begin_nested():
            yield

    def made(self, name: str) -> Any:
        """The repository ``name`` if this transaction used it, else None."""
        return self.__dict__.get(name)

    def work(self) -> Work:
        """The work for workers this transaction made."""
        work = Work(0)
        payloads, events, sync_jobs, mail, deliveries = (
            self.made("payloads"), self.made("events"), self.made("sync_jobs"),
            self.made("mail"), self.made("deliveries"))
        if payloads is not None and payloads.inserted:
            work |= Work.PAYLOADS
        if events is not None and events.appended and not events.settled:
            work |= Work.EVENTS
        if sync_jobs is not None and sync_jobs.inserted:
            work |= Work.SYNC
        if mail is not None and mail.inserted:
            work |= Work.MAIL
        if (deliveries is not None and deliveries.handed) or (
                events is not None and events.appended and events.settled):
            work |= Work.HANDED
        return work


class SqlStore:
    def __init__(self, engine: Engine, role: Role = Role.ALONE, *,
                 sqlite_synchronous: str = "NORMAL") -> None:
        """``role``: on SQLite, whose writes this process makes (see store.locks); where
        processes share the file, received payloads go to the ingest spool
        (store.spool), committed with ``sqlite_synchronous`` as the database is."""
        self.engine = engine
        self._listeners: list[tuple[Work, Callable[[], None]]] = []
        self._serialise_writes = engine.dialect.name == "sqlite"
        self._postgres = engine.dialect.name == "postgresql"
        self._listeners_lock = threading.Lock()
        #: The work this process's own worker loops claim (what it listens for, see
        #: listen_for_work): its commits wake them in-process, and on PostgreSQL
        #: NOTIFY leaves them out (see _for_others).
        self._done_here = Work(0)
        path = sqlite_file(engine)
        self._write_lock = WriteLock(path, role)
        self._sqlite_file = path
        #: Where this process takes turns at tasks done one process at a time (see
        #: take_turn); None where every process has them.
        self._turn_path = path if role is not Role.ALONE else None
        #: The turns this process took, by task.
        self._turns: dict[str, Turn] = {}
        #: Wakes workers of other processes using the same SQLite file.
        self.signals = WorkSignals(path) if path else None
        self.spool = IngestSpool(path, sqlite_synchronous) if path and role is not Role.ALONE \
            else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, write: bool = False, priority_after: float = 0.0
                    ) -> Iterator[SqlTransaction]:
        # SQLite has one writer at a time: writers queue on store.locks.WriteLock, which
        # hands over the moment it is free; SQLite's own busy handler would have them
        # sleep in growing steps (seconds under load).
        with contextlib.ExitStack() as locks:
            if write and self._serialise_writes:
                locks.enter_context(self._write_lock.hold(priority_after=priority_after))
            tx = yield from self._transaction(write)
        work = tx.work()
        if work:
            self._committed(work)

    def _committed(self, work: Work) -> None:
        for wanted, listener in self._listeners:
            if wanted & work:
                listener()
        if self.signals is not None:
            self.signals.send(work)

    def receive(self, payloads: Sequence[ReceivedPayload], *, priority_after: float = 0.0
                ) -> None:
        if self.spool is not None:
            self.spool.append(payloads)
        elif self.dialect == "postgresql":
            self._receive_at_once(payloads)
        else:
            with self.transaction(write=True, priority_after=priority_after) as tx:
                tx.payloads.insert_many(payloads)

    def _receive_at_once(self, payloads: Sequence[ReceivedPayload]) -> None:
        """PostgreSQL: store received payloads and tell the workers in one statement,
        committed as it runs (SqlPayloads.store_received): one round trip for a group
        commit of POSTs, where a transaction took four (BEGIN, INSERT, NOTIFY, COMMIT)."""
        try:
            with self.engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                SqlPayloads(connection).store_received(payloads)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
            raise StoreUnavailable(f"the database failed: {_first_line(error)}") from error
        self._committed(Work.PAYLOADS)

    def receive_now(self, payloads: Sequence[ReceivedPayload]) -> bool:
        if self.spool is None or not self.spool.append_now(payloads):
            return False
        self._committed(Work.PAYLOADS)
        return True

    def admit_received(self, limit: int) -> int:
        if self.spool is None:
            return 0
        waiting = self.spool.oldest(limit)
        if not waiting:
            return 0
        with self.transaction(write=True) as tx:
            # A source deleted meanwhile took its payloads with it: so do these.
            sources = tx.sources.get_many({payload.source_id for _, payload in waiting})
            tx.payloads.insert_many([payload for _, payload in waiting
                                     if payload.source_id in sources], moved=True)
        self.spool.remove(waiting[-1][0])
        return len(waiting)

    def received_oldest(self, limit: int) -> list[tuple[int, ReceivedPayload]]:
        return [] if self.spool is None else self.spool.oldest(limit)

    def forget_received(self, through: int) -> None:
        if self.spool is not None:
            self.spool.remove(through)

    def received_waiting(self, source_id: str, limit: int) -> list[ReceivedPayload]:
        return [] if self.spool is None else self.spool.newest(source_id, limit)

    def _transaction(self, write: bool) -> Generator[SqlTransaction, None, SqlTransaction]:
        try:
            with self.engine.connect() as connection:
                if write:
                    connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    tx = SqlTransaction(connection)
                    yield tx
                    if self._postgres and (work := self._for_others(tx.work())):
                        # One notification of all it made, delivered at commit to every
                        # listening worker process (was a NOTIFY per kind of work, each
                        # a round trip, sent at the first insert of each kind).
                        connection.exec_driver_sql(f"SELECT {notification(work)}")
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
            if getattr(error.orig, "sqlstate", None) in _RETRY_STATES:
                # PostgreSQL chose this transaction to undo (a deadlock, a
                # serialisation failure): doing it again can succeed.
                raise ConcurrentUpdate(f"the database undid it: {_first_line(error)}"
                                       ) from error
            raise StoreUnavailable(f"the database failed: {_first_line(error)}") from error
        return tx

    def _for_others(self, work: Work) -> Work:
        """What of ``work`` a commit of this process must wake other processes for:
        not the events, sync jobs and mail its own loops claim. A second PostgreSQL
        worker woke for every batch of alerts the first committed, and ran a delivery
        round and a sync round to claim a share of what the first was claiming anyway
        (pg_stat_statements, a 20 s storm: 763 delivery rounds for 521 alert batches,
        against 357 for 354 with one worker; the two waited 1.7 s on each other's
        locks). Another process still takes its share when it next polls, or when this
        process's loops stop (they stop listening)."""
        return work & ~(self._done_here & CLAIMED_HERE)

    def on_work_committed(self, callback: Callable[[], None], work: Work = Work.ALL
                          ) -> None:
        with self._listeners_lock:
            self._listeners = [*self._listeners, (work, callback)]

    async def listen_for_work(self, wake: Callable[[Work], None], stop: asyncio.Event,
                              wanted: Work | None = None) -> None:
        """Call ``wake`` with what another process committed, until ``stop``."""
        if self.dialect == "postgresql":
            url = self.engine.url.render_as_string(hide_password=False)
            self._done_here = wanted or Work(0)
            try:
                await listen_postgres(url, EVENTS_CHANNEL, wake, stop)
            finally:
                self._done_here = Work(0)
        elif self.signals is not None:
            await self.signals.receive(wake, stop, wanted)
        else:
            await stop.wait()  # in memory: there is no other process

    def work_taken(self, work: Work) -> None:
        if self.signals is not None:
            self.signals.taken(work)

    def take_turn(self, task: str, holder: str) -> bool:
        """Whether this process (``holder``) is the one doing ``task`` now. Where
        processes share a SQLite file, one at a time: the first to ask holds an
        exclusive ``flock`` on ``<database>-<task>`` until it closes the store or ends
        (the kernel lets go of a dead process's locks, so another takes over at its next
        ask). Elsewhere (PostgreSQL, one process alone) always."""
        if self._turn_path is None:
            return True
        turn = self._turns.get(task)
        if turn is None:
            turn = self._turns[task] = Turn(f"{self._turn_path}-{task}")
        return turn.take_if_free(holder)

    def end_turn(self, task: str) -> None:
        """Let go of the turn at ``task``, if this process has it."""
        turn = self._turns.pop(task, None)
        if turn is not None:
            turn.close()

    def turn_holder(self, task: str) -> str | None:
        """Who holds the turn at ``task`` (see take_turn); None where every process
        has it, or while nobody does."""
        if self._sqlite_file is None:
            return None
        return turn_holder(f"{self._sqlite_file}-{task}")

    def ping(self) -> None:
        with self.transaction() as tx:
            tx.connection.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()
        self._write_lock.close()
        for turn in self._turns.values():
            turn.close()
        if self.spool is not None:
            self.spool.close()


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
