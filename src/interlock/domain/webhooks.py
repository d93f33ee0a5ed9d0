"""The Standard Webhooks wire format: payload, headers, signature.

The body is built once per event and shared by every endpoint without a template; a
private incident's payload carries only its id and version, whatever the endpoint.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from interlock.domain.timestamps import rfc3339

USER_AGENT = "Interlock-Webhooks/1"


def payload(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": event_type,
        "timestamp": rfc3339(occurred_at),
        "data": redact(data),
    }


def redact(data: Mapping[str, Any]) -> dict[str, Any]:
    """What may leave Interlock: a private incident shows only its id and version."""
    incident = data.get("incident")
    if isinstance(incident, Mapping) and incident.get("visibility") == "private":
        return {"incident": {"id": incident["id"], "version": incident["version"]}}
    return dict(data)


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, by the reference library."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    signed: str = _signer(secret).sign(message_id, moment, body.decode("utf-8"))
    return signed


@functools.lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    """Decoding a secret costs more than signing a small body; keep decoded ones."""
    return Webhook(secret)


def headers(
    message_id: str, timestamp: int, body: bytes, secrets: list[str],
    custom: Mapping[str, str],
) -> dict[str, str]:
    return {
        **custom,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets
        ),
    }
