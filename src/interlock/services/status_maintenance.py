"""Planned maintenance on a status page: announcing, changing, cancelling and deleting it.

Each change bumps the page's version in the same transaction (what the cached public
outputs key on) and tells this process's caches at once; a window starting or ending
needs no change at all (the public read counts the boundaries passed, see
:meth:`interlock.services.status_public.PublicStatus.token`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from interlock.domain import status_maintenance as rules
from interlock.domain.errors import NotFound
from interlock.domain.ids import new_id
from interlock.domain.status_maintenance import PublicMaintenance
from interlock.ports.clock import Clock
from interlock.ports.store import Store, Transaction

#: Maintenances one list answers (Statuspage's own lists stop at 50 as well).
LISTED = 50


@dataclass(frozen=True)
class MaintenanceSpec:
    title: str
    body: str
    components: Sequence[str]
    scheduled_for: datetime
    scheduled_until: datetime


class StatusMaintenanceService:
    def __init__(self, store: Store, clock: Clock, changed: Callable[[], None]) -> None:
        self._store = store
        self._clock = clock
        self._changed = changed

    def now(self) -> datetime:
        return self._clock.now()

    def create(self, page_id: str, spec: MaintenanceSpec) -> PublicMaintenance:
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            item = rules.check(PublicMaintenance(
                id=new_id("smt", now), page_id=page_id, title=spec.title, body=spec.body,
                components=tuple(spec.components), scheduled_for=spec.scheduled_for,
                scheduled_until=spec.scheduled_until, created_at=now, updated_at=now),
                _component_ids(tx, page_id))
            tx.status_pages.insert_maintenance(item)
            tx.status_pages.touch([page_id], now)
        self._changed()
        return item

    def for_page(self, page_id: str) -> list[PublicMaintenance]:
        """Latest window first, cancelled ones included (the console shows them)."""
        with self._store.transaction() as tx:
            _component_ids(tx, page_id)
            return tx.status_pages.maintenances(page_id, limit=LISTED)

    def get(self, page_id: str, maintenance_id: str) -> PublicMaintenance:
        with self._store.transaction() as tx:
            return _maintenance(tx, page_id, maintenance_id)

    def update(self, page_id: str, maintenance_id: str, changes: Mapping[str, Any]
               ) -> PublicMaintenance:
        """Change fields; ``cancelled`` true calls it off (false restores it)."""
        now = self._clock.now()
        changes = dict(changes)
        if "components" in changes:
            changes["components"] = tuple(changes["components"])
        cancelled = changes.pop("cancelled", None)
        with self._store.transaction(write=True) as tx:
            item = _maintenance(tx, page_id, maintenance_id)
            if cancelled is not None:
                changes["cancelled_at"] = (item.cancelled_at or now) if cancelled else None
            updated = rules.check(dataclasses.replace(item, **changes, updated_at=now),
                                  _component_ids(tx, page_id))
            tx.status_pages.save_maintenance(updated)
            tx.status_pages.touch([page_id], now)
        self._changed()
        return updated

    def delete(self, page_id: str, maintenance_id: str) -> None:
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            _maintenance(tx, page_id, maintenance_id)
            tx.status_pages.delete_maintenance(maintenance_id)
            tx.status_pages.touch([page_id], now)
        self._changed()


def _component_ids(tx: Transaction, page_id: str) -> list[str]:
    """The page's component ids; NotFound when there is no such page."""
    if tx.status_pages.get_page(page_id) is None:
        raise NotFound(f"no status page {page_id}")
    return [component.id for component in tx.status_pages.components(page_id)]


def _maintenance(tx: Transaction, page_id: str, maintenance_id: str) -> PublicMaintenance:
    item = tx.status_pages.get_maintenance(maintenance_id)
    if item is None or item.page_id != page_id:
        raise NotFound(f"no maintenance {maintenance_id} on status page {page_id}")
    return item
