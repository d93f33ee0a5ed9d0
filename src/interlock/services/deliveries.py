"""Webhook delivery as use cases: fan events out, lease due deliveries, build signed
requests, and record what happened.

The async loop that drives these lives in ``interlock.worker``; everything that decides
(who gets an event, when to retry, when an endpoint is disabled) is here or in the
domain, so it can be tested with a manual clock and no network.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from interlock.domain import webhooks
from interlock.domain.delivery import (
    RESPONSE_BODY_LIMIT,
    Attempt,
    Delivery,
    DeliveryStatus,
    FailureKind,
    OutboundRequest,
    SendResult,
    Trigger,
)
from interlock.domain.endpoints import Endpoint
from interlock.domain.events import SYSTEM, Event, EventType
from interlock.domain.filters import Filter
from interlock.domain.ids import new_id
from interlock.domain.retry import DISABLE_AFTER, RetryPolicy
from interlock.domain.templates import PayloadTemplate, TemplateError
from interlock.domain.timestamps import rfc3339
from interlock.logs import get_logger
from interlock.ports.clock import Clock
from interlock.ports.store import Claim, Outcome, Store, Transaction
from interlock.services.workers import OK

log = get_logger(__name__)

DEFAULT_LEASE = timedelta(seconds=120)
#: Another consumer of the event outbox (connectors' sync jobs), called in the same
#: transaction that fans events out to endpoints.
FanOut = Callable[[Transaction, Sequence[Event], datetime], None]
#: Events fanned out per transaction at most. (100 cost about a fifth more worker CPU
#: per delivery in bench/delivery.py; the ingest that waited for these transactions
#: commits to its spool now, see store.spool.)
DISPATCH_BATCH = 500


@dataclass(frozen=True)
class Finished:
    """A claim and how its attempt went."""

    claim: Claim
    result: SendResult
    started_at: datetime


class Prepared:
    """What to send for a claim, or why nothing can be (a failing template).

    The body is built when the claim is made; the signature is made by :meth:`signed`
    just before each send, so ``webhook-timestamp`` is fresh however long the delivery
    waited in its endpoint's lane (receivers refuse messages older than five minutes).
    """

    __slots__ = ("_endpoint", "_message_id", "body", "failure")

    def __init__(self, endpoint: Endpoint, message_id: str, body: bytes | None,
                 failure: SendResult | None = None) -> None:
        self._endpoint = endpoint
        self._message_id = message_id
        self.body = body
        self.failure = failure

    def signed(self, now: datetime) -> OutboundRequest:
        assert self.body is not None, "a failed preparation has nothing to send"
        endpoint = self._endpoint
        headers = webhooks.headers(self._message_id, int(now.timestamp()), self.body,
                                   endpoint.live_secrets(now), endpoint.headers)
        return OutboundRequest(endpoint.url, self.body, headers, endpoint.timeout)


@dataclass(frozen=True)
class Handed:
    """Deliveries handed to a delivery worker (DeliveryService.handed)."""

    claims: list[Claim]
    #: The position to look after next time.
    through: int
    #: More may be waiting (as many were read as were asked for).
    full: bool


class HandOff:
    """Which delivery worker alert processing hands new deliveries to: one that has
    reported in lately with its deliveries task running, taken in turn when there are
    several, looked up at most once a second. None when there is no such worker; the
    deliveries are then left to be claimed, as those of the API's events are.

    Why: on SQLite a delivery worker claims by writing, and in a storm its claim waited
    for the write lock behind the alert worker's batches; that wait was most of the time
    between a new group's first alert and its ``incident.created`` webhook (store.locks
    instrumented, bench/storm.py). Leased as they are made, in the transaction that
    made them, they are read and sent as soon as it commits. A handed delivery is like
    any claimed one: if its worker dies, the lease lapses and another claims it."""

    #: A worker heard from longer ago than this is not handed anything.
    FRESH = timedelta(seconds=12)
    LOOKUP_SECONDS = 1.0

    def __init__(self) -> None:
        self._owners: list[str] = []
        self._looked = -self.LOOKUP_SECONDS
        self._turn = 0

    def owner(self, tx: Transaction, now: datetime) -> str | None:
        at = time.monotonic()
        if at - self._looked >= self.LOOKUP_SECONDS:
            self._looked = at
            self._owners = [beat.name for beat in tx.workers.seen_since(now - self.FRESH)
                            if beat.tasks.get("deliveries") == OK]
        if not self._owners:
            return None
        self._turn = (self._turn + 1) % len(self._owners)
        return self._owners[self._turn]


@dataclass(frozen=True)
class _Claiming:
    """A delivery worker's claim made while it fans out (DeliveryService._dispatch_in)."""

    owner: str
    until: datetime
    limit: int
    #: Endpoints whose lanes are full in that worker.
    full: frozenset[str]

    def takes(self, endpoint_id: str, claimed: Sequence[Delivery]) -> bool:
        return len(claimed) < self.limit and endpoint_id not in self.full


@dataclass(frozen=True)
class _FannedOut:
    events: list[Event]
    #: The deliveries made that were claimed as they were made (_Claiming).
    claimed: list[Delivery]


class DeliveryService:
    def __init__(
        self, store: Store, clock: Clock, *, policy: RetryPolicy | None = None,
        lease: timedelta = DEFAULT_LEASE, disable_after: timedelta = DISABLE_AFTER,
        fan_outs: Sequence[FanOut] = (), hand_off: bool = False,
    ) -> None:
        """``hand_off``: alert processing fans out its own events and leases them to a
        delivery worker (:meth:`hand_off`); for SQLite."""
        self._handing = HandOff() if hand_off else None
        self._store = store
        self._fan_outs = tuple(fan_outs)
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._lease = lease
        self._disable_after = disable_after
        self._templates: dict[str, PayloadTemplate] = {}
        #: The enabled endpoints with their parsed filters, and what routed to them
        #: then (EndpointRepository.enabled_routing): read and parsed again only when
        #: that changes.
        self._routes: tuple[tuple[tuple[Any, ...], ...], list[tuple[Endpoint, Filter]]] \
            = ((), [])

    def now(self) -> datetime:
        return self._clock.now()

    # -- fan-out -----------------------------------------------------------------------

    def dispatch(self, limit: int = DISPATCH_BATCH) -> int:
        """Turn the oldest undispatched events into deliveries; returns events handled."""
        with self._store.transaction(write=True) as tx:
            return len(self._dispatch_in(tx, self._clock.now(), limit).events)

    def hand_off(self, tx: Transaction) -> None:
        """Fan out the events of ``tx`` (alert processing's) before it commits, leasing
        the deliveries that are due to a running delivery worker: it reads them
        (:meth:`handed`) and sends at once, instead of waiting its turn at SQLite's write
        lock to claim them, behind the next batch of alerts. (See :class:`HandOff`.)"""
        if self._handing is None:
            return
        now = self._clock.now()
        owner = self._handing.owner(tx, now)
        fanned = self._dispatch_in(tx, now, DISPATCH_BATCH,
                                   lease=(owner, now + self._lease) if owner else None)
        if owner and len(fanned.events) < DISPATCH_BATCH:
            # Nothing is left to fan out: the delivery worker's claim loop need not wake
            # (it would wait for the write lock to find nothing), only its reader.
            tx.events.fanned_out()

    def _dispatch_in(self, tx: Transaction, now: datetime, limit: int,
                     lease: tuple[str, datetime] | None = None) -> _FannedOut:
        """Fan out up to ``limit`` events. ``lease``: hand what is due to that worker
        (see insert_many)."""
        return self._fan_out(tx, tx.events.undispatched(limit), now, lease=lease)

    def _fan_out(self, tx: Transaction, pending: list[Event], now: datetime, *,
                 lease: tuple[str, datetime] | None = None, claim: _Claiming | None = None
                 ) -> _FannedOut:
        """Deliveries for ``pending`` (undispatched events). ``claim``: lease what is due
        to the worker fanning out, as its claim would, up to the claim's limit and apart
        from its full lanes."""
        if not pending:
            return _FannedOut([], [])
        routes = self._routes_in(tx)
        # One incident's messages to one endpoint go in order: a delivery queued behind
        # a pending one waits (no due time) until that one finishes.
        queued = tx.deliveries.pending_pairs(
            {event.incident_id for event in pending if event.incident_id})
        created: list[Delivery] = []
        claimed: list[Delivery] = []
        for event in pending:
            for endpoint, where in routes:
                if not _routes_to(event, endpoint, where):
                    continue
                pair = (endpoint.id, event.incident_id or "")
                waits = event.incident_id is not None and pair in queued
                queued.add(pair)
                delivery = _new_delivery(event, endpoint, now, Trigger.SCHEDULED,
                                         waiting=waits)
                created.append(delivery)
                if claim is not None and not waits and claim.takes(endpoint.id, claimed):
                    claimed.append(delivery)
        tx.deliveries.insert_many(created, lease=lease, claim=None if claim is None else (
            claim.owner, claim.until, {delivery.id for delivery in claimed}))
        for fan_out in self._fan_outs:
            fan_out(tx, pending, now)
        tx.events.mark_dispatched([event.sequence for event in pending], now)
        return _FannedOut(pending, claimed)

    def _routes_in(self, tx: Transaction) -> list[tuple[Endpoint, Filter]]:
        """The enabled endpoints with their filters. While changes trickle in, a fan-out
        runs every few milliseconds for an event or two, and reading and parsing every
        endpoint each time cost more than the rest of it; the three columns that route
        are a small read."""
        routing = tx.endpoints.enabled_routing()
        known, routes = self._routes
        if routing != known:
            routes = [(endpoint, Filter.parse(endpoint.filter))
                      for endpoint in tx.endpoints.enabled()]
            self._routes = (routing, routes)
        return routes

    # -- leasing and sending -----------------------------------------------------------

    def claim(self, owner: str, limit: int, exclude_endpoints: Sequence[str] = ()
              ) -> list[Claim]:
        return self.dispatch_and_claim(owner, limit, exclude_endpoints)[1]

    def dispatch_and_claim(self, owner: str, limit: int, exclude_endpoints: Sequence[str] = ()
                           ) -> tuple[int, list[Claim]]:
        """Fan out new events and lease due deliveries in one transaction: on SQLite every
        transaction waits its turn for the one writer, so fewer is faster. Returns the
        events fanned out and the claims. Their events and endpoints are read after the
        commit, without the write lock (about half the claim's work, and people's
        writes wait for it on SQLite)."""
        now = self._clock.now()
        until = now + self._lease
        with self._store.transaction(write=True) as tx:
            # In this order: on PostgreSQL reading the events takes the fan-out's turn
            # (if it is free; else there is nothing to read) before the claim locks rows
            # (the fan-out of another worker, holding the turn, locks pending rows too);
            # and what has been due longest is claimed first, so what keeps arriving
            # never overtakes a backlog.
            pending = tx.events.undispatched(DISPATCH_BATCH, wait=False)
            leased = tx.deliveries.claim(owner, now, until, limit, exclude_endpoints)
            # What the fan-out makes is claimed as it is made, with what room is left:
            # each row written once, its event in hand.
            fanned = self._fan_out(tx, pending, now, claim=_Claiming(
                owner, until, limit - len(leased), frozenset(exclude_endpoints)))
            leased += fanned.claimed
        if not leased:
            return len(fanned.events), []
        with self._store.transaction() as tx:
            return len(fanned.events), tx.deliveries.claims(leased, fanned.events)

    @property
    def handing_off(self) -> bool:
        """Whether alert processing hands deliveries to delivery workers (SQLite)."""
        return self._handing is not None

    def start_handed(self, owner: str) -> int:
        """Where delivery worker ``owner``, starting now, begins to look for deliveries
        handed to it."""
        with self._store.transaction() as tx:
            return tx.deliveries.handed_start(owner)

    def handed(self, owner: str, after: int, limit: int) -> Handed:
        """Without writing: the deliveries handed to ``owner`` after position ``after``."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            claims, through = tx.deliveries.handed_after(owner, after, now, limit)
        return Handed(claims, through, full=len(claims) >= limit)

    def prepare(self, claims: Sequence[Claim]) -> list[Prepared]:
        """Bodies for claims, each event's standard body built only once."""
        bodies: dict[str, bytes] = {}
        prepared = []
        for claim in claims:
            event, endpoint = claim.event, claim.endpoint
            try:
                if endpoint.template:
                    body = self._template(endpoint.template).render(
                        webhooks.payload(event.type.value, event.occurred_at, event.data))
                elif event.id in bodies:
                    body = bodies[event.id]
                else:
                    body = bodies[event.id] = webhooks.encode(
                        webhooks.payload(event.type.value, event.occurred_at, event.data))
            except TemplateError as error:
                prepared.append(Prepared(endpoint, event.id, None, SendResult(
                    status=None, body="", duration=0.0, failure=FailureKind.TEMPLATE,
                    detail=error.detail[:500],
                )))
                continue
            prepared.append(Prepared(endpoint, event.id, body))
        return prepared

    @property
    def lease(self) -> timedelta:
        return self._lease

    def extend_leases(self, owner: str, delivery_ids: Sequence[str]) -> int:
        """Keep leasing deliveries this worker holds but has not finished (waiting in a
        lane behind a slow receiver, or being sent), so they are not sent twice."""
        if not delivery_ids:
            return 0
        until = self._clock.now() + self._lease
        with self._store.transaction(write=True) as tx:
            return tx.deliveries.extend_leases(owner, delivery_ids, until)

    def _template(self, source: str) -> PayloadTemplate:
        """Compiled templates, kept: compiling costs far more than rendering."""
        template = self._templates.get(source)
        if template is None:
            if len(self._templates) >= 256:
                self._templates.clear()
            template = self._templates[source] = PayloadTemplate.compile(source)
        return template

    def record(self, owner: str, finished: Sequence[Finished],
               released: Sequence[str] = ()) -> bool:
        """Write every attempt and the next step for each delivery; update endpoint
        health, disabling an endpoint that has failed without a success for too long.
        ``released``: deliveries handed to ``owner`` that it had no room for, to be
        claimed again. True when that left deliveries to claim now: those released, or
        ones that waited behind a finished one."""
        if not finished and not released:
            return False
        now = self._clock.now()
        outcomes = [self._outcome(item, now) for item in finished]
        with self._store.transaction(write=True) as tx:
            tx.deliveries.release(owner, released)
            completed = tx.deliveries.complete(owner, outcomes, now)
            self._update_health(tx, finished, now)
        if completed.dropped:
            log.info("attempts for deleted endpoints not recorded",
                     dropped=completed.dropped)
        return bool(released) or completed.made_due > 0

    def _outcome(self, item: Finished, now: datetime) -> Outcome:
        delivery, result = item.claim.delivery, item.result
        number = delivery.attempts + 1
        next_at: datetime | None = None
        if result.succeeded:
            status = DeliveryStatus.SUCCEEDED
        elif delivery.trigger is Trigger.TEST:
            status = DeliveryStatus.FAILED
        else:
            next_at = self._policy.after_failure(number, now, result.retry_after).next_attempt_at
            status = DeliveryStatus.FAILED if next_at is None else DeliveryStatus.PENDING
        attempt = Attempt(
            id=new_id("atm", now),
            delivery_id=delivery.id,
            endpoint_id=delivery.endpoint_id,
            event_id=delivery.event_id,
            event_type=item.claim.event.type.value,
            number=number,
            trigger=delivery.trigger,
            at=item.started_at,
            duration_ms=round(result.duration * 1000, 3),
            status_code=result.status,
            response_body=result.body[:RESPONSE_BODY_LIMIT],
            failure=result.failure,
            detail=result.detail,
            next_attempt_at=next_at,
        )
        return Outcome(attempt, status, next_at, delivery.incident_id)

    def _update_health(self, tx: Transaction, finished: Sequence[Finished], now: datetime
                       ) -> None:
        succeeded: set[str] = set()
        failed: dict[str, datetime] = {}
        for item in finished:
            endpoint_id = item.claim.delivery.endpoint_id
            if item.result.succeeded:
                succeeded.add(endpoint_id)
            elif item.claim.delivery.trigger is not Trigger.TEST:
                failed.setdefault(endpoint_id, item.started_at)
        # One statement for every endpoint that succeeded: this runs for every batch.
        tx.endpoints.mark_succeeded(sorted(succeeded), now)
        for endpoint_id in set(failed) - succeeded:
            endpoint = tx.endpoints.get(endpoint_id)
            if endpoint is None:
                continue
            changed = _failed(endpoint, failed[endpoint_id], now, self._disable_after)
            if changed != endpoint:
                if endpoint.enabled and not changed.enabled:
                    self._disable(tx, changed, now)
                tx.endpoints.save(changed)

    def _disable(self, tx: Transaction, endpoint: Endpoint, now: datetime) -> None:
        tx.deliveries.fail_pending(endpoint.id, "endpoint_disabled", now)
        tx.events.append(Event(
            id=new_id("evt", now),
            type=EventType.ENDPOINT_DISABLED,
            occurred_at=now,
            origin=SYSTEM,
            data={"endpoint": {
                "id": endpoint.id,
                "url": endpoint.url,
                "reason": endpoint.disabled_reason,
                "failing_since": rfc3339(endpoint.failing_since),
            }},
        ))


def disable_after_failures(
    endpoint: Endpoint, now: datetime, limit: timedelta = DISABLE_AFTER
) -> Endpoint:
    """The endpoint, disabled if it has been failing without a success for ``limit``."""
    if not endpoint.enabled or endpoint.failing_since is None:
        return endpoint
    if now - endpoint.failing_since < limit:
        return endpoint
    days = limit.total_seconds() / 86400
    return dataclasses.replace(
        endpoint, enabled=False, disabled_at=now, updated_at=now,
        disabled_reason=f"no successful delivery for {days:g} days "
                        f"(failing since {rfc3339(endpoint.failing_since)})",
    )


def _failed(endpoint: Endpoint, failed_at: datetime, now: datetime, limit: timedelta
            ) -> Endpoint:
    """The endpoint after a failed attempt: its failure streak started, or too long."""
    if endpoint.failing_since is None:
        endpoint = dataclasses.replace(endpoint, failing_since=failed_at)
    return disable_after_failures(endpoint, now, limit)


def _routes_to(event: Event, endpoint: Endpoint, where: Filter) -> bool:
    if event.type is EventType.ENDPOINT_TEST or not endpoint.wants(event.type):
        return False
    # Filters see what the receiver would see: a private incident only as id + version.
    incident: Any = webhooks.redact(event.data).get("incident")
    return where.matches(incident)


def _new_delivery(event: Event, endpoint: Endpoint, now: datetime, trigger: Trigger, *,
                  waiting: bool = False) -> Delivery:
    return Delivery(
        id=new_id("dlv", now),
        event_id=event.id,
        event_sequence=event.sequence,
        endpoint_id=endpoint.id,
        incident_id=event.incident_id,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=None if waiting else now,
        trigger=trigger,
        created_at=now,
    )
