"""Uptime bars: a component's status history folded into one bar per UTC day.

A day's uptime counts a major outage as down for its whole length and a partial outage
as down for 30 % of it (the weights Atlassian Statuspage documents for its uptime
bars); degraded performance and maintenance count as up. A day's bar also carries the
worst status seen that day, so a short outage still shows in colour. Days before the
component existed have no data, and are drawn as such rather than as 100 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from interlock.domain.status_pages import ComponentStatus, StatusChange

DAYS = 90
_DAY = timedelta(days=1)
_DOWN_WEIGHT = {
    ComponentStatus.MAJOR_OUTAGE: 1.0,
    ComponentStatus.PARTIAL_OUTAGE: 0.3,
}


@dataclass(frozen=True)
class DayBar:
    day: date
    #: Fraction of the day up, 0..1; None before the component existed.
    uptime: float | None
    #: The worst status the component had during the day; None without data.
    worst: ComponentStatus | None

    @property
    def percent(self) -> str:
        return "no data" if self.uptime is None else f"{self.uptime * 100:.2f}%"


def daily_bars(history: Sequence[StatusChange], created_at: datetime, now: datetime,
               days: int = DAYS) -> list[DayBar]:
    """One bar per UTC day, oldest first, ending with today (so far). ``history`` is
    the component's status changes in time order; the status before the first change
    is operational."""
    today = now.astimezone(UTC).date()
    first_day = today - timedelta(days=days - 1)
    spans = _spans(history, created_at, now)
    bars = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        start = datetime.combine(day, time(), tzinfo=UTC)
        end = min(start + _DAY, now)
        bars.append(_bar(day, spans, max(start, created_at), end))
    return bars


def overall(bars: Sequence[DayBar]) -> float | None:
    """Uptime over the days with data, weighted equally."""
    known = [bar.uptime for bar in bars if bar.uptime is not None]
    return sum(known) / len(known) if known else None


def _spans(history: Sequence[StatusChange], created_at: datetime, now: datetime
           ) -> list[tuple[datetime, datetime, ComponentStatus]]:
    """(from, until, status) covering created_at..now."""
    spans = []
    status = ComponentStatus.OPERATIONAL
    since = created_at
    for change in sorted(history, key=lambda item: item.at):
        at = max(change.at, created_at)
        if at > since:
            spans.append((since, at, status))
        since, status = max(since, at), change.status
    if now > since:
        spans.append((since, now, status))
    return spans


def _bar(day: date, spans: list[tuple[datetime, datetime, ComponentStatus]],
         start: datetime, end: datetime) -> DayBar:
    if end <= start:
        return DayBar(day, None, None)
    down = 0.0
    worst: ComponentStatus | None = None
    for since, until, status in spans:
        overlap = (min(until, end) - max(since, start)).total_seconds()
        if overlap <= 0:
            continue
        down += overlap * _DOWN_WEIGHT.get(status, 0.0)
        if worst is None or status.rank > worst.rank:
            worst = status
    length = (end - start).total_seconds()
    return DayBar(day, max(0.0, 1.0 - down / length), worst or ComponentStatus.OPERATIONAL)
