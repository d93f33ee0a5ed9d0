"""Status page subscribers, end to end on loopback: the public subscribe form, double
opt-in through a real SMTP server, update mails with one-click unsubscribe (RFC 8058),
component subscriptions, webhook subscribers through the signed delivery engine, a
mail server that is down, and the management API. Nothing internal reaches a
subscriber."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from interlock import config
from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.services.container import Container
from interlock.worker.mail import MailWorker, SmtpTransport
from interlock.worker.runner import smtp_settings
from interlock.worker.wakeup import Wakeup
from tests.conftest import make_key
from tests.support.delivery import deliver_all
from tests.support.receiver import Receiver
from tests.support.smtp import Received as Mail
from tests.support.smtp import SmtpSink

INTERNAL_TITLE = "db-2 disk full on shard 7"
INTERNAL_COMMENT = "it was Bob's migration again"


class Site:
    """A page with two components and an incident, driven through the API."""

    def __init__(self, hub: Container, client: TestClient) -> None:
        self.hub, self.client = hub, client
        self.publisher = make_key(hub, Scope.STATUS_PUBLISH, name="publisher")
        self.admin = make_key(hub, Scope.ADMIN, name="admin")
        self.page = self._post("/api/v1/status-pages", {"name": "Acme", "slug": "acme"})
        base = f"/api/v1/status-pages/{self.page['id']}/components"
        self.api = self._post(base, {"name": "API", "services": ["api"]})
        self.web = self._post(base, {"name": "Website", "services": ["web"]})
        self.incident = self._post("/api/v1/incidents", {
            "title": INTERNAL_TITLE, "severity": "critical", "service": "api"}, self.admin)
        self._post(f"/api/v1/incidents/{self.incident['id']}/comments",
                   {"body": INTERNAL_COMMENT}, self.admin)

    def _post(self, path: str, body: dict[str, Any], key: dict[str, str] | None = None
              ) -> dict[str, Any]:
        response = self.client.post(path, json=body, headers=key or self.publisher)
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def publish(self, status: str, body: str, components: dict[str, str]) -> dict[str, Any]:
        return self._post(f"/api/v1/incidents/{self.incident['id']}/public-updates",
                          {"status": status, "body": body, "components": components,
                           "title": "Checkout errors"})


@pytest.fixture
def site(hub: Container, hub_client: TestClient) -> Site:
    return Site(hub, hub_client)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def send_mail(hub: Container, sink: SmtpSink) -> None:
    """Fan out what was published, then one round of the mail worker."""
    while hub.deliveries.dispatch():
        pass
    settings = config.load({"database_url": hub.settings.database_url, **sink.settings},
                           environ={})
    worker = MailWorker(hub.mail, SmtpTransport(smtp_settings(settings)), Wakeup(), "test")
    asyncio.run(asyncio.wait_for(worker.step(), 20))


def link(mail: Mail, path: str) -> str:
    found = re.search(rf"https?://\S+/status/acme/{path}\?token=\S+", mail.text)
    assert found, mail.text
    url = found.group(0)
    return url[url.index("/status/"):]


def subscribe(client: TestClient, email: str, components: list[str] | None = None
              ) -> None:
    response = client.post("/status/acme/subscribe",
                           json={"email": email, "components": components or []})
    assert response.status_code == 202, response.text


def confirmed(site: Site, sink: SmtpSink, email: str,
              components: list[str] | None = None) -> None:
    subscribe(site.client, email, components)
    send_mail(site.hub, sink)
    [confirmation] = sink.wait_for(1, to=email)
    response = site.client.post(link(confirmation, "subscribe/confirm"))
    assert response.status_code == 200, response.text


def test_double_opt_in_then_updates_then_one_click_unsubscribe(
        site: Site, smtp_server: SmtpSink) -> None:
    client = site.client
    form = client.get("/status/acme/subscribe")
    assert form.status_code == 200 and 'name="email"' in form.text and "Website" in form.text
    subscribe(client, "ada@example.org")
    site.publish("investigating", "Checkout is failing for some customers.",
                 {site.api["id"]: "major_outage"})
    send_mail(site.hub, smtp_server)
    # Before confirming, the confirmation is the only mail the address gets.
    [confirmation] = smtp_server.wait_for(1, to="ada@example.org")
    assert confirmation.subject == "Confirm your subscription to Acme status"
    confirm_url = link(confirmation, "subscribe/confirm")
    shown = client.get(confirm_url)  # a mail scanner fetching the link changes nothing
    assert shown.status_code == 200 and 'id="confirm"' in shown.text
    send_mail(site.hub, smtp_server)
    assert len(smtp_server.to("ada@example.org")) == 1
    assert client.post(confirm_url).status_code == 200

    site.publish("identified", "A broken disk; we are replacing it.",
                 {site.api["id"]: "partial_outage"})
    send_mail(site.hub, smtp_server)
    update = smtp_server.wait_for(2, to="ada@example.org")[-1]
    assert update.subject == "[Acme] Checkout errors: Identified"
    assert "A broken disk; we are replacing it." in update.text
    assert "API: Partial outage" in update.text
    assert "/status/acme" in update.text
    raw = update.message.as_string()
    assert INTERNAL_TITLE not in raw and INTERNAL_COMMENT not in raw
    unsubscribe_url = link(update, "unsubscribe")
    assert update.message["List-Unsubscribe"] == f"<http://127.0.0.1:8080{unsubscribe_url}>"
    assert update.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # RFC 8058: the mail client POSTs the one-click body to the List-Unsubscribe URL.
    gone = client.post(unsubscribe_url, content=b"List-Unsubscribe=One-Click",
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert gone.status_code == 200 and "Unsubscribed" in gone.text
    site.publish("resolved", "Fixed.", {})
    send_mail(site.hub, smtp_server)
    assert len(smtp_server.to("ada@example.org")) == 2


def test_an_address_that_is_not_one_is_a_422(site: Site) -> None:
    public = site.client.post("/status/acme/subscribe", json={"email": "not an address"})
    assert public.status_code == 422
    assert public.headers["content-type"].startswith("application/problem+json")
    assert public.json()["errors"][0]["field"] == "email"
    form = site.client.post("/status/acme/subscribe", data={"email": "ada@"})
    assert form.status_code == 422 and 'id="error"' in form.text
    api = site.client.post(f"/api/v1/status-pages/{site.page['id']}/subscribers",
                           json={"email": "ada@@example.org"}, headers=site.publisher)
    assert api.status_code == 422
    assert api.headers["content-type"].startswith("application/problem+json")
    unknown = site.client.post("/status/acme/subscribe",
                               json={"email": "ada@example.org", "components": ["cmp_x"]})
    assert unknown.status_code == 422
    assert site.client.post("/status/nope/subscribe",
                            json={"email": "ada@example.org"}).status_code == 404
    forged = site.client.post("/status/acme/unsubscribe?token=sub_1.forged")
    assert forged.status_code == 404


def test_component_subscribers_hear_only_of_their_components(
        site: Site, smtp_server: SmtpSink) -> None:
    confirmed(site, smtp_server, "web@example.org", [site.web["id"]])
    confirmed(site, smtp_server, "all@example.org")
    site.publish("investigating", "API errors.", {site.api["id"]: "major_outage"})
    send_mail(site.hub, smtp_server)
    assert len(smtp_server.wait_for(2, to="all@example.org")) == 2
    assert len(smtp_server.to("web@example.org")) == 1  # the confirmation only
    site.publish("identified", "The website is slow too.",
                 {site.web["id"]: "degraded_performance"})
    send_mail(site.hub, smtp_server)
    assert "The website is slow too." in smtp_server.wait_for(2, to="web@example.org")[-1].text


def test_a_mail_server_that_is_down_delays_update_mail_and_loses_none(
        site: Site, smtp_sink: SmtpSink, manual_clock: ManualClock) -> None:
    subscribe(site.client, "ada@example.org")
    send_mail(site.hub, smtp_sink)  # the server is down: the confirmation waits
    waiting = site.client.get("/api/v1/outgoing-mail?status=pending",
                              headers=site.publisher).json()["data"]
    assert [item["kind"] for item in waiting] == ["confirmation"]
    assert waiting[0]["attempts"] == 1 and waiting[0]["next_attempt_at"]
    assert "could not reach the mail server" in waiting[0]["last_error"]

    smtp_sink.start()
    manual_clock.advance(timedelta(seconds=10))
    send_mail(site.hub, smtp_sink)
    [confirmation] = smtp_sink.wait_for(1)
    assert site.client.post(link(confirmation, "subscribe/confirm")).status_code == 200
    smtp_sink.stop()

    site.publish("investigating", "Checkout is failing.", {site.api["id"]: "major_outage"})
    send_mail(site.hub, smtp_sink)
    pending = site.client.get("/api/v1/outgoing-mail?status=pending",
                              headers=site.publisher).json()["data"]
    assert [item["kind"] for item in pending] == ["update"]
    # The mail server comes back after the update was published: the mail arrives.
    smtp_sink.start()
    manual_clock.advance(timedelta(seconds=10))
    send_mail(site.hub, smtp_sink)
    update = smtp_sink.wait_for(2)[-1]
    assert "Checkout is failing." in update.text
    assert site.hub.mail.counts() == {"pending": 0, "sent": 2, "failed": 0}


def test_webhook_subscribers_get_a_signed_public_event(
        site: Site, receiver: Receiver) -> None:
    created = site.client.post(f"/api/v1/status-pages/{site.page['id']}/subscribers",
                               json={"url": receiver.url}, headers=site.publisher)
    assert created.status_code == 201, created.text
    subscriber = created.json()
    assert subscriber["status"] == "confirmed" and subscriber["secret"].startswith("whsec_")
    other_page = site._post("/api/v1/status-pages", {"name": "Other", "slug": "other"})
    with Receiver() as elsewhere:
        response = site.client.post(f"/api/v1/status-pages/{other_page['id']}/subscribers",
                                    json={"url": elsewhere.url}, headers=site.publisher)
        assert response.status_code == 201
        update = site.publish("investigating", "Checkout is failing.",
                              {site.api["id"]: "major_outage"})
        deliver_all(site.hub)
        [received] = receiver.wait_for(1)
        assert elsewhere.received == []
    body = Webhook(subscriber["secret"]).verify(received.body, received.headers)
    assert body["type"] == "status_page.update"
    data = body["data"]
    assert data["page"]["slug"] == "acme"
    assert data["incident"]["name"] == "Checkout errors"
    assert data["update"]["id"] == update["id"] and data["update"]["body"] == (
        "Checkout is failing.")
    assert data["update"]["components"] == [
        {"id": site.api["id"], "name": "API", "status": "major_outage"}]
    raw = received.body.decode()
    assert INTERNAL_TITLE not in raw and INTERNAL_COMMENT not in raw
    assert '"severity"' not in raw and '"timeline"' not in raw
    # Its attempts are the endpoint's, as for any webhook.
    attempts = site.client.get(f"/api/v1/endpoints/{subscriber['endpoint_id']}/attempts",
                               headers=site.admin).json()["data"]
    assert [item["status_code"] for item in attempts] == [200]

    # A subscriber's endpoint, disabled (by hand here; after days of failures in life),
    # gets nothing new.
    disabled = site.client.patch(f"/api/v1/endpoints/{subscriber['endpoint_id']}",
                                 json={"enabled": False}, headers=site.admin)
    assert disabled.status_code == 200, disabled.text
    site.publish("identified", "Found it.", {site.api["id"]: "major_outage"})
    deliver_all(site.hub)
    assert len(receiver.received) == 1


def test_the_subscribers_api(site: Site, smtp_server: SmtpSink, receiver: Receiver) -> None:
    base = f"/api/v1/status-pages/{site.page['id']}/subscribers"
    reader = make_key(site.hub, Scope.INCIDENTS_WRITE, name="writer")
    assert site.client.get(base, headers=reader).status_code == 403
    email = site.client.post(base, json={"email": "ada@example.org",
                                         "components": [site.web["id"]]},
                             headers=site.publisher)
    assert email.status_code == 201 and email.json()["status"] == "pending"
    assert "secret" not in email.json() or email.json()["secret"] is None
    hook = site.client.post(base, json={"url": receiver.url}, headers=site.publisher).json()
    both = site.client.post(base, json={"email": "a@example.org", "url": receiver.url},
                            headers=site.publisher)
    assert both.status_code == 422
    listed = site.client.get(base, headers=site.publisher).json()["data"]
    assert sorted(item["type"] for item in listed) == ["email", "webhook"]
    assert all("secret" not in item or item["secret"] is None for item in listed)
    one = site.client.get(f"{base}/{hook['id']}", headers=site.publisher)
    assert one.status_code == 200 and one.json()["url"] == receiver.url
    assert site.client.delete(f"{base}/{hook['id']}",
                              headers=site.publisher).status_code == 204
    assert site.client.get(f"/api/v1/endpoints/{hook['endpoint_id']}",
                           headers=site.admin).status_code == 404
    assert [item["type"] for item in site.client.get(
        base, headers=site.publisher).json()["data"]] == ["email"]
    send_mail(site.hub, smtp_server)
    mail = site.client.get("/api/v1/outgoing-mail", headers=site.publisher).json()["data"]
    assert [(item["recipient"], item["status"]) for item in mail] == [
        ("ada@example.org", "sent")]
    assert json.dumps(mail).count("token=") == 0  # links stay in the mail itself


def test_the_console_shows_subscribers_and_mail_waiting_for_the_server(
        site: Site, smtp_sink: SmtpSink) -> None:
    subscribe(site.client, "ada@example.org", [site.web["id"]])
    send_mail(site.hub, smtp_sink)  # the mail server is down
    _, secret = site.hub.keys.create("person", [Scope.STATUS_PUBLISH])
    form = site.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    signed = site.client.post("/login", data={"csrf_token": token.group(1),
                                              "api_key": secret, "next": "/status-pages"},
                              follow_redirects=False)
    assert signed.status_code == 303
    edit = site.client.get(f"/status-pages/{site.page['id']}")
    assert f'href="/status-pages/{site.page["id"]}/subscribers"' in edit.text
    page = site.client.get(f"/status-pages/{site.page['id']}/subscribers")
    assert page.status_code == 200, page.text
    assert "ada@example.org" in page.text and "Website" in page.text
    assert "pending" in page.text and "could not reach the mail server" in page.text
