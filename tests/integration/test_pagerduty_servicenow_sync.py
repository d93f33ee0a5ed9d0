"""PagerDuty and ServiceNow through the sync and hook services, on SQLite and
PostgreSQL, one sync round at a time under a manual clock: hooks answered and
recorded, comments crossing between the tools without coming back, and webhooks that
never arrived healed by reconciliation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.services.container import Container
from tests.support.fake_pagerduty import ALICE, BOT, SERVICE_ID, WEBHOOK_SECRET, FakePagerDuty
from tests.support.fake_servicenow import BETH, HOOK_SECRET, INTEGRATION, FakeServiceNow
from tests.support.sync import sync_all


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    with FakePagerDuty() as fake:
        yield fake
    assert fake.violations == []


@pytest.fixture
def servicenow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow() as fake:
        yield fake
    assert fake.violations == []


def _connect(client: TestClient, admin: dict[str, str], pagerduty: FakePagerDuty,
             servicenow: FakeServiceNow) -> dict[str, dict[str, Any]]:
    bodies = {
        "pagerduty": {"settings": {"api_base": pagerduty.url, "service_id": SERVICE_ID,
                                   "from_email": BOT.email},
                      "credentials": {"api_key": pagerduty.api_key,
                                      "webhook_secret": WEBHOOK_SECRET}},
        "servicenow": {"settings": {"base_url": servicenow.url,
                                    "username": INTEGRATION.user_name},
                       "credentials": {"secret": INTEGRATION.password,
                                       "hook_secret": HOOK_SECRET}},
    }
    made = {}
    for kind, body in bodies.items():
        response = client.post("/api/v1/connectors", headers=admin,
                               json={"name": kind, "kind": kind, **body})
        assert response.status_code == 201, response.text
        made[kind] = response.json()
    return made


def _declare(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    response = client.post("/api/v1/incidents", headers=admin,
                           json={"title": "Checkout is failing", "severity": "critical"})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _hook(client: TestClient, connector: dict[str, Any], headers: dict[str, str],
          body: bytes) -> Any:
    return client.post(f"/hooks/{connector['id']}", headers=headers, content=body)


def _activity(client: TestClient, admin: dict[str, str], connector: dict[str, Any]
              ) -> list[str]:
    rows = client.get(f"/api/v1/connectors/{connector['id']}/activity",
                      headers=admin).json()["data"]
    return [row["summary"] for row in rows]


def test_hooks_are_verified_deduplicated_and_own_changes_dropped(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        pagerduty: FakePagerDuty, servicenow: FakeServiceNow) -> None:
    client = hub_client
    connectors = _connect(client, admin, pagerduty, servicenow)
    _declare(client, admin)
    sync_all(hub)
    opened, record = pagerduty.only(), servicenow.only()

    person = pagerduty.acknowledge_as(opened.id, by=ALICE)
    first = _hook(client, connectors["pagerduty"], person.headers, person.body)
    assert first.status_code == 200
    assert first.json() == {"ok": True, "message": f"pull of {opened.id} queued"}
    again = _hook(client, connectors["pagerduty"], person.headers, person.body)
    assert again.status_code == 200
    assert _activity(client, admin, connectors["pagerduty"])[0].endswith(
        f"duplicate delivery {person.headers['X-Webhook-Id']}")
    forged = _hook(client, connectors["pagerduty"],
                   {**person.headers, "X-PagerDuty-Signature": "v1=" + "0" * 64,
                    "X-Webhook-Id": "another"}, person.body)
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"

    sync_all(hub)  # the pull acknowledges the incident; ServiceNow follows
    assert servicenow.only()["state"] == "2"
    # ServiceNow's Business Rule fires for Interlock's own PATCH too: an echo.
    echo = servicenow.update_as(record["sys_id"], by=INTEGRATION)
    answer = _hook(client, connectors["servicenow"], echo.headers, echo.body).json()
    assert answer["ok"] and answer["message"].endswith(
        "made by Interlock itself; not applied again")
    wrong = _hook(client, connectors["servicenow"], {"X-Interlock-Secret": "guess"},
                  echo.body)
    assert wrong.status_code == 401
    assert "guess" not in wrong.text and HOOK_SECRET not in wrong.text


def test_a_note_crosses_from_pagerduty_to_servicenow_and_never_comes_back(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        pagerduty: FakePagerDuty, servicenow: FakeServiceNow) -> None:
    client = hub_client
    connectors = _connect(client, admin, pagerduty, servicenow)
    incident = _declare(client, admin)
    sync_all(hub)
    opened, record = pagerduty.only(), servicenow.only()

    note = pagerduty.note_as(opened.id, "DB failover done", by=ALICE)
    assert _hook(client, connectors["pagerduty"], note.headers, note.body).status_code == 200
    sync_all(hub)

    timeline = client.get(f"/api/v1/incidents/{incident['id']}/timeline",
                          headers=admin).json()["data"]
    [comment] = [entry for entry in timeline if entry["kind"] == "incident.comment_added"]
    assert comment["origin"]["actor"] == ALICE.name
    assert servicenow.notes_of(record["sys_id"]) == [
        (INTEGRATION.user_name, f"{ALICE.name}: DB failover done")]
    assert [(item.user, item.content) for item in pagerduty.only().notes] == [
        (ALICE, "DB failover done")]  # not written back to PagerDuty

    # A comment made in Interlock reaches both, once.
    client.post(f"/api/v1/incidents/{incident['id']}/comments", headers=admin,
                json={"body": "customer comms sent"})
    sync_all(hub)
    assert len(pagerduty.only().notes) == 2
    assert len(servicenow.notes_of(record["sys_id"])) == 2


def test_missed_webhooks_are_healed_by_reconciliation(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        pagerduty: FakePagerDuty, servicenow: FakeServiceNow,
        manual_clock: ManualClock) -> None:
    client = hub_client
    _connect(client, admin, pagerduty, servicenow)
    incident = _declare(client, admin)
    sync_all(hub)
    opened, record = pagerduty.only(), servicenow.only()

    pagerduty.acknowledge_as(opened.id, by=ALICE)  # neither tool's call arrives
    servicenow.work_note_as(record["sys_id"], "restarted the pods", by=BETH)
    assert hub.sync.reconcile() == 0
    manual_clock.advance(timedelta(minutes=6))
    assert hub.sync.reconcile() == 2
    sync_all(hub)

    current = client.get(f"/api/v1/incidents/{incident['id']}", headers=admin).json()
    assert current["status"] == "acknowledged"
    assert current["assignee"] == ALICE.name
    assert servicenow.only()["state"] == "2"
    timeline = client.get(f"/api/v1/incidents/{incident['id']}/timeline",
                          headers=admin).json()["data"]
    assert [entry["origin"]["actor"] for entry in timeline
            if entry["kind"] == "incident.comment_added"] == [BETH.user_name]
    assert [(item.user, item.content) for item in pagerduty.only().notes] == [
        (BOT, f"{BETH.user_name}: restarted the pods")]
