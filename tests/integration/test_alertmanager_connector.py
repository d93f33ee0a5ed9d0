"""The Alertmanager connector against a real Prometheus Alertmanager: acknowledging an
incident silences its alerts, resolving or reopening expires the silence, and a silence
expired by a person in Alertmanager is noticed on reconcile.

Also the framework's own promises, seen through this connector: credentials never
come back, a failing tool is retried on the schedule without holding up another
connector, and the sharing filter decides which incidents reach a tool.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.services.container import Container
from interlock.store.tables import connectors
from tests.conftest import make_key
from tests.support.alertmanager import RunningAlertmanager
from tests.support.ingest import am_alert, am_payload, basic, create_source, process_all
from tests.support.receiver import Receiver
from tests.support.server import free_port
from tests.support.sync import sync_all

pytestmark = pytest.mark.usefixtures("admin_key")


@pytest.fixture
def alertmanager() -> Iterator[RunningAlertmanager]:
    with Receiver() as receiver, RunningAlertmanager(receiver.url) as running:
        yield running


@pytest.fixture
def admin_key(hub: Container) -> dict[str, str]:
    return make_key(hub, Scope.ADMIN, name="admin")


def _incident_from_alerts(client: TestClient, admin: dict[str, str], hub: Container,
                          severity: str = "critical") -> dict[str, Any]:
    source = create_source(client, admin)
    payload = am_payload(
        am_alert("HighErrorRate", severity=severity, instance="checkout-1:8080"),
        am_alert("HighErrorRate", severity=severity, instance="checkout-2:8080"),
    )
    response = client.post(source["path"], json=payload, headers=basic(source["token"]))
    assert response.status_code == 202, response.text
    process_all(hub)
    incidents = client.get("/api/v1/incidents", headers=admin).json()["data"]
    assert len(incidents) == 1
    found: dict[str, Any] = incidents[0]
    return found


def _connector(client: TestClient, admin: dict[str, str], url: str, **extra: Any
               ) -> dict[str, Any]:
    response = client.post("/api/v1/connectors", headers=admin, json={
        "name": "alertmanager", "kind": "alertmanager",
        "settings": {"url": url, "duration_minutes": 90}, **extra})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _active(alertmanager: RunningAlertmanager) -> list[dict[str, Any]]:
    return [item for item in alertmanager.silences() if item["status"]["state"] == "active"]


def _timeline(client: TestClient, admin: dict[str, str], incident: str) -> list[str]:
    entries = client.get(f"/api/v1/incidents/{incident}/timeline", headers=admin).json()
    return [entry["message"] for entry in entries["data"]]


def test_ack_silences_the_alerts_and_resolve_expires_the_silence(
        hub: Container, hub_client: TestClient, admin_key: dict[str, str],
        alertmanager: RunningAlertmanager) -> None:
    client, admin = hub_client, admin_key
    incident = _incident_from_alerts(client, admin, hub)
    connector = _connector(client, admin, alertmanager.url)

    client.post(f"/api/v1/incidents/{incident['id']}/acknowledge", headers=admin)
    assert sync_all(hub) >= 1

    [silence] = _active(alertmanager)
    matchers = {m["name"]: m["value"] for m in silence["matchers"]}
    # The labels both alerts share; the per-instance label would silence one only.
    assert matchers == {"alertname": "HighErrorRate", "service": "checkout",
                        "severity": "critical"}
    assert all(m["isEqual"] and not m["isRegex"] for m in silence["matchers"])
    assert incident["reference"] in silence["comment"]
    assert silence["createdBy"] == "interlock"
    # Alertmanager itself now reports those alerts' notifications as silenced.
    links = client.get(f"/api/v1/incidents/{incident['id']}/links", headers=admin).json()
    [link] = links["data"]
    assert link["kind"] == "alertmanager_silence"
    assert link["external_id"] == silence["id"]
    assert link["connector_id"] == connector["id"]
    assert any(f"silence {silence['id']} created" in line
               for line in _timeline(client, admin, incident["id"]))

    client.post(f"/api/v1/incidents/{incident['id']}/resolve", headers=admin)
    sync_all(hub)
    assert alertmanager.silence(silence["id"])["status"]["state"] == "expired"
    assert not _active(alertmanager)

    activity = client.get(f"/api/v1/connectors/{connector['id']}/activity",
                          headers=admin).json()["data"]
    calls = [(call["method"], call["url"].split("/api/v2")[1], call["status"])
             for item in reversed(activity) for call in item["calls"]]
    assert calls == [("POST", "/silences", 200),
                     ("DELETE", f"/silence/{silence['id']}", 200)]
    assert all(item["outcome"] == "succeeded" for item in activity)


def test_an_incident_without_alerts_is_skipped_and_the_connector_stays_healthy(
        hub: Container, hub_client: TestClient, admin_key: dict[str, str],
        alertmanager: RunningAlertmanager) -> None:
    """Declared by hand, an incident has nothing in Alertmanager to silence: that is
    nothing to do, not a failure of the connector (which used to turn red for it)."""
    client, admin = hub_client, admin_key
    connector = _connector(client, admin, alertmanager.url)
    declared = client.post("/api/v1/incidents", headers=admin,
                           json={"title": "Checkout slow", "severity": "high"}).json()
    client.post(f"/api/v1/incidents/{declared['id']}/acknowledge", headers=admin)
    sync_all(hub)
    client.post(f"/api/v1/incidents/{declared['id']}/resolve", headers=admin)
    sync_all(hub)

    assert not alertmanager.silences()
    activity = client.get(f"/api/v1/connectors/{connector['id']}/activity",
                          headers=admin).json()["data"]
    assert [(item["action"], item["outcome"]) for item in activity] == [
        ("push:incident.resolved", "skipped"), ("push:incident.acknowledged", "skipped")]
    assert "nothing to silence" in activity[1]["summary"]
    assert all(item["error"] is None and not item["calls"] for item in activity)
    health = client.get(f"/api/v1/connectors/{connector['id']}", headers=admin).json()
    assert health["failing_since"] is None and health["last_error"] is None


def test_reopen_expires_and_a_new_ack_silences_again(
        hub: Container, hub_client: TestClient, admin_key: dict[str, str],
        alertmanager: RunningAlertmanager) -> None:
    client, admin = hub_client, admin_key
    incident = _incident_from_alerts(client, admin, hub)
    _connector(client, admin, alertmanager.url)
    key = incident["id"]
    client.post(f"/api/v1/incidents/{key}/acknowledge", headers=admin)
    sync_all(hub)
    [first] = _active(alertmanager)
    client.post(f"/api/v1/incidents/{key}/resolve", headers=admin)
    client.post(f"/api/v1/incidents/{key}/reopen", headers=admin)
    sync_all(hub)
    assert not _active(alertmanager)
    client.post(f"/api/v1/incidents/{key}/acknowledge", headers=admin)
    sync_all(hub)
    [second] = _active(alertmanager)
    assert second["id"] != first["id"]
    assert alertmanager.silence(first["id"])["status"]["state"] == "expired"


def test_a_silence_expired_in_alertmanager_is_noticed_on_reconcile(
        hub: Container, hub_client: TestClient, admin_key: dict[str, str],
        alertmanager: RunningAlertmanager, manual_clock: ManualClock) -> None:
    client, admin = hub_client, admin_key
    incident = _incident_from_alerts(client, admin, hub)
    connector = _connector(client, admin, alertmanager.url)
    client.post(f"/api/v1/incidents/{incident['id']}/acknowledge", headers=admin)
    sync_all(hub)
    [silence] = _active(alertmanager)

    alertmanager.expire_silence(silence["id"])  # a person, in Alertmanager's UI
    assert hub.sync.reconcile() == 0  # not due yet
    manual_clock.advance(timedelta(minutes=6))
    assert hub.sync.reconcile() == 1
    sync_all(hub)
    assert any(f"silence {silence['id']} was expired in Alertmanager" in line
               for line in _timeline(client, admin, incident["id"]))
    # Resolving now has nothing left to expire: no call is made.
    client.post(f"/api/v1/incidents/{incident['id']}/resolve", headers=admin)
    sync_all(hub)
    activity = client.get(f"/api/v1/connectors/{connector['id']}/activity",
                          headers=admin).json()["data"]
    assert activity[0]["calls"] == []
    assert activity[0]["summary"] == "no active silence; nothing to expire"


def test_credentials_are_stored_encrypted_and_never_returned(
        hub: Container, hub_client: TestClient, admin_key: dict[str, str]) -> None:
    response = hub_client.post("/api/v1/connectors", headers=admin_key, json={
        "name": "jira", "kind": "alertmanager", "settings": {"url": "http://127.0.0.1:9"},
        "credentials": {}})
    assert response.status_code == 201
    # A kind that needs none refuses unknown credentials, naming the field.
    refused = hub_client.post("/api/v1/connectors", headers=admin_key, json={
        "name": "x", "kind": "alertmanager", "settings": {"url": "http://127.0.0.1:9"},
        "credentials": {"password": "hunter2-very-secret"}})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["field"] == "credentials.password"
    assert "hunter2" not in refused.text
    with hub.store.transaction() as tx:  # type: ignore[attr-defined]
        stored = tx.connection.execute(sa.select(connectors.c.credentials)).scalars().all()
    assert stored and all(value.startswith("gAAAA") for value in stored)  # Fernet tokens


def test_a_tool_that_is_down_is_retried_on_schedule_and_blocks_no_other(
        hub: Container, hub_client: TestClient, admin_key: dict[str, str],
        alertmanager: RunningAlertmanager, manual_clock: ManualClock) -> None:
    client, admin = hub_client, admin_key
    incident = _incident_from_alerts(client, admin, hub)
    down = _connector(client, admin, f"http://127.0.0.1:{free_port()}")  # nothing listens
    _connector(client, admin, alertmanager.url)
    client.post(f"/api/v1/incidents/{incident['id']}/acknowledge", headers=admin)
    sync_all(hub)
    assert len(_active(alertmanager)) == 1  # the healthy connector did its work

    def attempts() -> list[dict[str, Any]]:
        return client.get(f"/api/v1/connectors/{down['id']}/activity",
                          headers=admin).json()["data"]

    # Immediately, then 5 s, 5 min, 30 min: an hour down is four attempts.
    for wait in (timedelta(seconds=6), timedelta(minutes=6), timedelta(minutes=36)):
        manual_clock.advance(wait)
        sync_all(hub)
    failed = attempts()
    assert [item["attempt"] for item in failed] == [4, 3, 2, 1]
    assert all(item["outcome"] == "failed" for item in failed)
    assert "refused" in failed[0]["error"]
    assert failed[0]["next_attempt_at"] is not None
    health = client.get(f"/api/v1/connectors/{down['id']}", headers=admin).json()
    assert health["failing_since"] is not None and health["last_error"]
    assert health["queue"]["pending"] == 1


def test_the_sharing_filter_decides_which_incidents_reach_the_tool(
        hub: Container, hub_client: TestClient, admin_key: dict[str, str],
        alertmanager: RunningAlertmanager) -> None:
    client, admin = hub_client, admin_key
    incident = _incident_from_alerts(client, admin, hub, severity="warning")
    _connector(client, admin, alertmanager.url, filter={"severity": ["critical", "high"]})
    client.post(f"/api/v1/incidents/{incident['id']}/acknowledge", headers=admin)
    assert sync_all(hub) == 0
    assert not _active(alertmanager)
