"""The generic HTTP connector through the API and the sync queue, configured with the
README's ticketing example, against the loopback helpdesk: it gets the same queue,
ordering, retries, echo guard, activity log and health as the built-in connectors, and
a mistake in its configuration is a 422 naming the field.
"""

from __future__ import annotations

import copy
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.conftest import make_key
from tests.integration.test_console import _key, _sign_in
from tests.support import fake_helpdesk
from tests.support.fake_helpdesk import INTEGRATION, FakeHelpdesk, Webhook
from tests.support.http_examples import HELPDESK, pointed_at, readme_example
from tests.support.sync import sync_all, sync_round


@pytest.fixture
def admin(hub: Container) -> dict[str, str]:
    return make_key(hub, Scope.ADMIN, name="admin")


@pytest.fixture
def helpdesk() -> Any:
    with FakeHelpdesk() as running:
        yield running


def example(helpdesk: FakeHelpdesk) -> dict[str, Any]:
    return pointed_at(readme_example(HELPDESK), helpdesk.url, api_key=fake_helpdesk.API_KEY,
                      hmac_secret=fake_helpdesk.WEBHOOK_SECRET)


def connect(client: TestClient, admin: dict[str, str], helpdesk: FakeHelpdesk
            ) -> dict[str, Any]:
    response = client.post("/api/v1/connectors", headers=admin, json=example(helpdesk))
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def declare(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    response = client.post("/api/v1/incidents", headers=admin,
                           json={"title": "Checkout is failing", "severity": "critical",
                                 "summary": "Error rate above 5% on /pay."})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def incident(client: TestClient, admin: dict[str, str], key: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/api/v1/incidents/{key}", headers=admin).json()
    return found


def activity(client: TestClient, admin: dict[str, str], connector: dict[str, Any]
             ) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(
        f"/api/v1/connectors/{connector['id']}/activity", headers=admin).json()["data"]
    return found


def deliver(client: TestClient, connector: dict[str, Any], webhook: Webhook) -> Any:
    return client.post(f"/hooks/{connector['id']}", headers=webhook.headers,
                       content=webhook.body)


def sent(helpdesk: FakeHelpdesk) -> list[tuple[str, str, Any]]:
    return [(item.method, item.path, item.json) for item in helpdesk.requests]


def test_the_readme_example_keeps_a_ticket_in_step_both_ways(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        helpdesk: FakeHelpdesk) -> None:
    connector = connect(hub_client, admin, helpdesk)
    assert "credentials" not in connector
    assert sorted(connector["credentials_set"]) == ["api_key", "hmac_secret"]

    # Out: created, acknowledged and commented in Interlock → the templated requests.
    made = declare(hub_client, admin)
    key = made["id"]
    sync_all(hub)
    hub_client.post(f"/api/v1/incidents/{key}/acknowledge", headers=admin)
    hub_client.post(f"/api/v1/incidents/{key}/comments", headers=admin,
                    json={"body": "Rolling back the deploy"})
    sync_all(hub)
    assert sent(helpdesk) == [
        ("POST", "/api/tickets", {"subject": "Checkout is failing", "priority": "urgent",
                                  "description": "Error rate above 5% on /pay.\n"
                                                 f"http://127.0.0.1:8080/incidents/"
                                                 f"{made['reference']}"}),
        ("PATCH", "/api/tickets/T-1001", {"status": "in_progress"}),
        ("POST", "/api/tickets/T-1001/notes", {"text": "admin: Rolling back the deploy"}),
    ]
    [link] = hub_client.get(f"/api/v1/incidents/{key}/links", headers=admin).json()["data"]
    assert (link["kind"], link["external_id"], link["url"]) == (
        "http_object", "T-1001", "https://helpdesk.example.com/t/T-1001")
    rows = activity(hub_client, admin, connector)
    assert [(row["action"], row["outcome"], row["summary"]) for row in rows] == [
        ("push:incident.comment_added", "succeeded", "commented on T-1001"),
        ("push:incident.acknowledged", "succeeded", "moved T-1001 to in_progress"),
        ("push:incident.created", "succeeded", "created T-1001"),
    ]
    assert [(call["method"], call["status"]) for call in rows[-1]["calls"]] == [("POST", 201)]
    assert f"{connector['name']}: created T-1001 (https://helpdesk.example.com/t/T-1001)" in [
        entry.get("message") for entry in hub_client.get(
            f"/api/v1/incidents/{key}/timeline", headers=admin).json()["data"]]

    # In: an agent closes, assigns and writes a note; the signed webhook says so.
    helpdesk.forget_requests()
    helpdesk.move_as("T-1001", "closed")
    helpdesk.assign_as("T-1001", "Carol")
    webhook = helpdesk.note_as("T-1001", "Fixed by the rollback.", by="Carol")
    answer = deliver(hub_client, connector, webhook)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ok": True, "message": "pull of T-1001 queued"}
    sync_all(hub)
    after = incident(hub_client, admin, key)
    assert (after["status"], after["assignee"]) == ("resolved", "Carol")
    timeline = hub_client.get(f"/api/v1/incidents/{key}/timeline",
                              headers=admin).json()["data"]
    resolved = next(entry for entry in timeline if entry["kind"] == "incident.resolved")
    assert resolved["origin"]["id"] == connector["id"]
    notes = [(entry["body"], entry["origin"].get("actor")) for entry in timeline
             if entry["kind"] == "incident.comment_added"]
    assert notes == [("Rolling back the deploy", None), ("Fixed by the rollback.", "Carol")]
    # The tool was only read: its own change is not pushed back to it (no echo).
    assert [method for method, _, _ in sent(helpdesk)] == ["GET"]

    # The same delivery again is dropped; so is one Interlock's own key made.
    again = deliver(hub_client, connector, webhook).json()
    assert "duplicate delivery" in again["message"]
    echo = deliver(hub_client, connector,
                   helpdesk.webhook("ticket.updated", "T-1001", INTEGRATION)).json()
    assert "made by Interlock itself" in echo["message"]
    assert sync_all(hub) == 0


def test_a_forged_or_stale_webhook_is_401_and_leaves_no_trace(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        helpdesk: FakeHelpdesk, manual_clock: ManualClock) -> None:
    connector = connect(hub_client, admin, helpdesk)
    made = declare(hub_client, admin)
    sync_all(hub)
    helpdesk.move_as("T-1001", "closed")
    before = len(activity(hub_client, admin, connector))
    actor = {"name": "Mallory", "type": "agent"}
    an_hour_ago = int(manual_clock.now().timestamp()) - 3600
    for webhook in (helpdesk.webhook("ticket.updated", "T-1001", actor, secret="guess"),
                    helpdesk.webhook("ticket.updated", "T-1001", actor,
                                     timestamp=an_hour_ago)):
        response = deliver(hub_client, connector, webhook)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert len(activity(hub_client, admin, connector)) == before
    assert sync_all(hub) == 0
    assert incident(hub_client, admin, made["id"])["status"] == "triggered"


def test_events_reach_the_tool_in_order_and_as_the_incident_is_now(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        helpdesk: FakeHelpdesk) -> None:
    connect(hub_client, admin, helpdesk)
    key = declare(hub_client, admin)["id"]
    for action in ("acknowledge", "resolve"):
        hub_client.post(f"/api/v1/incidents/{key}/{action}", headers=admin)
    for body in ("first", "second", "third"):
        hub_client.post(f"/api/v1/incidents/{key}/comments", headers=admin,
                        json={"body": body})
    sync_all(hub)
    # The ticket is made, then moved once to the status the incident has *now*; the
    # acknowledgement in between is not replayed over it. Comments keep their order.
    assert [(method, path, body) for method, path, body in sent(helpdesk)][1:] == [
        ("PATCH", "/api/tickets/T-1001", {"status": "closed"}),
        ("POST", "/api/tickets/T-1001/notes", {"text": "admin: first"}),
        ("POST", "/api/tickets/T-1001/notes", {"text": "admin: second"}),
        ("POST", "/api/tickets/T-1001/notes", {"text": "admin: third"}),
    ]
    assert helpdesk.tickets["T-1001"].status == "closed"


def test_a_tool_that_is_down_is_retried_and_shows_in_health(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        helpdesk: FakeHelpdesk, manual_clock: ManualClock) -> None:
    connector = connect(hub_client, admin, helpdesk)
    declare(hub_client, admin)
    helpdesk.down = True
    assert sync_round(hub) == 1
    [failed] = activity(hub_client, admin, connector)
    assert failed["outcome"] == "failed" and "HTTP 503" in failed["error"]
    assert failed["next_attempt_at"] is not None
    health = hub_client.get(f"/api/v1/connectors/{connector['id']}", headers=admin).json()
    assert health["failing_since"] is not None and "503" in health["last_error"]
    assert sync_round(hub) == 0  # not before its Retry-After

    helpdesk.down = False
    manual_clock.advance(timedelta(seconds=10))
    assert sync_all(hub) == 1
    assert list(helpdesk.tickets) == ["T-1001"]
    health = hub_client.get(f"/api/v1/connectors/{connector['id']}", headers=admin).json()
    assert health["failing_since"] is None and health["last_success_at"] is not None


def test_a_configuration_mistake_is_a_422_naming_the_field(
        hub_client: TestClient, admin: dict[str, str], helpdesk: FakeHelpdesk) -> None:
    cases: list[tuple[str, Any, str]] = []
    body = example(helpdesk)
    body["settings"]["requests"]["incident.created"]["url"] = "{{ base_url }}/{{ nope }}"
    cases.append(("settings.requests.incident.created.url", body, "'nope' is undefined"))
    body = example(helpdesk)
    body["settings"]["fetch"]["status"] = "status["
    cases.append(("settings.fetch.status", body, "not a valid JMESPath expression"))
    body = example(helpdesk)
    del body["settings"]["requests"]["incident.created"]
    cases.append(("settings.requests.incident.created", body, "required"))
    body = example(helpdesk)
    del body["credentials"]["hmac_secret"]
    cases.append(("credentials.hmac_secret", body, "required with settings.hmac"))
    body = example(helpdesk)
    body["settings"]["requests"]["incident.updated"]["body"] = '{"subject": {{ incident.title }}}'
    cases.append(("settings.requests.incident.updated.body", body, "not JSON"))
    body = example(helpdesk)
    body["settings"]["base_url"] = "http://169.254.169.254"
    cases.append(("settings.base_url", body, "metadata"))
    body = example(helpdesk)
    body["credentials"]["token"] = "x"
    cases.append(("credentials.token", body, "one of"))
    for field, body, message in cases:
        response = hub_client.post("/api/v1/connectors", headers=admin, json=body)
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        errors = {item["field"]: item["message"] for item in response.json()["errors"]}
        assert field in errors and message in errors[field], (field, errors)
    assert hub_client.get("/api/v1/connectors", headers=admin).json()["data"] == []


def test_a_private_incident_reaches_the_tool_redacted(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        helpdesk: FakeHelpdesk) -> None:
    connect(hub_client, admin, helpdesk)
    response = hub_client.post("/api/v1/incidents", headers=admin, json={
        "title": "Customer data in a public bucket", "severity": "critical",
        "visibility": "private", "summary": "bucket acme-exports"})
    assert response.status_code == 201, response.text
    reference = response.json()["reference"]
    sync_all(hub)
    [(_, _, body)] = sent(helpdesk)
    assert body == {"subject": f"{reference}: private incident", "priority": None,
                    "description": f"\nhttp://127.0.0.1:8080/incidents/{reference}"}


def test_settings_can_be_changed_and_secrets_are_never_shown(
        hub_client: TestClient, admin: dict[str, str], helpdesk: FakeHelpdesk) -> None:
    connector = connect(hub_client, admin, helpdesk)
    settings = copy.deepcopy(example(helpdesk)["settings"])
    settings["requests"]["incident.created"]["body"] = {"subject": "{{ incident.title }}"}
    response = hub_client.patch(f"/api/v1/connectors/{connector['id']}", headers=admin,
                                json={"settings": {"requests": settings["requests"]}})
    assert response.status_code == 200, response.text
    shown = response.text + hub_client.get("/api/v1/connectors", headers=admin).text
    for secret in (fake_helpdesk.API_KEY, fake_helpdesk.WEBHOOK_SECRET):
        assert secret not in shown


def test_checking_a_change_holds_up_no_other_write(
        hub_client: TestClient, admin: dict[str, str], helpdesk: FakeHelpdesk) -> None:
    """Saving renders every template (up to 2 s each): that happens before the write
    transaction, so on SQLite incidents are still declared meanwhile."""
    connector = connect(hub_client, admin, helpdesk)
    slow = copy.deepcopy(example(helpdesk)["settings"]["requests"])
    slow["incident.updated"]["body"] = {"subject": (
        '{% for i in range(100) %}{% for c in "x" * 5000 %}'
        '{% set s = ("y" * 20000) | replace("y", "zz") %}{% endfor %}{% endfor %}')}
    answers: dict[str, Any] = {}

    def save() -> None:
        answers["patch"] = hub_client.patch(f"/api/v1/connectors/{connector['id']}",
                                            headers=admin, json={"settings": {
                                                "requests": slow}})

    saving = threading.Thread(target=save)
    saving.start()
    time.sleep(0.5)  # the check is rendering by now
    started = time.monotonic()
    declared = hub_client.post("/api/v1/incidents", headers=admin,
                               json={"title": "Meanwhile", "severity": "low"})
    took = time.monotonic() - started
    saving.join(30)
    assert declared.status_code == 201
    assert answers["patch"].status_code == 422
    assert "longer than 2 s" in answers["patch"].text
    assert took < 1.0, took


def test_the_console_shows_an_http_connector(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        helpdesk: FakeHelpdesk) -> None:
    connector = connect(hub_client, admin, helpdesk)
    declare(hub_client, admin)
    sync_all(hub)
    _sign_in(hub_client, _key(hub, Scope.ADMIN))
    for path in ("/connectors", f"/connectors/{connector['id']}", "/connectors/new?kind=http"):
        page = hub_client.get(path)
        assert page.status_code == 200, (path, page.text)
        for secret in (fake_helpdesk.API_KEY, fake_helpdesk.WEBHOOK_SECRET):
            assert secret not in page.text
    assert "created T-1001" in hub_client.get(f"/connectors/{connector['id']}").text
