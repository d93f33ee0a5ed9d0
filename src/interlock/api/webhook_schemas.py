"""Request and response bodies for endpoints, attempts and messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictBool

from interlock.api.schemas import (
    DateTime,
    Number,
    Request,
    omissible,
    text,
    text_map,
    text_schema,
)
from interlock.domain.delivery import DeliveryStatus, FailureKind, Trigger
from interlock.domain.endpoints import DEFAULT_TIMEOUT
from interlock.domain.events import SUBSCRIBABLE

Url = text(2048, 1)
Description = text(500)
HeaderValue = text(2000)
Headers = text_map(100, HeaderValue, text_schema(2000))
Template = text(20_000, 1)
#: Documented as the known names; an unknown one is refused with a pointer to
#: GET /api/v1/event-types (the route checks, to say so).
EventTypeName = Annotated[text(64, 1), Field(  # type: ignore[valid-type]
    json_schema_extra={"enum": [*SUBSCRIBABLE]})]
EventTypes = Annotated[list[EventTypeName], Field(max_length=32)]  # type: ignore[valid-type]


class EndpointCreate(Request):
    url: Url  # type: ignore[valid-type]
    description: Description = ""  # type: ignore[valid-type]
    event_types: EventTypes | None = Field(
        None, description="Empty or absent: all types")
    filter: dict[str, Any] | None = Field(None, examples=[
        {"severity": ["critical", "high"], "service": "checkout"}])
    headers: Headers | None = None  # type: ignore[valid-type]
    template: Template | None = None  # type: ignore[valid-type]
    timeout: Number = Field(DEFAULT_TIMEOUT, ge=1, le=60, description="Seconds, 1 to 60")
    rate_limit: Number | None = Field(None, gt=0, le=10_000,
                                      description="Deliveries per second at most")
    enabled: StrictBool = True


class EndpointPatch(Request):
    """Only the fields present are changed; null clears ``event_types`` (all types),
    ``filter``, ``headers``, ``template`` and ``rate_limit``."""

    url: Url = omissible()  # type: ignore[valid-type]
    description: Description = omissible()  # type: ignore[valid-type]
    event_types: EventTypes | None = None
    filter: dict[str, Any] | None = None
    headers: Headers | None = None  # type: ignore[valid-type]
    template: Template | None = None  # type: ignore[valid-type]
    timeout: Annotated[Number, Field(ge=1, le=60)] = omissible()
    rate_limit: Number | None = Field(None, gt=0, le=10_000)
    enabled: StrictBool = omissible()


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    filter: dict[str, Any]
    headers: dict[str, str] = Field(description="Values of secret-looking headers are masked")
    template: str | None
    timeout: float
    rate_limit: float | None
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="whsec_… signing secret; shown in this answer only")


class Recover(Request):
    since: DateTime


class Resend(Request):
    endpoint_id: text(40, 1)  # type: ignore[valid-type]


class DeliveryOut(BaseModel):
    id: str
    message_id: str
    endpoint_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    trigger: Trigger
    last_status_code: int | None
    last_failure: str | None


class AttemptOut(BaseModel):
    id: str
    message_id: str
    event_type: str
    attempt: int
    trigger: Trigger
    at: datetime
    duration_ms: float
    status_code: int | None
    response_body: str
    failure: FailureKind | None
    detail: str | None
    next_attempt_at: datetime | None


class MessageOut(BaseModel):
    id: str = Field(description="The webhook-id receivers see")
    type: str
    timestamp: datetime
    incident_id: str | None
    incident_version: int | None
    deliveries: list[DeliveryOut]


class EventTypeOut(BaseModel):
    name: str
    description: str
