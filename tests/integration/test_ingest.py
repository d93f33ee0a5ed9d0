"""Alerts in, as monitoring tools send them: authenticated, durable, deduplicated,
correlated into incidents, resolved when their alerts resolve; on both databases."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.services.container import Container
from interlock.store.tables import events, payloads
from tests.conftest import make_key
from tests.support.ingest import am_alert, am_payload, basic, create_source, pagerduty, process_all

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sources"
Headers = dict[str, str]


@pytest.fixture
def admin_key(hub: Container) -> Headers:
    return make_key(hub, Scope.ADMIN, name="ops")


def send(client: TestClient, source: dict[str, Any], body: Any, **headers: str) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(source["path"], content=raw,
                       headers={"content-type": "application/json",
                               **basic(source["token"]), **headers})


def incidents(client: TestClient, headers: Headers) -> list[dict[str, Any]]:
    return list(reversed(client.get("/api/v1/incidents", headers=headers).json()["data"]))


def timeline(client: TestClient, headers: Headers, incident_id: str) -> list[str]:
    entries = client.get(f"/api/v1/incidents/{incident_id}/timeline", headers=headers)
    return [entry["message"] for entry in entries.json()["data"]]


def stored_payloads(hub: Container) -> int:
    with hub.store.engine.connect() as connection:  # type: ignore[attr-defined]
        return connection.execute(sa.select(sa.func.count()).select_from(payloads)).scalar_one()


def test_each_way_a_tool_can_authenticate(hub_client: TestClient, admin_key: Headers,
                                          hub: Container) -> None:
    source = create_source(hub_client, admin_key)
    body = json.dumps(am_payload(am_alert("HighLatency"))).encode()
    token = source["token"]
    ways = [
        {"Authorization": f"Bearer {token}"},
        basic(token),
        basic(token, user=""),
    ]
    for headers in ways:
        assert hub_client.post(source["path"], content=body, headers=headers).status_code == 202
    assert hub_client.post(f"{source['path']}?token={token}", content=body).status_code == 202
    refused = [
        {},
        {"Authorization": "Bearer ilt_wrong"},
        basic("ilt_wrong"),
        {"Authorization": "Basic !!notbase64"},
    ]
    for headers in refused:
        response = hub_client.post(source["path"], content=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    assert hub_client.post("/ingest/src_unknown", content=body,
                           headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert stored_payloads(hub) == 4


def test_grafana_hmac_and_standard_webhooks_signatures(
    hub_client: TestClient, admin_key: Headers, hub: Container
) -> None:
    grafana = create_source(hub_client, admin_key, kind="grafana", signed=True,
                            timestamp_header="X-Grafana-Alerting-Signature-Timestamp")
    body = (FIXTURES / "grafana-docs-firing.json").read_bytes()
    secret = grafana["signing_secret"].encode()
    now = str(int(hub.clock.now().timestamp()))
    signature = hmac.new(secret, now.encode() + b":" + body, hashlib.sha256).hexdigest()
    signed = {"X-Grafana-Alerting-Signature": signature,
              "X-Grafana-Alerting-Signature-Timestamp": now}
    assert hub_client.post(grafana["path"], content=body, headers=signed).status_code == 202
    tampered = {**signed, "X-Grafana-Alerting-Signature-Timestamp": str(int(now) - 1)}
    assert hub_client.post(grafana["path"], content=body, headers=tampered).status_code == 401

    generic = create_source(hub_client, admin_key, kind="generic", signed=True,
                            options={"mapping": {"title": "summary", "status": "state"}})
    assert generic["signing_secret"].startswith("whsec_")
    event = json.dumps({"summary": "Queue backlog", "state": "firing"})
    timestamp = hub.clock.now()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(timestamp.timestamp())),
               "webhook-signature": Webhook(generic["signing_secret"]).sign(
                   "msg_1", timestamp, event)}
    assert hub_client.post(generic["path"], content=event, headers=headers).status_code == 202
    forged = {**headers, "webhook-signature": "v1,AAAA"}
    assert hub_client.post(generic["path"], content=event, headers=forged).status_code == 401
    process_all(hub)
    titles = [incident["title"] for incident in incidents(hub_client, admin_key)]
    assert "Queue backlog" in titles


def test_accepted_means_stored_before_processing(hub_client: TestClient, admin_key: Headers,
                                                 hub: Container) -> None:
    source = create_source(hub_client, admin_key)
    response = send(hub_client, source, am_payload(am_alert("DiskFull")))
    assert response.status_code == 202
    payload_id = response.json()["id"]
    listed = hub_client.get(f"/api/v1/sources/{source['id']}/payloads", headers=admin_key)
    (payload,) = listed.json()["data"]
    assert (payload["id"], payload["status"]) == (payload_id, "pending")
    assert incidents(hub_client, admin_key) == []
    process_all(hub)
    (payload,) = hub_client.get(f"/api/v1/sources/{source['id']}/payloads",
                                headers=admin_key).json()["data"]
    assert (payload["status"], payload["alerts"]) == ("processed", 1)


@pytest.mark.parametrize("count", [1, 3, 6_000])
def test_payloads_stored_together_are_all_stored(hub_client: TestClient, admin_key: Headers,
                                                 hub: Container, count: int) -> None:
    """However many arrive together (the API gathers concurrent requests' payloads into
    one commit; PostgreSQL stores a few in one statement, of at most 65,535 parameters)."""
    source = create_source(hub_client, admin_key)
    stored = hub.sources.get(source["id"])
    body = json.dumps(am_payload(am_alert("DiskFull"))).encode()
    received = [hub.intake.received(stored, body, "application/json") for _ in range(count)]
    hub.intake.store(received)
    with hub.store.transaction() as tx:
        ids = set(tx.connection.execute(sa.select(payloads.c.id)).scalars())
    assert ids == {payload.id for payload in received}


def test_unparseable_payloads_are_kept_with_their_error(
    hub_client: TestClient, admin_key: Headers, hub: Container
) -> None:
    source = create_source(hub_client, admin_key)
    truncated = send(hub_client, source, b'{"version": "4", "alerts": [')
    assert truncated.status_code == 400
    assert "not JSON" in truncated.json()["detail"]
    wrong_shape = send(hub_client, source, [am_alert("A")])
    assert wrong_shape.status_code == 202
    missing = send(hub_client, source, {"version": "4", "status": "firing"})
    assert missing.status_code == 202
    process_all(hub)
    shown = hub_client.get(f"/api/v1/sources/{source['id']}/payloads",
                           headers=admin_key).json()["data"]
    assert [item["status"] for item in shown] == ["failed", "failed", "failed"]
    assert all(item["error"] for item in shown)
    assert "alerts" in shown[0]["error"]
    assert incidents(hub_client, admin_key) == []


def test_repeats_update_one_alert_and_one_incident(
    hub_client: TestClient, admin_key: Headers, hub: Container
) -> None:
    source = create_source(hub_client, admin_key)
    alert = am_alert("HighErrorRate")
    for _ in range(3):
        send(hub_client, source, am_payload(alert))
        process_all(hub)
    (incident,) = incidents(hub_client, admin_key)
    (stored,) = hub_client.get(f"/api/v1/incidents/{incident['id']}/alerts",
                               headers=admin_key).json()["data"]
    assert stored["count"] == 3
    assert stored["first_seen_at"] <= stored["last_seen_at"]
    assert incident["version"] == 1  # declared with its alert; repeats change nothing


def test_alerts_group_into_incidents_by_service_and_name(
    hub_client: TestClient, admin_key: Headers, hub: Container
) -> None:
    source = create_source(hub_client, admin_key)
    send(hub_client, source, am_payload(
        am_alert("HighLatency", instance="a", severity="medium"),
        am_alert("HighLatency", instance="b", severity="medium")))
    process_all(hub)
    send(hub_client, source, am_payload(am_alert("HighLatency", instance="c")))
    send(hub_client, source, am_payload(am_alert("DiskFull")))
    send(hub_client, source, am_payload(am_alert("HighLatency", service="search")))
    process_all(hub)
    found = incidents(hub_client, admin_key)
    assert [(i["title"], i["service"], i["severity"]) for i in found] == [
        ("HighLatency on checkout", "checkout", "critical"),
        ("DiskFull on checkout", "checkout", "critical"),
        ("HighLatency on search", "search", "critical"),
    ]
    latency = found[0]
    alerts = hub_client.get(f"/api/v1/incidents/{latency['id']}/alerts",
                            headers=admin_key).json()["data"]
    assert len(alerts) == 3
    assert timeline(hub_client, admin_key, latency["id"]) == [
        "Incident declared by 2 alerts: HighLatency on checkout (instance=a), "
        "HighLatency on checkout (instance=b)",
        "Alert attached: HighLatency on checkout; severity raised to critical",
    ]
    with hub.store.engine.connect() as connection:  # type: ignore[attr-defined]
        attached = connection.execute(sa.select(events.c.origin, events.c.data).where(
            events.c.type.in_(["incident.created", "incident.alert_attached"]),
            events.c.incident_id == latency["id"]).order_by(events.c.sequence)).all()
    # The alerts that opened it are told in incident.created; the next one raised the
    # severity, so it was told at once rather than waiting for the digest.
    assert [row.data["alert_count"] for row in attached] == [2, 1]
    assert all(row.origin == {"kind": "source", "id": source["id"], "name": "prometheus",
                              "actor": None} for row in attached)


def test_a_custom_grouping_template(hub_client: TestClient, admin_key: Headers,
                                    hub: Container) -> None:
    source = create_source(hub_client, admin_key, grouping="{labels.cluster}")
    send(hub_client, source, am_payload(am_alert("A", cluster="eu-1"), am_alert("B",
                                        cluster="eu-1"), am_alert("C", cluster="us-1")))
    process_all(hub)
    assert len(incidents(hub_client, admin_key)) == 2
    bad = hub_client.post("/api/v1/sources", headers=admin_key,
                          json={"name": "x", "kind": "alertmanager", "grouping": "{nope}"})
    assert bad.status_code == 422
    assert "nope" in bad.json()["detail"]


def test_incidents_resolve_when_all_their_alerts_resolve(
    hub_client: TestClient, admin_key: Headers, hub: Container
) -> None:
    source = create_source(hub_client, admin_key)
    first, second = am_alert("Down", instance="a"), am_alert("Down", instance="b")
    send(hub_client, source, am_payload(first, second))
    process_all(hub)
    send(hub_client, source, am_payload({**first, "status": "resolved"}))
    process_all(hub)
    (incident,) = incidents(hub_client, admin_key)
    assert incident["status"] == "triggered", "one alert still fires"
    send(hub_client, source, am_payload({**second, "status": "resolved"}))
    process_all(hub)
    (incident,) = incidents(hub_client, admin_key)
    assert incident["status"] == "resolved"
    assert timeline(hub_client, admin_key, incident["id"])[-1] == (
        "Resolved automatically: all 2 alerts resolved in prometheus")


def test_auto_resolve_can_be_switched_off(hub_client: TestClient, admin_key: Headers,
                                          hub: Container) -> None:
    source = create_source(hub_client, admin_key, auto_resolve=False)
    alert = am_alert("Down")
    send(hub_client, source, am_payload(alert))
    send(hub_client, source, am_payload({**alert, "status": "resolved"}))
    process_all(hub)
    (incident,) = incidents(hub_client, admin_key)
    assert incident["status"] == "triggered"


def test_a_recently_resolved_incident_reopens_and_an_old_one_does_not(
    hub_client: TestClient, admin_key: Headers, hub: Container, manual_clock: ManualClock
) -> None:
    source = create_source(hub_client, admin_key, reopen_window_seconds=600)
    alert = am_alert("Flapping")
    resolved = {**alert, "status": "resolved"}
    send(hub_client, source, am_payload(alert))
    send(hub_client, source, am_payload(resolved))
    process_all(hub)
    manual_clock.advance(timedelta(minutes=5))
    send(hub_client, source, am_payload(alert))
    process_all(hub)
    (incident,) = incidents(hub_client, admin_key)
    assert incident["status"] == "triggered"
    assert "Reopened: Flapping on checkout fired again within 10 min of resolution" in timeline(
        hub_client, admin_key, incident["id"])
    send(hub_client, source, am_payload(resolved))
    process_all(hub)
    manual_clock.advance(timedelta(minutes=11))
    send(hub_client, source, am_payload(alert))
    process_all(hub)
    first, second = incidents(hub_client, admin_key)
    assert (first["status"], second["status"]) == ("resolved", "triggered")


def test_pagerduty_events_trigger_acknowledge_and_resolve(
    hub_client: TestClient, admin_key: Headers, hub: Container
) -> None:
    source = create_source(hub_client, admin_key, kind="pagerduty")
    for action, status in (("trigger", "triggered"), ("acknowledge", "acknowledged"),
                           ("resolve", "resolved")):
        assert send(hub_client, source, pagerduty(action, "db-1-disk")).status_code == 202
        process_all(hub)
        (incident,) = incidents(hub_client, admin_key)
        assert incident["status"] == status
    assert incident["title"] == "Disk full on db-1"
    assert incident["severity"] == "critical"
    unknown = send(hub_client, source, {"routing_key": "x", "event_action": "explode",
                                        "dedup_key": "k"})
    assert unknown.status_code == 202
    process_all(hub)
    latest = hub_client.get(f"/api/v1/sources/{source['id']}/payloads",
                            headers=admin_key).json()["data"][0]
    assert latest["status"] == "failed" and "explode" in latest["error"]


def test_documented_payloads_of_every_kind_make_incidents(
    hub_client: TestClient, admin_key: Headers, hub: Container
) -> None:
    for kind, fixture in (("alertmanager", "alertmanager-docs-v4.json"),
                          ("grafana", "grafana-docs-firing.json"),
                          ("datadog", "datadog-docs-default.json"),
                          ("pagerduty", "pagerduty-docs-trigger.json")):
        source = create_source(hub_client, admin_key, kind=kind, name=kind)
        response = send(hub_client, source, (FIXTURES / fixture).read_bytes())
        assert response.status_code == 202, (kind, response.text)
    process_all(hub)
    origins = set()
    for incident in incidents(hub_client, admin_key):
        entries = hub_client.get(f"/api/v1/incidents/{incident['id']}/timeline",
                                 headers=admin_key).json()["data"]
        origins.add(entries[0]["origin"]["name"])
    assert origins == {"alertmanager", "grafana", "datadog", "pagerduty"}


def test_maintenance_windows_drop_or_suppress(hub_client: TestClient, admin_key: Headers,
                                              hub: Container, manual_clock: ManualClock) -> None:
    source = create_source(hub_client, admin_key)
    now = manual_clock.now()
    window = {"starts_at": (now - timedelta(minutes=1)).isoformat(),
              "ends_at": (now + timedelta(hours=1)).isoformat()}
    dropped = hub_client.post("/api/v1/maintenance", headers=admin_key, json={
        **window, "name": "staging noise", "mode": "drop", "matchers": {"labels.env": "staging"}})
    suppressed = hub_client.post("/api/v1/maintenance", headers=admin_key, json={
        **window, "name": "db upgrade", "mode": "suppress", "matchers": {"service": "db"}})
    assert dropped.status_code == suppressed.status_code == 201
    send(hub_client, source, am_payload(
        am_alert("Noise", env="staging"), am_alert("ReplicaLag", service="db"),
        am_alert("Real", service="web")))
    process_all(hub)
    assert [i["title"] for i in incidents(hub_client, admin_key)] == ["Real on web"]
    shown = hub_client.get("/api/v1/alerts?suppressed=true", headers=admin_key).json()["data"]
    assert [(a["title"], a["suppressed_by"]) for a in shown] == [
        ("ReplicaLag on db", suppressed.json()["id"])]
    payload = hub_client.get(f"/api/v1/sources/{source['id']}/payloads",
                             headers=admin_key).json()["data"][0]
    assert (payload["alerts"], payload["dropped"], payload["suppressed"]) == (3, 1, 1)
    counts = {w["name"]: (w["dropped"], w["suppressed"]) for w in
              hub_client.get("/api/v1/maintenance", headers=admin_key).json()["data"]}
    assert counts == {"staging noise": (1, 0), "db upgrade": (0, 1)}

    manual_clock.advance(timedelta(hours=2))
    send(hub_client, source, am_payload(am_alert("ReplicaLag", service="db")))
    process_all(hub)
    assert "ReplicaLag on db" in [i["title"] for i in incidents(hub_client, admin_key)]


def test_a_source_rate_limit_answers_429_with_retry_after(
    hub_client: TestClient, admin_key: Headers, hub: Container
) -> None:
    source = create_source(hub_client, admin_key, rate_limit=1)
    body = am_payload(am_alert("A"))
    assert send(hub_client, source, body).status_code == 202
    limited = send(hub_client, source, body)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert stored_payloads(hub) == 1


def test_oversized_bodies_are_refused_and_big_groups_accepted(
    hub_client: TestClient, admin_key: Headers, hub: Container
) -> None:
    source = create_source(hub_client, admin_key)
    huge = b'{"alerts": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = send(hub_client, source, huge)
    assert response.status_code == 413
    assert stored_payloads(hub) == 0
    storm = am_payload(*[am_alert("NodeDown", instance=f"node-{n}", 标签="值")
                         for n in range(10_000)])
    assert send(hub_client, source, storm).status_code == 202
    process_all(hub)
    (incident,) = incidents(hub_client, admin_key)
    assert incident["version"] == 1
    assert timeline(hub_client, admin_key, incident["id"])[0].startswith(
        "Incident declared by 10000 alerts: NodeDown on checkout")
    alerts = hub_client.get(f"/api/v1/incidents/{incident['id']}/alerts", headers=admin_key)
    assert len(alerts.json()["data"]) == 10_000
    assert alerts.json()["data"][0]["labels"]["标签"] == "值"


def test_sources_need_the_sources_scope_and_hide_their_token(
    hub_client: TestClient, hub: Container, admin_key: Headers
) -> None:
    writer = make_key(hub, Scope.INCIDENTS_WRITE)
    refused = hub_client.post("/api/v1/sources", headers=writer,
                              json={"name": "x", "kind": "alertmanager"})
    assert refused.status_code == 403
    source = create_source(hub_client, admin_key)
    shown = hub_client.get(f"/api/v1/sources/{source['id']}", headers=admin_key)
    assert source["token"] not in shown.text
    assert shown.json()["ingest_url"].endswith(source["path"])
    rotated = hub_client.post(f"/api/v1/sources/{source['id']}/rotate-token",
                              headers=admin_key).json()
    body = am_payload(am_alert("A"))
    assert send(hub_client, source, body).status_code == 401
    assert send(hub_client, {**source, "token": rotated["token"]}, body).status_code == 202
    generic = hub_client.post("/api/v1/sources", headers=admin_key,
                              json={"name": "g", "kind": "generic"})
    assert generic.status_code == 422
    assert "mapping" in generic.json()["detail"]


def test_out_of_range_numbers_are_named_not_crashed_on(
    hub_client: TestClient, admin_key: Headers
) -> None:
    for field, value in (("reopen_window_seconds", 1e300), ("reopen_window_seconds", -1),
                         ("rate_limit", 1e300), ("rate_limit", 0)):
        response = hub_client.post("/api/v1/sources", headers=admin_key, json={
            "name": "x", "kind": "alertmanager", field: value})
        assert response.status_code == 422, (field, value, response.text)
        assert field in response.json()["detail"]
    endpoint = hub_client.post("/api/v1/endpoints", headers=admin_key,
                               json={"url": "https://example.com/hook", "timeout": 1e300})
    assert endpoint.status_code == 422
    assert "timeout" in endpoint.json()["detail"]


def test_maintenance_times_out_of_range_in_utc_are_named(
    hub_client: TestClient, admin_key: Headers
) -> None:
    response = hub_client.post("/api/v1/maintenance", headers=admin_key, json={
        "name": "too early", "starts_at": "0001-01-01T00:00:00+05:00",
        "ends_at": "2030-01-01T00:00:00Z"})
    assert response.status_code == 422
    assert "starts_at" in response.json()["detail"]
