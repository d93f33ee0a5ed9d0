"""Status page subscribers: who hears of a page's public updates, and what they read.

Two kinds. An **email** subscriber confirms first (double opt-in): subscribing queues
one confirmation mail with a signed link and nothing else is ever sent to the address
until that link is followed. Every later mail carries a one-click unsubscribe link
and the ``List-Unsubscribe``/``List-Unsubscribe-Post`` headers of RFC 8058. A
**webhook** subscriber is a URL that receives a signed ``status_page.update`` event
through the webhook delivery engine (its own endpoint, with its own secret).

A subscriber follows a whole page, or chosen components of it: an update reaches it
when it touches one of them. What a subscriber reads is built here from the public
update and the page alone (:func:`update_mail`, :func:`public_event_data`): never the
incident's internal title, timeline, comments or alerts.

Tokens in links are HMACs of (purpose, subscriber id, the subscriber's nonce) under a
key derived from the server's secret key: unguessable, and a new nonce (a new
subscription after an unsubscribe) voids the old links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from interlock.domain.mail import MailKind, OutgoingMail, one_line
from interlock.domain.status_pages import ComponentStatus, PublicUpdate, StatusPage
from interlock.domain.timestamps import rfc3339

#: How long a confirmation link works.
CONFIRM_FOR = timedelta(days=7)
#: A second subscribe of a pending address within this time sends no second mail (so
#: the public form cannot be used to flood someone's inbox).
RESEND_AFTER = timedelta(minutes=10)
COMPONENTS_MAX = 200


class SubscriberKind(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class SubscriberStatus(StrEnum):
    #: Waiting for the address's owner to confirm (email only).
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


class TokenPurpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True)
class Subscriber:
    id: str
    page_id: str
    kind: SubscriberKind
    status: SubscriberStatus
    #: Component ids it follows; empty for the whole page.
    components: tuple[str, ...]
    #: Random, per subscription: part of every token, so old links die with it.
    nonce: str
    created_at: datetime
    updated_at: datetime
    email: str | None = None
    #: The webhook endpoint that delivers to it (webhook only).
    endpoint_id: str | None = None
    url: str | None = None
    #: When the last confirmation mail was queued.
    requested_at: datetime | None = None
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status is SubscriberStatus.CONFIRMED

    def follows(self, component_ids: Sequence[str]) -> bool:
        """Whether an update touching ``component_ids`` concerns it."""
        return not self.components or bool(set(self.components) & set(component_ids))


# -- tokens --------------------------------------------------------------------------------


def token_key(secret: str) -> bytes:
    """The key of subscriber links, derived so it signs nothing else."""
    return hmac.new(secret.encode(), b"interlock/status-subscriber-links/v1",
                    hashlib.sha256).digest()


def make_token(key: bytes, purpose: TokenPurpose, subscriber: Subscriber) -> str:
    return f"{subscriber.id}.{_mac(key, purpose, subscriber.id, subscriber.nonce)}"


def token_subscriber(token: str) -> str | None:
    """The subscriber id a token names (still to be verified), or None."""
    subscriber_id, dot, mac = token.partition(".")
    return subscriber_id if dot and mac and 0 < len(subscriber_id) <= 40 else None


def token_matches(key: bytes, purpose: TokenPurpose, token: str, subscriber: Subscriber
                  ) -> bool:
    return hmac.compare_digest(token.encode(), make_token(key, purpose, subscriber).encode())


def _mac(key: bytes, purpose: TokenPurpose, subscriber_id: str, nonce: str) -> str:
    digest = hmac.new(key, f"{purpose.value}|{subscriber_id}|{nonce}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


# -- what subscribers read ----------------------------------------------------------------


@dataclass(frozen=True)
class Links:
    page: str
    unsubscribe: str
    confirm: str | None = None


def confirmation_mail(mail_id: str, subscriber: Subscriber, page: StatusPage,
                      component_names: Sequence[str], links: Links, now: datetime
                      ) -> OutgoingMail:
    following = (", ".join(component_names) if component_names
                 else "every component of the page")
    body = (
        f"Someone (we hope you) asked to receive {page.title} status updates at this "
        f"address, for {following}.\n\n"
        f"To confirm, open this link within {CONFIRM_FOR.days} days:\n{links.confirm}\n\n"
        "If it was not you, ignore this message: nothing more will be sent.\n\n"
        f"{page.title} status: {links.page}\n"
    )
    return OutgoingMail(
        id=mail_id, recipient=subscriber.email or "", kind=MailKind.CONFIRMATION,
        subject=one_line(f"Confirm your subscription to {page.title} status"),
        body=body, created_at=now, subscriber_id=subscriber.id)


def update_mail(mail_id: str, subscriber: Subscriber, page: StatusPage,
                update: PublicUpdate, component_names: Mapping[str, str], links: Links,
                now: datetime) -> OutgoingMail:
    """The mail of one public update: its title, status, text, the components it
    changed on this page, its estimated resolution, and links. Nothing else."""
    lines = [update.title, "", f"Status: {update.status.label}", "", update.body.strip(), ""]
    changed = [f"  {component_names[component_id]}: {_label(status)}"
               for component_id, status in update.components.items()
               if component_id in component_names]
    if changed:
        lines += ["Components:", *changed, ""]
    if update.estimated_resolution_at is not None:
        lines += [f"Estimated resolution: {update.estimated_resolution_at:%Y-%m-%d %H:%M} UTC",
                  ""]
    lines += [f"Published {update.published_at:%Y-%m-%d %H:%M} UTC.", "",
              f"{page.title} status: {links.page}", "",
              f"Unsubscribe with one click: {links.unsubscribe}"]
    return OutgoingMail(
        id=mail_id, recipient=subscriber.email or "", kind=MailKind.UPDATE,
        subject=one_line(f"[{page.title}] {update.title}: {update.status.label}"),
        body="\n".join(lines) + "\n", created_at=now, subscriber_id=subscriber.id,
        headers={"List-Unsubscribe": f"<{links.unsubscribe}>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                 "Auto-Submitted": "auto-generated"})


def public_event_data(page: StatusPage, update: PublicUpdate, impact: str,
                      component_names: Mapping[str, str], page_url: str) -> dict[str, Any]:
    """The ``status_page.update`` event of one page: public fields only (the shape of
    the page's own incidents.json, not the incident's)."""
    return {
        "page": {"id": page.id, "slug": page.slug, "name": page.title, "url": page_url},
        "incident": {
            "id": update.incident_id, "name": update.title, "status": update.status.value,
            "impact": impact, "url": f"{page_url}#{update.incident_id}",
        },
        "update": {
            "id": update.id, "status": update.status.value, "body": update.body,
            "published_at": rfc3339(update.published_at),
            "estimated_resolution_at": rfc3339(update.estimated_resolution_at),
            "components": [{"id": component_id, "name": component_names[component_id],
                            "status": status.value}
                           for component_id, status in update.components.items()
                           if component_id in component_names],
        },
    }


def _label(status: ComponentStatus) -> str:
    return status.label
