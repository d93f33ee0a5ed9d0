"""Delivery and attempt rows: the leased work queue behind webhooks.

Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several workers share the
queue without waiting on each other; on SQLite the write transaction (BEGIN IMMEDIATE)
already makes a claim exclusive.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.domain.delivery import (
    Attempt,
    Delivery,
    DeliveryStatus,
    FailureKind,
    Trigger,
)
from interlock.domain.events import Event
from interlock.ports.store import Claim, Completed, Outcome
from interlock.store import bulk
from interlock.store.endpoints import read_many as read_endpoints
from interlock.store.queues import (
    DELIVERIES_FAN_OUT,
    lanes_with_waiting,
    promote_next,
    serialise_fan_out,
    waiting_lanes,
)
from interlock.store.records import read_events
from interlock.store.tables import attempts, deliveries, endpoints

_PENDING = DeliveryStatus.PENDING.value
#: Make due the oldest delivery waiting behind one that just finished.
_PROMOTE = promote_next(deliveries, "endpoint_id", "event_sequence")
_WAITING = waiting_lanes(deliveries, "endpoint_id")
#: The statements run once per delivery (see store.bulk); rows in these columns' order.
_INSERT_DELIVERIES = bulk.insert(deliveries, (
    "id", "event_id", "event_sequence", "endpoint_id", "incident_id", "status", "attempts",
    "next_attempt_at", "trigger", "created_at", "updated_at", "lease_owner", "lease_expires_at"))
_INSERT_ATTEMPTS = bulk.insert(attempts, (
    "id", "delivery_id", "endpoint_id", "event_id", "event_type", "number", "trigger", "at",
    "duration_ms", "status_code", "response_body", "failure", "detail", "next_attempt_at"))
_COMPLETE = bulk.Prebuilt(
    deliveries.update()
    .where(deliveries.c.id == sa.bindparam("b_id"),
           deliveries.c.lease_owner.in_([sa.bindparam("b_owner"), sa.bindparam("b_handed")]))
    .values(
        status=sa.bindparam("b_status"),
        attempts=sa.bindparam("b_attempts"),
        next_attempt_at=sa.bindparam("b_next"),
        last_status_code=sa.bindparam("b_code"),
        last_failure=sa.bindparam("b_failure"),
        trigger=sa.bindparam("b_trigger"),
        lease_owner=sa.null(),
        lease_expires_at=sa.null(),
        updated_at=sa.bindparam("b_at"),
    ),
    ("b_status", "b_attempts", "b_next", "b_code", "b_failure", "b_trigger", "b_at", "b_id",
     "b_owner", "b_handed"))


#: The statements of every claim, fan-out and record, built once (see store.records:
#: building a statement cost several times what running it did).
_PENDING_PAIRS = sa.select(deliveries.c.endpoint_id, deliveries.c.incident_id).where(
    bulk.one_of(deliveries.c.incident_id, "p_incidents"),
    deliveries.c.status == _PENDING,
)
_PENDING_PAIRS_LOCKED = _PENDING_PAIRS.with_for_update()
_HANDED = (
    sa.select(deliveries)
    .where(deliveries.c.position > sa.bindparam("h_after"),
           deliveries.c.lease_owner == sa.bindparam("h_owner"),
           deliveries.c.status == _PENDING,
           deliveries.c.lease_expires_at > sa.bindparam("h_now"))
    .order_by(deliveries.c.position).limit(sa.bindparam("h_limit"))
)
_LIVE_ENDPOINTS = sa.select(endpoints.c.id).where(
    bulk.one_of(endpoints.c.id, "c_ids"))
_LIVE_ENDPOINTS_LOCKED = _LIVE_ENDPOINTS.with_for_update(key_share=True)
_DISABLED_ENDPOINTS = sa.select(endpoints.c.id).where(endpoints.c.enabled.is_(False))


#: A delivery's columns as :func:`_delivery` decodes them, in its order.
_DELIVERY_COLUMNS = ("id, event_id, event_sequence, endpoint_id, incident_id, status, "
                     "attempts, next_attempt_at, trigger, created_at, last_status_code, "
                     "last_failure")
#: By dialect: the claim (_claim_sql).
_CLAIMS: dict[str, str] = {}


def _claim_sql(decode: bulk.Decoders) -> str:
    """The claim: one statement picks, locks and leases (each row is written once), by
    a walk of the partial index ix_deliveries_due in claim order that stops after the
    limit. Run and read by the driver (see store.bulk.Decoders): SQLAlchemy's
    processing of the rows it returns was two thirds of a claim's CPU (py-spy,
    bench/delivery.py). Parameters: owner, lease end, now, now, endpoints skipped
    (Decoders.any_of), limit."""
    sql = _CLAIMS.get(decode.dialect)
    if sql is None:
        param = decode.param
        lock = " FOR UPDATE SKIP LOCKED" if decode.dialect == "postgresql" else ""
        sql = _CLAIMS[decode.dialect] = (
            f"UPDATE deliveries SET lease_owner = {param}, lease_expires_at = {param} "
            "WHERE position IN (SELECT position FROM deliveries "
            f"WHERE status = '{_PENDING}' AND next_attempt_at <= {param} "
            f"AND (lease_expires_at IS NULL OR lease_expires_at <= {param}) "
            f"AND NOT (endpoint_id{decode.in_list}) "
            f"ORDER BY next_attempt_at, event_sequence LIMIT {param}{lock}) "
            f"RETURNING {_DELIVERY_COLUMNS}")
    return sql


def _delivery(row: Sequence[Any], decode: bulk.Decoders) -> Delivery:
    """A row of _DELIVERY_COLUMNS, as delivery_from_row reads a mapping."""
    return Delivery(
        id=row[0], event_id=row[1], event_sequence=row[2], endpoint_id=row[3],
        incident_id=row[4], status=DeliveryStatus(row[5]), attempts=row[6],
        next_attempt_at=decode.time(row[7]), trigger=Trigger(row[8]),
        created_at=decode.moment(row[9]), last_status_code=row[10], last_failure=row[11])


def handed_to(owner: str) -> str:
    """The lease owner of deliveries handed to ``owner`` as they were made (see
    insert_many): apart from those it claimed itself, so that reading what was handed
    to it never returns one it claimed, however the two interleave."""
    return f"{owner}+handed"


class SqlDeliveries:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"
        #: Whether this transaction handed deliveries to a worker (to signal it).
        self.handed = False

    def insert_many(self, items: Sequence[Delivery], *, lease: tuple[str, datetime] | None = None,
                    claim: tuple[str, datetime, Collection[str]] | None = None) -> None:
        if not items:
            return
        time = bulk.Prebuilt.time(self._connection.dialect)
        unleased = (None, None)
        handed = (handed_to(lease[0]), time(lease[1])) if lease is not None else unleased
        if lease is not None and any(item.next_attempt_at is not None for item in items):
            self.handed = True
        claimer, claimed = ((claim[0], time(claim[1])), claim[2]) if claim else (unleased, ())
        _INSERT_DELIVERIES.executemany(self._connection, [
            (item.id, item.event_id, item.event_sequence, item.endpoint_id, item.incident_id,
             item.status.value, item.attempts, time(item.next_attempt_at), item.trigger.value,
             time(item.created_at), time(item.created_at),
             *(unleased if item.next_attempt_at is None
               else claimer if item.id in claimed else handed))
            for item in items
        ])

    def claim(
        self, owner: str, now: datetime, lease_until: datetime, limit: int,
        exclude_endpoints: Sequence[str] = (),
    ) -> list[Delivery]:
        disabled = self._connection.execute(_DISABLED_ENDPOINTS).scalars().all()
        decode = bulk.decoders(self._connection.dialect)
        time = bulk.Prebuilt.time(self._connection.dialect)
        rows = self._connection.exec_driver_sql(_claim_sql(decode), (
            owner, time(lease_until), time(now), time(now),
            decode.any_of(sorted({*exclude_endpoints, *disabled})), limit)).all()
        return [_delivery(row, decode) for row in rows]

    def handed_after(self, owner: str, after: int, now: datetime, limit: int
                     ) -> tuple[list[Claim], int]:
        """Pending deliveries past position ``after`` leased to ``owner`` (by the
        fan-out that made them, see insert_many's ``lease``), oldest first, and the
        position of the last row looked at."""
        rows = self._connection.execute(_HANDED, {
            "h_after": after, "h_owner": handed_to(owner), "h_now": now, "h_limit": limit,
        }).mappings().all()
        return (self.claims([delivery_from_row(row) for row in rows]),
                rows[-1]["position"] if rows else after)

    def handed_start(self, owner: str) -> int:
        """Where ``owner``, starting, begins to read what is handed to it: before the
        first pending delivery already handed to it (it may have reported in before it
        first read), else after the newest delivery."""
        first = self._connection.execute(
            sa.select(sa.func.min(deliveries.c.position))
            .where(deliveries.c.lease_owner == handed_to(owner),
                   deliveries.c.status == _PENDING)).scalar_one()
        if first is not None:
            return int(first) - 1
        return int(self._connection.execute(
            sa.select(sa.func.coalesce(sa.func.max(deliveries.c.position), 0))).scalar_one())

    def release(self, owner: str, delivery_ids: Sequence[str]) -> None:
        """Give up ``owner``'s leases on these pending deliveries, to be claimed again."""
        for chunk in bulk.chunks(sorted(delivery_ids)):
            self._connection.execute(
                deliveries.update().where(deliveries.c.id.in_(chunk),
                                          deliveries.c.lease_owner == handed_to(owner),
                                          deliveries.c.status == _PENDING)
                .values(lease_owner=None, lease_expires_at=None))

    def claims(self, leased: Sequence[Delivery], events: Collection[Event] = ()
               ) -> list[Claim]:
        if not leased:
            return []
        # An event usually goes to several endpoints: read and decode each one once.
        by_sequence = {event.sequence: event for event in events}
        unread = sorted({item.event_sequence for item in leased} - by_sequence.keys())
        if unread:
            decode = bulk.decoders(self._connection.dialect)
            by_sequence.update((event.sequence, event) for event in read_events(
                self._connection, f"sequence{decode.in_list}", (decode.any_of(unread),)))
        by_id = read_endpoints(self._connection, {item.endpoint_id for item in leased})
        claims = [
            Claim(item, by_sequence[item.event_sequence], by_id[item.endpoint_id])
            for item in leased
            if item.event_sequence in by_sequence and item.endpoint_id in by_id
        ]
        claims.sort(key=lambda claim: claim.delivery.event_sequence)
        return claims

    def extend_leases(self, owner: str, delivery_ids: Sequence[str], until: datetime) -> int:
        result = self._connection.execute(
            deliveries.update().where(bulk.one_of(deliveries.c.id, "e_ids", delivery_ids),
                                      deliveries.c.lease_owner.in_([owner, handed_to(owner)]),
                                      deliveries.c.status == _PENDING)
            .values(lease_expires_at=until))
        return result.rowcount

    def pending_pairs(self, incident_ids: Collection[str]) -> set[tuple[str, str]]:
        if not incident_ids:
            return set()
        serialise_fan_out(self._connection, DELIVERIES_FAN_OUT)
        # By incident only: SQLite walks the partial index of pending deliveries. By
        # endpoint and incident (an index search per pair, 10 endpoints x 500 incidents)
        # was faster only with tens of thousands pending, and the delivery benchmark's
        # 10-endpoint latency run measured worse with it.
        query = _PENDING_PAIRS_LOCKED if self._postgres else _PENDING_PAIRS
        return {(row[0], row[1]) for row in self._connection.execute(
            query, {"p_incidents": sorted(incident_ids)})}

    def complete(self, owner: str, outcomes: Sequence[Outcome], at: datetime) -> Completed:
        kept = self._of_live_endpoints(outcomes)
        return Completed(dropped=len(outcomes) - len(kept),
                         made_due=self._complete(owner, kept, at))

    def _of_live_endpoints(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """The outcomes whose endpoint still exists (deleting one deletes its deliveries),
        its row held until commit so that a delete cannot slip in before the inserts."""
        if not outcomes:
            return []
        live = set(self._connection.execute(
            _LIVE_ENDPOINTS_LOCKED if self._postgres else _LIVE_ENDPOINTS,
            {"c_ids": sorted({outcome.attempt.endpoint_id for outcome in outcomes})},
        ).scalars())
        return [outcome for outcome in outcomes if outcome.attempt.endpoint_id in live]

    def _complete(self, owner: str, outcomes: Sequence[Outcome], at: datetime) -> int:
        """Write ``outcomes``; how many waiting deliveries that made due."""
        if not outcomes:
            return 0
        time = bulk.Prebuilt.time(self._connection.dialect)
        _INSERT_ATTEMPTS.executemany(self._connection, [
            _attempt_row(outcome.attempt, time) for outcome in outcomes])
        scheduled, written_at = Trigger.SCHEDULED.value, time(at)
        handed = handed_to(owner)
        _COMPLETE.executemany(self._connection, [
            (outcome.status.value, outcome.attempt.number, time(outcome.next_attempt_at),
             outcome.attempt.status_code,
             outcome.attempt.failure.value if outcome.attempt.failure else None,
             scheduled, written_at, outcome.attempt.delivery_id, owner, handed)
            for outcome in outcomes
        ])
        finished = [
            (outcome.attempt.endpoint_id, outcome.incident_id)
            for outcome in outcomes
            if outcome.status is not DeliveryStatus.PENDING and outcome.incident_id is not None
        ]
        # Each finished row makes due the next one waiting in its lane, if there is one.
        waiting = lanes_with_waiting(self._connection, _WAITING, finished)
        promotions = [{"p_lane": lane, "p_incident": incident, "p_at": at}
                      for lane, incident in finished if (lane, incident) in waiting]
        if promotions:
            self._connection.execute(_PROMOTE, promotions)
        return len(promotions)

    def get(self, delivery_id: str) -> Delivery | None:
        row = self._connection.execute(
            sa.select(deliveries).where(deliveries.c.id == delivery_id)
        ).mappings().first()
        return delivery_from_row(row) if row else None

    def find(self, event_id: str, endpoint_id: str) -> Delivery | None:
        row = self._connection.execute(
            sa.select(deliveries).where(deliveries.c.event_id == event_id,
                                        deliveries.c.endpoint_id == endpoint_id)
        ).mappings().first()
        return delivery_from_row(row) if row else None

    def for_event(self, event_id: str) -> list[Delivery]:
        rows = self._connection.execute(
            sa.select(deliveries).where(deliveries.c.event_id == event_id)
            .order_by(deliveries.c.position)
        ).mappings()
        return [delivery_from_row(row) for row in rows]

    def reschedule(self, delivery_ids: Sequence[str], at: datetime, trigger: Trigger) -> int:
        if not delivery_ids:
            return 0
        result = self._connection.execute(
            deliveries.update().where(deliveries.c.id.in_(list(delivery_ids))).values(
                status=_PENDING, next_attempt_at=at, trigger=trigger.value,
                lease_owner=None, lease_expires_at=None, updated_at=at,
            )
        )
        return result.rowcount

    def recoverable_since(self, endpoint_id: str, since: datetime, now: datetime) -> list[str]:
        query = sa.select(deliveries.c.id).where(
            deliveries.c.endpoint_id == endpoint_id,
            deliveries.c.created_at >= since,
            sa.or_(
                deliveries.c.status == DeliveryStatus.FAILED.value,
                # Waiting for a retry (not queued behind another, not in flight).
                sa.and_(deliveries.c.status == _PENDING,
                        deliveries.c.attempts > 0,
                        deliveries.c.next_attempt_at > now,
                        sa.or_(deliveries.c.lease_expires_at.is_(None),
                               deliveries.c.lease_expires_at <= now)),
            ),
        ).order_by(deliveries.c.event_sequence)
        return list(self._connection.execute(query).scalars())

    def fail_pending(self, endpoint_id: str, reason: str, at: datetime) -> int:
        result = self._connection.execute(
            deliveries.update().where(
                deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == _PENDING
            ).values(status=DeliveryStatus.FAILED.value, next_attempt_at=None,
                     last_failure=reason[:32], lease_owner=None, lease_expires_at=None,
                     updated_at=at)
        )
        return result.rowcount

    def attempts(self, endpoint_id: str, *, before: int | None, limit: int
                 ) -> list[tuple[int, Attempt]]:
        query = (
            sa.select(attempts).where(attempts.c.endpoint_id == endpoint_id)
            .order_by(attempts.c.position.desc()).limit(limit)
        )
        if before is not None:
            query = query.where(attempts.c.position < before)
        return [(row["position"], attempt_from_row(row))
                for row in self._connection.execute(query).mappings()]

    def recent_attempts(self, *, after: int | None, limit: int, endpoint_id: str | None = None
                        ) -> list[tuple[int, Attempt]]:
        query = sa.select(attempts).limit(limit)
        if endpoint_id is not None:
            query = query.where(attempts.c.endpoint_id == endpoint_id)
        if after is None:
            newest = query.order_by(attempts.c.position.desc())
            rows = list(self._connection.execute(newest).mappings())[::-1]
        else:
            query = query.where(attempts.c.position > after).order_by(attempts.c.position)
            rows = list(self._connection.execute(query).mappings())
        return [(row["position"], attempt_from_row(row)) for row in rows]

    def counts(self, endpoint_id: str) -> dict[str, int]:
        rows = self._connection.execute(
            sa.select(deliveries.c.status, sa.func.count())
            .where(deliveries.c.endpoint_id == endpoint_id)
            .group_by(deliveries.c.status)
        ).all()
        counts = {status.value: 0 for status in DeliveryStatus}
        counts.update({row[0]: row[1] for row in rows})
        return counts


def delivery_from_row(row: sa.RowMapping) -> Delivery:
    return Delivery(
        id=row["id"],
        event_id=row["event_id"],
        event_sequence=row["event_sequence"],
        endpoint_id=row["endpoint_id"],
        incident_id=row["incident_id"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        trigger=Trigger(row["trigger"]),
        created_at=row["created_at"],
        last_status_code=row["last_status_code"],
        last_failure=row["last_failure"],
    )


def attempt_from_row(row: sa.RowMapping) -> Attempt:
    return Attempt(
        id=row["id"],
        delivery_id=row["delivery_id"],
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        number=row["number"],
        trigger=Trigger(row["trigger"]),
        at=row["at"],
        duration_ms=row["duration_ms"],
        status_code=row["status_code"],
        response_body=row["response_body"],
        failure=FailureKind(row["failure"]) if row["failure"] else None,
        detail=row["detail"],
        next_attempt_at=row["next_attempt_at"],
    )


def _attempt_row(attempt: Attempt, time: bulk.TimeParam) -> tuple[Any, ...]:
    """In _INSERT_ATTEMPTS's order."""
    return (attempt.id, attempt.delivery_id, attempt.endpoint_id, attempt.event_id,
            attempt.event_type, attempt.number, attempt.trigger.value, time(attempt.at),
            attempt.duration_ms, attempt.status_code, attempt.response_body,
            attempt.failure.value if attempt.failure else None, attempt.detail,
            time(attempt.next_attempt_at))
