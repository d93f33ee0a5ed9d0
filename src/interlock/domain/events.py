"""Events: immutable records of one change, written in the same transaction as it.

Events are Interlock's outbox. Webhook delivery and connectors read them; nothing
ever updates one. Each carries its :class:`Origin` so that a change that came from a
connector is never pushed back to that connector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    INCIDENT_CREATED = "incident.created"
    INCIDENT_UPDATED = "incident.updated"
    INCIDENT_ACKNOWLEDGED = "incident.acknowledged"
    INCIDENT_RESOLVED = "incident.resolved"
    INCIDENT_REOPENED = "incident.reopened"
    INCIDENT_COMMENT_ADDED = "incident.comment_added"
    INCIDENT_ALERT_ATTACHED = "incident.alert_attached"
    INCIDENT_PUBLIC_UPDATE = "incident.public_update"
    ENDPOINT_DISABLED = "endpoint.disabled"
    #: Sent only to the endpoint under test, on request; nobody subscribes to it.
    ENDPOINT_TEST = "endpoint.test"
    #: A public update as one status page's webhook subscribers receive it (public
    #: fields only); sent only to those subscribers, so no endpoint subscribes to it.
    STATUS_PAGE_UPDATE = "status_page.update"


EVENT_DESCRIPTIONS: dict[EventType, str] = {
    EventType.INCIDENT_CREATED: "An incident was declared by hand or from alerts.",
    EventType.INCIDENT_UPDATED: "Title, summary, severity, service, assignee, labels or "
    "visibility changed.",
    EventType.INCIDENT_ACKNOWLEDGED: "Someone took the incident.",
    EventType.INCIDENT_RESOLVED: "The incident was resolved.",
    EventType.INCIDENT_REOPENED: "A resolved incident was reopened.",
    EventType.INCIDENT_COMMENT_ADDED: "A comment was added to the timeline.",
    EventType.INCIDENT_ALERT_ATTACHED: "An alert was correlated into the incident.",
    EventType.INCIDENT_PUBLIC_UPDATE: "A public update was published on status pages.",
    EventType.ENDPOINT_DISABLED: "A webhook endpoint was disabled after failing for days.",
}

#: Types an endpoint can subscribe to.
SUBSCRIBABLE = tuple(EVENT_DESCRIPTIONS)
#: Types only a status page subscriber's own endpoint receives (the subscriber service
#: addresses them to it; the API does not offer them).
SUBSCRIBER_ONLY = (EventType.STATUS_PAGE_UPDATE,)


class OriginKind(StrEnum):
    API_KEY = "api_key"
    SOURCE = "source"
    CONNECTOR = "connector"
    SYSTEM = "system"


@dataclass(frozen=True)
class Origin:
    """Where a change came from. ``actor`` names the person behind it when known
    (a Slack user pressing a button through the Slack connector, say)."""

    kind: OriginKind
    id: str | None = None
    name: str | None = None
    actor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "id": self.id, "name": self.name, "actor": self.actor}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Origin:
        return cls(
            kind=OriginKind(data["kind"]),
            id=data.get("id"),
            name=data.get("name"),
            actor=data.get("actor"),
        )


SYSTEM = Origin(kind=OriginKind.SYSTEM, name="interlock")


@dataclass(frozen=True)
class Event:
    id: str
    type: EventType
    occurred_at: datetime
    origin: Origin
    incident_id: str | None = None
    incident_version: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    #: Position in the event log, assigned by the store; consumers read in this order.
    sequence: int = 0
