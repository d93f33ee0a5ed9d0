"""Reading the calls ServiceNow's Business Rule makes to the connector's hook.

ServiceNow has no webhook subscriptions of its own: the README gives a Business Rule
(after insert and update on ``incident``) that sends an outbound REST message with a
small JSON body, ``{"sys_id", "number", "sys_mod_count", "sys_updated_by"}``, and the
shared secret in the ``X-Interlock-Secret`` header. That secret is the whole proof of
origin, so it is compared in constant time before the body is read.

``sys_mod_count`` goes up by one on every update of a record, so ``sys_id`` with it
names one change: a repeated call for the same change is a duplicate. A change whose
``sys_updated_by`` is Interlock's integration user is Interlock's own (an echo). The
body is only a hint: the connector reads the record itself before applying anything.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from interlock.domain import json_input
from interlock.domain.errors import BadRequest, Unauthenticated
from interlock.ports.connector import HookNotice

SECRET_HEADER = "x-interlock-secret"
#: A record's sys_id: 32 hexadecimal characters.
SYS_ID = re.compile(r"^[0-9a-f]{32}$")


def verify(headers: Mapping[str, str], secret: str) -> None:
    given = headers.get(SECRET_HEADER, "")
    if not given:
        raise Unauthenticated("the ServiceNow call has no X-Interlock-Secret header; the "
                              "Business Rule must send the connector's hook_secret in it")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        raise Unauthenticated("the ServiceNow call's X-Interlock-Secret does not match the "
                              "connector's hook_secret")


def read(headers: Mapping[str, str], body: bytes, secret: str, own_user: str) -> HookNotice:
    lowered = {name.lower(): value for name, value in headers.items()}
    verify(lowered, secret)
    payload = _payload(body)
    table = str(payload.get("table") or "incident")
    if table != "incident":
        return HookNotice(delivery_id=None,
                          ignored=f"a change on table {table}, not incident")
    sys_id = str(payload.get("sys_id") or "").strip().lower()
    if not SYS_ID.match(sys_id):
        raise BadRequest("the ServiceNow call's sys_id is not a record's sys_id "
                         "(32 hexadecimal characters)")
    count = str(payload.get("sys_mod_count") or "").strip()
    delivery_id = (f"{sys_id}:{count}" if count
                   else "sha256:" + hashlib.sha256(body).hexdigest())
    who = str(payload.get("sys_updated_by") or "").strip()
    name = str(payload.get("number") or sys_id)
    return HookNotice(delivery_id=delivery_id, external_id=sys_id,
                      from_interlock=bool(own_user) and who == own_user,
                      description=f"ServiceNow {name} updated by {who or 'someone'}")


def _payload(body: bytes) -> dict[str, Any]:
    payload = json_input.loads(body, what="the ServiceNow call's body")
    if not isinstance(payload, dict):
        raise BadRequest("the ServiceNow call's body is not a JSON object")
    return payload
