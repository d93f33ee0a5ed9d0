"""Waking workers in other processes: ``LISTEN``/``NOTIFY`` on PostgreSQL, a datagram
socket on SQLite.

SQLite has nothing like ``NOTIFY``. There each worker binds a
datagram socket whose name is derived from the database file (in Linux's abstract
namespace: no file to clean up), and every process that commits work sends it one
byte. Sending never blocks and never fails a commit: when nobody listens, or the
socket's queue is full (the worker already has wake-ups waiting), the byte is dropped.
Polling remains the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import Callable

from interlock.logs import get_logger

log = get_logger(__name__)


#: Workers that can listen on one SQLite file (``serve`` starts two).
SLOTS = 4


class WorkSignals:
    def __init__(self, database_file: str) -> None:
        digest = hashlib.sha256(database_file.encode()).hexdigest()[:24]
        self.addresses = [f"\0interlock-{digest}-{slot}" for slot in range(SLOTS)]
        self._sender: socket.socket | None = None

    def send(self) -> None:
        """Tell the workers there is work (from any thread)."""
        if self._sender is None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sender.setblocking(False)
            self._sender = sender
        for address in self.addresses:
            with contextlib.suppress(OSError):  # nobody there, or wake-ups already queued
                self._sender.sendto(b"w", address)

    async def receive(self, wake: Callable[[], None], stop: asyncio.Event) -> None:
        """Call ``wake`` for every signal until ``stop``. Up to SLOTS processes can
        listen per database file; one more logs it and relies on polling."""
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
        ready = asyncio.Event()
        loop.add_reader(receiver.fileno(), ready.set)
        try:
            while not stop.is_set():
                stopping = asyncio.ensure_future(stop.wait())
                waiting = asyncio.ensure_future(ready.wait())
                await asyncio.wait({stopping, waiting}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                waiting.cancel()
                ready.clear()
                drained = False
                with contextlib.suppress(BlockingIOError):
                    while receiver.recv(64):
                        drained = True
                if drained:
                    wake()
        finally:
            loop.remove_reader(receiver.fileno())
            receiver.close()


async def listen_postgres(database_url: str, channel: str, wake: Callable[[], None],
                          stop: asyncio.Event) -> None:
    """Call ``wake`` for every notification on ``channel`` until ``stop``; reconnect
    after failures, since polling covers the gap."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {channel}")
                wake()  # anything committed while nobody was listening
                async for _ in conn.notifies():
                    wake()
                    if stop.is_set():
                        break
        except (psycopg.Error, OSError) as error:
            log.warning("event listener reconnecting", error=str(error).splitlines()[0])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)
