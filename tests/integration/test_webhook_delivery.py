"""Webhooks as a receiver sees them: signed, filtered, shaped, retried, logged, replayed.

Each test drives delivery round by round on a clock it moves, against a real HTTP
receiver on loopback, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.services.container import Container
from interlock.store.tables import events
from tests.conftest import make_key
from tests.support.delivery import deliver_all, deliver_round
from tests.support.receiver import Received, Receiver, status

Headers = dict[str, str]


@pytest.fixture
def manager(hub: Container) -> Headers:
    return make_key(hub, Scope.ADMIN, name="ops")


def add_endpoint(client: TestClient, auth: Headers, url: str, **fields: Any
                 ) -> dict[str, Any]:
    response = client.post("/api/v1/endpoints", headers=auth, json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def declare(client: TestClient, headers: Headers, **fields: Any) -> dict[str, Any]:
    body = {"title": "Checkout down", "severity": "high", "service": "checkout", **fields}
    response = client.post("/api/v1/incidents", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def attempts(client: TestClient, headers: Headers, endpoint_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/endpoints/{endpoint_id}/attempts?limit=200",
                          headers=headers)
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["data"]))


class _TimeTravellingWebhook(Webhook):
    """The reference verifier, minus its check that the timestamp is within five
    minutes of the real clock: these tests move Interlock's clock days ahead."""

    def _Webhook__verify_timestamp(self, header: str) -> datetime:
        return datetime.fromtimestamp(float(header), tz=UTC)


def verified(secret: str, request: Received, *, clock_moved: bool = False) -> dict[str, Any]:
    """The body, after the Standard Webhooks reference library accepted the signature."""
    signed = {name.lower(): value for name, value in request.headers.items()}
    verifier = _TimeTravellingWebhook(secret) if clock_moved else Webhook(secret)
    result: dict[str, Any] = verifier.verify(request.body, signed)
    return result


def test_every_change_arrives_signed_with_a_stable_webhook_id(
    hub_client: TestClient, manager: Headers, hub: Container
) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url,
                                headers={"Authorization": "Bearer receiver-token"})
        incident = declare(hub_client, manager)
        hub_client.post(f"/api/v1/incidents/{incident['id']}/acknowledge", headers=manager)
        assert deliver_all(hub) == 2
        first, second = receiver.wait_for(2)

    created = verified(endpoint["secret"], first)
    assert created["type"] == "incident.created"
    assert created["data"]["incident"]["id"] == incident["id"]
    assert created["data"]["incident"]["version"] == 1
    assert created["timestamp"].endswith("Z")
    acknowledged = verified(endpoint["secret"], second)
    assert acknowledged["type"] == "incident.acknowledged"
    assert acknowledged["data"]["changes"]["status"] == {"from": "triggered",
                                                         "to": "acknowledged"}
    assert first.headers["Authorization"] == "Bearer receiver-token"
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    messages = hub_client.get("/api/v1/messages", headers=manager).json()["data"]
    assert {message["id"] for message in messages} == {
        first.headers["webhook-id"], second.headers["webhook-id"]}
    log = attempts(hub_client, manager, endpoint["id"])
    assert [(a["status_code"], a["attempt"], a["trigger"]) for a in log] == [
        (200, 1, "scheduled"), (200, 1, "scheduled")]
    assert log[0]["response_body"] == "ok"


def test_private_incidents_travel_as_id_and_version_only(
    hub_client: TestClient, manager: Headers, hub: Container
) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        incident = declare(hub_client, manager, title="Payroll breach", visibility="private")
        deliver_all(hub)
        (request,) = receiver.wait_for(1)
    body = verified(endpoint["secret"], request)
    assert body["data"] == {"incident": {"id": incident["id"], "version": 1}}
    assert b"Payroll" not in request.body


def test_event_types_and_filters_choose_what_an_endpoint_gets(
    hub_client: TestClient, manager: Headers, hub: Container
) -> None:
    with Receiver() as receiver:
        add_endpoint(hub_client, manager, receiver.url + "/critical-checkout",
                     filter={"severity": ["critical", "high"], "service": "checkout"})
        add_endpoint(hub_client, manager, receiver.url + "/resolutions",
                     event_types=["incident.resolved"])
        wanted = declare(hub_client, manager, severity="critical")
        declare(hub_client, manager, severity="low")
        declare(hub_client, manager, severity="critical", service="search")
        hub_client.post(f"/api/v1/incidents/{wanted['id']}/resolve", headers=manager)
        deliver_all(hub)
        received = receiver.wait_for(3)

    by_path: dict[str, list[str]] = {}
    for request in received:
        body = json.loads(request.body)
        by_path.setdefault(request.path, []).append(
            f"{body['type']} {body['data']['incident']['reference']}")
    assert by_path == {
        "/hook/critical-checkout": [f"incident.created {wanted['reference']}",
                                    f"incident.resolved {wanted['reference']}"],
        "/hook/resolutions": [f"incident.resolved {wanted['reference']}"],
    }


def test_a_template_shapes_the_body_for_chat_receivers(
    hub_client: TestClient, manager: Headers, hub: Container
) -> None:
    template = ('{"text": {{ ("[" ~ data.incident.reference ~ "] " ~ data.incident.title '
                '~ " is " ~ data.incident.status) | tojson }}}')
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url, template=template,
                                filter={"visibility": "public"})
        declare(hub_client, manager, title="Checkout 500s")
        deliver_all(hub)
        (request,) = receiver.wait_for(1)
    assert verified(endpoint["secret"], request) == {"text": "[INC-1] Checkout 500s is triggered"}


def test_failures_retry_on_the_schedule_with_the_same_webhook_id(
    hub_client: TestClient, manager: Headers, hub: Container, manual_clock: ManualClock
) -> None:
    with Receiver(status(500, b"database is locked")) as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        declare(hub_client, manager)
        assert deliver_round(hub) == 1
        manual_clock.advance(timedelta(seconds=3))
        assert deliver_round(hub) == 0, "the 5 s retry (±20 %) is not due after 3 s"
        manual_clock.advance(timedelta(seconds=4))
        assert deliver_round(hub) == 1
        receiver.behaviour = status(429, b"slow down", {"Retry-After": "120"})
        manual_clock.advance(timedelta(minutes=7))
        assert deliver_round(hub) == 1
        manual_clock.advance(timedelta(seconds=100))
        assert deliver_round(hub) == 0, "Retry-After: 120 is honoured"
        receiver.behaviour = status(204)
        manual_clock.advance(timedelta(seconds=30))
        assert deliver_round(hub) == 1
        received = receiver.wait_for(4)

    assert len({request.headers["webhook-id"] for request in received}) == 1
    assert len({request.headers["webhook-timestamp"] for request in received}) == 4
    log = attempts(hub_client, manager, endpoint["id"])
    assert [(a["attempt"], a["status_code"]) for a in log] == [
        (1, 500), (2, 500), (3, 429), (4, 204)]
    assert log[0]["response_body"] == "database is locked"
    assert log[0]["next_attempt_at"] is not None
    assert log[-1]["next_attempt_at"] is None
    assert all(verified(endpoint["secret"], request, clock_moved=True) for request in received)


def test_a_message_is_given_up_after_the_last_attempt_and_can_be_recovered(
    hub_client: TestClient, manager: Headers, hub: Container, manual_clock: ManualClock
) -> None:
    started = manual_clock.now()
    with Receiver(status(503)) as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        declare(hub_client, manager)
        for _ in range(12):
            deliver_round(hub)
            manual_clock.advance(timedelta(hours=12))
        log = attempts(hub_client, manager, endpoint["id"])
        assert len(log) == 8
        spent = manual_clock.now() - started
        assert timedelta(hours=22) < spent
        message = hub_client.get("/api/v1/messages", headers=manager).json()["data"][0]
        assert message["deliveries"][0]["status"] == "failed"

        receiver.behaviour = status(200)
        recovered = hub_client.post(f"/api/v1/endpoints/{endpoint['id']}/recover",
                                    headers=manager, json={"since": started.isoformat()})
        assert recovered.status_code == 202
        assert recovered.json() == {"rescheduled": 1}
        assert deliver_round(hub) == 1
        last = receiver.wait_for(9)[-1]
    assert last.headers["webhook-id"] == message["id"]
    final = attempts(hub_client, manager, endpoint["id"])[-1]
    assert (final["attempt"], final["trigger"], final["status_code"]) == (9, "manual", 200)


def test_resend_and_test_messages(
    hub_client: TestClient, manager: Headers, hub: Container
) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        declare(hub_client, manager)
        deliver_all(hub)
        message = hub_client.get("/api/v1/messages", headers=manager).json()["data"][0]
        resent = hub_client.post(f"/api/v1/messages/{message['id']}/resend", headers=manager,
                                 json={"endpoint_id": endpoint["id"]})
        assert resent.status_code == 202
        tested = hub_client.post(f"/api/v1/endpoints/{endpoint['id']}/test", headers=manager)
        assert tested.status_code == 202
        deliver_all(hub)
        first, again, test = receiver.wait_for(3)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == message["id"]
    assert again.body == first.body
    assert verified(endpoint["secret"], test)["type"] == "endpoint.test"
    triggers = [a["trigger"] for a in attempts(hub_client, manager, endpoint["id"])]
    assert triggers == ["scheduled", "manual", "test"]
    missing = hub_client.post("/api/v1/messages/evt_nope/resend", headers=manager,
                              json={"endpoint_id": endpoint["id"]})
    assert missing.status_code == 404


def test_a_failing_test_message_is_not_retried(
    hub_client: TestClient, manager: Headers, hub: Container, manual_clock: ManualClock
) -> None:
    with Receiver(status(500)) as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        hub_client.post(f"/api/v1/endpoints/{endpoint['id']}/test", headers=manager)
        assert deliver_round(hub) == 1
        manual_clock.advance(timedelta(hours=1))
        assert deliver_round(hub) == 0
    shown = hub_client.get(f"/api/v1/endpoints/{endpoint['id']}", headers=manager).json()
    assert shown["failing_since"] is None


def test_rotation_signs_with_both_secrets_for_a_day(
    hub_client: TestClient, manager: Headers, hub: Container, manual_clock: ManualClock
) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        rotated = hub_client.post(f"/api/v1/endpoints/{endpoint['id']}/rotate-secret",
                                  headers=manager)
        assert rotated.status_code == 200
        new_secret = rotated.json()["secret"]
        assert new_secret != endpoint["secret"] and new_secret.startswith("whsec_")
        declare(hub_client, manager)
        deliver_all(hub)
        manual_clock.advance(timedelta(hours=25))
        declare(hub_client, manager)
        deliver_all(hub)
        during, after = receiver.wait_for(2)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verified(endpoint["secret"], during)
    verified(new_secret, during)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verified(new_secret, after, clock_moved=True)
    with pytest.raises(WebhookVerificationError, match="signature"):
        verified(endpoint["secret"], after, clock_moved=True)


def test_an_endpoint_failing_for_five_days_is_disabled_and_can_be_re_enabled(
    hub_client: TestClient, manager: Headers, hub: Container, manual_clock: ManualClock
) -> None:
    with Receiver(status(500)) as broken, Receiver() as watcher:
        endpoint = add_endpoint(hub_client, manager, broken.url)
        add_endpoint(hub_client, manager, watcher.url, event_types=["endpoint.disabled"])
        incident = declare(hub_client, manager)
        for hour in range(0, 24 * 6, 6):
            hub_client.patch(f"/api/v1/incidents/{incident['id']}", headers=manager,
                             json={"summary": f"hour {hour}"})
            deliver_round(hub)
            manual_clock.advance(timedelta(hours=6))
        deliver_all(hub)
        shown = hub_client.get(f"/api/v1/endpoints/{endpoint['id']}", headers=manager).json()
        assert shown["enabled"] is False
        assert "5 days" in shown["disabled_reason"]
        (notice,) = watcher.wait_for(1)
        body = json.loads(notice.body)
        assert body["type"] == "endpoint.disabled"
        assert body["data"]["endpoint"]["id"] == endpoint["id"]

        count = len(broken.received)
        hub_client.patch(f"/api/v1/incidents/{incident['id']}", headers=manager,
                         json={"summary": "while disabled"})
        deliver_all(hub)
        assert len(broken.received) == count, "a disabled endpoint gets nothing"

        broken.behaviour = status(200)
        enabled = hub_client.patch(f"/api/v1/endpoints/{endpoint['id']}", headers=manager,
                                   json={"enabled": True})
        assert enabled.json()["enabled"] is True
        assert enabled.json()["disabled_reason"] is None
        hub_client.post(f"/api/v1/incidents/{incident['id']}/resolve", headers=manager)
        deliver_all(hub)
        assert json.loads(broken.wait_for(count + 1)[-1].body)["type"] == "incident.resolved"


def test_after_a_day_down_everything_arrives_in_version_order_per_incident(
    hub_client: TestClient, manager: Headers, hub: Container, manual_clock: ManualClock
) -> None:
    with Receiver(status(502)) as receiver:
        add_endpoint(hub_client, manager, receiver.url)
        incidents = [declare(hub_client, manager, title=f"Incident {n}") for n in range(3)]
        for step in range(4):
            for incident in incidents:
                hub_client.post(f"/api/v1/incidents/{incident['id']}/comments",
                                headers=manager, json={"body": f"update {step}"})
            deliver_round(hub)
            manual_clock.advance(timedelta(minutes=20))
        for _ in range(24):
            deliver_round(hub)
            manual_clock.advance(timedelta(hours=1))
        failed_so_far = len(receiver.received)
        receiver.behaviour = status(200)
        for _ in range(30):
            deliver_round(hub)
            manual_clock.advance(timedelta(hours=1))
        received = receiver.received[failed_so_far:]

    delivered: dict[str, list[int]] = {}
    for request in received:
        incident = json.loads(request.body)["data"]["incident"]
        delivered.setdefault(incident["id"], []).append(incident["version"])
    assert delivered == {incident["id"]: [1, 2, 3, 4, 5] for incident in incidents}


def test_attempts_name_failures_that_got_no_response(
    hub_client: TestClient, manager: Headers, hub: Container
) -> None:
    with Receiver() as receiver:
        closed_port_url = receiver.url
    endpoint = add_endpoint(hub_client, manager, closed_port_url)
    declare(hub_client, manager)
    deliver_round(hub)
    (attempt,) = attempts(hub_client, manager, endpoint["id"])
    assert attempt["status_code"] is None
    assert attempt["failure"] == "connection_refused"
    assert attempt["detail"]
    assert attempt["next_attempt_at"] is not None


def test_each_event_is_written_once_and_dispatched_once(
    hub_client: TestClient, manager: Headers, hub: Container
) -> None:
    with Receiver() as receiver:
        add_endpoint(hub_client, manager, receiver.url)
        declare(hub_client, manager)
        deliver_all(hub)
        deliver_all(hub)
        assert len(receiver.wait_for(1)) == 1
    engine = hub.store.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        undispatched = connection.execute(
            sa.select(sa.func.count()).where(events.c.dispatched_at.is_(None))
        ).scalar_one()
    assert undispatched == 0


def test_making_a_private_incident_public_sends_no_private_time_values(
    hub_client: TestClient, manager: Headers, hub: Container
) -> None:
    """One PATCH that made a private incident public used to send every endpoint
    ``changes.title.from``: the title that had existed only while private."""
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        incident = declare(hub_client, manager, title="Payroll breach at Acme",
                           summary="Salaries of 40 staff exposed", labels={"team": "hr-secret"},
                           visibility="private")
        published = hub_client.patch(
            f"/api/v1/incidents/{incident['id']}", headers=manager,
            json={"visibility": "public", "title": "Payments degraded",
                  "summary": "Investigating", "labels": {"team": "payments"}})
        assert published.status_code == 200, published.text
        deliver_all(hub)
        _, update = receiver.wait_for(2)
    body = verified(endpoint["secret"], update)
    assert body["type"] == "incident.updated"
    assert body["data"]["incident"]["title"] == "Payments degraded"
    assert body["data"]["changes"]["visibility"] == {"from": "private", "to": "public"}
    assert body["data"]["changes"]["title"] == {"to": "Payments degraded"}
    for secret in (b"Payroll", b"Salaries", b"hr-secret"):
        assert secret not in update.body
