"""Slack's request signing (version ``v0``), checked before anything in a request is read.

Slack signs every request it sends to an app: ``X-Slack-Signature`` is ``v0=`` plus the
hex HMAC-SHA256, keyed with the app's signing secret, of ``v0:{timestamp}:{raw body}``,
where the timestamp is the ``X-Slack-Request-Timestamp`` header (unix seconds). The
timestamp is inside the signed text, so refusing old ones stops a captured request
from being replayed later; Slack's own libraries allow five minutes either way.

The signature covers the *raw* body: it must be checked on the bytes as received,
before the form is decoded.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

from interlock.domain.errors import Unauthenticated

VERSION = "v0"
SIGNATURE_HEADER = "x-slack-signature"
TIMESTAMP_HEADER = "x-slack-request-timestamp"
#: How far (either way) a request's timestamp may be from now, in seconds.
REPLAY_WINDOW = 5 * 60


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` value Slack sends for ``body`` sent at ``timestamp``."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def lowered(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers by lower-case name: HTTP header names are case-insensitive, and what a
    web framework hands over may keep whatever case the sender used."""
    return {name.lower(): value for name, value in headers.items()}


def verify(secret: str | None, headers: Mapping[str, str], body: bytes,
           now: datetime) -> None:
    """Return if ``body`` was signed by Slack with ``secret`` within the replay window;
    else raise Unauthenticated saying which check failed (the caller answers 401)."""
    if not secret:
        raise Unauthenticated("this Slack connector has no signing secret; set "
                              "credentials.signing_secret from the Slack app's Basic "
                              "Information page")
    by_name = lowered(headers)
    given = by_name.get(SIGNATURE_HEADER, "").strip()
    timestamp = by_name.get(TIMESTAMP_HEADER, "").strip()
    if not given or not timestamp:
        raise Unauthenticated("missing X-Slack-Signature or X-Slack-Request-Timestamp: "
                              "the request was not sent by Slack")
    try:
        sent_at = int(timestamp)
    except ValueError as error:
        raise Unauthenticated("X-Slack-Request-Timestamp is not a unix time") from error
    expected = signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthenticated("X-Slack-Signature does not match: the request was not "
                              "signed with this connector's signing secret")
    skew = abs(now.timestamp() - sent_at)
    if skew > REPLAY_WINDOW:
        raise Unauthenticated(
            f"X-Slack-Request-Timestamp is {int(skew)} seconds away from now; requests "
            f"more than {REPLAY_WINDOW // 60} minutes old are refused as possible replays "
            "(if Slack's requests are all refused, check this server's clock)")
