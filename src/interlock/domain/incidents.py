"""Incidents and the rules for changing them.

Each command (acknowledge, resolve, reopen, update, comment) is a pure function from
the current incident to a :class:`Transition` (the new incident, the event type and
what changed) or ``None`` when the command would alter nothing. ``None`` is how "no
event and no version bump" is guaranteed: callers write only what a transition holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from interlock.domain.errors import Conflict, InvalidInput
from interlock.domain.events import EventType
from interlock.domain.timestamps import rfc3339


class Status(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: ``max(severities, key=rank)`` is the most severe."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


#: Fields a PATCH may change. Status changes go through the explicit commands so that
#: each one emits its own event type.
EDITABLE_FIELDS = ("title", "summary", "severity", "service", "assignee", "labels", "visibility")

TITLE_MAX = 500
SUMMARY_MAX = 20_000


@dataclass(frozen=True)
class Incident:
    id: str
    number: int
    title: str
    status: Status
    severity: Severity
    visibility: Visibility
    version: int
    created_at: datetime
    updated_at: datetime
    summary: str = ""
    service: str | None = None
    assignee: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def reference(self) -> str:
        return f"INC-{self.number}"

    @property
    def is_private(self) -> bool:
        return self.visibility is Visibility.PRIVATE

    @property
    def is_open(self) -> bool:
        return self.status is not Status.RESOLVED


@dataclass(frozen=True)
class Transition:
    """The outcome of a command that changed something."""

    incident: Incident
    event_type: EventType
    changes: dict[str, dict[str, Any]]


def declare(
    *,
    incident_id: str,
    title: str,
    severity: Severity,
    now: datetime,
    summary: str = "",
    service: str | None = None,
    assignee: str | None = None,
    labels: Mapping[str, str] | None = None,
    visibility: Visibility = Visibility.PUBLIC,
) -> Incident:
    """A new, triggered incident at version 1. Its ``number`` is assigned by the store."""
    _check_title(title)
    _check_summary(summary)
    return Incident(
        id=incident_id,
        number=0,
        title=title,
        summary=summary,
        status=Status.TRIGGERED,
        severity=severity,
        service=service,
        assignee=assignee,
        labels=dict(labels or {}),
        visibility=visibility,
        version=1,
        created_at=now,
        updated_at=now,
    )


def acknowledge(incident: Incident, now: datetime) -> Transition | None:
    if incident.status is Status.ACKNOWLEDGED:
        return None
    if incident.status is Status.RESOLVED:
        raise Conflict(f"{incident.reference} is resolved; reopen it before acknowledging")
    return _status_transition(
        incident, Status.ACKNOWLEDGED, EventType.INCIDENT_ACKNOWLEDGED, now,
        acknowledged_at=now,
    )


def resolve(incident: Incident, now: datetime) -> Transition | None:
    if incident.status is Status.RESOLVED:
        return None
    return _status_transition(
        incident, Status.RESOLVED, EventType.INCIDENT_RESOLVED, now, resolved_at=now
    )


def reopen(incident: Incident, now: datetime) -> Transition | None:
    """Only a resolved incident can be reopened; an open one is left as it is."""
    if incident.status is not Status.RESOLVED:
        return None
    return _status_transition(
        incident, Status.TRIGGERED, EventType.INCIDENT_REOPENED, now,
        acknowledged_at=None, resolved_at=None,
    )


def update(incident: Incident, patch: Mapping[str, Any], now: datetime) -> Transition | None:
    """Apply the fields in ``patch`` (already typed) that differ from the incident."""
    unknown = set(patch) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"fields cannot be changed: {', '.join(sorted(unknown))}")
    if "title" in patch:
        _check_title(patch["title"])
    if "summary" in patch:
        _check_summary(patch["summary"])
    changes = {
        name: {"from": _plain(getattr(incident, name)), "to": _plain(value)}
        for name, value in patch.items()
        if getattr(incident, name) != value
    }
    if not changes:
        return None
    values = {name: patch[name] for name in changes}
    if incident.is_private and values.get("visibility") == Visibility.PUBLIC:
        changes = _without_private_values(changes)
    return Transition(
        incident=_bump(incident, now, **values),
        event_type=EventType.INCIDENT_UPDATED,
        changes=changes,
    )


def _without_private_values(changes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The changes of a private incident made public: only the new values. The old ones
    existed only while it was private, and the event goes to every endpoint and
    connector (and its timeline entry to every reader) that may now see it."""
    return {name: change if name == "visibility" else {"to": change["to"]}
            for name, change in changes.items()}


def comment(incident: Incident, body: str, now: datetime) -> Transition:
    """A comment is a change: it bumps the version so consumers can order it."""
    if not body.strip():
        raise InvalidInput("a comment needs a non-empty body")
    return Transition(
        incident=_bump(incident, now),
        event_type=EventType.INCIDENT_COMMENT_ADDED,
        changes={},
    )


def attach_alert(incident: Incident, severity: Severity, now: datetime) -> Transition:
    """An alert joins the incident; the incident takes the alert's severity if worse."""
    changes: dict[str, dict[str, Any]] = {}
    values: dict[str, Any] = {}
    if severity.rank > incident.severity.rank:
        changes["severity"] = {"from": incident.severity.value, "to": severity.value}
        values["severity"] = severity
    return Transition(
        incident=_bump(incident, now, **values),
        event_type=EventType.INCIDENT_ALERT_ATTACHED,
        changes=changes,
    )


def to_dict(incident: Incident) -> dict[str, Any]:
    """The incident as the API and webhook payloads show it."""
    return {
        "id": incident.id,
        "reference": incident.reference,
        "title": incident.title,
        "summary": incident.summary,
        "status": incident.status.value,
        "severity": incident.severity.value,
        "service": incident.service,
        "assignee": incident.assignee,
        "labels": dict(incident.labels),
        "visibility": incident.visibility.value,
        "version": incident.version,
        "created_at": rfc3339(incident.created_at),
        "updated_at": rfc3339(incident.updated_at),
        "acknowledged_at": rfc3339(incident.acknowledged_at),
        "resolved_at": rfc3339(incident.resolved_at),
    }


def _status_transition(
    incident: Incident, status: Status, event_type: EventType, now: datetime,
    **timestamps: datetime | None,
) -> Transition:
    changes: dict[str, dict[str, Any]] = {
        "status": {"from": incident.status.value, "to": status.value}
    }
    for name, value in timestamps.items():
        if getattr(incident, name) != value:
            changes[name] = {"from": _plain(getattr(incident, name)), "to": _plain(value)}
    return Transition(
        incident=_bump(incident, now, status=status, **timestamps),
        event_type=event_type,
        changes=changes,
    )


def _bump(incident: Incident, now: datetime, **values: Any) -> Incident:
    return dataclasses.replace(
        incident, version=incident.version + 1, updated_at=now, **values
    )


def _check_title(title: str) -> None:
    if not title.strip():
        raise InvalidInput("title must not be empty", errors=[
            {"field": "title", "message": "must not be empty"}
        ])
    if len(title) > TITLE_MAX:
        raise InvalidInput(f"title is longer than {TITLE_MAX} characters", errors=[
            {"field": "title", "message": f"at most {TITLE_MAX} characters"}
        ])


def _check_summary(summary: str) -> None:
    if len(summary) > SUMMARY_MAX:
        raise InvalidInput(f"summary is longer than {SUMMARY_MAX} characters", errors=[
            {"field": "summary", "message": f"at most {SUMMARY_MAX} characters"}
        ])


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


