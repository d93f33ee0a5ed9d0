"""The pure rules of subscribers and mail: addresses, link tokens, the retry decision,
what an update mail and a subscriber webhook say (and do not say)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from interlock.domain.errors import InvalidInput
from interlock.domain.mail import (
    MailKind,
    MailResult,
    MailStatus,
    OutgoingMail,
    checked_address,
    is_address,
    one_line,
    outcome,
)
from interlock.domain.status_pages import (
    ComponentStatus,
    PageVisibility,
    PublicUpdate,
    StatusPage,
    UpdateStatus,
)
from interlock.domain.subscribers import (
    Links,
    Subscriber,
    SubscriberKind,
    SubscriberStatus,
    TokenPurpose,
    make_token,
    public_event_data,
    token_key,
    token_matches,
    token_subscriber,
    update_mail,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PAGE = StatusPage(id="spg_1", name="Acme", slug="acme", title="Acme",
                  visibility=PageVisibility.PUBLIC, version=3, created_at=NOW, updated_at=NOW)
UPDATE = PublicUpdate(
    id="pub_1", incident_id="inc_1", status=UpdateStatus.IDENTIFIED, title="Checkout errors",
    body="A broken disk; we are replacing it.",
    components={"cmp_api": ComponentStatus.PARTIAL_OUTAGE}, page_ids=("spg_1",),
    published_at=NOW, estimated_resolution_at=NOW + timedelta(hours=1), author="alice")


def subscriber(**changes: object) -> Subscriber:
    values: dict[str, object] = dict(
        id="sub_1", page_id="spg_1", kind=SubscriberKind.EMAIL,
        status=SubscriberStatus.CONFIRMED, components=(), nonce="n1", created_at=NOW,
        updated_at=NOW, email="ada@example.org")
    values.update(changes)
    return Subscriber(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["ada@example.org", "a.b+tag@mail.example.co.uk",
                                  "o'neil@example.org"])
def test_addresses(text: str) -> None:
    assert is_address(text)


@pytest.mark.parametrize("text", ["", "ada", "ada@", "@example.org", "ada@@example.org",
                                  "ada@localhost", "Ada <ada@example.org>",
                                  "ada@example.org\r\nBcc: x@example.org", "é@example.org",
                                  "ada@-example.org", "a" * 65 + "@example.org"])
def test_not_addresses(text: str) -> None:
    assert not is_address(text)
    with pytest.raises(InvalidInput) as refused:
        checked_address(text)
    assert refused.value.errors == [{"field": "email", "message":
                                     "must be an e-mail address like name@example.com"}]


def test_headers_never_carry_a_newline() -> None:
    assert one_line("Checkout\r\nBcc: x@example.org") == "Checkout Bcc: x@example.org"


def test_tokens_are_bound_to_purpose_subscriber_and_nonce() -> None:
    key = token_key("secret")
    ada = subscriber()
    token = make_token(key, TokenPurpose.UNSUBSCRIBE, ada)
    assert token_subscriber(token) == "sub_1"
    assert token_matches(key, TokenPurpose.UNSUBSCRIBE, token, ada)
    assert not token_matches(key, TokenPurpose.CONFIRM, token, ada)
    assert not token_matches(token_key("other secret"), TokenPurpose.UNSUBSCRIBE, token, ada)
    # A new subscription (a new nonce) voids the old links.
    assert not token_matches(key, TokenPurpose.UNSUBSCRIBE, token, subscriber(nonce="n2"))
    assert token_subscriber("garbage") is None


def test_mail_retry_decisions() -> None:
    mail = OutgoingMail(id="mail_1", recipient="ada@example.org", subject="s", body="b",
                        kind=MailKind.UPDATE, created_at=NOW, attempts=0)
    sent = outcome(mail, MailResult("mail_1"), NOW)
    assert sent.status is MailStatus.SENT and sent.next_attempt_at is None
    down = outcome(mail, MailResult("mail_1", "refused", retryable=True), NOW)
    assert down.status is MailStatus.PENDING and down.next_attempt_at is not None
    refused = outcome(mail, MailResult("mail_1", "550", retryable=False), NOW)
    assert refused.status is MailStatus.FAILED and refused.next_attempt_at is None
    spent = outcome(OutgoingMail(**{**mail.__dict__, "attempts": 11}),
                    MailResult("mail_1", "down", retryable=True), NOW)
    assert spent.status is MailStatus.FAILED


def test_component_subscribers_follow_only_their_components() -> None:
    assert subscriber().follows(["cmp_api"])
    assert subscriber(components=("cmp_web",)).follows(["cmp_api", "cmp_web"])
    assert not subscriber(components=("cmp_web",)).follows(["cmp_api"])


def test_the_update_mail_says_the_public_update_and_nothing_else() -> None:
    links = Links(page="https://status.example.com/status/acme",
                  unsubscribe="https://status.example.com/status/acme/unsubscribe?token=t")
    mail = update_mail("mail_1", subscriber(), PAGE, UPDATE, {"cmp_api": "API"}, links, NOW)
    assert mail.subject == "[Acme] Checkout errors: Identified"
    assert "A broken disk; we are replacing it." in mail.body
    assert "API: Partial outage" in mail.body
    assert "Estimated resolution: 2026-11-30 13:00 UTC" in mail.body
    assert "alice" not in mail.body  # who published is for the console only
    assert mail.headers["List-Unsubscribe"] == f"<{links.unsubscribe}>"
    assert mail.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_webhook_event_holds_public_fields_only() -> None:
    data = public_event_data(PAGE, UPDATE, "major", {"cmp_api": "API"},
                             "https://status.example.com/status/acme")
    assert set(data) == {"page", "incident", "update"}
    assert set(data["incident"]) == {"id", "name", "status", "impact", "url"}
    assert "author" not in str(data) and "alice" not in str(data)
    assert data["update"]["components"] == [
        {"id": "cmp_api", "name": "API", "status": "partial_outage"}]
