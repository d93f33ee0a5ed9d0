"""Alerts: what monitoring tools send, after parsing, before correlation.

Every inbound format (Alertmanager, Grafana, Datadog, PagerDuty Events v2, generic JSON)
is parsed into :class:`Signal` values, so deduplication and correlation never look at
a tool's own payload.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from interlock.domain.incidents import Severity
from interlock.domain.timestamps import rfc3339


class SourceKind(StrEnum):
    """The kinds built into Interlock. Kinds are open (any installed SourcePlugin), so
    a source's kind is a ``str``; these are names, not the list of what exists."""

    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    DATADOG = "datadog"
    PAGERDUTY = "pagerduty"
    GENERIC = "generic"


class SignalAction(StrEnum):
    """What the tool says happened. Only PagerDuty Events v2 can say ``acknowledge``."""

    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGE = "acknowledge"


@dataclass(frozen=True)
class Signal:
    """One alert's state as one payload reported it."""

    #: Stable identity of the alert within its source: the tool's own fingerprint or
    #: dedup key when it has one, else a hash of configured fields.
    fingerprint: str
    action: SignalAction
    title: str
    severity: Severity
    #: The alert's name (Alertmanager ``alertname``, Grafana rule title, …); with the
    #: service it makes the default grouping key.
    name: str = ""
    service: str | None = None
    summary: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    #: A link back to the alert in its tool (generatorURL, a Datadog link, …).
    url: str | None = None


class ParseError(Exception):
    """The payload was received but cannot be understood as this source's format. The
    payload is kept with this message, for the user to see."""


#: Severity words tools use, mapped to ours. Parsers look labels up here, lower-cased.
SEVERITY_WORDS: dict[str, Severity] = {
    "critical": Severity.CRITICAL, "crit": Severity.CRITICAL, "fatal": Severity.CRITICAL,
    "emergency": Severity.CRITICAL, "p1": Severity.CRITICAL, "sev1": Severity.CRITICAL,
    "page": Severity.CRITICAL, "disaster": Severity.CRITICAL,
    "high": Severity.HIGH, "error": Severity.HIGH, "major": Severity.HIGH,
    "p2": Severity.HIGH, "sev2": Severity.HIGH,
    "medium": Severity.MEDIUM, "warning": Severity.MEDIUM, "warn": Severity.MEDIUM,
    "average": Severity.MEDIUM, "p3": Severity.MEDIUM, "sev3": Severity.MEDIUM,
    "low": Severity.LOW, "minor": Severity.LOW, "p4": Severity.LOW, "sev4": Severity.LOW,
    "info": Severity.INFO, "informational": Severity.INFO, "information": Severity.INFO,
    "none": Severity.INFO, "ok": Severity.INFO, "p5": Severity.INFO, "sev5": Severity.INFO,
    "debug": Severity.INFO,
}


def severity_from(word: object, default: Severity = Severity.MEDIUM) -> Severity:
    if isinstance(word, str):
        return SEVERITY_WORDS.get(word.strip().lower(), default)
    return default


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert as Interlock remembers it: the latest state of a fingerprint."""

    id: str
    source_id: str
    fingerprint: str
    status: AlertStatus
    title: str
    severity: Severity
    first_seen_at: datetime
    last_seen_at: datetime
    #: How many times the source reported this alert (repeats included).
    count: int = 1
    name: str = ""
    service: str | None = None
    summary: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    incident_id: str | None = None
    group_key: str | None = None
    #: The maintenance window that suppressed it, if one did.
    suppressed_by: str | None = None
    #: The queue position of the payload that last reported it. Workers may apply
    #: payloads out of order; one older than this is not applied to the alert again.
    payload_position: int = 0


class PayloadStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"


@dataclass(frozen=True)
class ReceivedPayload:
    """A request body a source accepted, kept as received (durable before the 2xx)."""

    id: str
    source_id: str
    received_at: datetime
    content_type: str
    body: bytes
    status: PayloadStatus = PayloadStatus.PENDING
    error: str | None = None
    alerts: int = 0
    dropped: int = 0
    suppressed: int = 0
    processed_at: datetime | None = None
    attempts: int = 0
    position: int = 0


def differing_labels(label_sets: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """For each alert's labels, those that tell it apart from the others: the labels whose
    value is not the same on all of them (``instance``, ``pod``…). Two alerts of one
    group otherwise read alike ("HighErrorRate, HighErrorRate")."""
    names = {name for labels in label_sets for name in labels}
    varying = sorted(name for name in names
                     if len({labels.get(name) for labels in label_sets}) > 1)
    return [{name: labels[name] for name in varying if name in labels}
            for labels in label_sets]


def describe_with_labels(title: str, labels: Mapping[str, str]) -> str:
    """``HighErrorRate (instance=web-1)``; the title alone when nothing tells it apart."""
    if not labels:
        return title
    return f"{title} ({', '.join(f'{name}={value}' for name, value in labels.items())})"


def alert_to_dict(alert: Alert) -> dict[str, object]:
    return {
        "id": alert.id,
        "source_id": alert.source_id,
        "fingerprint": alert.fingerprint,
        "status": alert.status.value,
        "title": alert.title,
        "severity": alert.severity.value,
        "name": alert.name,
        "service": alert.service,
        "summary": alert.summary,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "url": alert.url,
        "starts_at": rfc3339(alert.starts_at),
        "ends_at": rfc3339(alert.ends_at),
        "first_seen_at": rfc3339(alert.first_seen_at),
        "last_seen_at": rfc3339(alert.last_seen_at),
        "count": alert.count,
        "incident_id": alert.incident_id,
        "suppressed_by": alert.suppressed_by,
    }


#: Status words tools use for an alert's state, mapped to what happened. Parsers look
#: words up here, lower-cased; a word not here is a parse error, not a guess.
ACTION_WORDS: dict[str, SignalAction] = {
    "firing": SignalAction.FIRING, "alerting": SignalAction.FIRING,
    "alert": SignalAction.FIRING, "triggered": SignalAction.FIRING,
    "trigger": SignalAction.FIRING, "open": SignalAction.FIRING,
    "problem": SignalAction.FIRING, "active": SignalAction.FIRING,
    "resolved": SignalAction.RESOLVED, "resolve": SignalAction.RESOLVED,
    "ok": SignalAction.RESOLVED, "recovered": SignalAction.RESOLVED,
    "recovery": SignalAction.RESOLVED, "closed": SignalAction.RESOLVED,
    "normal": SignalAction.RESOLVED, "inactive": SignalAction.RESOLVED,
    "cleared": SignalAction.RESOLVED, "clear": SignalAction.RESOLVED,
    "acknowledge": SignalAction.ACKNOWLEDGE, "acknowledged": SignalAction.ACKNOWLEDGE,
    "ack": SignalAction.ACKNOWLEDGE,
}


def action_from(word: object) -> SignalAction | None:
    """The action a status word names, or None when the word is not one we know."""
    if isinstance(word, str):
        return ACTION_WORDS.get(word.strip().lower())
    return None


@dataclass(frozen=True)
class ParseOptions:
    """How one source reads its tool's payloads; set by the user on the source.

    ``service_label`` and ``severity_label`` name the label (Datadog: tag; PagerDuty:
    ``custom_details`` key) holding the service and the severity. ``fingerprint_fields``
    matter only for payloads that carry no identity of their own: the fingerprint is
    then a SHA-256 of these labels' (or fields') values, or of all labels when empty.
    ``mapping`` is the generic JSON source's field → JMESPath expression table.
    """

    service_label: str = "service"
    severity_label: str = "severity"
    fingerprint_fields: tuple[str, ...] = ()
    mapping: Mapping[str, str] = field(default_factory=dict)
    #: Options a plugin kind's own options model adds, checked by that model.
    extra: Mapping[str, Any] = field(default_factory=dict)


class SourceSigning(StrEnum):
    """How a kind's tool signs its requests, if it can (besides the ingest token)."""

    NONE = "none"
    #: Grafana's HMAC-SHA256 of the body (optionally with a timestamp header).
    HMAC = "hmac"
    #: Standard Webhooks (``webhook-signature`` with a ``whsec_`` secret).
    STANDARD_WEBHOOKS = "standard-webhooks"


@dataclass(frozen=True)
class SourcePlugin:
    """One source kind, registered under the entry point group ``interlock.sources``.

    ``parse`` is pure: the decoded payload and the source's options in, signals out,
    ParseError for anything it cannot read. ``options`` is a pydantic model of the
    options a source of this kind takes; its JSON Schema is published at
    ``GET /api/v1/source-kinds``."""

    kind: str
    title: str
    description: str
    parse: Callable[[Any, ParseOptions], list[Signal]]
    options: type[BaseModel]
    #: Whether its options need a ``mapping`` (field → JMESPath), as generic JSON does.
    takes_mapping: bool = False
    signing: SourceSigning = SourceSigning.NONE
