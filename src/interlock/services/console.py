"""Read models the web console needs beyond what the other services offer: what
changed since a position in the event log (for live updates), and activity per hour.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from interlock.ports.clock import Clock
from interlock.ports.store import Activity, Store

#: Events read per look at the log; a burst larger than this still reports a change.
CHANGES_BATCH = 200
HOURS = 24
#: How long one activity answer is reused: the chart is a glance, not a gauge, and
#: its queries scan a day of attempts and alerts.
ACTIVITY_TTL_SECONDS = 30.0


@dataclass(frozen=True)
class Change:
    """One event, as much of it as a page needs to decide whether to refresh."""

    sequence: int
    event_type: str
    incident_id: str | None
    reference: str | None
    private: bool


@dataclass(frozen=True)
class HourlyActivity:
    #: HOURS + 1 boundaries, oldest first; the last bucket is the hour in progress.
    bounds: list[datetime]
    counts: Activity


class ConsoleService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._cache: dict[bool, tuple[float, HourlyActivity]] = {}
        self._lock = threading.Lock()

    def changes(self, after: int | None) -> tuple[int, list[Change]]:
        """The newest sequence and the events after ``after``, oldest first. With
        ``after`` None, only the newest sequence: where a new watcher starts."""
        with self._store.transaction() as tx:
            events = tx.events.list(before=None, limit=1 if after is None else CHANGES_BATCH)
        if not events:
            return after or 0, []
        newest = events[0].sequence
        if after is None:
            return newest, []
        found = []
        for event in reversed(events):
            if event.sequence <= after:
                continue
            incident = event.data.get("incident")
            incident = incident if isinstance(incident, dict) else {}
            found.append(Change(
                sequence=event.sequence, event_type=event.type.value,
                incident_id=event.incident_id, reference=incident.get("reference"),
                # A redacted or missing snapshot reveals nothing: treat it as private.
                private=incident.get("visibility", "private") == "private"
                if event.incident_id else False,
            ))
        return newest, found

    def activity(self, *, include_private: bool) -> HourlyActivity:
        """Alerts in, incidents opened and delivery attempts per hour over the last day."""
        with self._lock:
            cached = self._cache.get(include_private)
        if cached is not None and time.monotonic() - cached[0] < ACTIVITY_TTL_SECONDS:
            return cached[1]
        now = self._clock.now()
        hour = now.replace(minute=0, second=0, microsecond=0)
        bounds = [hour - timedelta(hours=HOURS - 1 - index) for index in range(HOURS)]
        bounds.append(hour + timedelta(hours=1))
        with self._store.transaction() as tx:
            counts = tx.activity.counts(bounds, include_private=include_private)
        answer = HourlyActivity(bounds, counts)
        with self._lock:
            self._cache[include_private] = (time.monotonic(), answer)
        return answer

    def forget(self) -> None:
        """Drop cached activity (tests, and after the console itself changed data)."""
        with self._lock:
            self._cache.clear()
