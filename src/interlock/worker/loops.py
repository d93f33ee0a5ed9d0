"""The two habits every worker loop shares: work in rounds, woken when there is work,
and write results even when the database hiccups."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from interlock.domain.errors import ConcurrentUpdate, StoreUnavailable
from interlock.logs import get_logger
from interlock.worker.wakeup import Wakeup

log = get_logger(__name__)

#: Waits between tries to write results; after the last, they are given up (and the
#: leases lapse, so the work is done again: at least once).
RECORD_RETRIES = (0.1, 0.5, 2.0, 5.0)
#: Rounds in a row the database may undo before the loop gives up to its supervisor.
UNDONE_ROUNDS = 10


async def run_rounds(step: Callable[[], Awaitable[bool]], wakeup: Wakeup,
                     stop: asyncio.Event, poll_interval: float) -> None:
    """Call ``step`` until ``stop`` is set: again at once while it says more work may be
    waiting, else after the next wakeup or ``poll_interval``. A round that cannot reach
    the database is logged and counts as finding nothing; one the database undid (a
    deadlock with another worker, on PostgreSQL) runs again at once: that is how
    workers sharing a queue meet, not a failure to restart the task for."""
    with wakeup.waiting_until(stop):
        await _rounds(step, wakeup, stop, poll_interval)


async def _rounds(step: Callable[[], Awaitable[bool]], wakeup: Wakeup,
                  stop: asyncio.Event, poll_interval: float) -> None:
    undone = 0
    while not stop.is_set():
        try:
            busy = await step()
            undone = 0
        except StoreUnavailable as error:
            log.warning("store unavailable; retrying", error=error.detail)
            busy = False
        except ConcurrentUpdate as error:
            undone += 1
            if undone > UNDONE_ROUNDS:
                raise  # not a passing meeting: the supervisor logs it and restarts
            log.info("round undone by the database; running it again", error=error.detail)
            await asyncio.sleep(random.uniform(0.005, 0.05))  # let the other one finish
            busy = True
        if not busy:
            await wakeup.wait(poll_interval)


@dataclass
class Health:
    """What a loop's supervisor can read: the last failure to record results, if any
    (the loop goes on after one; the work it dropped is done again when leases lapse)."""

    last_error: str | None = None
    #: time.monotonic() of ``last_error``.
    last_error_at: float | None = None
    failures: int = 0

    def failed(self, error: str) -> None:
        self.last_error, self.last_error_at = error, time.monotonic()
        self.failures += 1


async def record_with_retries(record: Callable[[], object], what: str, health: Health,
                              **context: Any) -> bool:
    """Run ``record`` in a thread, retrying while the store is unavailable or the
    database undid it (a deadlock with another worker). False when
    it never succeeded, logged as an error and kept in ``health``: any other failure
    (a bug, a constraint) is not retried, and never ends the loop that called this."""
    for delay in (*RECORD_RETRIES, None):
        try:
            await asyncio.to_thread(record)
            return True
        except (StoreUnavailable, ConcurrentUpdate) as error:
            if delay is None:
                log.error(f"could not record {what}", error=error.detail, **context)
                health.failed(error.detail)
                return False
            await asyncio.sleep(delay)
        except Exception as error:
            log.exception(f"failed to record {what}", **context)
            health.failed(f"{type(error).__name__}: {error}"[:500])
            return False
    return False
