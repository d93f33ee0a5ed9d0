"""Two-way sync through the API and the sync queue when the tools behave as the real
ones do: rate limits, a token that expires, an issue deleted in Jira, a workflow that
starts outside "new", a person moving the issue back.

Against FakeJira and FakeSlack (checked against the makers' API descriptions).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.domain.targets import parse_allowed_networks
from interlock.services.container import Container
from interlock.services.sync import JobDone
from interlock.worker.tool_http import AiohttpToolHttp
from tests.conftest import make_key
from tests.integration.test_console import _sign_in
from tests.support.fake_jira import FakeJira, Webhook
from tests.support.fake_slack import SIGNING_SECRET, TOKEN, FakeSlack
from tests.support.sync import sync_all, sync_round


@pytest.fixture
def admin(hub: Container) -> dict[str, str]:
    return make_key(hub, Scope.ADMIN, name="admin")


def _jira(client: TestClient, admin: dict[str, str], jira: FakeJira) -> dict[str, Any]:
    response = client.post("/api/v1/connectors", headers=admin, json={
        "name": "jira", "kind": "jira",
        "settings": {"base_url": jira.url, "project_key": "OPS"},
        "credentials": {"email": jira.email, "api_token": jira.api_token,
                        "webhook_secret": jira.webhook_secret}})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _slack(client: TestClient, admin: dict[str, str], slack: FakeSlack) -> dict[str, Any]:
    response = client.post("/api/v1/connectors", headers=admin, json={
        "name": "slack", "kind": "slack",
        "settings": {"channel": "C0INCIDENT", "api_base": slack.api_base},
        "credentials": {"bot_token": TOKEN, "signing_secret": SIGNING_SECRET}})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _declare(client: TestClient, admin: dict[str, str], title: str = "Checkout is failing"
             ) -> dict[str, Any]:
    response = client.post("/api/v1/incidents", headers=admin,
                           json={"title": title, "severity": "high"})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _get(client: TestClient, admin: dict[str, str], path: str) -> Any:
    response = client.get(f"/api/v1{path}", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def _deliver(client: TestClient, connector: dict[str, Any], webhook: Webhook) -> None:
    response = client.post(f"/hooks/{connector['id']}", headers=webhook.headers,
                           content=webhook.body)
    assert response.status_code == 200, response.text


def test_a_rate_limit_does_not_use_up_an_attempt(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira,
        manual_clock: ManualClock) -> None:
    connector = _jira(hub_client, admin, jira)
    jira.throttled, jira.retry_after = 3, 20
    _declare(hub_client, admin)

    for _ in range(3):  # three 429s in a row, each honoured
        assert sync_round(hub) == 1
        assert sync_round(hub) == 0  # not due before its Retry-After
        manual_clock.advance(timedelta(seconds=21))
    sync_all(hub)

    assert len(jira.issues) == 1
    activity = _get(hub_client, admin, f"/connectors/{connector['id']}/activity")["data"]
    assert [item["attempt"] for item in reversed(activity)] == [1, 1, 1, 1]
    assert [item["outcome"] for item in reversed(activity)] == [
        "failed", "failed", "failed", "succeeded"]


def test_an_expired_token_shows_the_connector_needs_attention(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira
        ) -> None:
    connector = _jira(hub_client, admin, jira)
    jira.expire_token()
    _declare(hub_client, admin)
    sync_all(hub)

    shown = _get(hub_client, admin, f"/connectors/{connector['id']}")
    assert shown["needs_attention"]["reason"].startswith(
        "reading Interlock's own Jira account: Jira refused the connector's email and API "
        "token (HTTP 401)")
    assert shown["queue"]["pending"] == 0  # not retried: a person must act
    _sign_in(hub_client, admin["Authorization"].removeprefix("Bearer "))
    page = hub_client.get(f"/connectors/{connector['id']}")
    assert "Needs attention:" in page.text and "API tokens expire" in page.text
    listing = hub_client.get("/connectors")
    assert "needs attention" in listing.text

    # A new token is set: the next call succeeds and the flag goes.
    token = jira.api_token
    response = hub_client.patch(f"/api/v1/connectors/{connector['id']}", headers=admin,
                                json={"credentials": {"api_token": token}})
    assert response.status_code == 200, response.text
    _declare(hub_client, admin, "Search is slow")
    sync_all(hub)
    assert _get(hub_client, admin, f"/connectors/{connector['id']}")["needs_attention"] is None


def test_a_deleted_issue_is_said_on_the_timeline_and_no_longer_pushed(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira
        ) -> None:
    connector = _jira(hub_client, admin, jira)
    incident = _declare(hub_client, admin)
    sync_all(hub)
    _deliver(hub_client, connector, jira.delete_as("OPS-1"))
    sync_all(hub)

    timeline = _get(hub_client, admin, f"/incidents/{incident['id']}/timeline")["data"]
    assert any("Jira issue OPS-1 was deleted" in (entry.get("message") or "")
               for entry in timeline), timeline
    jira.forget_requests()
    hub_client.post(f"/api/v1/incidents/{incident['id']}/acknowledge", headers=admin)
    sync_all(hub)
    assert jira.calls() == []


def test_a_workflow_starting_in_progress_leaves_a_new_incident_triggered(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira
        ) -> None:
    connector = _jira(hub_client, admin, jira)
    jira.initial_status = "10004"  # "Waiting for support": indeterminate
    incident = _declare(hub_client, admin)
    sync_all(hub)
    _deliver(hub_client, connector, jira.comment_as("OPS-1", "Looking"))
    sync_all(hub)

    assert _get(hub_client, admin, f"/incidents/{incident['id']}")["status"] == "triggered"


def test_moving_the_issue_back_in_jira_is_not_undone_by_a_comment(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira
        ) -> None:
    connector = _jira(hub_client, admin, jira)
    incident = _declare(hub_client, admin)
    hub_client.post(f"/api/v1/incidents/{incident['id']}/acknowledge", headers=admin)
    sync_all(hub)
    assert jira.status_of("OPS-1") == "In Progress"
    _deliver(hub_client, connector, jira.transition_as("OPS-1", "To Do"))
    sync_all(hub)
    assert _get(hub_client, admin, f"/incidents/{incident['id']}")["status"] == \
        "acknowledged"  # nothing takes an acknowledged incident back to triggered

    hub_client.post(f"/api/v1/incidents/{incident['id']}/comments", headers=admin,
                    json={"body": "Checking the database"})
    sync_all(hub)

    assert jira.status_of("OPS-1") == "To Do"
    assert len(jira.issues["OPS-1"].comments) == 1


def test_a_moved_issue_keeps_syncing_under_its_new_key(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira
        ) -> None:
    connector = _jira(hub_client, admin, jira)
    incident = _declare(hub_client, admin)
    sync_all(hub)
    _deliver(hub_client, connector, jira.move_as("OPS-1", "SEC"))
    sync_all(hub)
    [link] = _get(hub_client, admin, f"/incidents/{incident['id']}/links")["data"]
    assert link["external_id"] == "SEC-2"

    _deliver(hub_client, connector, jira.transition_as("SEC-2", "Done"))
    sync_all(hub)

    assert _get(hub_client, admin, f"/incidents/{incident['id']}")["status"] == "resolved"


def test_a_moved_issue_is_found_by_its_id_when_the_move_webhook_was_lost(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira
        ) -> None:
    connector = _jira(hub_client, admin, jira)
    incident = _declare(hub_client, admin)
    sync_all(hub)
    jira.move_as("OPS-1", "SEC")  # its webhook never arrives

    _deliver(hub_client, connector, jira.transition_as("SEC-2", "Done"))
    sync_all(hub)

    assert _get(hub_client, admin, f"/incidents/{incident['id']}")["status"] == "resolved"
    [link] = _get(hub_client, admin, f"/incidents/{incident['id']}/links")["data"]
    assert link["external_id"] == "SEC-2"


def test_slack_needs_attention_when_its_token_expired(
        hub: Container, hub_client: TestClient, admin: dict[str, str], slack: FakeSlack
        ) -> None:
    connector = _slack(hub_client, admin, slack)
    slack.token, slack.refusal = "xoxb-rotated", "token_expired"
    _declare(hub_client, admin)
    sync_all(hub)

    shown = _get(hub_client, admin, f"/connectors/{connector['id']}")
    assert "token_expired" in shown["needs_attention"]["reason"]
    assert shown["queue"]["pending"] == 0


def _round_with_timeout(hub: Container, timeout: float) -> int:
    """One sync round whose tool calls time out after ``timeout`` seconds."""
    while hub.deliveries.dispatch():
        pass
    work = hub.sync.claim("test-sync", 100)

    async def run_all() -> list[JobDone]:
        http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"),
                               timeout=timeout)
        try:
            return [await hub.sync.run(item, http) for item in work]
        finally:
            await http.close()

    for done in asyncio.run(run_all()):
        hub.sync.record("test-sync", done)
    return len(work)


def test_a_create_whose_answer_was_lost_is_not_made_twice(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira,
        manual_clock: ManualClock) -> None:
    _jira(hub_client, admin, jira)
    jira.slow_create = 1.3  # created, but the answer comes after the 1 s timeout
    incident = _declare(hub_client, admin)
    assert _round_with_timeout(hub, 1.0) == 1
    manual_clock.advance(timedelta(seconds=10))  # past the first retry (5 s ± 20 %)
    sync_all(hub)

    assert list(jira.issues) == ["OPS-1"]
    [link] = _get(hub_client, admin, f"/incidents/{incident['id']}/links")["data"]
    assert link["external_id"] == "OPS-1"
