"""Managing webhook endpoints, and the operator's levers: test, resend, recover.

Everything a user configures is checked when it is saved, not at delivery time: the
URL (shape, and where its host resolves), the filter, the template (rendered against
sample events), the headers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from interlock.domain import endpoints as rules
from interlock.domain import templates
from interlock.domain.delivery import Attempt, Delivery, DeliveryStatus, Trigger
from interlock.domain.endpoints import Endpoint, SigningSecret
from interlock.domain.errors import BadRequest, Conflict, InvalidInput, NotFound
from interlock.domain.events import SUBSCRIBABLE, SUBSCRIBER_ONLY, Event, EventType, Origin
from interlock.domain.filters import Filter
from interlock.domain.ids import new_id
from interlock.domain.pagination import Page, check_limit, decode_cursor, encode_cursor
from interlock.ports.clock import Clock
from interlock.ports.sender import TargetGuard
from interlock.ports.store import Store, Transaction

#: A private incident as a receiver sees it; does the endpoint's filter let it through?
_REDACTED_SAMPLE = {"id": "inc_sample", "version": 1}
DESCRIPTION_MAX = 500
#: Tries to save an update whose checked fields someone else changed meanwhile.
UPDATE_TRIES = 3


@dataclass(frozen=True)
class EndpointSpec:
    url: str
    description: str = ""
    event_types: frozenset[EventType] = frozenset()
    filter: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    template: str | None = None
    timeout: float = rules.DEFAULT_TIMEOUT
    rate_limit: float | None = None
    enabled: bool = True


@dataclass(frozen=True)
class Message:
    """An event and where it went."""

    event: Event
    deliveries: list[Delivery]


class EndpointService:
    def __init__(self, store: Store, clock: Clock, guard: TargetGuard) -> None:
        self._store = store
        self._clock = clock
        self._guard = guard

    def create(self, spec: EndpointSpec) -> tuple[Endpoint, str]:
        """The endpoint and its signing secret, which is never shown again."""
        now = self._clock.now()
        secret = rules.generate_secret()
        endpoint = Endpoint(
            id=new_id("ep", now), url=spec.url, created_at=now, updated_at=now,
            secrets=(SigningSecret(secret),), description=spec.description,
            event_types=spec.event_types, filter=dict(spec.filter or {}),
            headers=dict(spec.headers or {}), template=spec.template, timeout=spec.timeout,
            rate_limit=spec.rate_limit, enabled=spec.enabled,
            disabled_at=None if spec.enabled else now,
            disabled_reason=None if spec.enabled else "created disabled",
        )
        self._check(endpoint)
        with self._store.transaction(write=True) as tx:
            tx.endpoints.insert(endpoint)
        return endpoint, secret

    def get(self, endpoint_id: str) -> Endpoint:
        with self._store.transaction() as tx:
            return _existing(tx, endpoint_id)

    def list(self, *, cursor: str | None, limit: int) -> Page[Endpoint]:
        limit = check_limit(limit)
        after = _decode_id_cursor(cursor)
        with self._store.transaction() as tx:
            rows = tx.endpoints.list(after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, _encode_id_cursor(rows[-1].id) if more else None)

    def update(self, endpoint_id: str, changes: Mapping[str, Any]) -> Endpoint:
        """Change fields; ``enabled: true`` on a disabled endpoint clears why it was
        disabled and its failure streak, so it starts afresh.

        The checks (the URL's DNS lookup, rendering the template) run outside the write
        transaction, which every other write waits for on SQLite; the write then applies
        the changes to the endpoint as it is by then, provided nothing that was checked
        changed meanwhile (the worker updates its health fields all the time)."""
        for _ in range(UPDATE_TRIES):
            with self._store.transaction() as tx:
                read = _existing(tx, endpoint_id)
            checked = _changed(read, changes, self._clock.now())
            self._check(checked, url_changed=checked.url != read.url)
            with self._store.transaction(write=True) as tx:
                current = _existing(tx, endpoint_id)
                if _configuration(current) != _configuration(read):
                    continue  # edited by someone else meanwhile: check again
                updated = _changed(current, changes, self._clock.now())
                tx.endpoints.save(updated)
                return updated
        raise Conflict("the endpoint kept changing while it was being saved; try again")

    def delete(self, endpoint_id: str) -> None:
        with self._store.transaction(write=True) as tx:
            if not tx.endpoints.delete(endpoint_id):
                raise NotFound(f"no endpoint {endpoint_id}")

    def rotate_secret(self, endpoint_id: str) -> tuple[Endpoint, str]:
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            rotated, secret = rules.rotate(_existing(tx, endpoint_id), now)
            tx.endpoints.save(rotated)
        return rotated, secret

    def send_test(self, endpoint_id: str, origin: Origin) -> Delivery:
        """Queue an ``endpoint.test`` message for this endpoint alone, due now. It is
        tried once: a test that fails is shown, not retried for a day."""
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            endpoint = _existing(tx, endpoint_id)
            event = tx.events.append(Event(
                id=new_id("evt", now), type=EventType.ENDPOINT_TEST, occurred_at=now,
                origin=origin, data={"endpoint": {"id": endpoint.id, "url": endpoint.url},
                                     "message": "This is a test from Interlock."},
            ))
            tx.events.mark_dispatched([event.sequence], now)
            delivery = Delivery(
                id=new_id("dlv", now), event_id=event.id, event_sequence=event.sequence,
                endpoint_id=endpoint.id, incident_id=None, status=DeliveryStatus.PENDING,
                attempts=0, next_attempt_at=now, trigger=Trigger.TEST, created_at=now,
            )
            tx.deliveries.insert_many([delivery])
        return delivery

    def resend(self, event_id: str, endpoint_id: str) -> Delivery:
        """Send one message to one endpoint again now, with the same webhook-id. A
        message the endpoint never got (it was added later, or filtered) is sent too."""
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            _existing(tx, endpoint_id)
            event = tx.events.get(event_id)
            if event is None or event.type is EventType.ENDPOINT_TEST:
                raise NotFound(f"no message {event_id}")
            delivery = tx.deliveries.find(event_id, endpoint_id)
            if delivery is None:
                delivery = Delivery(
                    id=new_id("dlv", now), event_id=event.id, event_sequence=event.sequence,
                    endpoint_id=endpoint_id, incident_id=event.incident_id,
                    status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now,
                    trigger=Trigger.MANUAL, created_at=now,
                )
                tx.deliveries.insert_many([delivery])
            else:
                tx.deliveries.reschedule([delivery.id], now, Trigger.MANUAL)
            found = tx.deliveries.get(delivery.id)
        assert found is not None
        return found

    def recover(self, endpoint_id: str, since: datetime) -> int:
        """Send now every message to this endpoint since ``since`` that failed, whether
        for good or waiting for its next retry."""
        now = self._clock.now()
        if since > now:
            raise InvalidInput("since must not be in the future")
        with self._store.transaction(write=True) as tx:
            _existing(tx, endpoint_id)
            recoverable = tx.deliveries.recoverable_since(endpoint_id, since, now)
            return tx.deliveries.reschedule(recoverable, now, Trigger.MANUAL)

    def attempts(self, endpoint_id: str, *, cursor: str | None, limit: int) -> Page[Attempt]:
        limit = check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        with self._store.transaction() as tx:
            _existing(tx, endpoint_id)
            rows = tx.deliveries.attempts(endpoint_id, before=before, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([attempt for _, attempt in rows],
                    encode_cursor(rows[-1][0]) if more else None)

    def follow_attempts(self, *, after: int | None, limit: int = 100,
                        endpoint_id: str | None = None) -> Sequence[tuple[int, Attempt]]:
        """Attempts after a position, oldest first (for ``interlock deliveries tail``)."""
        with self._store.transaction() as tx:
            return tx.deliveries.recent_attempts(after=after, limit=limit,
                                                 endpoint_id=endpoint_id)

    def counts(self, endpoint_id: str) -> dict[str, int]:
        with self._store.transaction() as tx:
            _existing(tx, endpoint_id)
            return tx.deliveries.counts(endpoint_id)

    def subjects(self, event_ids: Iterable[str]) -> dict[str, str]:
        """What each message is about, for an attempt log: ``INC-7 v3`` for an incident's
        event. Events not about an incident (a test, ``endpoint.disabled``) are left out."""
        found: dict[str, str] = {}
        references: dict[str, str] = {}
        with self._store.transaction() as tx:
            for event_id in set(event_ids):
                event = tx.events.get(event_id)
                if event is None or event.incident_id is None:
                    continue
                if event.incident_id not in references:
                    incident = tx.incidents.get(event.incident_id)
                    references[event.incident_id] = (incident.reference if incident
                                                     else event.incident_id)
                found[event_id] = f"{references[event.incident_id]} v{event.incident_version}"
        return found

    def messages(self, *, cursor: str | None, limit: int, event_type: EventType | None = None
                 ) -> Page[Message]:
        limit = check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        with self._store.transaction() as tx:
            events = tx.events.list(before=before, limit=limit + 1,
                                    event_type=event_type.value if event_type else None)
            more = len(events) > limit
            events = events[:limit]
            messages = [Message(event, tx.deliveries.for_event(event.id)) for event in events]
        return Page(messages, encode_cursor(events[-1].sequence) if more else None)

    def _check(self, endpoint: Endpoint, *, url_changed: bool = True) -> None:
        """Refuse what could never be delivered, before it is saved."""
        if url_changed:
            self._guard.check(endpoint.url)
        if len(endpoint.description) > DESCRIPTION_MAX:
            raise InvalidInput(f"description is longer than {DESCRIPTION_MAX} characters")
        unknown = [t for t in endpoint.event_types
                   if t not in SUBSCRIBABLE and t not in SUBSCRIBER_ONLY]
        if unknown:
            raise InvalidInput(f"cannot subscribe to {', '.join(sorted(unknown))}")
        where = Filter.parse(endpoint.filter)
        rules.check_headers(endpoint.headers)
        rules.check_timeout(endpoint.timeout)
        rules.check_rate_limit(endpoint.rate_limit)
        if endpoint.template is not None:
            check_template(endpoint.template, endpoint.event_types, where)


def check_template(template: str, event_types: Iterable[EventType], where: Filter) -> bytes:
    """The check saving an endpoint makes of its template (TemplateError if it fails), in
    one place, so the console's preview warns of exactly what saving refuses: render
    against samples of ``event_types`` (all, when empty) and, when ``where`` lets private
    incidents through, against their redacted payload too."""
    return templates.check(template, event_types=list(event_types) or None,
                           private_incidents=where.matches(_REDACTED_SAMPLE))


def _changed(endpoint: Endpoint, changes: Mapping[str, Any], now: datetime) -> Endpoint:
    updated = dataclasses.replace(endpoint, **changes, updated_at=now)
    if changes.get("enabled") is True and not endpoint.enabled:
        updated = dataclasses.replace(
            updated, disabled_reason=None, disabled_at=None, failing_since=None
        )
    elif changes.get("enabled") is False and endpoint.enabled:
        updated = dataclasses.replace(
            updated, disabled_reason="disabled by an operator", disabled_at=now
        )
    return updated


def _configuration(endpoint: Endpoint) -> tuple[object, ...]:
    """What EndpointService._check looks at."""
    return (endpoint.url, endpoint.description, endpoint.event_types, endpoint.filter,
            endpoint.headers, endpoint.template, endpoint.timeout, endpoint.rate_limit)


def _existing(tx: Transaction, endpoint_id: str) -> Endpoint:
    endpoint = tx.endpoints.get(endpoint_id)
    if endpoint is None:
        raise NotFound(f"no endpoint {endpoint_id}")
    return endpoint


def _encode_id_cursor(endpoint_id: str) -> str:
    return endpoint_id


def _decode_id_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    if not cursor.startswith("ep_") or len(cursor) > 40:
        raise BadRequest("cursor is not one this API issued")
    return cursor
