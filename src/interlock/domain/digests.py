"""Alerts joining an incident, told in digests: at most one ``incident.alert_attached``
per incident every few seconds, however fast its alerts arrive.

An incident hears of its first alerts at once. Alerts joining within the digest window
after an ``incident.alert_attached`` are counted (and the first few kept) until the
window has passed, then told in one event. A storm of one alert per second into each of
1,000 incidents is then one event per incident per window, not one per alert: every
webhook endpoint, connector and the timeline would otherwise hear of each alert alone,
since alerts of different batches cannot share an event. An alert that raises the
incident's severity is told at once, with whatever was waiting: that is a change people
and tools act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

#: Alerts listed in one incident.alert_attached event; the count covers the rest.
ALERTS_PER_EVENT = 20


@dataclass(frozen=True)
class Digest:
    """What an incident has been told of its alerts, and what waits to be told."""

    incident_id: str
    #: When the incident's last incident.alert_attached was written.
    last_event_at: datetime
    #: Alerts joined since then and not yet told, the ids of the first few of them, and
    #: the source of the first (the event's origin). Ids, not the alerts: a digest is
    #: rewritten with every batch, and the alerts are read once, when told.
    waiting: int = 0
    alert_ids: tuple[str, ...] = ()
    source_id: str | None = None
    #: When the waiting alerts are told; None when none wait.
    due_at: datetime | None = None


@dataclass(frozen=True)
class Joined:
    """Alerts joining an incident in one batch."""

    incident_id: str
    source_id: str
    alert_ids: Sequence[str]
    count: int
    raises_severity: bool


@dataclass(frozen=True)
class Telling:
    """An incident.alert_attached to write now: the alerts listed and their count."""

    incident_id: str
    source_id: str
    alert_ids: tuple[str, ...]
    count: int


def join(digest: Digest | None, joined: Joined, now: datetime, window: timedelta
         ) -> tuple[Telling | None, Digest]:
    """Alerts join: tell them now (with whatever waited), or keep them for the digest.

    Told now when the incident was never told of alerts, when the last telling is a
    window old, when they raise its severity, or when there is no window at all."""
    if (digest is None or not window or joined.raises_severity
            or now - digest.last_event_at >= window):
        waited = digest.alert_ids if digest else ()
        source = digest.source_id if digest and digest.waiting else None
        telling = Telling(
            incident_id=joined.incident_id, source_id=source or joined.source_id,
            alert_ids=(*waited, *joined.alert_ids)[:ALERTS_PER_EVENT],
            count=(digest.waiting if digest else 0) + joined.count)
        return telling, Digest(joined.incident_id, last_event_at=now)
    return None, replace(
        digest, waiting=digest.waiting + joined.count,
        alert_ids=(*digest.alert_ids, *joined.alert_ids)[:ALERTS_PER_EVENT],
        source_id=digest.source_id or joined.source_id,
        due_at=digest.last_event_at + window)


def tell_waiting(digest: Digest, now: datetime) -> tuple[Telling | None, Digest]:
    """A digest whose time has come: its waiting alerts told in one event."""
    if not digest.waiting or digest.source_id is None:
        return None, replace(digest, waiting=0, alert_ids=(), source_id=None, due_at=None)
    telling = Telling(incident_id=digest.incident_id, source_id=digest.source_id,
                      alert_ids=digest.alert_ids, count=digest.waiting)
    return telling, Digest(digest.incident_id, last_event_at=now)
