"""Reading PagerDuty's v3 webhooks: verify, deduplicate, and say which incident changed.

Signature (developer.pagerduty.com, Webhooks > Verifying Signatures): the
``X-PagerDuty-Signature`` header holds one or more comma-separated ``v1=<hex>``
values, each the HMAC-SHA256 of the raw body under one of the subscription's signing
secrets; while a secret is being rotated there is one per secret. A delivery is
genuine if any of them matches. Each is compared in constant time.

Delivery id (Webhooks > Behavior): PagerDuty delivers at least once and repeats the
``X-Webhook-Id`` header on every attempt of one webhook, so it is what Interlock
deduplicates on.

The payload is only a hint that an incident changed: the sync service pulls the
incident before applying anything. What matters here is which incident (``data.id``
for incident events, ``data.incident.id`` for a note) and who acted (``event.agent``):
the From user Interlock writes as is an echo of a push.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from interlock.domain import json_input
from interlock.domain.connectors import Connector
from interlock.domain.errors import BadRequest, Unauthenticated
from interlock.ports.connector import HookNotice

SIGNATURE_HEADER = "x-pagerduty-signature"
DELIVERY_HEADER = "x-webhook-id"
VERSION = "v1"

#: Event types that may change what Interlock mirrors (status, assignee, notes).
INCIDENT_EVENTS = frozenset({
    "incident.acknowledged", "incident.annotated", "incident.delegated",
    "incident.escalated", "incident.reassigned", "incident.reopened", "incident.resolved",
    "incident.triggered", "incident.unacknowledged",
})


def sign(body: bytes, *secrets: str) -> str:
    """The header value PagerDuty sends for ``body``, one signature per secret."""
    return ",".join(f"{VERSION}={hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}"
                    for secret in secrets)


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Raise Unauthenticated unless one of the signatures is ``body`` under ``secret``."""
    given = headers.get(SIGNATURE_HEADER, "").strip()
    if not given:
        raise Unauthenticated("the PagerDuty webhook has no X-PagerDuty-Signature header: "
                              "it was not sent by a v3 webhook subscription")
    if not secret:
        raise Unauthenticated("this PagerDuty connector has no webhook_secret")
    expected = sign(body, secret).encode()
    offered = [item.strip() for item in given.split(",") if item.strip()]
    # Every offered signature is compared (no early exit), each in constant time.
    matches = [hmac.compare_digest(expected, item.encode()) for item in offered
               if item.startswith(f"{VERSION}=")]
    if not any(matches):
        raise Unauthenticated("the PagerDuty webhook's X-PagerDuty-Signature does not match "
                              "the connector's webhook_secret (the subscription's signing "
                              "secret)")


def read(connector: Connector, headers: Mapping[str, str], body: bytes,
         own_user: str | None) -> HookNotice:
    """What one verified delivery says. ``own_user`` is the From user's id."""
    lowered = {name.lower(): value for name, value in headers.items()}
    verify(lowered, body, connector.credentials.get("webhook_secret", ""))
    delivery_id = (lowered.get(DELIVERY_HEADER, "").strip()
                   or "sha256:" + hashlib.sha256(body).hexdigest())
    event = _event(body)
    event_type = str(event.get("event_type") or "")
    if event_type not in INCIDENT_EVENTS:
        return HookNotice(delivery_id=delivery_id, ignored=(
            f"PagerDuty event {event_type or '(none)'} is not one Interlock uses"))
    incident_id = _incident_id(event)
    if incident_id is None:
        return HookNotice(delivery_id=delivery_id, ignored=f"{event_type} names no incident")
    agent = event.get("agent")
    agent = agent if isinstance(agent, dict) else {}
    from_interlock = bool(own_user) and agent.get("type") == "user_reference" \
        and agent.get("id") == own_user
    who = agent.get("summary") or agent.get("id") or "PagerDuty"
    return HookNotice(delivery_id=delivery_id, external_id=incident_id,
                      from_interlock=from_interlock,
                      description=f"{event_type} {incident_id} by {who}")


def _event(body: bytes) -> dict[str, Any]:
    payload = json_input.loads(body, what="the PagerDuty webhook body")
    event = payload.get("event") if isinstance(payload, dict) else None
    if not isinstance(event, dict):
        raise BadRequest("the PagerDuty webhook body has no event object")
    return event


def _incident_id(event: Mapping[str, Any]) -> str | None:
    data = event.get("data")
    if not isinstance(data, dict):
        return None
    if data.get("type") == "incident":
        value = data.get("id")
    else:  # incident_note and the other incident_* data types nest a reference
        incident = data.get("incident")
        value = incident.get("id") if isinstance(incident, dict) else None
    return str(value) if isinstance(value, str) and value else None
