"""Request and response bodies for sources, their payloads and alerts, and maintenance
windows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictBool

from interlock.api.schemas import DateTime, Number, omissible, text
from interlock.api.schemas import Request as Body
from interlock.domain.alerts import AlertStatus, PayloadStatus, SourceKind
from interlock.domain.incidents import Severity
from interlock.domain.maintenance import MaintenanceMode
from interlock.domain.sources import DEFAULT_GROUPING

Name = text(200, 1)
#: Thirty days, in seconds: the longest reopen window (and far below timedelta's range).
REOPEN_WINDOW_LIMIT = 30 * 86_400


Kind = text(32, 1)


class SourceCreate(Body):
    name: Name  # type: ignore[valid-type]
    kind: Kind = Field(..., description="An installed source kind (GET /api/v1/source-kinds)",  # type: ignore[valid-type]
                       examples=[kind.value for kind in SourceKind])
    options: dict[str, Any] | None = Field(None, description=(
        "service_label, severity_label, fingerprint_fields; for generic sources a "
        "mapping of title, severity, status, fingerprint, service, … to JMESPath"))
    grouping: text(200, 1) = Field(DEFAULT_GROUPING, description=(  # type: ignore[valid-type]
        "Alerts with the same key share an incident: {service}, {name}, {severity}, "
        "{title}, {fingerprint}, {labels.NAME}"))
    auto_resolve: StrictBool = True
    reopen_window_seconds: Number = Field(3600, ge=0, le=REOPEN_WINDOW_LIMIT)
    rate_limit: Number | None = Field(None, gt=0, le=100_000,
                                      description="Requests per second at most")
    enabled: StrictBool = True
    signed: StrictBool = Field(False,
                               description="grafana: HMAC secret; generic: whsec_ secret")
    timestamp_header: text(100, 1) | None = None  # type: ignore[valid-type]


class SourcePatch(Body):
    """Only the fields present are changed; null clears ``options``, ``rate_limit`` and
    ``timestamp_header``."""

    name: Name = omissible()  # type: ignore[valid-type]
    options: dict[str, Any] | None = None
    grouping: text(200, 1) = omissible()  # type: ignore[valid-type]
    auto_resolve: StrictBool = omissible()
    reopen_window_seconds: Annotated[Number, Field(ge=0, le=REOPEN_WINDOW_LIMIT)] = (
        omissible())
    rate_limit: Number | None = Field(None, gt=0, le=100_000)
    enabled: StrictBool = omissible()
    timestamp_header: text(100, 1) | None = None  # type: ignore[valid-type]


class SourceOut(BaseModel):
    id: str
    name: str
    kind: str
    ingest_url: str
    options: dict[str, Any]
    grouping: str
    auto_resolve: bool
    reopen_window_seconds: float
    rate_limit: float | None
    enabled: bool
    signed: bool
    timestamp_header: str | None
    created_at: datetime
    updated_at: datetime


class SourceKindOut(BaseModel):
    """One installed source kind."""

    kind: str
    title: str
    description: str
    options_schema: dict[str, Any] = Field(description="JSON Schema of its options")
    signing: str = Field(description="How its tool can sign requests: none, hmac "
                                     "(Grafana), standard-webhooks")
    takes_mapping: bool = Field(description="Whether its options need a JMESPath mapping")


class SourceCreated(SourceOut):
    token: str = Field(description="Shown only in this answer")
    signing_secret: str | None = Field(description="Shown only in this answer")


class MaintenanceCreate(Body):
    name: Name  # type: ignore[valid-type]
    starts_at: DateTime
    ends_at: DateTime
    mode: MaintenanceMode = MaintenanceMode.SUPPRESS
    matchers: dict[str, Any] = Field(
        default_factory=dict, examples=[{"service": "checkout"}],
        description="Label values an alert must have; empty (the default) matches all")
    source_id: text(40, 1) | None = None  # type: ignore[valid-type]


class MaintenancePatch(Body):
    """Only the fields present are changed; none of them may be null (an empty
    ``matchers`` object, which matches every alert, has to be asked for)."""

    name: Name = omissible()  # type: ignore[valid-type]
    starts_at: DateTime = omissible()
    ends_at: DateTime = omissible()
    mode: MaintenanceMode = omissible()
    matchers: dict[str, Any] = omissible()


class PayloadOut(BaseModel):
    id: str
    received_at: datetime
    content_type: str
    size: int
    status: PayloadStatus
    error: str | None
    alerts: int
    dropped: int
    suppressed: int
    processed_at: datetime | None
    body_preview: str = Field(description="The first 2 KiB, as text")


class AlertOut(BaseModel):
    id: str
    source_id: str
    fingerprint: str
    status: AlertStatus
    title: str
    severity: Severity
    name: str
    service: str | None
    summary: str
    labels: dict[str, str]
    annotations: dict[str, str]
    url: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    count: int
    incident_id: str | None
    suppressed_by: str | None


class MaintenanceOut(BaseModel):
    id: str
    name: str
    starts_at: datetime
    ends_at: datetime
    mode: MaintenanceMode
    matchers: dict[str, Any]
    source_id: str | None
    dropped: int = Field(description="Alerts dropped by this window so far")
    suppressed: int = Field(description="Alerts kept but suppressed so far")
    created_at: datetime
