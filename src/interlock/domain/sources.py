"""Sources (inbound integrations), how their requests are authenticated, and how their
alerts are grouped into incidents.

A source has a token, shown once and stored as a digest, that monitoring tools present
as a Bearer token, a Basic-auth password or ``?token=``. Tools that sign requests can
instead sign with the source's signing secret (Grafana's HMAC header; Standard Webhooks
for generic JSON), which must be kept to verify and so is stored as given.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from interlock.domain import endpoints
from interlock.domain.alerts import Signal
from interlock.domain.errors import InvalidInput

TOKEN_PREFIX = "ilt_"
DEFAULT_GROUPING = "{service}/{name}"
DEFAULT_REOPEN_WINDOW = timedelta(hours=1)
GRAFANA_SIGNATURE_HEADER = "x-grafana-alerting-signature"
#: How far a signature's timestamp may be from our clock, either way (as Standard
#: Webhooks allows).
SIGNATURE_TOLERANCE = timedelta(minutes=5)
_PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[^{}]+)?)\}")
_GROUP_FIELDS = ("service", "name", "severity", "title", "fingerprint")
#: Requests per second a source may be limited to; a tiny rate (5e-324) overflowed the
#: Retry-After computation and made ingest answer 500.
RATE_LIMIT_RANGE = (0.01, 100_000.0)


@dataclass(frozen=True)
class Source:
    id: str
    name: str
    #: An installed SourcePlugin's kind (built in: the SourceKind names).
    kind: str
    token_digest: str
    created_at: datetime
    updated_at: datetime
    #: For tools that sign requests: Grafana's HMAC secret, or a whsec_ secret (generic).
    signing_secret: str | None = None
    #: Grafana: the header carrying the Unix timestamp included in the signature, if set.
    timestamp_header: str | None = None
    #: Parser options (service/severity label, fingerprint fields, generic mapping).
    options: Mapping[str, Any] = field(default_factory=dict)
    grouping: str = DEFAULT_GROUPING
    auto_resolve: bool = True
    reopen_window: timedelta = DEFAULT_REOPEN_WINDOW
    #: Requests per second accepted at most; None for no limit.
    rate_limit: float | None = None
    enabled: bool = True

    def ingest_path(self) -> str:
        return f"/ingest/{self.id}"


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(source: Source, presented: str) -> bool:
    return hmac.compare_digest(source.token_digest, token_digest(presented))


def grafana_signature_valid(
    source: Source, body: bytes, signature: str, timestamp: str | None, now: datetime
) -> bool:
    """Grafana signs hex(HMAC-SHA256(secret, body)), or of ``timestamp + ":" + body``
    when a timestamp header is configured. With one configured, the timestamp (Unix
    seconds) is required and must be within SIGNATURE_TOLERANCE of ``now``: a signature
    without it, or an old one, could be replayed for ever. Without one, Grafana sends
    no time to check, and any replay of a signed body is accepted."""
    if not source.signing_secret:
        return False
    if source.timestamp_header is None:
        signed = body
    elif timestamp is None or not _recent(timestamp, now):
        return False
    else:
        signed = timestamp.encode() + b":" + body
    expected = hmac.new(source.signing_secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def _recent(timestamp: str, now: datetime) -> bool:
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(now.timestamp() - int(timestamp)) <= SIGNATURE_TOLERANCE.total_seconds()


def group_key(template: str, signal: Signal) -> str:
    """Render a grouping template such as ``{service}/{name}`` or
    ``{labels.cluster}:{name}``; a missing value renders as ``-``."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("labels."):
            found: object = signal.labels.get(name[len("labels."):])
        else:
            found = getattr(signal, name, None)
        text = str(found.value if hasattr(found, "value") else found) if found else ""
        return text or "-"

    return _PLACEHOLDER.sub(value, template)


def check_grouping(template: str) -> str:
    if not template or len(template) > 200:
        raise InvalidInput("grouping must be 1 to 200 characters",
                           errors=[{"field": "grouping", "message": "1 to 200 characters"}])
    names = _PLACEHOLDER.findall(template)
    if not names:
        raise InvalidInput("grouping needs at least one {placeholder}, e.g. {service}/{name}",
                           errors=[{"field": "grouping", "message": "no placeholder"}])
    unknown = [n for n in names if n not in _GROUP_FIELDS and not n.startswith("labels.")]
    if unknown:
        raise InvalidInput(
            f"grouping placeholders must be one of {', '.join(_GROUP_FIELDS)} or labels.NAME; "
            f"got {', '.join(unknown)}",
            errors=[{"field": "grouping", "message": f"unknown placeholder {unknown[0]}"}],
        )
    return template


def standard_signature_valid(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """A generic source's request signed the Standard Webhooks way (with its own
    five-minute replay window)."""
    try:
        Webhook(secret).verify(body, dict(headers))
    except (WebhookVerificationError, ValueError):
        return False
    return True



def check_rate_limit(rate_limit: float | None) -> float | None:
    """None (no limit), or a rate within RATE_LIMIT_RANGE per second."""
    return endpoints.check_rate_limit(rate_limit, RATE_LIMIT_RANGE)
