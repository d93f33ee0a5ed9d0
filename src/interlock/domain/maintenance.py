"""Maintenance windows: planned work during which matching alerts make no incidents.

``drop`` forgets matching alerts (only counted); ``suppress`` keeps them, marked
suppressed, so the record shows what fired during the work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from interlock.domain.alerts import Signal
from interlock.domain.filters import Filter


class MaintenanceMode(StrEnum):
    DROP = "drop"
    SUPPRESS = "suppress"


@dataclass(frozen=True)
class MaintenanceWindow:
    id: str
    name: str
    starts_at: datetime
    ends_at: datetime
    mode: MaintenanceMode
    created_at: datetime
    #: The filter language of endpoints, over the alert's service, severity, title and
    #: labels (``{"service": "checkout", "labels.env": "staging"}``).
    matchers: Mapping[str, Any] = field(default_factory=dict)
    #: Only this source's alerts, when set.
    source_id: str | None = None

    def covers(self, signal: Signal, source_id: str, at: datetime) -> bool:
        if not self.starts_at <= at < self.ends_at:
            return False
        if self.source_id is not None and self.source_id != source_id:
            return False
        return Filter.parse(self.matchers).matches(as_filterable(signal))


def as_filterable(signal: Signal) -> dict[str, Any]:
    """An alert in the shape filters read (they were made for incidents)."""
    return {
        "service": signal.service,
        "severity": signal.severity.value,
        "title": signal.title,
        "labels": dict(signal.labels),
        "visibility": "public",
        "status": "triggered",
        "assignee": None,
    }


def first_covering(
    windows: list[MaintenanceWindow], signal: Signal, source_id: str, at: datetime
) -> MaintenanceWindow | None:
    """Drop wins over suppress when windows overlap: the stricter choice was made."""
    covering = [window for window in windows if window.covers(signal, source_id, at)]
    covering.sort(key=lambda window: window.mode is not MaintenanceMode.DROP)
    return covering[0] if covering else None
