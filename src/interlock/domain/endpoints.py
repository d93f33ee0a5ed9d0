"""Webhook endpoints: where events go, which ones, in what shape, signed with what.

Signing secrets are ``whsec_`` + base64 of 24 random bytes (the Standard Webhooks
form). During a rotation the previous secret keeps signing for a grace period, so a
receiver can switch at its own pace: both signatures travel in one header.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from interlock.domain.errors import InvalidInput
from interlock.domain.events import EventType

SECRET_PREFIX = "whsec_"
ROTATION_GRACE = timedelta(hours=24)
TIMEOUT_RANGE = (1.0, 60.0)
DEFAULT_TIMEOUT = 10.0
#: Headers Interlock sets itself; an endpoint may not override them.
RESERVED_HEADERS = frozenset({
    "webhook-id", "webhook-timestamp", "webhook-signature", "content-type",
    "content-length", "host", "transfer-encoding", "connection", "user-agent",
})
#: Header name prefixes of signing schemes: a custom ``svix-id`` beside our ``webhook-*``
#: headers makes receivers that use the svix library verify the wrong scheme and fail.
RESERVED_PREFIXES = ("webhook-", "svix-")
MAX_HEADERS = 20
#: Deliveries per second an endpoint may be limited to. Below 0.01 (one in 100 s) a
#: lane would hold its deliveries for longer than any lease; 5e-324 made it sleep forever.
RATE_LIMIT_RANGE = (0.01, 10_000.0)


@dataclass(frozen=True)
class SigningSecret:
    value: str
    #: None for the current secret; set on one being rotated out.
    expires_at: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    created_at: datetime
    updated_at: datetime
    secrets: tuple[SigningSecret, ...]
    description: str = ""
    #: Empty means every event type.
    event_types: frozenset[EventType] = frozenset()
    filter: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    template: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    #: Deliveries per second at most; None for no limit.
    rate_limit: float | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    #: When the current run of failures began; None after a success.
    failing_since: datetime | None = None
    last_success_at: datetime | None = None

    def wants(self, event_type: EventType) -> bool:
        return not self.event_types or event_type in self.event_types

    def live_secrets(self, now: datetime) -> list[str]:
        return [secret.value for secret in self.secrets if secret.is_live(now)]


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def rotate(endpoint: Endpoint, now: datetime) -> tuple[Endpoint, str]:
    """A new current secret; the old current one signs on for ROTATION_GRACE."""
    new_secret = generate_secret()
    kept = tuple(
        SigningSecret(secret.value, secret.expires_at or now + ROTATION_GRACE)
        for secret in endpoint.secrets
        if secret.is_live(now)
    )
    rotated = dataclasses.replace(
        endpoint, secrets=(SigningSecret(new_secret), *kept), updated_at=now
    )
    return rotated, new_secret


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    if len(headers) > MAX_HEADERS:
        raise InvalidInput(f"at most {MAX_HEADERS} custom headers")
    problems = []
    for name, value in headers.items():
        if name.lower() in RESERVED_HEADERS or name.lower().startswith(RESERVED_PREFIXES):
            problems.append({"field": f"headers.{name}", "message": "set by Interlock itself"})
        elif not name or not all(33 <= ord(c) < 127 and c not in '()<>@,;:\\"/[]?={}'
                                  for c in name):
            problems.append({"field": f"headers.{name}", "message": "not a valid header name"})
        elif any(c in value for c in "\r\n\x00"):
            problems.append({"field": f"headers.{name}", "message": "value has line breaks"})
    if problems:
        raise InvalidInput("custom headers are not acceptable: "
                           + "; ".join(f"{p['field']} {p['message']}" for p in problems),
                           errors=problems)
    return dict(headers)


def check_timeout(timeout: float) -> float:
    low, high = TIMEOUT_RANGE
    if not low <= timeout <= high:
        raise InvalidInput(f"timeout must be between {low:g} and {high:g} seconds",
                           errors=[{"field": "timeout", "message": f"{low:g} to {high:g}"}])
    return timeout


def check_rate_limit(rate_limit: float | None, bounds: tuple[float, float] = RATE_LIMIT_RANGE,
                     ) -> float | None:
    """None (no limit), or a rate within ``bounds`` per second."""
    if rate_limit is None:
        return None
    low, high = bounds
    if not low <= rate_limit <= high:  # also refuses NaN
        raise InvalidInput(f"rate_limit must be between {low:g} and {high:g} per second",
                           errors=[{"field": "rate_limit", "message": f"{low:g} to {high:g}"}])
    return rate_limit
