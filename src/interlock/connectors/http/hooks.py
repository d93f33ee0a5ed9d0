"""Reading the tool's webhooks: check the HMAC signature, then say which object changed.

The signature is checked on the raw body, before anything in it is read; a request
that fails it is answered 401 and leaves no trace (anyone can send those). The payload
is only a hint: the sync service fetches the object's current state before applying
anything, so only the object's id, the delivery id and whether Interlock's own account
made the change matter here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

from interlock.connectors.http.config import HmacCheck, HttpCredentials, HttpSettings
from interlock.connectors.http.rendering import scalar_text, search, truthy
from interlock.domain import json_input
from interlock.domain.errors import BadRequest, NotFound, ToolFailed, Unauthenticated
from interlock.ports.connector import HookNotice


def signature(check: HmacCheck, secret: str, body: bytes, timestamp: str = "") -> str:
    """The header value the tool sends for ``body`` (and ``timestamp``)."""
    signed = check.signed.removesuffix("{body}").replace("{timestamp}", timestamp)
    digest = hmac.new(secret.encode(), signed.encode() + body, check.algorithm).digest()
    encoded = (digest.hex() if check.encoding == "hex"
               else base64.b64encode(digest).decode("ascii"))
    return check.prefix + encoded


def verify(check: HmacCheck, secret: str | None, headers: Mapping[str, str], body: bytes,
           now: datetime) -> None:
    """Return if ``body`` is signed with ``secret`` (and, when the timestamp is signed,
    recently); else Unauthenticated saying which check failed. ``headers`` by lower-case
    name."""
    if not secret:
        raise Unauthenticated("this connector has no credentials.hmac_secret to check "
                              "webhook signatures with")
    given = headers.get(check.header.lower(), "").strip()
    if not given:
        raise Unauthenticated(f"the webhook has no {check.header} header: it was not "
                              "signed by the tool")
    timestamp = ""
    if check.timestamp_header:
        timestamp = headers.get(check.timestamp_header.lower(), "").strip()
        if not timestamp:
            raise Unauthenticated(f"the webhook has no {check.timestamp_header} header")
    expected = signature(check, secret, body, timestamp)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthenticated(f"the webhook's {check.header} does not match: it was not "
                              "signed with this connector's hmac_secret")
    if check.timestamp_header:
        try:
            sent_at = float(timestamp)
        except ValueError as error:
            raise Unauthenticated(f"{check.timestamp_header} is not a unix time") from error
        skew = abs(now.timestamp() - sent_at)
        if skew > check.tolerance_seconds:
            raise Unauthenticated(
                f"{check.timestamp_header} is {int(skew)} s away from now (at most "
                f"{check.tolerance_seconds} s is accepted): a replayed request, or a "
                "clock that is off")


def read(settings: HttpSettings, credentials: HttpCredentials, headers: Mapping[str, str],
         body: bytes, now: datetime) -> HookNotice:
    hook = settings.hook
    if hook is None:
        raise NotFound("this http connector has no settings.hook, so it takes no webhooks")
    lowered = {name.lower(): value for name, value in headers.items()}
    if settings.hmac is not None:
        secret = credentials.hmac_secret
        verify(settings.hmac, secret.get_secret_value() if secret else None, lowered, body,
               now)
    delivery_id = None
    if hook.delivery_id_header:
        delivery_id = lowered.get(hook.delivery_id_header.lower()) or None
    delivery_id = delivery_id or "sha256:" + hashlib.sha256(body).hexdigest()
    payload = json_input.loads(body, what="the webhook body")
    try:
        if hook.when is not None and not truthy(search(hook.when, payload, "hook.when")):
            return HookNotice(delivery_id=delivery_id,
                              ignored=f"not a change Interlock follows (hook.when is "
                                      f"false: {hook.when})")
        found = search(hook.external_id, payload, "hook.external_id")
        by_interlock = (hook.by_interlock is not None
                        and truthy(search(hook.by_interlock, payload, "hook.by_interlock")))
    except ToolFailed as error:
        raise BadRequest(f"the webhook cannot be read: {error.detail}") from error
    try:
        external_id = scalar_text(found)
    except ValueError as error:
        raise BadRequest(f"hook.external_id ({hook.external_id}): {error}") from error
    if not external_id:
        return HookNotice(delivery_id=delivery_id,
                          ignored=f"the webhook names no object ({hook.external_id} is null)")
    return HookNotice(delivery_id=delivery_id, external_id=external_id,
                      from_interlock=by_interlock,
                      description=f"webhook about {external_id}")
