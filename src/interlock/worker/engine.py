"""The delivery loop: fan out, claim, send, record.

One asyncio task claims due deliveries in batches and starts a send task for each;
a second task writes results in batches. Each endpoint has its own lane, which bounds
its concurrency, applies its rate limit, and stops being claimed for while its lane is
full, so a hanging endpoint holds its own lane and nobody else's. On SQLite a third
reads the deliveries alert processing handed to this worker as it made them, and
starts them without waiting for the write lock (DeliveryService.hand_off).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass

from interlock.domain.endpoints import RATE_LIMIT_RANGE
from interlock.domain.errors import StoreUnavailable
from interlock.logs import get_logger
from interlock.ports.sender import Sender
from interlock.ports.store import Claim
from interlock.services.deliveries import DISPATCH_BATCH, DeliveryService, Finished, Prepared
from interlock.services.workers import worker_name
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
    #: Seconds to let work gather: a round woken from idle waits this long before it
    #: claims. At a steady trickle (200 changes/s through the API) every commit woke a
    #: round of its own, two write transactions for a handful of deliveries.
    gather: float = 0.005
    #: Seconds finished attempts wait to be written together, unless a batch of them is
    #: full. Nothing waits on the write but an incident's next message to the same
    #: endpoint (it goes once the one before is recorded): after a write that left
    #: such messages due, the next waits only ``gather``, so a run of one incident's
    #: changes is not held back this long per message. At 200 changes/s to 10
    #: endpoints, writing every 5 ms cost the worker about a fifth more CPU per
    #: delivery (bench/delivery.py, docs/performance.md).
    record_every: float = 0.05


#: The longest a lane waits for one rate-limit slot, whatever the stored rate says.
MAX_SLOT_WAIT = 1.0 / RATE_LIMIT_RANGE[0]


class _Lane:
    """One endpoint's share of the worker: its claimed deliveries in order, sent by at
    most ``concurrency`` runner tasks. A runner per lane slot, not a task per delivery
    waiting at a semaphore: asyncio's Semaphore looks through all its waiters on every
    acquire, and hundreds waited per lane."""

    __slots__ = ("capacity", "concurrency", "last_start", "next_slot", "queued", "rate_limit",
                 "runners", "waiting")

    def __init__(self, concurrency: int, rate_limit: float | None) -> None:
        self.concurrency = concurrency
        self.capacity = concurrency
        self.rate_limit: float | None = None
        self.limit(rate_limit)
        #: Claimed and not yet sent, oldest first.
        self.waiting: deque[tuple[Claim, Prepared]] = deque()
        #: Waiting plus being sent.
        self.queued = 0
        self.runners = 0
        self.next_slot = 0.0
        #: When the last send with the rate limit went out (time.monotonic()).
        self.last_start = -math.inf

    @property
    def full(self) -> bool:
        return self.queued >= self.capacity

    def limit(self, rate_limit: float | None) -> None:
        """Apply the endpoint's rate limit; claim no more than ~10 s of its rate, so
        leases never lapse while deliveries wait in the lane."""
        self.rate_limit = rate_limit
        self.capacity = self.concurrency * 4
        if rate_limit:
            self.capacity = max(1, min(self.capacity, int(rate_limit * 10)))

    async def take_slot(self) -> None:
        """Wait for the rate limit's next slot (a token bucket of one). Runners are given
        slots 1/rate apart as they ask, and a send also waits until 1/rate after the one
        before it went out: when the event loop stalls past several slots (a long garbage
        collection, a busy machine), the sends that fell due meanwhile go out one slot
        apart, not together. Before that, 11 sends at 5 a second once arrived in 1.56 s
        rather than 2, as a stall of about 0.44 s at the first slot makes them."""
        if not self.rate_limit:
            return
        interval = min(1.0 / self.rate_limit, MAX_SLOT_WAIT)
        now = time.monotonic()
        slot = min(max(self.next_slot, now), now + MAX_SLOT_WAIT)
        self.next_slot = slot + interval
        while (due := max(slot, self.last_start + interval)) > now:
            await asyncio.sleep(due - now)
            now = time.monotonic()
        self.last_start = now
        self.next_slot = max(self.next_slot, now + interval)


class DeliveryWorker:
    def __init__(
        self, deliveries: DeliveryService, sender: Sender, wakeup: Wakeup,
        settings: WorkerSettings | None = None, *, name: str | None = None,
        handed: Wakeup | None = None,
    ) -> None:
        """``wakeup``: new events and deliveries, to fan out and claim; ``handed``:
        deliveries handed to this worker, to read (Work.HANDED)."""
        self._handed_wakeup = handed
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
        #: Handed deliveries there was no room for, to release with the next results.
        self._released: list[str] = []
        #: Deliveries handed over are looked for after this position (None: not yet
        #: known).
        self._handed_after: int | None = None
        self._results_ready = asyncio.Event()
        self._idle = True
        #: Whether due deliveries may have been left behind for want of room (in flight,
        #: or in a lane that is or was full since the last claim round): a finished send
        #: makes room for them, so recording it starts a claim round.
        self._room_short = False
        #: Whether the last write of results left deliveries due (an incident's next
        #: message, or handed ones released): then results are written sooner.
        self._chained = False
        #: Read by whoever supervises this worker (see worker.loops.Health).
        self.health = Health()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then finish what is in flight and record it.
        A round that fails ends this call too (after recording what finished), so its
        supervisor sees the error and starts it again."""
        self._wakeup.bind(asyncio.get_running_loop())
        ended = asyncio.Event()
        recorder = asyncio.create_task(self._record_loop(ended))
        renewer = asyncio.create_task(self._renew_leases())
        loops = [asyncio.create_task(run_rounds(self._step, self._wakeup, stop,
                                                self._settings.poll_interval))]
        if self._service.handing_off and self._handed_wakeup is not None:
            loops.append(asyncio.create_task(run_rounds(
                self._read_handed, self._handed_wakeup, stop, self._settings.poll_interval)))
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            for loop in done:
                loop.result()  # a loop that failed fails the worker, for its supervisor
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.wait(loops)
            await self._drain()
            ended.set()
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
        if not late:
            return
        unsent = sum(lane.queued for lane in self._lanes.values())
        for task in late:
            task.cancel()
        await asyncio.wait(late)
        for lane in self._lanes.values():  # what no runner took: handed back on leaving
            self._in_flight -= len(lane.waiting)
            lane.queued -= len(lane.waiting)
            lane.waiting.clear()
        log.warning("stopped with deliveries unsent; the next worker sends them",
                    unsent=unsent)

    async def _step(self) -> bool:
        """One round; True when there may be more work right away."""
        if self._idle and self._settings.gather:
            await asyncio.sleep(self._settings.gather)
        self._idle = not await self._round()
        return not self._idle

    async def _round(self) -> bool:
        room = self._settings.max_in_flight - self._in_flight
        if room <= 0:
            self._room_short = True
            await asyncio.to_thread(self._service.dispatch)
            return False
        full = [endpoint_id for endpoint_id, lane in self._lanes.items() if lane.full]
        self._room_short = bool(full)
        dispatched, claims = await asyncio.to_thread(
            self._service.dispatch_and_claim, self.name, min(self._settings.batch, room), full
        )
        await self._start_all(claims)
        # The claim already took what the fan-out made; only a full batch means more
        # is waiting. New events wake the loop themselves.
        return len(claims) >= min(self._settings.batch, room) or (
            dispatched >= DISPATCH_BATCH)

    async def _read_handed(self) -> bool:
        """Start what alert processing handed to this worker (DeliveryService.hand_off):
        a read, beside the rounds that claim, so nothing handed waits for their turn at
        the write lock. True when more may be waiting."""
        if self._handed_after is None:
            self._handed_after = await asyncio.to_thread(self._service.start_handed,
                                                         self.name)
        handed = await asyncio.to_thread(self._service.handed, self.name,
                                         self._handed_after, self._settings.batch)
        self._handed_after = handed.through
        await self._start_all(self._room_for(handed.claims))
        return handed.full

    def _room_for(self, handed: list[Claim]) -> list[Claim]:
        """The handed deliveries this worker has room for, in order; the others are
        released (with the next results written) to be claimed when there is room, as
        a claim would have left them."""
        taken: list[Claim] = []
        extra: dict[str, int] = {}
        for claim in handed:
            if claim.delivery.id in self._held:
                continue  # already started (never expected: each is read once)
            lane = self._lane(claim)
            queued = lane.queued + extra.get(claim.endpoint.id, 0)
            if (self._in_flight + len(taken) >= self._settings.max_in_flight
                    or queued >= lane.capacity):
                self._released.append(claim.delivery.id)
                continue
            extra[claim.endpoint.id] = extra.get(claim.endpoint.id, 0) + 1
            taken.append(claim)
        if self._released:
            self._results_ready.set()
        return taken

    async def _start_all(self, claims: list[Claim]) -> None:
        if not claims:
            return
        # Rendering templates is user code with a budget of up to seconds: off the event
        # loop, and outside any transaction.
        prepared = await asyncio.to_thread(self._service.prepare, claims)
        for claim, request in zip(claims, prepared, strict=True):
            self._start(claim, request)

    def _start(self, claim: Claim, prepared: Prepared) -> None:
        lane = self._lane(claim)
        lane.queued += 1
        if lane.full:  # deliveries due for its endpoint wait for room from now on
            self._room_short = True
        self._in_flight += 1
        self._held.add(claim.delivery.id)
        lane.waiting.append((claim, prepared))
        if lane.runners < lane.concurrency:
            lane.runners += 1
            task = asyncio.create_task(self._run_lane(lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _lane(self, claim: Claim) -> _Lane:
        """The endpoint's lane; a changed rate limit is applied to it in place (a new
        lane would lose count of what the old one's runners still hold)."""
        endpoint = claim.endpoint
        lane = self._lanes.get(endpoint.id)
        if lane is None:
            lane = self._lanes[endpoint.id] = _Lane(self._settings.per_endpoint,
                                                    endpoint.rate_limit)
        elif lane.rate_limit != endpoint.rate_limit:
            lane.limit(endpoint.rate_limit)
        return lane

    async def _run_lane(self, lane: _Lane) -> None:
        """One of a lane's runners: send its deliveries in order until none is left."""
        try:
            while lane.waiting:
                claim, prepared = lane.waiting.popleft()
                try:
                    await self._send(claim, prepared, lane)
                except Exception:
                    # A bug in one delivery (the Sender itself never raises) must not stop
                    # the lane behind it; its lease lapses and it is tried again.
                    log.exception("could not send a delivery", delivery=claim.delivery.id)
                    self._held.discard(claim.delivery.id)
                finally:
                    lane.queued -= 1
                    self._in_flight -= 1
        finally:
            lane.runners -= 1

    async def _send(self, claim: Claim, prepared: Prepared, lane: _Lane) -> None:
        started = self._service.now()
        if prepared.failure is not None:
            result = prepared.failure
        else:
            await lane.take_slot()
            started = self._service.now()
            result = await self._sender.send(prepared.signed(started))
        self._finished.append(Finished(claim, result, started))
        self._results_ready.set()

    async def _record_loop(self, ended: asyncio.Event) -> None:
        """Write results in batches; once the rounds have ended, until everything is
        written."""
        while True:
            await self._results_ready.wait()
            self._results_ready.clear()
            wait = self._settings.gather if self._chained else self._settings.record_every
            if wait and len(self._finished) < self._settings.batch and not ended.is_set():
                await asyncio.sleep(wait)
            batch, self._finished = self._finished, []
            released, self._released = self._released, []
            if batch or released:
                # Claim again if there is something to claim now: the next delivery of
                # an incident, one handed here that found no room, or room for those
                # the last claim left behind.
                self._chained = await self._record(batch, released)
                if self._chained or self._room_short:
                    self._wakeup.notify()
                self._held.difference_update(item.claim.delivery.id for item in batch)
            if ended.is_set() and not self._tasks and not self._finished:
                return

    async def _record(self, batch: list[Finished], released: list[str]) -> bool:
        """Write what ``batch`` did; whether that left deliveries to claim now. In a
        storm most records leave none, and a claim round sent looking after each one
        took SQLite's write lock to find nothing (613 rounds of 825 in a 30 s storm)."""
        claimable: list[bool] = []
        # If this fails, the leases lapse and the deliveries go out again: at least once.
        await record_with_retries(
            lambda: claimable.append(self._service.record(self.name, batch, released)),
            "attempts", self.health, count=len(batch))
        return any(claimable)
