"""Managing webhook endpoints: everything wrong is refused when saved, with reasons."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from fastapi.testclient import TestClient

from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.conftest import make_key
from tests.integration.test_webhook_delivery import add_endpoint, declare
from tests.support.delivery import deliver_all
from tests.support.receiver import Receiver

Headers = dict[str, str]
URL = "/api/v1/endpoints"
PUBLIC = "https://hooks.example.com/interlock"


def refused(client: TestClient, headers: Headers, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(URL, headers=headers, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    return problem


def test_the_secret_is_shown_once_and_secret_headers_are_masked(
    hub_client: TestClient, hub: Container
) -> None:
    manager = _manager(hub)
    created = add_endpoint(hub_client, manager, "http://127.0.0.1:9/hook", description="pager",
                           headers={"Authorization": "Bearer s3cr3t", "X-Team": "payments"},
                           event_types=["incident.created"], timeout=5, rate_limit=20)
    assert created["secret"].startswith("whsec_")
    shown = hub_client.get(f"{URL}/{created['id']}", headers=manager)
    listed = hub_client.get(URL, headers=manager)
    for response in (shown, listed):
        assert response.status_code == 200
        assert created["secret"] not in response.text
        assert "s3cr3t" not in response.text
    assert shown.json()["headers"] == {"Authorization": "********", "X-Team": "payments"}
    assert (shown.json()["timeout"], shown.json()["rate_limit"]) == (5, 20)


def test_private_and_loopback_targets_are_refused_unless_allowed(
    client: TestClient, admin: Headers
) -> None:
    for url in ("http://127.0.0.1:8080/x", "http://169.254.169.254/latest/meta-data",
                "http://10.0.0.5/hook", "http://localhost/hook", "http://[::1]/hook"):
        problem = refused(client, admin, {"url": url})
        assert "INTERLOCK_ALLOWED_TARGETS" in problem["detail"], url
    for url in ("ftp://example.com/x", "http://user:pw@example.com/x", "not a url"):
        refused(client, admin, {"url": url})


def test_bad_configuration_is_named_when_saving(hub_client: TestClient, hub: Container
                                               ) -> None:
    manager = _manager(hub)
    base = {"url": "http://127.0.0.1:9/hook"}
    template = refused(hub_client, manager, {**base, "template": '{"text": {{ data.incident.'})
    assert "line 1" in template["detail"]
    not_json = refused(hub_client, manager, {**base, "template": "text: {{ type }}"})
    assert "JSON" in not_json["detail"]
    bad_filter = refused(hub_client, manager, {**base, "filter": {"severity": ["urgent"]}})
    assert any(error["field"] == "filter.severity" for error in bad_filter["errors"])
    types = refused(hub_client, manager, {**base, "event_types": ["incident.deleted"]})
    assert "incident.deleted" in types["detail"]
    header = refused(hub_client, manager, {**base, "headers": {"webhook-signature": "x"}})
    assert "headers.webhook-signature" in header["detail"]
    for name in ("Svix-Id", "svix-signature", "Webhook-Extra"):
        other_scheme = refused(hub_client, manager, {**base, "headers": {name: "x"}})
        assert f"headers.{name}" in other_scheme["detail"], name
    assert "timeout" in refused(hub_client, manager, {**base, "timeout": 600})["detail"]
    assert hub_client.get(URL, headers=manager).json()["data"] == []


def test_patch_changes_what_an_endpoint_receives(hub_client: TestClient, hub: Container
                                                 ) -> None:
    manager = _manager(hub)
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        patched = hub_client.patch(f"{URL}/{endpoint['id']}", headers=manager,
                                   json={"event_types": ["incident.resolved"]})
        assert patched.status_code == 200
        assert patched.json()["event_types"] == ["incident.resolved"]
        incident = declare(hub_client, manager)
        hub_client.post(f"/api/v1/incidents/{incident['id']}/resolve", headers=manager)
        deliver_all(hub)
        (only,) = receiver.wait_for(1)
    assert b"incident.resolved" in only.body
    assert hub_client.delete(f"{URL}/{endpoint['id']}", headers=manager).status_code == 204
    assert hub_client.get(f"{URL}/{endpoint['id']}", headers=manager).status_code == 404


def test_managing_endpoints_needs_the_webhooks_scope(client: TestClient, writer: Headers
                                                    ) -> None:
    response = client.post(URL, headers=writer, json={"url": PUBLIC})
    assert response.status_code == 403
    assert "webhooks:manage" in response.json()["detail"]
    assert client.get("/api/v1/messages", headers=writer).status_code == 403
    names = [item["name"] for item in
             client.get("/api/v1/event-types", headers=writer).json()["data"]]
    assert "incident.acknowledged" in names and "endpoint.disabled" in names
    assert "endpoint.test" not in names


def test_deliveries_tail_prints_attempts(
    hub_client: TestClient, hub: Container, database_url: str
) -> None:
    manager = _manager(hub)
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        declare(hub_client, manager)
        deliver_all(hub)
    result = subprocess.run(
        [sys.executable, "-m", "interlock.cli.main", "deliveries", "tail", "--no-follow",
         "--db", database_url],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "INTERLOCK_CONFIG": "/nonexistent"},
    )
    assert result.returncode == 0, result.stderr
    assert endpoint["id"] in result.stdout
    assert "incident.created" in result.stdout and " 200 " in result.stdout


def _manager(hub: Container) -> Headers:
    return make_key(hub, Scope.WEBHOOKS_MANAGE, Scope.INCIDENTS_WRITE, name="ops")
