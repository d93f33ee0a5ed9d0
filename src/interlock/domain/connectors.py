"""Connectors: two-way integrations with the tools a team already uses.

A connector pushes incident changes out (as sync jobs on a leased, retried queue) and
takes the tool's changes back in (through its webhook at ``/hooks/{id}`` and a
periodic pull). What it may change is decided per field by its mapping: a field owned
by Interlock is only ever pushed, one owned by the tool is only ever pulled, and one
owned by both (status, comments) goes both ways.

The conflict rule for fields both sides own: **the change Interlock learns of last
wins.** A push always sends the incident's *current* state, never the state at the
time of the event, and a pull applies the tool's state only where it differs from what
Interlock last saw or wrote there. So a tool change that arrives after an Interlock
change is applied (and then pushed to the other connectors), and an Interlock change
made after the tool's is pushed over it; neither side ever reverts the other to an
older value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from interlock.domain.errors import InvalidInput
from interlock.domain.events import Event, EventType, Origin, OriginKind
from interlock.domain.incidents import Incident, Severity, Status
from interlock.domain.timestamps import rfc3339


class Owner(StrEnum):
    INTERLOCK = "interlock"
    TOOL = "tool"
    BOTH = "both"

    @property
    def pushes(self) -> bool:
        return self is not Owner.TOOL

    @property
    def pulls(self) -> bool:
        return self is not Owner.INTERLOCK


#: Fields a mapping can assign an owner to.
MAPPED_FIELDS = ("title", "summary", "severity", "labels", "assignee", "status", "comments")


@dataclass(frozen=True)
class FieldMapping:
    """Who owns each field, and how statuses and severities are named in the tool."""

    owners: Mapping[str, Owner]
    #: Incident status → the tool's status (for Jira: a statusCategory key).
    status_out: Mapping[str, str] = field(default_factory=dict)
    #: The tool's status → incident status.
    status_in: Mapping[str, str] = field(default_factory=dict)
    #: Incident severity → the tool's priority or urgency name.
    severity_out: Mapping[str, str] = field(default_factory=dict)

    def owner(self, name: str) -> Owner:
        return self.owners.get(name, Owner.INTERLOCK)

    def pushes(self, name: str) -> bool:
        return self.owner(name).pushes

    def pulls(self, name: str) -> bool:
        return self.owner(name).pulls

    def status_for_tool(self, status: Status) -> str | None:
        return self.status_out.get(status.value)

    def status_from_tool(self, value: str | None) -> Status | None:
        mapped = self.status_in.get(value or "")
        return Status(mapped) if mapped else None

    def severity_for_tool(self, severity: Severity) -> str | None:
        return self.severity_out.get(severity.value)

    def merged(self, patch: Mapping[str, Any]) -> FieldMapping:
        """This mapping with the parts given in ``patch`` (a request body) replaced."""
        return parse_mapping(patch, base=self)

    def to_json(self) -> dict[str, Any]:
        return {
            "owners": {name: owner.value for name, owner in self.owners.items()},
            "status_out": dict(self.status_out),
            "status_in": dict(self.status_in),
            "severity_out": dict(self.severity_out),
        }


def parse_mapping(data: Mapping[str, Any], *, base: FieldMapping) -> FieldMapping:
    """A mapping from JSON, validated; parts left out keep ``base``'s values."""
    errors: list[dict[str, str]] = []
    owners = dict(base.owners)
    for name, value in dict(data.get("owners") or {}).items():
        if name not in MAPPED_FIELDS:
            errors.append({"field": f"mapping.owners.{name}",
                           "message": f"not a mapped field ({', '.join(MAPPED_FIELDS)})"})
        elif value not in Owner.__members__.values():
            errors.append({"field": f"mapping.owners.{name}",
                           "message": "must be one of interlock, tool, both"})
        else:
            owners[name] = Owner(value)
    status_out = _names(data, "status_out", base.status_out, errors, keys=Status)
    status_in = _names(data, "status_in", base.status_in, errors, values=Status)
    severity_out = _names(data, "severity_out", base.severity_out, errors, keys=Severity)
    if errors:
        raise InvalidInput("the connector's mapping is not valid", errors=errors)
    return FieldMapping(owners, status_out, status_in, severity_out)


def _names(
    data: Mapping[str, Any], part: str, default: Mapping[str, str],
    errors: list[dict[str, str]], *, keys: type[StrEnum] | None = None,
    values: type[StrEnum] | None = None,
) -> dict[str, str]:
    given = data.get(part)
    if given is None:
        return dict(default)
    if not isinstance(given, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in given.items()):
        errors.append({"field": f"mapping.{part}", "message": "must map names to names"})
        return dict(default)
    for key, value in given.items():
        if keys is not None and key not in keys.__members__.values():
            errors.append({"field": f"mapping.{part}.{key}",
                           "message": f"not one of {', '.join(keys)}"})
        if values is not None and value not in values.__members__.values():
            errors.append({"field": f"mapping.{part}.{key}",
                           "message": f"{value!r} is not one of {', '.join(values)}"})
    return dict(given)


@dataclass(frozen=True)
class Connector:
    """A configured connector. ``credentials`` are plain here (in memory only); the store
    keeps them encrypted and the API never returns them."""

    id: str
    name: str
    kind: str
    settings: Mapping[str, Any]
    credentials: Mapping[str, str]
    mapping: FieldMapping
    #: Which incidents it receives, in the endpoint filter language (None: all).
    filter: dict[str, Any] | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    #: What the connector learned about its tool (say, Interlock's own Jira account).
    state: Mapping[str, Any] = field(default_factory=dict)
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failing_since: datetime | None = None

    @property
    def origin(self) -> Origin:
        return Origin(kind=OriginKind.CONNECTOR, id=self.id, name=self.name)

    def hook_path(self) -> str:
        """Where its tool sends webhooks, below Interlock's base URL."""
        return f"/hooks/{self.id}"

    def is_origin_of(self, origin: Origin) -> bool:
        """True when a change came from this connector: it is never pushed back here."""
        return origin.kind is OriginKind.CONNECTOR and origin.id == self.id


#: Events that become push jobs (a connector pushes the incident's state, so all do).
PUSHED_EVENTS = frozenset({
    EventType.INCIDENT_CREATED, EventType.INCIDENT_UPDATED, EventType.INCIDENT_ACKNOWLEDGED,
    EventType.INCIDENT_RESOLVED, EventType.INCIDENT_REOPENED,
    EventType.INCIDENT_COMMENT_ADDED, EventType.INCIDENT_ALERT_ATTACHED,
    EventType.INCIDENT_PUBLIC_UPDATE,
})


def comment_to_mirror(event: Event | None, mapping: FieldMapping, incident: Incident
                      ) -> str | None:
    """The line a tool gets for a comment added in Interlock ("ana: rolled back"), or
    None: not a comment event, comments not pushed, a private incident (whose comments
    never leave), or an empty body."""
    if (event is None or event.type is not EventType.INCIDENT_COMMENT_ADDED
            or not mapping.pushes("comments") or incident.is_private):
        return None
    comment = event.data.get("comment") or {}
    body = str(comment.get("body") or "").strip()
    return f"{comment.get('actor') or 'Interlock'}: {body}" if body else None


def shows_in_tools(event: Event) -> bool:
    """Whether an incident event changes what a ticket or a chat card shows: all of them
    but alerts joining an incident without raising its severity (a storm brings
    thousands, and a tool that got a call for each would bury its channel or issue)."""
    if not event.type.value.startswith("incident."):
        return False
    if event.type is EventType.INCIDENT_ALERT_ATTACHED:
        return bool(event.data.get("changes"))
    # A public update is for status pages (the Statuspage connector wants it); it
    # changes nothing a ticket or a chat card shows.
    return event.type is not EventType.INCIDENT_PUBLIC_UPDATE


@dataclass(frozen=True)
class Link:
    """An external object that stands for an incident in one tool: a Jira issue, a
    Slack message, an Alertmanager silence. ``state`` is what Interlock last wrote to
    or read from it, which is how a pull tells a change in the tool from an echo."""

    id: str
    connector_id: str
    incident_id: str
    kind: str
    external_id: str
    url: str | None
    state: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    reconciled_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "connector_id": self.connector_id,
            "incident_id": self.incident_id,
            "kind": self.kind,
            "external_id": self.external_id,
            "url": self.url,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "reconciled_at": rfc3339(self.reconciled_at),
        }


def redacted_title(incident: Incident) -> str:
    """What a private incident is called outside Interlock."""
    return f"{incident.reference}: private incident"


class JobKind(StrEnum):
    #: Make the tool match the incident (after an event).
    PUSH = "push"
    #: Read the tool's current state and apply what changed there (after its webhook,
    #: or on reconcile).
    PULL = "pull"
    #: Redraw the tool's view of the incident without announcing a change (a Slack card
    #: after a button on it was pressed: the change came from there, so no thread post).
    REFRESH = "refresh"


class JobStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class SyncJob:
    id: str
    connector_id: str
    incident_id: str
    kind: JobKind
    status: JobStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    #: Why it exists: the event id for a push, "webhook" or "reconcile" for a pull.
    reason: str
    event_id: str | None = None
    last_error: str | None = None


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Nothing to do: a duplicate, a change Interlock made itself, nothing changed.
    SKIPPED = "skipped"


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


@dataclass(frozen=True)
class Call:
    """One request a connector made to its tool."""

    method: str
    url: str
    status: int | None
    duration_ms: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "status": self.status,
                "duration_ms": self.duration_ms, "error": self.error}


@dataclass(frozen=True)
class Activity:
    """One thing a connector did or received, as a row a user can read."""

    id: str
    connector_id: str
    at: datetime
    direction: Direction
    action: str
    outcome: Outcome
    summary: str
    incident_id: str | None = None
    job_id: str | None = None
    attempt: int | None = None
    calls: tuple[Call, ...] = ()
    error: str | None = None
    next_attempt_at: datetime | None = None
