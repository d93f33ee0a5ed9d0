"""The delivery loop: fan out, claim, send, record.

One asyncio task claims due deliveries in batches and starts a send task for each;
a second task writes results in batches. Each endpoint has its own lane, which bounds
its concurrency, applies its rate limit, and stops being claimed for while its lane is
full, so a hanging endpoint holds its own lane and nobody else's.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

from interlock.domain.endpoints import RATE_LIMIT_RANGE
from interlock.domain.errors import StoreUnavailable
from interlock.logs import get_logger
from interlock.ports.sender import Sender
from interlock.ports.store import Claim
from interlock.services.deliveries import DISPATCH_BATCH, DeliveryService, Finished, Prepared
from interlock.worker.loops import Health, record_with_retries, run_rounds
from interlock.worker.wakeup import Wakeup

log = get_logger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    batch: int = 200
    max_in_flight: int = 1024
    per_endpoint: int = 32
    poll_interval: float = 1.0
    #: On stop, how long sends in progress and lanes waiting for their rate limit may
    #: take before they are cancelled (their leases lapse; they are sent again later).
    shutdown_grace: float = 10.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


#: The longest a lane waits for one rate-limit slot, whatever the stored rate says.
MAX_SLOT_WAIT = 1.0 / RATE_LIMIT_RANGE[0]


@dataclass
class _Lane:
    """One endpoint's share of the worker."""

    concurrency: asyncio.Semaphore
    capacity: int
    rate_limit: float | None
    queued: int = 0
    next_slot: float = field(default=0.0)

    @property
    def full(self) -> bool:
        return self.queued >= self.capacity

    async def take_slot(self) -> None:
        """Wait for the rate limit's next slot (a token bucket of one)."""
        if not self.rate_limit:
            return
        now = time.monotonic()
        slot = min(max(self.next_slot, now), now + MAX_SLOT_WAIT)
        self.next_slot = slot + min(1.0 / self.rate_limit, MAX_SLOT_WAIT)
        if slot > now:
            await asyncio.sleep(slot - now)


class DeliveryWorker:
    def __init__(
        self, deliveries: DeliveryService, sender: Sender, wakeup: Wakeup,
        settings: WorkerSettings | None = None, *, name: str | None = None,
    ) -> None:
        self._service = deliveries
        self._sender = sender
        self._wakeup = wakeup
        self._settings = settings or WorkerSettings()
        self.name = name or worker_name()
        self._lanes: dict[str, _Lane] = {}
        self._in_flight = 0
        #: Claimed and not yet recorded, by delivery id: their leases are kept alive.
        self._held: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished: list[Finished] = []
        self._results_ready = asyncio.Event()
        #: Read by whoever supervises this worker (see worker.loops.Health).
        self.health = Health()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then finish what is in flight and record it."""
        self._wakeup.bind(asyncio.get_running_loop())
        recorder = asyncio.create_task(self._record_loop(stop))
        renewer = asyncio.create_task(self._renew_leases())
        try:
            await run_rounds(self._step, self._wakeup, stop, self._settings.poll_interval)
        finally:
            await self._drain()
            self._results_ready.set()
            await recorder
            renewer.cancel()

    async def _renew_leases(self) -> None:
        """Extend the leases of everything claimed and not yet recorded, a few times per
        lease: a slow receiver keeps a lane's deliveries waiting longer than one lease,
        and a lapsed lease would let them be claimed and sent a second time."""
        interval = self._service.lease.total_seconds() / 4
        while True:
            await asyncio.sleep(interval)
            held = list(self._held)
            try:
                await asyncio.to_thread(self._service.extend_leases, self.name, held)
            except StoreUnavailable as error:
                log.warning("could not extend leases", error=error.detail)

    async def _drain(self) -> None:
        """Let sends in progress finish, for a grace period; then cancel what is left
        (mostly lanes waiting for their rate limit), so that stopping always ends."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=self._settings.shutdown_grace)
        for task in late:
            task.cancel()
        if late:
            log.warning("stopped with deliveries unsent; they go out after their leases lapse",
                        unsent=len(late))
            await asyncio.wait(late)

    async def _step(self) -> bool:
        """One round; True when there may be more work right away."""
        room = self._settings.max_in_flight - self._in_flight
        if room <= 0:
            await asyncio.to_thread(self._service.dispatch)
            return False
        full = [endpoint_id for endpoint_id, lane in self._lanes.items() if lane.full]
        dispatched, claims = await asyncio.to_thread(
            self._service.dispatch_and_claim, self.name, min(self._settings.batch, room), full
        )
        if claims:
            # Rendering templates is user code with a budget of up to seconds: off the
            # event loop, and outside any transaction.
            prepared = await asyncio.to_thread(self._service.prepare, claims)
            for claim, request in zip(claims, prepared, strict=True):
                self._start(claim, request)
        # The claim already took what the fan-out made; only a full batch means more
        # is waiting. New events wake the loop themselves.
        return len(claims) >= min(self._settings.batch, room) or (
            dispatched >= DISPATCH_BATCH)

    def _start(self, claim: Claim, prepared: Prepared) -> None:
        lane = self._lane(claim)
        lane.queued += 1
        self._in_flight += 1
        self._held.add(claim.delivery.id)
        task = asyncio.create_task(self._send(claim, prepared, lane))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lane(self, claim: Claim) -> _Lane:
        endpoint = claim.endpoint
        lane = self._lanes.get(endpoint.id)
        concurrency = self._settings.per_endpoint
        capacity = concurrency * 4
        if endpoint.rate_limit:
            # Claim no more than ~10 s of its rate, so leases never lapse while queued.
            capacity = max(1, min(capacity, int(endpoint.rate_limit * 10)))
        if lane is None or lane.rate_limit != endpoint.rate_limit:
            lane = _Lane(asyncio.Semaphore(concurrency), capacity, endpoint.rate_limit,
                         queued=lane.queued if lane else 0)
            self._lanes[endpoint.id] = lane
        return lane

    async def _send(self, claim: Claim, prepared: Prepared, lane: _Lane) -> None:
        started = self._service.now()
        try:
            if prepared.failure is not None:
                result = prepared.failure
            else:
                async with lane.concurrency:
                    await lane.take_slot()
                    started = self._service.now()
                    result = await self._sender.send(prepared.signed(started))
            self._finished.append(Finished(claim, result, started))
            self._results_ready.set()
        finally:
            lane.queued -= 1
            self._in_flight -= 1

    async def _record_loop(self, stop: asyncio.Event) -> None:
        """Write results in batches; keep going after stop until everything is written."""
        while True:
            await self._results_ready.wait()
            self._results_ready.clear()
            batch, self._finished = self._finished, []
            if batch:
                await self._record(batch)
                self._held.difference_update(item.claim.delivery.id for item in batch)
                self._wakeup.notify()  # the next delivery of the same incident may go now
            if stop.is_set() and not self._tasks and not self._finished:
                return

    async def _record(self, batch: list[Finished]) -> None:
        # If this fails, the leases lapse and the deliveries go out again: at least once.
        await record_with_retries(lambda: self._service.record(self.name, batch),
                                  "attempts", self.health, count=len(batch))
