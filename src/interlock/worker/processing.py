"""The alert-processing loop: parse, deduplicate and correlate received payloads."""

from __future__ import annotations

import asyncio

from interlock.domain.errors import StoreUnavailable
from interlock.logs import get_logger
from interlock.services.ingest import Intake
from interlock.services.processing import AlertProcessor
from interlock.worker.wakeup import Wakeup

log = get_logger(__name__)


#: While the intake of this process is accepting, processing pauses this many times as
#: long as its last batch took: it keeps about a quarter of the time in a storm.
STORM_PAUSE_FACTOR = 3.0


async def process_alerts(processor: AlertProcessor, intake: Intake, wakeup: Wakeup,
                         stop: asyncio.Event, name: str, poll_interval: float = 1.0) -> None:
    """Process payloads as they arrive until ``stop``; a payload in progress finishes.

    Accepting and processing share one interpreter lock. In a storm, accepting is what
    the tools are waiting on (and what must not be lost), so processing gives way while
    the intake is busy, and catches up when it is not."""
    loop = asyncio.get_running_loop()
    wakeup.bind(loop)
    while not stop.is_set():
        started = loop.time()
        try:
            claimed = await asyncio.to_thread(processor.process, name)
        except StoreUnavailable as error:
            log.warning("store unavailable; retrying", error=error.detail)
            claimed = 0
        if not claimed:
            await wakeup.wait(poll_interval)
        elif intake.busy():
            await asyncio.sleep((loop.time() - started) * STORM_PAUSE_FACTOR)
