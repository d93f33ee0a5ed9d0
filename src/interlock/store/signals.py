"""Waking workers in other processes: ``LISTEN``/``NOTIFY`` on PostgreSQL, a datagram
socket on SQLite; either way saying what kind of work was committed (ports.store.Work),
so that a storm's payload commits wake alert processing and nothing else.

SQLite has nothing like ``NOTIFY``. There each worker binds a
datagram socket whose name is derived from the database file (in Linux's abstract
namespace: no file to clean up), and every process that commits work sends it one
byte: the kind of work. Sending never blocks and never fails a commit: when nobody
listens, or the socket's queue is full (the worker already has wake-ups waiting), the
byte is dropped.
Polling remains the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import time
from collections.abc import Callable

import sqlalchemy as sa

from interlock.logs import get_logger
from interlock.ports.store import Work
from interlock.waits import wait_a_while

log = get_logger(__name__)


#: PostgreSQL NOTIFY channel that wakes workers in other processes.
EVENTS_CHANNEL = "interlock_events"
#: Workers that can listen on one SQLite file (``serve`` starts two).
SLOTS = 4
#: How long a slot found with nobody listening is left alone.
VACANT_SECONDS = 1.0
#: How often a PostgreSQL listener with nothing to hear looks whether it should stop.
STOP_CHECK_SECONDS = 1.0


class WorkSignals:
    def __init__(self, database_file: str) -> None:
        digest = hashlib.sha256(database_file.encode()).hexdigest()[:24]
        self.addresses = [f"\0interlock-{digest}-{slot}" for slot in range(SLOTS)]
        self._sender: socket.socket | None = None
        #: Per slot, until when (time.monotonic()) nobody is taken to listen there.
        self._vacant = [0.0] * SLOTS

    def send(self, work: Work) -> None:
        """Tell the workers there is ``work`` (from any thread).

        A slot nobody listens on is not tried again for VACANT_SECONDS: ``serve`` binds
        two of the four, and in a storm the API process sends a signal per ingest commit,
        hundreds a second, each refused twice (py-spy: 6 % of its samples). A worker
        that binds one meanwhile polls until it is tried again."""
        if self._sender is None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sender.setblocking(False)
            self._sender = sender
        message = bytes((work.value,))
        now = time.monotonic()
        for slot, address in enumerate(self.addresses):
            if self._vacant[slot] > now:
                continue
            try:
                self._sender.sendto(message, address)
            except (ConnectionRefusedError, FileNotFoundError):  # nobody there
                self._vacant[slot] = now + VACANT_SECONDS
            except OSError:  # wake-ups already queued there
                pass

    async def receive(self, wake: Callable[[Work], None], stop: asyncio.Event) -> None:
        """Call ``wake`` with the work signalled, for every signal until ``stop``. Up
        to SLOTS processes can listen per database file; one more logs it and relies on
        polling."""
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        for address in self.addresses:
            try:
                receiver.bind(address)
                break
            except OSError:
                continue
        else:
            receiver.close()
            log.warning(f"{SLOTS} workers already listen for this database's wake-ups; "
                        "this one polls")
            await stop.wait()
            return
        receiver.setblocking(False)
        loop = asyncio.get_running_loop()

        def readable() -> None:
            # Called by the loop itself: a storm's wake-ups come by the hundred per
            # second, and a task per wake-up cost a worker several % of its CPU.
            work = Work(0)
            with contextlib.suppress(BlockingIOError):
                while message := receiver.recv(64):
                    work |= _work(message[0])
            if work:
                wake(work)

        loop.add_reader(receiver.fileno(), readable)
        try:
            await stop.wait()
        finally:
            loop.remove_reader(receiver.fileno())
            receiver.close()


def _work(value: int) -> Work:
    """The work a signal names; anything unknown (an older sender) wakes everything."""
    try:
        return Work(value) or Work.ALL
    except ValueError:
        return Work.ALL


def notify_at_commit(connection: sa.Connection, work: Work) -> None:
    """Tell PostgreSQL workers of ``work`` when this transaction commits."""
    connection.exec_driver_sql(f"NOTIFY {EVENTS_CHANNEL}, '{work.value}'")


async def listen_postgres(database_url: str, channel: str, wake: Callable[[Work], None],
                          stop: asyncio.Event) -> None:
    """Call ``wake`` with the work of every notification on ``channel`` until
    ``stop``; reconnect after failures, since polling covers the gap."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {channel}")
                wake(Work.ALL)  # anything committed while nobody was listening
                while not stop.is_set():
                    # A timeout, so that a quiet listener still sees ``stop``.
                    async for notice in conn.notifies(timeout=STOP_CHECK_SECONDS):
                        wake(_work(int(notice.payload)) if notice.payload.isdigit()
                             else Work.ALL)
        except (psycopg.Error, OSError) as error:
            log.warning("event listener reconnecting", error=str(error).splitlines()[0])
            await wait_a_while(stop, 2.0)
