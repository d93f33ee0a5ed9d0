"""What one webhook attempt sends and what came back, independent of any HTTP library."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class FailureKind(StrEnum):
    """Why an attempt got no HTTP response (or one we refuse to follow). Shown to users
    in the attempt log, so each names something they can act on."""

    TIMEOUT = "timeout"
    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_RESET = "connection_reset"
    DNS = "dns"
    TLS = "tls"
    BLOCKED_TARGET = "blocked_target"  # resolved to a network Interlock may not call
    REDIRECT = "redirect"  # a 3xx: redirects are never followed
    INVALID_URL = "invalid_url"
    TEMPLATE = "template"  # the endpoint's payload template failed for this event
    OTHER = "other"


@dataclass(frozen=True)
class OutboundRequest:
    url: str
    body: bytes
    headers: Mapping[str, str]
    #: Seconds for the whole exchange: connect, send, and read the response.
    timeout: float


@dataclass(frozen=True)
class SendResult:
    #: The HTTP status, or None when no response arrived.
    status: int | None
    #: The start of the response body, decoded leniently, at most RESPONSE_BODY_LIMIT bytes.
    body: str
    #: Seconds from starting the request to the end of reading the (truncated) response.
    duration: float
    failure: FailureKind | None = None
    detail: str | None = None
    #: Seconds the receiver asked us to wait (Retry-After), if it said so.
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.failure is None and self.status is not None and 200 <= self.status < 300


#: How much of a response body is kept for the attempt log.
RESPONSE_BODY_LIMIT = 4096


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Trigger(StrEnum):
    """What caused an attempt: the retry schedule, a person (resend, recover), or a test."""

    SCHEDULED = "scheduled"
    MANUAL = "manual"
    TEST = "test"


@dataclass(frozen=True)
class Delivery:
    """One event addressed to one endpoint. Its id is not the webhook-id: that is the
    event's id, the same for every endpoint and every retry."""

    id: str
    event_id: str
    event_sequence: int
    endpoint_id: str
    incident_id: str | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    trigger: Trigger
    created_at: datetime
    last_status_code: int | None = None
    last_failure: str | None = None


@dataclass(frozen=True)
class Attempt:
    id: str
    delivery_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    number: int
    trigger: Trigger
    at: datetime
    duration_ms: float
    status_code: int | None
    response_body: str
    failure: FailureKind | None = None
    detail: str | None = None
    #: When the next try is due, if one was scheduled after this attempt.
    next_attempt_at: datetime | None = None
