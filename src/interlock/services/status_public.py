"""What a status page shows, read in one transaction: the read side of status pages.

Only pages, components, their status history and public updates are read here, never
the incident, its timeline, comments or alerts; that is what keeps internal data off a
page. A :class:`Snapshot` is what the public HTML, the feeds and the Statuspage-shaped
JSON are all rendered from; :meth:`PublicStatus.token` is the cheap question callers
ask before reusing what they rendered from the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from interlock.domain import status_maintenance, uptime
from interlock.domain.status_maintenance import MaintenanceStatus, PublicMaintenance
from interlock.domain.status_pages import (
    Component,
    ComponentStatus,
    PublicIncident,
    StatusPage,
    worst,
)
from interlock.domain.uptime import DayBar
from interlock.ports.clock import Clock
from interlock.ports.store import Store, Transaction

#: Incidents in incidents.json and the feeds (Statuspage's own lists stop at 50).
RECENT = 50


@dataclass(frozen=True)
class Token:
    """Changes whenever what the page shows may have changed."""

    page_id: str
    version: int
    hidden: int
    #: Starts and ends of maintenance windows passed: a window starting or ending
    #: changes the page with nobody changing anything.
    phase: int = 0


@dataclass(frozen=True)
class Snapshot:
    page: StatusPage
    #: As shown at ``taken_at``: under maintenance during a window unless worse.
    components: list[Component]
    bars: dict[str, list[DayBar]]
    #: Open incidents, with their updates (newest first).
    open: list[PublicIncident]
    #: The most recently updated incidents, open or resolved, with their updates.
    recent: list[PublicIncident]
    taken_at: datetime
    token: Token
    #: The most recent planned maintenances (never a cancelled one), latest first.
    maintenances: list[PublicMaintenance] = field(default_factory=list)

    def maintenances_in(self, *statuses: MaintenanceStatus) -> list[PublicMaintenance]:
        """Those in one of ``statuses`` now, soonest window first."""
        return sorted((item for item in self.maintenances
                       if item.status(self.taken_at) in statuses),
                      key=lambda item: (item.scheduled_for, item.id))

    @property
    def status(self) -> ComponentStatus:
        return worst(component.status for component in self.components)

    def component_names(self) -> dict[str, str]:
        return {component.id: component.name for component in self.components}


class PublicStatus:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def token(self, slug: str) -> Token | None:
        """None when there is no such page."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            page = tx.status_pages.find_page(slug)
            if page is None:
                return None
            return _token(tx, page, now)

    def snapshot(self, slug: str) -> Snapshot | None:
        now = self._clock.now()
        with self._store.transaction() as tx:
            page = tx.status_pages.find_page(slug)
            if page is None:
                return None
            token = _token(tx, page, now)
            components = tx.status_pages.components(page.id)
            maintenances = tx.status_pages.maintenances(page.id, limit=RECENT,
                                                        shown_only=True)
            since = now - timedelta(days=uptime.DAYS)
            history = tx.status_pages.history([item.id for item in components], since)
            recent = _with_updates(tx, tx.status_pages.page_incidents(page.id, limit=RECENT))
            still_open = [item for item in recent if item.is_open]
            if len(recent) == RECENT:  # older open incidents may lie beyond the recent
                still_open = _with_updates(tx, tx.status_pages.page_incidents(
                    page.id, open_only=True, limit=RECENT))
        bars = {item.id: uptime.daily_bars(history[item.id], item.created_at, now)
                for item in components}
        shown = status_maintenance.during(components, maintenances, now)
        return Snapshot(page, shown, bars, still_open, recent, now, token, maintenances)


def _token(tx: Transaction, page: StatusPage, now: datetime) -> Token:
    return Token(page.id, page.version, tx.status_pages.hidden_count(page.id),
                 tx.status_pages.maintenance_phase(page.id, now))


def _with_updates(tx: Transaction, items: list[PublicIncident]) -> list[PublicIncident]:
    """Each incident with the updates published on its page, newest first."""
    updates = tx.status_pages.updates([item.incident_id for item in items])
    return [replace(item, updates=tuple(update for update in updates[item.incident_id]
                                        if item.page_id in update.page_ids))
            for item in items]
