"""Status pages over HTTP, on SQLite and PostgreSQL: managing pages and components,
publishing public updates, and what a visitor then reads without a key."""

from __future__ import annotations

import time
from typing import Any
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from interlock import config
from interlock.bootstrap import build
from interlock.domain.keys import Scope
from interlock.domain.status_pages import ComponentStatus
from interlock.services.container import Container
from interlock.web.status_public import RECHECK
from tests.conftest import make_key
from tests.integration.test_bad_input import assert_problem

Headers = dict[str, str]
PAGES = "/api/v1/status-pages"
INTERNAL_WORDS = ("db-2", "shard 7", "customer_id", "Internal only", "admin")


@pytest.fixture
def publisher(container: Container) -> Headers:
    return make_key(container, Scope.STATUS_PUBLISH, Scope.INCIDENTS_READ, name="comms")


def _page(client: TestClient, headers: Headers, **extra: Any) -> dict[str, Any]:
    response = client.post(PAGES, headers=headers,
                           json={"name": "Acme", "slug": "acme", **extra})
    assert response.status_code == 201, response.text
    page: dict[str, Any] = response.json()
    return page


def _component(client: TestClient, headers: Headers, page_id: str, name: str,
               *services: str, **extra: Any) -> dict[str, Any]:
    response = client.post(f"{PAGES}/{page_id}/components", headers=headers,
                           json={"name": name, "services": list(services), **extra})
    assert response.status_code == 201, response.text
    component: dict[str, Any] = response.json()
    return component


def _incident(client: TestClient, headers: Headers, **extra: Any) -> dict[str, Any]:
    body = {"title": "db-2 disk full on shard 7", "severity": "critical", "service": "api",
            "summary": "customer_id 4411 saw it first", **extra}
    response = client.post("/api/v1/incidents", headers=headers, json=body)
    assert response.status_code == 201, response.text
    incident: dict[str, Any] = response.json()
    return incident


def test_publish_an_update_and_read_it_as_a_visitor(
        client: TestClient, admin: Headers, publisher: Headers) -> None:
    page = _page(client, publisher, title="Acme Cloud")
    assert page["url"].endswith("/status/acme")
    api = _component(client, publisher, page["id"], "API", "api", group="Platform")
    web = _component(client, publisher, page["id"], "Website", "web")
    incident = _incident(client, admin)
    client.post(f"/api/v1/incidents/{incident['id']}/comments", headers=admin,
                json={"body": "Internal only: restarting db-2"})

    response = client.post(f"/api/v1/incidents/{incident['reference']}/public-updates",
                           headers=publisher, json={
                               "status": "investigating", "title": "API errors",
                               "body": "Some API requests fail. We are on it.",
                               "components": {api["id"]: "major_outage"},
                               "estimated_resolution_at": "2030-01-01T12:00:00Z"})
    assert response.status_code == 201, response.text
    update = response.json()
    assert update["page_ids"] == [page["id"]]
    assert update["components"] == {api["id"]: "major_outage"}

    listed = client.get(f"/api/v1/incidents/{incident['id']}/public-updates", headers=admin)
    assert [item["id"] for item in listed.json()["data"]] == [update["id"]]
    timeline = client.get(f"/api/v1/incidents/{incident['id']}/timeline",
                          headers=admin).json()["data"]
    assert timeline[-1]["kind"] == "incident.public_update"
    assert timeline[-1]["message"] == ("Public update published: investigating "
                                       "(API major outage)")

    summary = client.get("/status/acme/api/v2/summary.json")
    assert summary.status_code == 200
    assert summary.headers["access-control-allow-origin"] == "*"
    document = summary.json()
    assert document["status"] == {"indicator": "critical",
                                  "description": "Major System Outage"}
    assert document["page"]["name"] == "Acme Cloud"
    by_name = {item["name"]: item for item in document["components"]}
    assert by_name["Platform"]["group"] is True
    assert by_name["API"]["group_id"] == by_name["Platform"]["id"]
    assert by_name["API"]["status"] == "major_outage"
    assert by_name["Website"]["status"] == "operational"
    [shown] = document["incidents"]
    assert shown["name"] == "API errors" and shown["impact"] == "critical"
    assert shown["incident_updates"][0]["affected_components"] == [
        {"code": api["id"], "name": "API", "old_status": "operational",
         "new_status": "major_outage"}]

    page_html = client.get("/status/acme")
    assert page_html.status_code == 200
    assert "script-src" not in page_html.headers["content-security-policy"]
    assert "default-src 'none'" in page_html.headers["content-security-policy"]
    assert "Some API requests fail" in page_html.text
    assert "Major outage" in page_html.text
    for path in ("/status/acme", "/status/acme/feed.atom", "/status/acme/feed.rss",
                 *(f"/status/acme/api/v2/{name}" for name in (
                     "summary.json", "status.json", "components.json", "incidents.json",
                     "incidents/unresolved.json"))):
        text = client.get(path).text
        for word in INTERNAL_WORDS:
            assert word not in text, (path, word)

    atom = ElementTree.fromstring(client.get("/status/acme/feed.atom").content)
    entries = atom.findall("{http://www.w3.org/2005/Atom}entry")
    assert [entry.findtext("{http://www.w3.org/2005/Atom}title") for entry in entries] == [
        "API errors — Investigating"]
    rss = ElementTree.fromstring(client.get("/status/acme/feed.rss").content)
    assert [item.findtext("title") for item in rss.iter("item")] == [
        "API errors — Investigating"]

    resolved = client.post(f"/api/v1/incidents/{incident['id']}/public-updates",
                           headers=publisher, json={"status": "resolved",
                                                    "body": "All requests succeed again."})
    assert resolved.status_code == 201, resolved.text
    status = client.get("/status/acme/api/v2/status.json").json()["status"]
    assert status == {"indicator": "none", "description": "All Systems Operational"}
    assert client.get("/status/acme/api/v2/incidents/unresolved.json").json()[
        "incidents"] == []
    [past] = client.get("/status/acme/api/v2/incidents.json").json()["incidents"]
    assert past["status"] == "resolved" and len(past["incident_updates"]) == 2
    assert web["id"] not in {item["id"] for item in past["components"]}


def test_publishing_needs_its_own_scope(client: TestClient, container: Container,
                                        admin: Headers, writer: Headers) -> None:
    page = _page(client, admin)
    api = _component(client, admin, page["id"], "API", "api")
    incident = _incident(client, admin)
    body = {"status": "investigating", "body": "Looking.",
            "components": {api["id"]: "major_outage"}}
    url = f"/api/v1/incidents/{incident['id']}/public-updates"
    assert_problem(client.post(url, headers=writer, json=body), 403, "status:publish")
    assert_problem(client.post(PAGES, headers=writer, json={"name": "x", "slug": "x"}), 403)
    assert client.get("/status/acme/api/v2/incidents.json").json()["incidents"] == []
    assert client.post(url, headers=admin, json=body).status_code == 201


def test_bad_input_is_a_clear_4xx(client: TestClient, admin: Headers) -> None:
    page = _page(client, admin)
    api = _component(client, admin, page["id"], "API", "api")
    incident = _incident(client, admin)
    url = f"/api/v1/incidents/{incident['id']}/public-updates"
    assert_problem(client.post(f"{PAGES}/{page['id']}/components", headers=admin,
                               json={"name": "Nothing", "services": []}), 422, "services")
    assert_problem(client.post(url, headers=admin, json={
        "status": "on_fire", "body": "x", "components": {}}), 422, "status")
    assert_problem(client.post(url, headers=admin, json={
        "status": "investigating", "body": "x", "components": {api["id"]: "melted"}}),
        422, "components")
    assert_problem(client.post(url, headers=admin, json={
        "status": "investigating", "body": "x" * 4097,
        "components": {api["id"]: "major_outage"}}), 422, "body")
    assert_problem(client.post(url, headers=admin, json={
        "status": "investigating", "body": "x", "components": {"cmp_nope": "major_outage"}}),
        422, "cmp_nope")
    assert_problem(client.post(url, headers=admin, json={
        "status": "investigating", "body": "x"}), 422, "component")
    assert_problem(client.post(PAGES, headers=admin, json={"name": "A", "slug": "acme"}),
                   409, "acme")
    assert_problem(client.post(PAGES, headers=admin, json={"name": "A", "slug": "Not OK"}),
                   422, "slug")
    assert_problem(client.post(PAGES, headers=admin, json={
        "name": "A", "slug": "b", "logo_url": "javascript:alert(1)"}), 422, "logo_url")
    private = _incident(client, admin, visibility="private")
    assert_problem(client.post(f"/api/v1/incidents/{private['id']}/public-updates",
                               headers=admin, json={"status": "investigating", "body": "x",
                                                    "components": {api["id"]: "major_outage"}}),
                   409, "private")
    assert client.get(url, headers=admin).json()["data"] == []
    assert client.get("/status/acme/api/v2/summary.json").json()["incidents"] == []


def test_null_is_accepted_on_create_exactly_where_the_schema_allows_it(
        client: TestClient, admin: Headers) -> None:
    openapi = client.get("/openapi.json").json()
    page = _page(client, admin)
    incident = _incident(client, admin)
    component = _component(client, admin, page["id"], "API", "api")
    minimal = {
        PAGES: lambda n: {"name": "A", "slug": f"page-{n}"},
        f"{PAGES}/{{page_id}}/components": lambda n: {"name": "B", "services": ["api"]},
        "/api/v1/incidents/{incident_id}/public-updates": lambda n: {
            "status": "identified", "body": "x", "components": {component["id"]: "operational"}},
    }
    concrete = {"{page_id}": page["id"], "{incident_id}": incident["id"]}
    for number, (template, body) in enumerate(minimal.items()):
        path = template
        for name, value in concrete.items():
            path = path.replace(name, value)
        schema = openapi["paths"][template]["post"]["requestBody"]["content"][
            "application/json"]["schema"]
        properties = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]][
            "properties"]
        for index, (name, field) in enumerate(properties.items()):
            response = client.post(path, headers=admin,
                                   json={**body(number * 100 + index), name: None})
            nullable = field.get("type") == "null" or any(
                option.get("type") == "null" for option in field.get("anyOf", []))
            if nullable:
                assert response.status_code == 201, (template, name, response.text)
            else:
                assert_problem(response, 422, name)


def test_an_unknown_page_is_404_everywhere(client: TestClient) -> None:
    for path in ("/status/nope", "/status/nope/feed.atom",
                 "/status/nope/api/v2/summary.json"):
        assert client.get(path).status_code == 404


def test_a_change_made_by_another_process_shows_within_a_second(
        client: TestClient, admin: Headers, settings: config.Settings) -> None:
    page = _page(client, admin)
    api = _component(client, admin, page["id"], "API", "api")
    url = "/status/acme/api/v2/status.json"
    assert client.get(url).json()["status"]["indicator"] == "none"  # now cached
    other = build(settings)  # another process on the same database
    try:
        other.status_pages.update_component(page["id"], api["id"],
                                            {"status": ComponentStatus.MAJOR_OUTAGE})
    finally:
        other.close()
    changed = time.monotonic()
    while client.get(url).json()["status"]["indicator"] != "critical":
        assert time.monotonic() - changed < 5, "the page never changed"
        time.sleep(0.05)
    assert time.monotonic() - changed < RECHECK + 0.5


def test_a_retried_publish_with_the_same_idempotency_key_publishes_once(
        client: TestClient, admin: Headers) -> None:
    page = _page(client, admin)
    api = _component(client, admin, page["id"], "API", "api")
    incident = _incident(client, admin)
    url = f"/api/v1/incidents/{incident['id']}/public-updates"
    body = {"status": "investigating", "body": "Looking.",
            "components": {api["id"]: "degraded_performance"}}
    headers = {**admin, "Idempotency-Key": "publish-1"}
    first = client.post(url, headers=headers, json=body)
    again = client.post(url, headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(client.get(url, headers=admin).json()["data"]) == 1
    assert_problem(client.post(url, headers=headers, json={**body, "body": "Other."}),
                   422, "Idempotency-Key")
