"""Timeline entries: the readable history of an incident.

Events exist for machines (webhooks, connectors) and carry full snapshots; a timeline
entry is the line a responder reads: when, who, through what, and what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from interlock.domain.events import EventType, Origin
from interlock.domain.incidents import Transition


@dataclass(frozen=True)
class TimelineEntry:
    id: str
    incident_id: str
    at: datetime
    kind: str
    origin: Origin
    incident_version: int
    message: str
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    body: str | None = None

    @property
    def actor(self) -> str | None:
        return self.origin.actor or self.origin.name


def describe(transition: Transition, body: str | None = None) -> str:
    """One human sentence for a transition, e.g. 'Status changed from triggered to
    acknowledged'."""
    incident = transition.incident
    match transition.event_type:
        case EventType.INCIDENT_CREATED:
            return f"Incident declared: {incident.title}"
        case EventType.INCIDENT_ACKNOWLEDGED | EventType.INCIDENT_RESOLVED | (
            EventType.INCIDENT_REOPENED
        ):
            status = transition.changes["status"]
            return f"Status changed from {status['from']} to {status['to']}"
        case EventType.INCIDENT_COMMENT_ADDED:
            return "Comment added"
        case EventType.INCIDENT_UPDATED:
            parts = [
                f"{name} changed from {_show(change['from'])} to {_show(change['to'])}"
                if "from" in change else f"{name} set to {_show(change['to'])}"
                for name, change in transition.changes.items()
            ]
            return "; ".join(parts).capitalize()
        case _:
            return transition.event_type.value


def _show(value: Any) -> str:
    if value is None or value == "" or value == {}:
        return "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in sorted(value.items()))
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
