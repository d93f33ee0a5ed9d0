"""Planned maintenance on a status page over HTTP, on SQLite and PostgreSQL: announced
through the API, then read by a visitor as its window comes, runs and ends on a clock
the test moves."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.domain.timestamps import rfc3339
from interlock.services.container import Container
from interlock.web.status_public import RECHECK
from tests.conftest import make_key
from tests.integration.test_bad_input import assert_problem

Headers = dict[str, str]
PAGES = "/api/v1/status-pages"
HOUR = timedelta(hours=1)
SUMMARY = "/status/acme/api/v2/summary.json"
PUBLIC_PATHS = ("/status/acme", "/status/acme/feed.atom", "/status/acme/feed.rss",
                *(f"/status/acme/api/v2/{name}" for name in (
                    "summary.json", "status.json", "components.json",
                    "scheduled-maintenances.json", "scheduled-maintenances/upcoming.json",
                    "scheduled-maintenances/active.json")))


@pytest.fixture
def publisher(hub: Container) -> Headers:
    return make_key(hub, Scope.STATUS_PUBLISH, name="comms")


def _post(client: TestClient, path: str, headers: Headers, body: dict[str, Any]
          ) -> dict[str, Any]:
    response = client.post(path, headers=headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _site(client: TestClient, headers: Headers) -> tuple[str, str, str]:
    page = _post(client, PAGES, headers, {"name": "Acme", "slug": "acme"})
    api = _post(client, f"{PAGES}/{page['id']}/components", headers,
                {"name": "API", "services": ["api"]})
    web = _post(client, f"{PAGES}/{page['id']}/components", headers,
                {"name": "Website", "services": ["web"]})
    return page["id"], api["id"], web["id"]


def _window(clock: ManualClock, start: timedelta, length: timedelta) -> dict[str, str]:
    begins = clock.now() + start
    return {"scheduled_for": rfc3339(begins) or "",
            "scheduled_until": rfc3339(begins + length) or ""}


def _after_recheck(client: TestClient, path: str) -> httpx.Response:
    """Once the cached copy is due for its version check (nobody changed the page:
    only the clock moved)."""
    time.sleep(RECHECK + 0.1)
    return client.get(path)


def test_a_visitor_sees_maintenance_come_run_and_end(
        hub_client: TestClient, hub: Container, manual_clock: ManualClock,
        publisher: Headers) -> None:
    client = hub_client
    page_id, api, web = _site(client, publisher)
    admin = make_key(hub, Scope.ADMIN, name="admin")
    _post(client, "/api/v1/maintenance", admin, {
        "name": "Internal only: patch db-2", "matchers": {"service": "api"},
        **{key.replace("scheduled_for", "starts_at").replace("scheduled_until", "ends_at"):
           value for key, value in _window(manual_clock, HOUR, 2 * HOUR).items()}})
    version = client.get(f"{PAGES}/{page_id}", headers=publisher).json()["version"]
    assert client.get(SUMMARY).json()["scheduled_maintenances"] == []  # now cached

    created = _post(client, f"{PAGES}/{page_id}/maintenances", publisher, {
        "title": "Database upgrade", "body": "API requests may be slow for a while.",
        "components": [api], **_window(manual_clock, HOUR, 2 * HOUR)})
    assert created["status"] == "scheduled" and created["cancelled"] is False
    assert client.get(f"{PAGES}/{page_id}", headers=publisher).json()["version"] > version

    summary = client.get(SUMMARY).json()
    [shown] = summary["scheduled_maintenances"]
    assert shown["id"] == created["id"] and shown["name"] == "Database upgrade"
    assert shown["status"] == "scheduled" and shown["impact"] == "maintenance"
    assert shown["scheduled_for"] == created["scheduled_for"]
    assert shown["scheduled_until"] == created["scheduled_until"]
    assert [item["id"] for item in shown["components"]] == [api]
    assert [update["status"] for update in shown["incident_updates"]] == ["scheduled"]
    assert shown["incident_updates"][0]["body"] == "API requests may be slow for a while."
    assert summary["status"]["indicator"] == "none"
    upcoming = client.get("/status/acme/api/v2/scheduled-maintenances/upcoming.json")
    assert [item["id"] for item in upcoming.json()["scheduled_maintenances"]] == [
        created["id"]]
    html = client.get("/status/acme").text
    assert "Scheduled maintenance" in html and "Database upgrade" in html
    assert "API requests may be slow for a while." in html
    assert f"{created['scheduled_for'][:10]} {created['scheduled_for'][11:16]} UTC" in html
    assert "Affects: API" in html

    manual_clock.advance(2 * HOUR)  # inside the window; nobody touches the page
    summary = _after_recheck(client, SUMMARY).json()
    [shown] = summary["scheduled_maintenances"]
    assert shown["status"] == "in_progress"
    assert [update["status"] for update in shown["incident_updates"]] == [
        "in_progress", "scheduled"]
    statuses = {item["id"]: item["status"] for item in summary["components"]}
    assert statuses == {api: "under_maintenance", web: "operational"}
    assert summary["status"] == {"indicator": "maintenance",
                                 "description": "Service Under Maintenance"}
    active = client.get("/status/acme/api/v2/scheduled-maintenances/active.json").json()
    assert [item["id"] for item in active["scheduled_maintenances"]] == [created["id"]]
    assert "In progress" in client.get("/status/acme").text
    for path in PUBLIC_PATHS:
        text = client.get(path).text
        for word in ("Internal only", "patch db-2", "matchers"):
            assert word not in text, (path, word)

    client.patch(f"{PAGES}/{page_id}/components/{web}", headers=publisher,
                 json={"status": "major_outage"})
    client.patch(f"{PAGES}/{page_id}/components/{api}", headers=publisher,
                 json={"status": "partial_outage"})
    statuses = {item["id"]: item["status"] for item in client.get(SUMMARY).json()[
        "components"]}
    assert statuses == {api: "partial_outage", web: "major_outage"}  # worse wins
    client.patch(f"{PAGES}/{page_id}/components/{api}", headers=publisher,
                 json={"status": "operational"})
    client.patch(f"{PAGES}/{page_id}/components/{web}", headers=publisher,
                 json={"status": "operational"})

    manual_clock.advance(2 * HOUR)  # the window is over
    summary = _after_recheck(client, SUMMARY).json()
    assert summary["scheduled_maintenances"] == []
    assert {item["status"] for item in summary["components"]} == {"operational"}
    everything = client.get("/status/acme/api/v2/scheduled-maintenances.json").json()
    [done] = everything["scheduled_maintenances"]
    assert done["status"] == "completed" and done["resolved_at"] == created["scheduled_until"]
    assert "Database upgrade" not in client.get("/status/acme").text
    listed = client.get(f"{PAGES}/{page_id}/maintenances", headers=publisher).json()["data"]
    assert [(item["id"], item["status"]) for item in listed] == [(created["id"], "completed")]


def test_cancelling_or_deleting_takes_it_off_the_page_at_once(
        hub_client: TestClient, manual_clock: ManualClock, publisher: Headers) -> None:
    client = hub_client
    page_id, api, _ = _site(client, publisher)
    url = f"{PAGES}/{page_id}/maintenances"
    first = _post(client, url, publisher, {"title": "Network work", "body": "Brief blips.",
                                           "components": [api],
                                           **_window(manual_clock, HOUR, HOUR)})
    second = _post(client, url, publisher, {"title": "Disk swap", "body": "No impact.",
                                            "components": [api],
                                            **_window(manual_clock, 3 * HOUR, HOUR)})
    assert [item["name"] for item in client.get(SUMMARY).json()[
        "scheduled_maintenances"]] == ["Network work", "Disk swap"]

    patched = client.patch(f"{url}/{first['id']}", headers=publisher,
                           json={"cancelled": True, "title": "Network work (moved)"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["cancelled"] is True and patched.json()["status"] == "completed"
    assert [item["name"] for item in client.get(SUMMARY).json()[
        "scheduled_maintenances"]] == ["Disk swap"]

    assert client.delete(f"{url}/{second['id']}", headers=publisher).status_code == 204
    assert client.get(SUMMARY).json()["scheduled_maintenances"] == []
    assert client.get(f"{url}/{second['id']}", headers=publisher).status_code == 404
    assert client.get(f"{url}/{first['id']}", headers=publisher).json()["title"] == (
        "Network work (moved)")


def test_bad_maintenance_is_a_clear_4xx(hub_client: TestClient, hub: Container,
                                        manual_clock: ManualClock,
                                        publisher: Headers) -> None:
    client = hub_client
    page_id, api, _ = _site(client, publisher)
    other = _post(client, PAGES, publisher, {"name": "Other", "slug": "other"})
    elsewhere = _post(client, f"{PAGES}/{other['id']}/components", publisher,
                      {"name": "Mail", "services": ["mail"]})
    url = f"{PAGES}/{page_id}/maintenances"
    good = {"title": "Upgrade", "body": "Some words.", "components": [api],
            **_window(manual_clock, HOUR, HOUR)}
    backwards = _window(manual_clock, 2 * HOUR, -HOUR)
    for body, named in [
        ({**good, "components": ["cmp_nope"]}, "components"),
        ({**good, "components": [elsewhere["id"]]}, "components"),
        ({**good, **backwards}, "scheduled_until"),
        ({**good, **_window(manual_clock, HOUR, timedelta(days=8))}, "scheduled_until"),
        ({**good, "body": "   "}, "body"),
        ({**good, "title": "x" * 256}, "title"),
        ({key: value for key, value in good.items() if key != "components"}, "components"),
    ]:
        assert_problem(client.post(url, headers=publisher, json=body), 422, named)
    created = _post(client, url, publisher, good)
    assert_problem(client.patch(f"{url}/{created['id']}", headers=publisher,
                                json={"scheduled_until": good["scheduled_for"]}),
                   422, "scheduled_until")
    assert client.post(f"{PAGES}/spg_nope/maintenances", headers=publisher,
                       json=good).status_code == 404
    assert client.get(f"{PAGES}/{other['id']}/maintenances/{created['id']}",
                      headers=publisher).status_code == 404
    reader = make_key(hub, Scope.INCIDENTS_READ, name="reader")
    assert client.post(url, headers=reader, json=good).status_code == 403
    assert client.get(url, headers=reader).status_code == 403
