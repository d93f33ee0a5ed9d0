"""Requests that used to end in a 500 (or worse, in a silent success) get a clear 4xx.

Each test sends what a careless or hostile client could send to a public entry point
(ingest, tool webhooks, maintenance windows) and checks what that client and the user
see: the status, a problem+json that names the problem, and that nothing was recorded
or changed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.conftest import make_key
from tests.integration.test_bad_input import assert_problem
from tests.support.fake_jira import FakeJira
from tests.support.fake_slack import SIGNING_SECRET, TOKEN, FakeSlack, sign
from tests.support.ingest import am_alert, am_payload, basic, create_source, process_all

#: Far deeper than any tool nests, and deep enough to exhaust Python's JSON decoder.
DEEP = b'{"alerts": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"


@pytest.fixture
def admin_key(hub: Container) -> dict[str, str]:
    return make_key(hub, Scope.ADMIN, name="ops")




def _payloads(client: TestClient, headers: dict[str, str], source: dict[str, Any]
              ) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/sources/{source['id']}/payloads", headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


def _connector(client: TestClient, headers: dict[str, str], kind: str, **body: Any
               ) -> dict[str, Any]:
    response = client.post("/api/v1/connectors", headers=headers,
                           json={"name": kind, "kind": kind, **body})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _webhook_activity(client: TestClient, headers: dict[str, str],
                      connector: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/connectors/{connector['id']}/activity", headers=headers)
    assert response.status_code == 200, response.text
    return [item for item in response.json()["data"] if item["action"] == "webhook"]


# -- 14 a: JSON nested too deeply ------------------------------------------------------


def test_deeply_nested_ingest_body_is_400_and_kept_as_failed(
        hub: Container, hub_client: TestClient, admin_key: dict[str, str]) -> None:
    source = create_source(hub_client, admin_key)
    response = hub_client.post(source["path"], content=DEEP,
                               headers={"content-type": "application/json",
                                        **basic(source["token"])})
    assert_problem(response, 400, "nested too deeply")
    [payload] = _payloads(hub_client, admin_key, source)
    assert payload["status"] == "failed"
    assert "nested too deeply" in payload["error"]
    # The worker never decodes it again: nothing to claim, no incident.
    assert process_all(hub) == 0
    assert hub_client.get("/api/v1/incidents", headers=admin_key).json()["data"] == []
    # An ordinary payload from the same source still goes through.
    fine = hub_client.post(source["path"], json=am_payload(am_alert("DiskFull")),
                           headers=basic(source["token"]))
    assert fine.status_code == 202, fine.text


def test_deeply_nested_signed_jira_webhook_is_400_and_not_recorded(
        hub_client: TestClient, admin_key: dict[str, str], jira: FakeJira) -> None:
    connector = _connector(hub_client, admin_key, "jira",
                           settings={"base_url": jira.url, "project_key": "OPS"},
                           credentials={"email": jira.email, "api_token": jira.api_token,
                                        "webhook_secret": jira.webhook_secret})
    # Jira's own headers (a fresh delivery id), signed over the deep body.
    headers = {**jira.signed({}).headers, "X-Hub-Signature": "sha256=" + hmac.new(
        jira.webhook_secret.encode(), DEEP, hashlib.sha256).hexdigest()}
    response = hub_client.post(f"/hooks/{connector['id']}", headers=headers, content=DEEP)
    assert_problem(response, 400, "nested too deeply")
    assert _webhook_activity(hub_client, admin_key, connector) == []


def test_deeply_nested_signed_slack_interaction_is_400(
        hub_client: TestClient, admin_key: dict[str, str], slack: FakeSlack) -> None:
    connector = _connector(hub_client, admin_key, "slack",
                           settings={"channel": "C0INCIDENT", "api_base": slack.api_base},
                           credentials={"bot_token": TOKEN, "signing_secret": SIGNING_SECRET})
    body = b"payload=" + b"%5B" * 5_000 + b"%5D" * 5_000
    response = hub_client.post(f"/hooks/{connector['id']}", content=body,
                               headers=sign(SIGNING_SECRET, int(time.time()), body))
    assert_problem(response, 400, "nested too deeply")
    assert _webhook_activity(hub_client, admin_key, connector) == []


def test_deeply_nested_api_body_is_400_and_stores_nothing(
        hub_client: TestClient, admin_key: dict[str, str]) -> None:
    # Deep enough to be absurd, shallow enough for Python's decoder to have taken it.
    deep = b"[" * 900 + b"]" * 900
    body = (b'{"name": "silences", "kind": "alertmanager", "settings": '
            b'{"url": "http://127.0.0.1:9", "created_by": ' + deep + b"}}")
    response = hub_client.post("/api/v1/connectors", content=body,
                               headers={**admin_key, "content-type": "application/json"})
    assert_problem(response, 400, "nested too deeply")
    listed = hub_client.get("/api/v1/connectors", headers=admin_key).json()["data"]
    assert listed == []


# -- 14 b: half a Standard Webhooks signature ------------------------------------------


@pytest.mark.parametrize("present", [
    {"webhook-signature": "v1,AAAA"},
    {"webhook-signature": "v1,AAAA", "webhook-id": "msg_1"},
    {"webhook-signature": "v1,AAAA", "webhook-timestamp": "1700000000"},
])
def test_incomplete_standard_webhook_headers_are_401(
        hub_client: TestClient, admin_key: dict[str, str], present: dict[str, str]) -> None:
    source = create_source(hub_client, admin_key, kind="generic", signed=True,
                           options={"mapping": {"title": "summary"}})
    response = hub_client.post(source["path"], content=b'{"summary": "Queue backlog"}',
                               headers={"content-type": "application/json", **present})
    assert_problem(response, 401, "credentials")
    assert _payloads(hub_client, admin_key, source) == []


# -- 14 c: null for a maintenance window's mode or matchers ----------------------------


@pytest.mark.parametrize("field", ["mode", "matchers", "name", "starts_at", "ends_at"])
def test_null_for_a_maintenance_field_is_422_and_changes_nothing(
        hub_client: TestClient, admin_key: dict[str, str], field: str) -> None:
    created = hub_client.post("/api/v1/maintenance", headers=admin_key, json={
        "name": "db upgrade", "starts_at": "2026-12-01T10:00:00Z",
        "ends_at": "2026-12-01T12:00:00Z", "mode": "drop",
        "matchers": {"service": "checkout"}})
    assert created.status_code == 201, created.text
    window = created.json()
    response = hub_client.patch(f"/api/v1/maintenance/{window['id']}", headers=admin_key,
                                json={field: None})
    assert_problem(response, 422, field)
    after = hub_client.get(f"/api/v1/maintenance/{window['id']}", headers=admin_key).json()
    assert after == window


# -- 14 d: hooks of a kind that has none -----------------------------------------------


def test_hook_of_a_connector_kind_without_webhooks_is_404_and_not_recorded(
        hub_client: TestClient, admin_key: dict[str, str]) -> None:
    connector = _connector(hub_client, admin_key, "alertmanager",
                           settings={"url": "http://127.0.0.1:9"})
    response = hub_client.post(f"/hooks/{connector['id']}", content=b'{"anything": 1}',
                               headers={"content-type": "application/json"})
    assert_problem(response, 404, "webhook")
    assert _webhook_activity(hub_client, admin_key, connector) == []
