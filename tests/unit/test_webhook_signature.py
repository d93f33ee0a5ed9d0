"""Interlock signs webhooks itself (for speed); the reference library must accept them."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from interlock.domain import webhooks
from interlock.domain.endpoints import generate_secret

BODY = '{"type":"incident.created","data":{"incident":{"title":"Zürich — 502 ✓"}}}'.encode()


@pytest.mark.parametrize("secret", [
    generate_secret(),
    "whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("="),  # unpadded
    base64.b64encode(b"no prefix at all").decode(),
])
def test_the_reference_library_verifies_every_signature(secret: str) -> None:
    now = int(time.time())
    headers = webhooks.headers("evt_1", now, BODY, [secret], {"x-team": "payments"})
    assert Webhook(secret).verify(BODY, headers)["type"] == "incident.created"
    assert headers["webhook-signature"] == Webhook(secret).sign(
        "evt_1", datetime.fromtimestamp(now, UTC), BODY.decode())


def test_during_rotation_each_live_secret_verifies_and_no_other_does() -> None:
    old, new, stranger = generate_secret(), generate_secret(), generate_secret()
    headers = webhooks.headers("evt_2", int(time.time()), BODY, [new, old], {})
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(BODY, headers)["data"]["incident"]["title"].startswith("Z")
    with pytest.raises(WebhookVerificationError, match="signature"):
        Webhook(stranger).verify(BODY, headers)


def test_a_changed_body_id_or_timestamp_fails_verification() -> None:
    secret = generate_secret()
    now = int(time.time())
    headers = webhooks.headers("evt_3", now, BODY, [secret], {})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "evt_4"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-timestamp": str(now - 1)})
