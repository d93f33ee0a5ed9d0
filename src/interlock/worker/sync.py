"""The sync loop: claim due connector jobs, run them through their drivers, record.

Each connector has its own lane (a few jobs at a time, and no more claimed while its
lane is full), and every call has a timeout, so a tool that hangs or fails holds its
own lane and delays no other connector. A lane also keeps its tool's pace (its
plugin's ``pace``: Slack's one message a second per channel), so a storm is sent at the
rate the tool takes rather than into its rate limit. Reconciliation is queued from
here too.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass

from interlock.logs import get_logger
from interlock.ports.connector import ToolHttp
from interlock.services.sync import JobDone, JobWork, SyncService
from interlock.waits import wait_a_while
from interlock.worker.loops import Health, record_with_retries, run_rounds
from interlock.worker.wakeup import Wakeup

log = get_logger(__name__)


@dataclass(frozen=True)
class SyncSettings:
    batch: int = 50
    per_connector: int = 4
    poll_interval: float = 1.0
    #: How often to look for links due a reconciling pull.
    reconcile_check: float = 30.0


class _Lane:
    def __init__(self, concurrency: int, pace: float) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.capacity = concurrency * 4
        self.queued = 0
        self.pace = pace
        self._next_start = 0.0

    async def turn(self, stop: asyncio.Event) -> bool:
        """Wait until this lane may start its next job: ``pace`` seconds after the
        previous one started. False when the worker stops meanwhile: the job is left to
        its lease, and runs again once the lease lapses, rather than holding up the stop."""
        if self.pace <= 0:
            return True
        now = time.monotonic()
        start = max(now, self._next_start)
        self._next_start = start + self.pace
        if start > now:
            return not await wait_a_while(stop, start - now)
        return not stop.is_set()


class SyncWorker:
    def __init__(self, sync: SyncService, http: ToolHttp, wakeup: Wakeup, name: str,
                 settings: SyncSettings | None = None) -> None:
        self._sync = sync
        self._http = http
        self._wakeup = wakeup
        self._settings = settings or SyncSettings()
        self.name = name
        self._lanes: dict[str, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_reconcile = 0.0
        self._finished: list[JobDone] = []
        self._results_ready = asyncio.Event()
        self._stop = asyncio.Event()
        #: Read by whoever supervises this worker (see worker.loops.Health).
        self.health = Health()

    async def run(self, stop: asyncio.Event) -> None:
        """Sync until ``stop`` is set, then finish the jobs in flight and record them.
        A round that fails ends this call too (after recording what finished), so its
        supervisor sees the error and starts it again."""
        self._results_ready = asyncio.Event()
        self._stop = stop
        ended = asyncio.Event()
        recorder = asyncio.create_task(self._record_loop(ended))
        try:
            await run_rounds(self._step, self._wakeup, stop, self._settings.poll_interval)
        finally:
            if self._tasks:
                await asyncio.wait(self._tasks)
            ended.set()
            self._results_ready.set()
            await recorder

    async def _step(self) -> bool:
        if time.monotonic() >= self._next_reconcile:
            self._next_reconcile = time.monotonic() + self._settings.reconcile_check
            queued = await asyncio.to_thread(self._sync.reconcile)
            if queued:
                log.info("reconciling links", queued=queued)
        full = [connector_id for connector_id, lane in self._lanes.items()
                if lane.queued >= lane.capacity]
        work = await asyncio.to_thread(self._sync.claim, self.name, self._settings.batch, full)
        for item in work:
            lane = self._lanes.get(item.connector.id)
            if lane is None:
                lane = self._lanes[item.connector.id] = _Lane(
                    self._settings.per_connector, self._sync.pace(item.connector.kind))
            lane.queued += 1
            task = asyncio.create_task(self._run(item, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(work) >= self._settings.batch

    async def _run(self, work: JobWork, lane: _Lane) -> None:
        try:
            async with lane.slots:
                if not await lane.turn(self._stop):
                    return
                done = await self._sync.run(work, self._http)
            self._finished.append(done)
            self._results_ready.set()
        finally:
            lane.queued -= 1

    async def _record_loop(self, ended: asyncio.Event) -> None:
        """Record finished jobs in batches (one write transaction for all that finished
        meanwhile); once the rounds have ended, until everything is written."""
        while True:
            await self._results_ready.wait()
            self._results_ready.clear()
            batch, self._finished = self._finished, []
            if batch:
                # If this fails, the leases lapse and the jobs run again: at least once.
                await record_with_retries(functools.partial(self._sync.record_many, self.name,
                                                            batch),
                                          "sync jobs", self.health, count=len(batch))
                self._wakeup.notify()  # the next job of the same incident may be due now
            if ended.is_set() and not self._tasks and not self._finished:
                return
