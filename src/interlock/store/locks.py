"""The write lock of a SQLite database, across threads and processes, people first.

SQLite has one writer at a time. Threads of one process queue on a :class:`FairLock`;
processes then take turns at an exclusive ``flock`` on the database file
(:class:`FileLock`). ``flock`` is not fair: whichever waiting process wakes first wins,
and the worker processes, which write in a loop, won nearly every time, so a person's
request (``PATCH`` an incident) waited behind many worker transactions (p99 of 14 to 20
s at 200 changes/s, bench/delivery.py).

People first (:class:`PeopleFirst`): the process serving people holds a shared
``flock`` on an *intent* file beside the database while any of its people's writes
waits or writes. A worker process passes through that file (an exclusive ``flock``,
at once released) before it takes the database lock, so while a person's write waits,
no worker takes the lock again: the person waits for at most the worker transaction
under way. Every wait sleeps in the kernel and wakes the moment the lock is free; no
busy handler polls. Locks are always taken in one order (intent, this process's
threads, the database file), and a worker holds nothing while it passes through, so
nothing waits in a circle. So that people writing without pause cannot shut the
workers out for good, one unbroken hold of the intent lasts at most
:data:`INTENT_BUDGET`; after a longer one, people's writes go without it for
:data:`INTENT_REST`, and the waiting workers get through. A worker that has waited
longer than the budget keeps the lock once it has it, even if a person's write has
begun to wait meanwhile: that write then waits for one more worker transaction.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import fcntl
import os
import threading
import time
from collections.abc import Iterator

#: The longest unbroken hold of the intent lock, in seconds.
INTENT_BUDGET = 0.05
#: After a hold past the budget, how long people's writes go without the intent.
INTENT_REST = 0.005


class Role(enum.Enum):
    """Whose writes a store makes, which decides who goes first at the write lock."""

    #: The only process on its database (tests, SQLite in memory): no intent file.
    ALONE = "alone"
    #: Serves people (``serve``, the CLI): its writes go ahead of the workers'.
    PEOPLE = "people"
    #: A worker process: its writes wait while people's writes wait.
    WORKERS = "workers"


class FairLock:
    """A reentrant lock that hands over in arrival order, urgent waiters first. Python's
    own locks do not, and a thread that writes in a loop (the alert processor) would
    retake the lock ahead of threads that have been waiting (the ingest writer)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: collections.deque[tuple[int, threading.Event]] = collections.deque()
        self._urgent: collections.deque[tuple[int, threading.Event]] = collections.deque()
        self._owner: int | None = None
        self._depth = 0

    def held(self) -> bool:
        """Whether the calling thread holds the lock."""
        return self._owner == threading.get_ident()

    def acquire(self, *, urgent: bool = False) -> None:
        me = threading.get_ident()
        with self._guard:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None and not self._waiting and not self._urgent:
                self._owner, self._depth = me, 1
                return
            turn = threading.Event()
            (self._urgent if urgent else self._waiting).append((me, turn))
        turn.wait()  # release() made us the owner before setting it

    def release(self) -> None:
        with self._guard:
            self._depth -= 1
            if self._depth:
                return
            queue = self._urgent or self._waiting
            if queue:
                self._owner, turn = queue.popleft()
                self._depth = 1
                turn.set()
            else:
                self._owner = None

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()


class FileLock:
    """An exclusive ``flock`` on the database file, held for each write transaction, so
    processes sharing one SQLite file (``serve`` and its workers) take turns. A waiting
    process sleeps in the kernel and wakes the moment the lock is free; SQLite's own busy
    handler would poll it in growing sleeps (seconds under load). ``flock`` locks are
    independent of the POSIX locks SQLite takes on the same file."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            # As SQLite would, create the file if it is not there yet (an empty database).
            self._fd = os.open(self._path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._fd

    def __enter__(self) -> None:
        fcntl.flock(self._open(), fcntl.LOCK_EX)  # releases the GIL while it waits

    def __exit__(self, *_: object) -> None:
        if self._fd is not None:  # closed meanwhile: closing released the lock
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def take_if_free(self) -> bool:
        """Take the lock if nobody holds it (without waiting); whether this took it.
        Let go with ``__exit__``."""
        try:
            fcntl.flock(self._open(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def pass_through(self) -> None:
        """Wait until nobody holds the lock, without keeping it."""
        fd = self._open()
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)

    def free(self) -> bool:
        """Whether nobody holds the lock now (without waiting, or keeping it)."""
        if not self.take_if_free():
            return False
        self.__exit__()
        return True

    def share(self) -> None:
        fcntl.flock(self._open(), fcntl.LOCK_SH)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Turn:
    """A task one process does at a time: an exclusive ``flock`` on a file, taken if
    free and kept (until :meth:`close`, or the process ends: the kernel lets go of a
    dead process's locks). The holder writes its name in the file, and empties it when
    it lets go, so others can tell who has the turn (:func:`turn_holder`)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def take_if_free(self, holder: str) -> bool:
        """Take the turn for ``holder`` if nobody has it; whether this has it now."""
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        self._fd = fd
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a turn let go of has no holder
            os.close(self._fd)
            self._fd = None


def turn_holder(path: str) -> str | None:
    """Who has the turn of :class:`Turn` at ``path``, as it wrote itself there; None
    if nobody has it now (a holder killed outright leaves its name, but the kernel
    drops its lock). Testing takes a shared lock for a moment: one asking for the turn
    in that moment is told no, and asks again."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 1000, 0).decode(errors="replace") or None
        return None  # closing the file lets go of the shared lock
    finally:
        os.close(fd)


class _Ticket:
    """A write that becomes a person's once it has waited until ``due``."""

    __slots__ = ("due", "joined")

    def __init__(self, due: float) -> None:
        self.due = due
        self.joined = False


class PeopleFirst:
    """This process's hold of the intent lock: shared, taken when the first of its
    people's writes starts waiting, let go when the last has committed. A write may
    also join once it has waited a while (the ingest writer): a thread of this class
    joins for it then, as the write is asleep in the kernel, waiting for the lock."""

    def __init__(self, intent: FileLock) -> None:
        self._intent = intent
        self._guard = threading.Lock()
        self._holders = 0
        self._since = 0.0
        self._resting_until = 0.0
        self._tickets = threading.Condition()
        self._pending: list[_Ticket] = []
        self._escalator: threading.Thread | None = None

    def join(self) -> bool:
        """Hold the intent for a write about to wait for the lock; False when it is not
        held for it (the hold has run past its budget, or is resting after one)."""
        with self._guard:
            now = time.monotonic()
            if self._holders == 0:
                if now < self._resting_until:
                    return False
                # Waits only while a worker passes through: it holds nothing else then.
                self._intent.share()
                self._since = now
            elif now - self._since > INTENT_BUDGET:
                return False
            self._holders += 1
            return True

    def leave(self) -> None:
        with self._guard:
            self._holders -= 1
            if self._holders:
                return
            self._intent.__exit__()
            now = time.monotonic()
            if now - self._since > INTENT_BUDGET:
                self._resting_until = now + INTENT_REST

    def join_after(self, delay: float) -> _Ticket:
        """Join for a write once it has waited ``delay`` seconds, unless :meth:`settle`
        comes first."""
        ticket = _Ticket(time.monotonic() + delay)
        with self._tickets:
            self._pending.append(ticket)
            if self._escalator is None:
                self._escalator = threading.Thread(target=self._escalate, daemon=True,
                                                   name="interlock-people-first")
                self._escalator.start()
            self._tickets.notify()
        return ticket

    def stop_waiting(self, ticket: _Ticket) -> None:
        """The write has the lock: it need not join any more."""
        with self._tickets:
            if ticket in self._pending:
                self._pending.remove(ticket)

    def settle(self, ticket: _Ticket) -> None:
        """The write is over: let go of what was joined for it."""
        self.stop_waiting(ticket)
        if ticket.joined:
            self.leave()

    def _escalate(self) -> None:
        with self._tickets:
            while True:
                if not self._pending:
                    self._tickets.wait()
                    continue
                ticket = min(self._pending, key=lambda pending: pending.due)
                delay = ticket.due - time.monotonic()
                if delay > 0:
                    self._tickets.wait(delay)
                    continue
                self._pending.remove(ticket)
                ticket.joined = self.join()


class WriteLock:
    """What a write transaction holds on SQLite: this process's turn among its threads,
    then (for a database file) its turn among processes, by :class:`Role`."""

    def __init__(self, path: str | None, role: Role) -> None:
        self._threads = FairLock()
        self._file = FileLock(path) if path else None
        self._intent = FileLock(f"{path}-intent") if path and role is not Role.ALONE \
            else None
        self._people = PeopleFirst(self._intent) if self._intent and role is Role.PEOPLE \
            else None
        self._yields = self._intent is not None and role is Role.WORKERS

    @contextlib.contextmanager
    def hold(self, *, priority_after: float = 0.0) -> Iterator[None]:
        """Hold the write lock. In a store for people, the write goes ahead of the
        workers' once it has waited ``priority_after`` seconds: at once for a person's
        write. A worker's store ignores it."""
        if self._threads.held():  # a transaction inside one: the locks are held
            with self._threads:
                yield
            return
        people = self._people
        joined = ticket = None
        if people is not None:
            if priority_after <= 0:
                joined = people.join()
            else:
                ticket = people.join_after(priority_after)
        try:
            self._threads.acquire(urgent=bool(joined))
            try:
                if self._file is None:
                    yield
                    return
                if self._yields:
                    self._take_after_people()
                else:
                    self._file.__enter__()
                try:
                    if ticket is not None and people is not None:
                        people.stop_waiting(ticket)
                    yield
                finally:
                    self._file.__exit__()
            finally:
                self._threads.release()
        finally:
            if people is not None:
                if joined:
                    people.leave()
                if ticket is not None:
                    people.settle(ticket)

    def _take_after_people(self) -> None:
        """A worker's turn at the database lock, once no person's write waits. One may
        have started waiting while this worker waited for the lock (after it passed
        the intent): then the lock goes to them, and this worker waits again, unless
        it has waited longer than INTENT_BUDGET already. People writing without pause
        rest from the intent only briefly (INTENT_REST), and a person's write under way
        outlasts that rest: a worker that always gave the lock back then got it a
        few times in seconds (tests/integration/test_write_lock.py)."""
        assert self._intent is not None and self._file is not None
        started = time.monotonic()
        while True:
            self._intent.pass_through()
            self._file.__enter__()
            if self._intent.free() or time.monotonic() - started > INTENT_BUDGET:
                return
            self._file.__exit__()

    def close(self) -> None:
        for lock in (self._file, self._intent):
            if lock is not None:
                lock.close()
