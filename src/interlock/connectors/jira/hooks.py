"""Reading Jira's webhooks: verify, deduplicate, and say which issue changed.

Jira Cloud signs an admin webhook registered with a secret the WebSub way: header
``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>``. Each delivery carries
``X-Atlassian-Webhook-Identifier``, which stays the same when Jira retries it, so it is
the delivery id Interlock deduplicates on. The payload is only a hint that something
changed: the sync service pulls the issue's current state before applying anything, so
only the issue key and who made the change matter here (a change made by Interlock's
own account is an echo of a push and is flagged as such).
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

SIGNATURE_HEADER = "x-hub-signature"
DELIVERY_HEADER = "x-atlassian-webhook-identifier"

#: Webhook events that may change what Interlock mirrors (status, assignee, comments);
#: a deleted issue is pulled too, and its 404 marks the link broken.
ISSUE_EVENTS = frozenset({"jira:issue_updated", "jira:issue_deleted", "comment_created",
                          "comment_updated"})


def sign(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature`` value Jira sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Raise Unauthenticated unless the body is signed with ``secret``."""
    given = headers.get(SIGNATURE_HEADER, "").strip()
    if not given:
        raise Unauthenticated("the Jira webhook has no X-Hub-Signature header; set the "
                              "webhook's secret in Jira to the connector's webhook_secret")
    if not secret or not hmac.compare_digest(given.encode(), sign(body, secret).encode()):
        raise Unauthenticated("the Jira webhook's X-Hub-Signature does not match the "
                              "connector's webhook_secret")


def read(connector: Connector, headers: Mapping[str, str], body: bytes) -> HookNotice:
    """What one verified delivery says. Header names are matched case-insensitively."""
    lowered = {name.lower(): value for name, value in headers.items()}
    verify(lowered, body, connector.credentials.get("webhook_secret", ""))
    delivery_id = lowered.get(DELIVERY_HEADER) or "sha256:" + hashlib.sha256(body).hexdigest()
    payload = _payload(body)
    event = str(payload.get("webhookEvent") or "")
    if event not in ISSUE_EVENTS:
        return HookNotice(delivery_id=delivery_id,
                          ignored=f"Jira event {event or '(none)'} is not one Interlock uses")
    issue = payload.get("issue")
    key = issue.get("key") if isinstance(issue, dict) else None
    if not isinstance(key, str) or not key:
        return HookNotice(delivery_id=delivery_id, ignored=f"{event} names no issue")
    # An issue moved to another project has a new key; its link still has the old one
    # (until the pull this queues moves it), which the changelog names.
    key = _key_before_move(payload) or key
    actor = _actor(event, payload)
    own = own_account(connector)
    from_interlock = own is not None and actor.get("accountId") == own
    name = actor.get("displayName") or actor.get("accountId") or "someone"
    issue_id = issue.get("id") if isinstance(issue, dict) else None
    return HookNotice(delivery_id=delivery_id, external_id=key, from_interlock=from_interlock,
                      stable_id=("issue_id", str(issue_id)) if issue_id else None,
                      description=f"{event} {key} by {name}")


def own_account(connector: Connector) -> str | None:
    """Interlock's own Jira account id: configured, or learned from ``/myself``."""
    value = connector.settings.get("account_id") or connector.state.get("account_id")
    return str(value) if value else None


def _key_before_move(payload: Mapping[str, Any]) -> str | None:
    changelog = payload.get("changelog")
    items = changelog.get("items") if isinstance(changelog, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("field") == "Key" \
                and isinstance(item.get("fromString"), str) and item["fromString"]:
            return str(item["fromString"])
    return None


def _payload(body: bytes) -> dict[str, Any]:
    payload = json_input.loads(body, what="the Jira webhook body")
    if not isinstance(payload, dict):
        raise BadRequest("the Jira webhook body is not a JSON object")
    return payload


def _actor(event: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Who made the change: the comment's author (or last editor) for comment events,
    the webhook's ``user`` otherwise."""
    if event.startswith("comment_"):
        comment = payload.get("comment")
        if isinstance(comment, dict):
            who = comment.get("updateAuthor" if event == "comment_updated" else "author")
            if isinstance(who, dict):
                return who
    user = payload.get("user")
    return user if isinstance(user, dict) else {}
