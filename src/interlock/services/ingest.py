"""Alerts in: accept payloads durably, then parse, deduplicate and correlate them.

Accepting is the hot path and does the least: check the credentials, store the body,
answer. Processing follows in the worker, one transaction per payload, so a payload is
applied whole or not at all. Within a payload, changes to each incident are gathered
and written once: a storm of 10,000 alerts into one incident is one
``incident.alert_attached`` event, not 10,000.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from interlock.domain import incidents as incident_rules
from interlock.domain import json_input
from interlock.domain import sources as rules
from interlock.domain.alerts import (
    Alert,
    AlertStatus,
    ParseError,
    PayloadStatus,
    ReceivedPayload,
    Signal,
    SignalAction,
    alert_to_dict,
)
from interlock.domain.errors import Conflict, InterlockError, MalformedJson, Unauthenticated
from interlock.domain.events import Origin, OriginKind
from interlock.domain.ids import new_id
from interlock.domain.incidents import Incident
from interlock.domain.maintenance import MaintenanceMode, MaintenanceWindow, first_covering
from interlock.domain.sources import Source
from interlock.logs import get_logger
from interlock.ports.clock import Clock
from interlock.ports.parser import PayloadParser
from interlock.ports.store import Store, Transaction
from interlock.services.incidents import Declaration, IncidentService, Viewer

log = get_logger(__name__)

#: How long a source's settings are trusted from memory on the hot path.
SOURCE_CACHE_SECONDS = 2.0
#: Processing attempts before a payload that keeps failing is set aside as failed.
MAX_ATTEMPTS = 5
#: Alerts listed in one incident.alert_attached event; the count covers the rest.
ALERTS_PER_EVENT = 20
FINGERPRINT_MAX = 200
GROUP_KEY_MAX = 400


class Intake:
    """Authenticate and durably store what sources send."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._cache: dict[str, tuple[float, Source | None]] = {}
        self._last_stored = 0.0

    def source(self, source_id: str) -> Source | None:
        """The source, from a short-lived cache: the ingest path reads it per request."""
        cached = self._fresh(source_id)
        if cached is not None:
            return cached[1]
        if len(source_id) > 40:
            return None
        with self._store.transaction() as tx:
            found = tx.sources.get(source_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[source_id] = (time.monotonic(), found)
        return found

    def cached_source(self, source_id: str) -> Source | None:
        """The source if it is in the cache and fresh, without touching the database."""
        cached = self._fresh(source_id)
        return cached[1] if cached is not None else None

    def _fresh(self, source_id: str) -> tuple[float, Source | None] | None:
        cached = self._cache.get(source_id)
        if cached is not None and time.monotonic() - cached[0] < SOURCE_CACHE_SECONDS:
            return cached
        return None

    def forget(self, source_id: str) -> None:
        self._cache.pop(source_id, None)

    @staticmethod
    def authenticate(source: Source, *, token: str | None, signature: str | None,
                     timestamp: str | None, body: bytes,
                     standard_headers: dict[str, str] | None = None) -> None:
        """Accept a valid token (Bearer, Basic password or ?token=) or a valid signature
        from a tool that signs; raise Unauthenticated otherwise."""
        if token is not None and rules.token_matches(source, token):
            return
        if signature is not None and rules.grafana_signature_valid(
                source, body, signature, timestamp):
            return
        if standard_headers and source.signing_secret and rules.standard_signature_valid(
                source.signing_secret, body, standard_headers):
            return
        raise Unauthenticated("missing or wrong source credentials")

    def received(self, source: Source, body: bytes, content_type: str) -> ReceivedPayload:
        """The payload to store. A body that is not JSON, or nests deeper than the
        parsers read, is stored as failed at once, so the sender can be told (400), the
        user can see what arrived, and the worker never decodes it."""
        now = self._clock.now()
        payload = ReceivedPayload(id=new_id("pl", now), source_id=source.id, received_at=now,
                                  content_type=content_type[:200], body=body)
        try:
            json_input.loads(body)
        except MalformedJson as error:
            return dataclasses.replace(payload, status=PayloadStatus.FAILED, processed_at=now,
                                       error=error.detail[:1000])
        return payload

    def store(self, payloads: Sequence[ReceivedPayload]) -> None:
        """Commit a batch of payloads: once this returns, they survive a crash."""
        with self._store.transaction(write=True) as tx:
            tx.payloads.insert_many(payloads)
        self._last_stored = time.monotonic()

    def busy(self, within: float = 0.05) -> bool:
        """Whether this process stored payloads in the last ``within`` seconds."""
        return time.monotonic() - self._last_stored < within


@dataclass
class _Effects:
    """What a payload does to each incident, written once at its end."""

    attached: dict[str, list[Alert]] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    alerts: int = 0
    dropped: int = 0
    suppressed: int = 0


class AlertProcessor:
    def __init__(self, store: Store, clock: Clock, parser: PayloadParser,
                 incidents: IncidentService, lease: timedelta = timedelta(seconds=120)) -> None:
        self._store = store
        self._clock = clock
        self._parse = parser
        self._incidents = incidents
        self._lease = lease

    def process(self, owner: str, limit: int = 5) -> int:
        """Claim and process pending payloads; returns how many were claimed.

        A batch is claimed, applied and committed in one transaction, since transactions
        are what SQLite serialises; a crash rolls the leases back with the rest. If
        anything unexpected fails, the batch is rolled back and done again one payload
        per transaction, so one bad payload cannot hold back the others.
        """
        now = self._clock.now()
        try:
            with self._store.transaction(write=True) as tx:
                claimed = tx.payloads.claim(owner, now, now + self._lease, limit)
                for payload in claimed:
                    outcome, _ = self._apply(tx, payload)
                    tx.payloads.finish(outcome, owner)
            return len(claimed)
        except Exception as error:  # retried payload by payload just below
            log.warning("batch failed; processing one payload at a time", error=repr(error))
        with self._store.transaction(write=True) as tx:
            claimed = tx.payloads.claim(owner, now, now + self._lease, limit)
        for payload in claimed:
            self.process_one(payload, owner)
        return len(claimed)

    def process_one(self, payload: ReceivedPayload, owner: str) -> ReceivedPayload:
        """Apply one payload whole, or not at all. A failure that is not the payload's
        fault (the database, a bug) leaves it pending for another try after its lease;
        after MAX_ATTEMPTS it is set aside as failed, with the reason, for a person."""
        try:
            with self._store.transaction(write=True) as tx:
                outcome, _ = self._apply(tx, payload)
                tx.payloads.finish(outcome, owner)
                return outcome
        except Exception as error:  # recorded on the payload, never lost
            reason = error.detail if isinstance(error, InterlockError) else repr(error)
            log.error("payload processing failed", payload=payload.id,
                      attempt=payload.attempts, error=reason[:300])
            if payload.attempts < MAX_ATTEMPTS:
                return payload  # the lease lapses and it is tried again
            failed = _failed(payload, self._clock.now(),
                             f"gave up after {payload.attempts} attempts: {reason}")
            with self._store.transaction(write=True) as tx:
                tx.payloads.finish(failed, owner)
            return failed

    def process_now(self, payload: ReceivedPayload) -> tuple[ReceivedPayload, list[str]]:
        """Store and apply a payload at once, outside the queue (``interlock alerts
        send``); returns it as stored and the ids of the incidents it touched."""
        with self._store.transaction(write=True) as tx:
            outcome, touched = (payload, []) if payload.status is PayloadStatus.FAILED \
                else self._apply(tx, payload)
            tx.payloads.insert_many([outcome])
        return outcome, touched

    def _apply(self, tx: Transaction, payload: ReceivedPayload
               ) -> tuple[ReceivedPayload, list[str]]:
        now = self._clock.now()
        source = tx.sources.get(payload.source_id)
        if source is None:
            return _failed(payload, now, "the source was deleted"), []
        try:
            signals = self._parse(source.kind, json.loads(payload.body), source.options)
        except (ParseError, ValueError, UnicodeDecodeError) as error:
            return _failed(payload, now, str(error)), []
        viewer = Viewer(Origin(OriginKind.SOURCE, source.id, source.name), can_see_private=True)
        windows = tx.maintenance.active(now)
        effects = _Effects()
        for signal in signals:
            self._signal(tx, source, signal, windows, viewer, now, effects)
        self._write_effects(tx, source, viewer, effects)
        touched = sorted(set(effects.attached) | effects.resolved | effects.acknowledged)
        return dataclasses.replace(
            payload, status=PayloadStatus.PROCESSED, processed_at=now, error=None,
            alerts=effects.alerts, dropped=effects.dropped, suppressed=effects.suppressed,
        ), touched

    def _signal(self, tx: Transaction, source: Source, signal: Signal,
                windows: list[MaintenanceWindow], viewer: Viewer, now: datetime,
                effects: _Effects) -> None:
        effects.alerts += 1
        signal = _bounded(signal)
        window = first_covering(windows, signal, source.id, now)
        if window is not None and window.mode is MaintenanceMode.DROP:
            effects.dropped += 1
            tx.maintenance.count(window.id, dropped=1)
            return
        existing = tx.alerts.find(source.id, signal.fingerprint)
        alert = _remember(existing, signal, source, now)
        if window is not None:
            effects.suppressed += 1
            tx.maintenance.count(window.id, suppressed=1)
            _store_alert(tx, existing, dataclasses.replace(alert, suppressed_by=window.id))
            return
        alert = dataclasses.replace(alert, suppressed_by=None)
        if signal.action is SignalAction.FIRING:
            if not _repeat(tx, existing):
                incident = self._correlate(tx, source, alert, viewer, now)
                effects.attached.setdefault(incident.id, []).append(alert)
                alert = dataclasses.replace(alert, incident_id=incident.id)
        elif alert.incident_id is not None:
            target = (effects.resolved if signal.action is SignalAction.RESOLVED
                      else effects.acknowledged)
            target.add(alert.incident_id)
        _store_alert(tx, existing, alert)

    def _correlate(self, tx: Transaction, source: Source, alert: Alert, viewer: Viewer,
                   now: datetime) -> Incident:
        """The incident this firing alert belongs to: the group's open incident, the
        group's incident reopened if it was resolved within the window, or a new one."""
        key = alert.group_key or ""
        incident_id = tx.correlations.get(source.id, key)
        incident = tx.incidents.get(incident_id) if incident_id else None
        if incident is not None and incident.is_open:
            return incident
        if (incident is not None and incident.resolved_at is not None
                and now - incident.resolved_at <= source.reopen_window):
            return self._incidents.apply_in(
                tx, viewer, incident.id, incident_rules.reopen,
                note=f"Reopened: {alert.title} fired again within "
                     f"{_duration(source.reopen_window)} of resolution")
        incident = self._incidents.declare_in(tx, viewer, Declaration(
            title=alert.title, severity=alert.severity, summary=alert.summary,
            service=alert.service))
        tx.correlations.put(source.id, key, incident.id, now)
        return incident

    def _write_effects(self, tx: Transaction, source: Source, viewer: Viewer,
                       effects: _Effects) -> None:
        for incident_id, attached in effects.attached.items():
            worst = max((alert.severity for alert in attached), key=lambda s: s.rank)
            self._incidents.attach_alerts_in(
                tx, viewer, incident_id,
                [alert_to_dict(alert) for alert in attached[:ALERTS_PER_EVENT]],
                count=len(attached), severity=worst)
        for incident_id in effects.acknowledged:
            try:
                self._incidents.apply_in(tx, viewer, incident_id, incident_rules.acknowledge)
            except Conflict:
                continue  # resolved meanwhile: an acknowledgement cannot reopen it
        if not source.auto_resolve:
            return
        for incident_id in effects.resolved:
            if tx.alerts.firing_for_incident(incident_id) == 0:
                total = len(tx.alerts.for_incident(incident_id))
                which = "its alert" if total == 1 else f"all {total} alerts"
                self._incidents.apply_in(
                    tx, viewer, incident_id, incident_rules.resolve,
                    note=f"Resolved automatically: {which} resolved in {source.name}")


def _repeat(tx: Transaction, existing: Alert | None) -> bool:
    """A firing alert reported again while it is firing in an open incident: counted,
    nothing more. (Alertmanager resends a whole group whenever one alert changes.)"""
    if existing is None or existing.status is not AlertStatus.FIRING:
        return False
    incident = tx.incidents.get(existing.incident_id) if existing.incident_id else None
    return incident is not None and incident.is_open


def _remember(existing: Alert | None, signal: Signal, source: Source, now: datetime) -> Alert:
    status = AlertStatus.RESOLVED if signal.action is SignalAction.RESOLVED else (
        AlertStatus.FIRING if signal.action is SignalAction.FIRING
        else existing.status if existing else AlertStatus.FIRING)
    fields: dict[str, Any] = {
        "status": status, "title": signal.title, "severity": signal.severity,
        "name": signal.name, "service": signal.service, "summary": signal.summary,
        "labels": dict(signal.labels), "annotations": dict(signal.annotations),
        "url": signal.url, "starts_at": signal.starts_at, "ends_at": signal.ends_at,
        "last_seen_at": now, "group_key": rules.group_key(source.grouping, signal)[
            :GROUP_KEY_MAX],
    }
    if existing is None:
        return Alert(id=new_id("alr", now), source_id=source.id,
                     fingerprint=signal.fingerprint, first_seen_at=now, **fields)
    return dataclasses.replace(existing, count=existing.count + 1, **fields)


def _store_alert(tx: Transaction, existing: Alert | None, alert: Alert) -> None:
    if existing is None:
        tx.alerts.insert(alert)
    else:
        tx.alerts.save(alert)


def _bounded(signal: Signal) -> Signal:
    """Fit what a tool sent into what is stored, without losing identity."""
    fingerprint = signal.fingerprint
    if len(fingerprint) > FINGERPRINT_MAX:
        fingerprint = "sha256:" + hashlib.sha256(fingerprint.encode()).hexdigest()
    return dataclasses.replace(
        signal, fingerprint=fingerprint,
        title=(signal.title.strip() or signal.name or "Alert")[:incident_rules.TITLE_MAX],
        name=signal.name[:200],
        service=signal.service[:200] if signal.service else None,
        summary=signal.summary[:incident_rules.SUMMARY_MAX],
    )


def _failed(payload: ReceivedPayload, now: datetime, error: str) -> ReceivedPayload:
    return dataclasses.replace(payload, status=PayloadStatus.FAILED, processed_at=now,
                               error=error[:1000])


def _duration(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 and minutes >= 60 else f"{minutes} min"
