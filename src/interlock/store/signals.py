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

A worker that says what it wants and when it takes it (``receive``'s ``wanted``,
``taken``) is told each kind of work once until it next looks for that work, not once
per commit: the processes share a small board (a file beside the database, mapped
into each) that holds, per slot, the kinds its listener wants and, per kind, whether it
has been told and not yet looked. A sender sets that byte and sends only if it was
clear; the listener clears it just before it looks (claims), so a commit that found it
set is seen by that look. In a storm the API commits hundreds of times a second; every
datagram cost the sender and the woken listener each tens of microseconds (a wake-up
of another process), and a listener that wanted no payloads was woken for each too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mmap
import os
import socket
import time
from collections.abc import Callable

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
#: Bytes of the board per slot: the kinds of work its listener wants (0: it did not
#: say, so every signal is sent); how many listeners have bound it (mod 256); then a
#: byte per kind of work (by bit): told and not yet taken.
STRIDE = 8
_WANTED, _BOUND, _KINDS = 0, 1, 2
#: Each kind of work's bit, and the offset of its byte in a slot's record.
_KIND_BYTES = tuple((1 << index, _KINDS + index) for index in range(STRIDE - _KINDS))


class _Board:
    """The shared board: SLOTS records of STRIDE bytes in ``path``, mapped. Senders
    only set a kind's byte and the listener only clears it, so two processes never
    undo each other's word: at worst a wake-up is sent twice."""

    def __init__(self, path: str) -> None:
        size = SLOTS * STRIDE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)  # zeros; done twice at once, still zeros
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)

    def bound(self, slot: int) -> int:
        """Which listener of ``slot`` this is: it changes whenever one binds it."""
        return self._map[slot * STRIDE + _BOUND]

    def untold(self, slot: int, work: int) -> int:
        """The kinds in ``work`` to send to ``slot``, marked told."""
        board = self._map
        base = slot * STRIDE
        wanted = board[base + _WANTED]
        if not wanted:
            return work
        left = work & wanted
        told = 0
        for bit, offset in _KIND_BYTES:
            if left & bit and not board[base + offset]:
                board[base + offset] = 1
                told |= bit
        return told

    def listen(self, slot: int, wanted: Work | None) -> None:
        """A listener has bound ``slot``: say so, and what it wants (None: everything,
        every time)."""
        base = slot * STRIDE
        board = self._map
        board[base + _WANTED] = 0
        board[base + _KINDS:base + STRIDE] = bytes(STRIDE - _KINDS)
        if wanted is not None:
            board[base + _WANTED] = wanted.value
        board[base + _BOUND] = (board[base + _BOUND] + 1) % 256

    def taken(self, slot: int, work: Work) -> None:
        board = self._map
        base = slot * STRIDE
        for bit, offset in _KIND_BYTES:
            if work.value & bit:
                board[base + offset] = 0

    def leave(self, slot: int) -> None:
        self._map[slot * STRIDE + _WANTED] = 0


class WorkSignals:
    def __init__(self, database_file: str) -> None:
        digest = hashlib.sha256(database_file.encode()).hexdigest()[:24]
        self.addresses = [f"\0interlock-{digest}-{slot}" for slot in range(SLOTS)]
        self._sender: socket.socket | None = None
        #: Per slot, until when (time.monotonic()) nobody is taken to listen there.
        self._vacant = [0.0] * SLOTS
        #: Per slot, which listener (_Board.bound) was there when it was found vacant:
        #: one bound since is tried at once.
        self._vacated = [0] * SLOTS
        self._board = _Board(f"{database_file}-wake")
        #: The slot this process listens on, once it does.
        self._slot: int | None = None

    def send(self, work: Work) -> None:
        """Tell the workers there is ``work`` (from any thread).

        A slot nobody listens on is not tried again for VACANT_SECONDS: ``serve`` binds
        two of the four, and in a storm the API process sends a signal per ingest commit,
        hundreds a second, each refused twice (py-spy: 6 % of its samples), unless a
        listener has bound it since (the board says so). A listener is sent only the
        kinds it wants and has not been told of since it last took them."""
        if self._sender is None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sender.setblocking(False)
            self._sender = sender
        now = time.monotonic()
        board = self._board
        for slot, address in enumerate(self.addresses):
            bound = board.bound(slot)
            if self._vacant[slot] > now and self._vacated[slot] == bound:
                continue
            told = board.untold(slot, work.value)
            if not told:
                continue
            try:
                self._sender.sendto(bytes((told,)), address)
            except (ConnectionRefusedError, FileNotFoundError):  # nobody there
                self._vacant[slot] = now + VACANT_SECONDS
                self._vacated[slot] = bound
            except OSError:  # wake-ups already queued there
                pass

    def taken(self, work: Work) -> None:
        """This process is about to look for ``work``: the next commit of it tells it
        again. Call it before the look, never after."""
        if self._slot is not None:
            self._board.taken(self._slot, work)

    async def receive(self, wake: Callable[[Work], None], stop: asyncio.Event,
                      wanted: Work | None = None) -> None:
        """Call ``wake`` with the work signalled, for every signal until ``stop``. Up
        to SLOTS processes can listen per database file; one more logs it and relies on
        polling. With ``wanted``, only those kinds are signalled, each once until
        ``taken``; without, every commit's. Once bound, it calls ``wake`` with all it
        wants: what was committed while nobody listened."""
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        slot = _bind(receiver, self.addresses)
        if slot is None:
            receiver.close()
            log.warning(f"{SLOTS} workers already listen for this database's wake-ups; "
                        "this one polls")
            await stop.wait()
            return
        receiver.setblocking(False)
        self._board.listen(slot, wanted)
        if wanted is not None:
            self._slot = slot
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
        wake(Work.ALL if wanted is None else wanted)
        try:
            await stop.wait()
        finally:
            loop.remove_reader(receiver.fileno())
            if self._slot is not None:
                self._board.leave(self._slot)
                self._slot = None
            receiver.close()


def _bind(receiver: socket.socket, addresses: list[str]) -> int | None:
    """The first of ``addresses`` nobody listens on, bound by ``receiver``; None if none."""
    for slot, address in enumerate(addresses):
        try:
            receiver.bind(address)
        except OSError:
            continue
        return slot
    return None


def _work(value: int) -> Work:
    """The work a signal names; anything unknown (an older sender) wakes everything."""
    try:
        return Work(value) or Work.ALL
    except ValueError:
        return Work.ALL


def notification(work: Work) -> str:
    """A SQL expression telling PostgreSQL workers of ``work`` when the transaction of
    the statement holding it commits (NOTIFY as a function, to go inside a statement)."""
    return f"pg_notify('{EVENTS_CHANNEL}', '{work.value}')"


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
