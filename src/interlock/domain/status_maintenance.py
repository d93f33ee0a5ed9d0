"""Planned maintenance announced on a status page: what customers are told ahead of time.

This is not :mod:`interlock.domain.maintenance` (which silences alerts and carries
internal names and filters, never published). A public maintenance has a title, a
text, the components of its page it affects and its window; its status follows from
the clock alone, with Statuspage's names (``scheduled``, ``in_progress``,
``completed``), so nobody has to remember to start or end it. While it is in progress
its components show ``under_maintenance``, unless an incident holds a worse status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from interlock.domain.errors import InvalidInput
from interlock.domain.status_pages import BODY_MAX, Component, ComponentStatus, worst

TITLE_MAX = 255
#: A window longer than this is a standing notice, not a maintenance.
LONGEST = timedelta(days=7)
#: Components one maintenance may name (a page holds at most 200 anyway).
COMPONENTS_MAX = 200


class MaintenanceStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


@dataclass(frozen=True)
class PublicMaintenance:
    id: str
    page_id: str
    title: str
    body: str
    #: Ids of components of its page, in the order given.
    components: tuple[str, ...]
    scheduled_for: datetime
    scheduled_until: datetime
    created_at: datetime
    updated_at: datetime
    #: When it was called off; a cancelled maintenance is never shown.
    cancelled_at: datetime | None = None

    def status(self, now: datetime) -> MaintenanceStatus:
        """Derived from the clock; a cancelled one counts as over."""
        if self.cancelled_at is not None or now >= self.scheduled_until:
            return MaintenanceStatus.COMPLETED
        if now >= self.scheduled_for:
            return MaintenanceStatus.IN_PROGRESS
        return MaintenanceStatus.SCHEDULED

    def shown(self, now: datetime) -> bool:
        """Upcoming or in progress: what a page and summary.json list."""
        return self.status(now) is not MaintenanceStatus.COMPLETED


def check(item: PublicMaintenance, page_components: Iterable[str]) -> PublicMaintenance:
    """A maintenance as stored: its text present, its window ordered and bounded, its
    components those of its page (named once each)."""
    errors = []
    if not item.title.strip() or len(item.title) > TITLE_MAX:
        errors.append({"field": "title", "message": f"1 to {TITLE_MAX} characters"})
    if not item.body.strip() or len(item.body) > BODY_MAX:
        errors.append({"field": "body", "message": f"1 to {BODY_MAX} characters"})
    if item.scheduled_until <= item.scheduled_for:
        errors.append({"field": "scheduled_until", "message": "after scheduled_for"})
    elif item.scheduled_until - item.scheduled_for > LONGEST:
        errors.append({"field": "scheduled_until",
                       "message": f"at most {LONGEST.days} days after scheduled_for"})
    components = tuple(dict.fromkeys(item.components))
    known = set(page_components)
    unknown = [component_id for component_id in components if component_id not in known]
    if unknown:
        errors.extend({"field": "components", "message": f"no component {component_id[:40]}"
                                                         " on this page"}
                      for component_id in unknown[:20])
    if not components or len(components) > COMPONENTS_MAX:
        errors.append({"field": "components", "message": f"1 to {COMPONENTS_MAX}"})
    if errors:
        raise InvalidInput("; ".join(f"{error['field']}: {error['message']}"
                                     for error in errors[:5]), errors=errors)
    return dataclasses.replace(item, title=item.title.strip(), components=components)


def during(components: Sequence[Component], maintenances: Iterable[PublicMaintenance],
           now: datetime) -> list[Component]:
    """The components as the page shows them at ``now``: those of a maintenance in
    progress are ``under_maintenance``, unless their own status is worse."""
    held = {component_id for item in maintenances
            if item.status(now) is MaintenanceStatus.IN_PROGRESS
            for component_id in item.components}
    return [dataclasses.replace(component, status=worst(
                [component.status, ComponentStatus.UNDER_MAINTENANCE]))
            if component.id in held else component for component in components]

