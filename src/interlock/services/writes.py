"""People's incident changes, committed together when they arrive together.

Every change a person makes through the API (a comment, a field, a status) used to be a
transaction of its own: a trip to a thread, the write lock taken (on SQLite, in turn
with the worker processes), a commit. Under load those were most of a change's cost in
the API process, and the API is what fell behind first when changes came at 200 a
second (bench/delivery.py's latency run).

:class:`WriteBatches` runs the changes waiting at one moment in one write transaction:
one trip to a thread, one turn at the lock, one commit. Nothing waits to fill a batch:
the first change starts a transaction at once, and those that arrive while it runs
make the next one. Each change runs inside a savepoint, so one refused (404, 409, 412)
is undone alone and its caller gets its own error, while the others commit. If the
transaction as a whole fails (the database undid it, or could not commit), each change
of it is run again alone, so one change's failure is never another's.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from interlock.domain.errors import InterlockError
from interlock.logs import get_logger
from interlock.ports.store import Store, Transaction
from interlock.threads import run_sync

T = TypeVar("T")
log = get_logger(__name__)

#: The most changes one transaction takes, so that each stays short.
BATCH_LIMIT = 32


@dataclass(eq=False)
class _Change(Generic[T]):
    operation: Callable[[Transaction], T]
    future: asyncio.Future[T]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    outcome: tuple[bool, Any] | None = None

    def run(self, tx: Transaction) -> None:
        """Run the change; a refusal (the domain's errors: 404, 409, 412) is its
        outcome. Anything else (the database failing under it, a bug) goes on and fails
        the transaction, and the change is run again alone, where the store answers
        for the database as for any transaction."""
        try:
            self.outcome = (True, self.context.run(self.operation, tx))
        except InterlockError as error:
            self.outcome = (False, error)

    def settle(self) -> None:
        """Hand the outcome to the waiting caller (on its event loop); a caller that
        stopped waiting (its client went away) is not told."""
        assert self.outcome is not None
        future = self.future
        if future.done():
            return
        succeeded, value = self.outcome
        if succeeded:
            future.set_result(value)
        else:
            future.set_exception(value)


class WriteBatches:
    def __init__(self, store: Store, *, limit: int = BATCH_LIMIT) -> None:
        self._store = store
        self._limit = limit
        self._guard = threading.Lock()
        self._waiting: list[_Change[Any]] = []
        self._writing = False

    async def run(self, operation: Callable[[Transaction], T]) -> T:
        """``operation(tx)`` in a write transaction, shared with other changes waiting
        at the same moment; its answer, or its exception."""
        loop = asyncio.get_running_loop()
        change: _Change[T] = _Change(operation, loop.create_future())
        with self._guard:
            self._waiting.append(change)
            start = not self._writing
            self._writing = True
        if start:
            # Whoever finds nobody writing starts the writer; it keeps going while
            # changes wait, and its caller gets its answer from the first batch on.
            writer = asyncio.ensure_future(run_sync(self._write_while_waiting, loop))
            writer.add_done_callback(_retrieve)
        return await change.future

    def _write_while_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while True:
                with self._guard:
                    batch = self._waiting[:self._limit]
                    del self._waiting[:self._limit]
                    if not batch:
                        self._writing = False
                        return
                try:
                    self._write(batch)
                finally:
                    for change in batch:
                        if change.outcome is None:  # something failed below us
                            change.outcome = (False, RuntimeError("the write was not made"))
                    loop.call_soon_threadsafe(_settle_all, batch)
        except BaseException:
            # Never leave the next change waiting for a writer that is gone.
            with self._guard:
                self._writing = False
            raise

    def _write(self, batch: list[_Change[Any]]) -> None:
        try:
            with self._store.transaction(write=True) as tx:
                if len(batch) == 1:
                    # Nobody else's work to keep: no savepoint; a refusal undoes it all.
                    _run_or_refuse(batch[0], tx)
                    return
                for change in batch:
                    try:
                        with tx.savepoint():
                            _run_or_refuse(change, tx)
                    except _Refused:
                        pass  # undone alone; its error is its outcome
        except _Refused:
            pass
        except Exception as error:
            if len(batch) == 1:
                batch[0].outcome = (False, error)  # as its own transaction would have
                return
            for change in batch:
                change.outcome = None
                try:
                    with self._store.transaction(write=True) as tx:
                        _run_or_refuse(change, tx)
                except _Refused:
                    pass
                except Exception as alone:
                    change.outcome = (False, alone)


class _Refused(Exception):
    """Unwinds a savepoint (or a transaction of one) for a change that raised."""


def _run_or_refuse(change: _Change[Any], tx: Transaction) -> None:
    """Run ``change``; raise :class:`_Refused` when it failed, to undo what it wrote."""
    change.run(tx)
    if change.outcome is not None and not change.outcome[0]:
        raise _Refused


def _settle_all(batch: list[_Change[Any]]) -> None:
    for change in batch:
        change.settle()


def _retrieve(writer: asyncio.Future[None]) -> None:
    """Log the writer's own failure (its changes' callers got theirs as answers)."""
    if writer.cancelled():
        return
    error = writer.exception()
    if error is not None:
        log.error("the writer of people's changes failed", exc_info=error)
