"""The alert-processing loop: parse, deduplicate and correlate received payloads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from interlock.domain.errors import StoreUnavailable
from interlock.logs import get_logger
from interlock.services.processing import TELL_BATCH, AlertProcessor
from interlock.services.workers import BEAT_SECONDS, STANDBY, TaskStates
from interlock.waits import wait_a_while
from interlock.worker.wakeup import Wakeup

log = get_logger(__name__)


#: After a batch smaller than this, wait GATHER_SECONDS for more before the next.
GATHER_BELOW = 50
GATHER_SECONDS = 0.05
#: The same while other worker processes process alerts too (PostgreSQL): each then
#: takes a share of what arrives, and its batches, gathered as long as one worker's,
#: were half the size at more CPU per alert. Gathered twice as long, two workers'
#: storm cost a tenth less CPU per alert in them and in PostgreSQL, and its p99 did
#: not change (bench/storm.py); one worker alone gathers as before, whose webhooks
#: came later (docs/performance.md).
SHARED_GATHER_BELOW = 100
SHARED_GATHER_SECONDS = 0.1
#: How often the loop looks how many workers process alerts (they report this often).
SHARING_CHECK_SECONDS = BEAT_SECONDS
#: How often alerts waiting in digests are looked at (the wait is at most this much,
#: or the poll interval when idle, longer than the digest window).
DIGEST_CHECK_SECONDS = 0.5
#: Incidents told of their waiting alerts after each batch of alerts, while alerts
#: arrive; when none do, TELL_BATCH a transaction until none is due. A storm opens its
#: incidents within a second or two, so their digests fall due together every window:
#: telling all 1,000 at once held the alerts behind them back 2.5 s (bench/storm.py),
#: and telling them 50 at a time between batches still left the worker 2-5 s behind
#: after each window, the tellings' work (1-1.5 ms each) landing in one second. At ten
#: a batch (a batch every 50-100 ms in a storm) the tellings spread over several
#: seconds, and stay spread in the windows after; with more incidents than that keeps
#: up with, their windows stretch instead of the alerts waiting. While the worker is
#: behind (its batches full), only digests a window late are told.
TELL_WHILE_ALERTS_ARRIVE = 10
#: How often a worker standing by for alert processing asks for its turn: the longest
#: alerts wait after the worker processing them stops.
TURN_CHECK_SECONDS = 1.0


async def wait_for_turn(take_turn: Callable[[], bool], stop: asyncio.Event,
                        states: TaskStates, every: float = TURN_CHECK_SECONDS) -> bool:
    """Stand by until this process has its turn at alert processing (``take_turn``, see
    Store.take_turn), its ``alerts`` task shown as ``standby`` in the worker's report
    meanwhile; False if ``stop`` came first. On SQLite one worker process at a time
    processes alerts: two applying alerts to the same file could make each other's
    decisions stale, and processed fewer alerts a second than one alone, at more CPU
    per alert (bench/storm.py)."""
    task = "alerts"
    while not take_turn():
        if states.states.get(task) != STANDBY:
            log.info("another worker process is processing alerts; standing by")
            states.standby(task)
        if await wait_a_while(stop, every):
            return False
    if states.states.get(task) == STANDBY:
        log.info("taking over alert processing")
        states.ok(task)
    return True


async def process_alerts(processor: AlertProcessor, wakeup: Wakeup, stop: asyncio.Event,
                         name: str, poll_interval: float = 1.0,
                         sharing: Callable[[], int] | None = None) -> None:
    """Process payloads as they arrive until ``stop``; a batch in progress finishes.
    ``sharing``: how many worker processes process alerts now (this one included).

    The worker runs in its own process (``serve`` starts one), so processing no longer
    competes with the API for one interpreter lock, and needs no pause to let it accept.
    """
    with wakeup.waiting_until(stop):
        await _process(processor, wakeup, stop, name, poll_interval, sharing)


async def _process(processor: AlertProcessor, wakeup: Wakeup, stop: asyncio.Event,
                   name: str, poll_interval: float, sharing: Callable[[], int] | None
                   ) -> None:
    loop = asyncio.get_running_loop()
    next_digests = next_sharing_check = 0.0
    gather_below, gather_seconds = GATHER_BELOW, GATHER_SECONDS
    while not stop.is_set():
        more_due = False
        try:
            if sharing is not None and loop.time() >= next_sharing_check:
                next_sharing_check = loop.time() + SHARING_CHECK_SECONDS
                shared = await asyncio.to_thread(sharing) > 1
                gather_below, gather_seconds = ((SHARED_GATHER_BELOW, SHARED_GATHER_SECONDS)
                                                if shared else (GATHER_BELOW, GATHER_SECONDS))
            claimed = await asyncio.to_thread(processor.process, name)
            if loop.time() >= next_digests:
                _, more_due = await asyncio.to_thread(
                    processor.tell_some_due_digests,
                    TELL_WHILE_ALERTS_ARRIVE if claimed else TELL_BATCH,
                    late_only=processor.behind)
                next_digests = loop.time() + (0.0 if more_due else DIGEST_CHECK_SECONDS)
        except StoreUnavailable as error:
            log.warning("store unavailable; retrying", error=error.detail)
            claimed = 0
        if not claimed:
            if not more_due:
                await wakeup.wait(poll_interval)
        elif claimed < gather_below:
            # Alerts are arriving, a few at a time: let more gather, so one transaction
            # (and one incident.alert_attached per incident) covers many. Applying each
            # single-alert payload alone cost several times the CPU per alert.
            await asyncio.sleep(gather_seconds)
