"""The two habits every worker loop shares: work in rounds, woken when there is work,
and write results even when the database hiccups."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from interlock.domain.errors import StoreUnavailable
from interlock.logs import get_logger
from interlock.worker.wakeup import Wakeup

log = get_logger(__name__)

#: Waits between tries to write results; after the last, they are given up (and the
#: leases lapse, so the work is done again: at least once).
RECORD_RETRIES = (0.1, 0.5, 2.0, 5.0)


async def run_rounds(step: Callable[[], Awaitable[bool]], wakeup: Wakeup,
                     stop: asyncio.Event, poll_interval: float) -> None:
    """Call ``step`` until ``stop`` is set: again at once while it says more work may be
    waiting, else after the next wakeup or ``poll_interval``. A round that cannot reach
    the database is logged and counts as finding nothing."""
    wakeup.bind(asyncio.get_running_loop())
    while not stop.is_set():
        try:
            busy = await step()
        except StoreUnavailable as error:
            log.warning("store unavailable; retrying", error=error.detail)
            busy = False
        if not busy:
            await wakeup.wait(poll_interval)


async def record_with_retries(record: Callable[[], None], what: str, **context: Any) -> bool:
    """Run ``record`` in a thread, retrying while the store is unavailable. False when
    it never succeeded (logged as an error)."""
    for delay in (*RECORD_RETRIES, None):
        try:
            await asyncio.to_thread(record)
            return True
        except StoreUnavailable as error:
            if delay is None:
                log.error(f"could not record {what}", error=error.detail, **context)
                return False
            await asyncio.sleep(delay)
    return False
