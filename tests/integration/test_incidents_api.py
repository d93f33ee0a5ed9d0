"""The incident API as a client sees it, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from interlock.domain.keys import Scope
from interlock.services.container import Container
from interlock.store.tables import events
from tests.conftest import make_key

Headers = dict[str, str]
URL = "/api/v1/incidents"


def declare(client: TestClient, headers: Headers, **fields: Any) -> dict[str, Any]:
    body = {"title": "Checkout is failing", "severity": "high", "service": "checkout", **fields}
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def event_rows(container: Container, incident_id: str) -> list[sa.RowMapping]:
    engine = container.store.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        query = sa.select(events).where(events.c.incident_id == incident_id).order_by(
            events.c.sequence
        )
        return list(connection.execute(query).mappings())


def test_declare_gives_an_id_a_reference_and_version_one(
    client: TestClient, writer: Headers
) -> None:
    response = client.post(URL, headers=writer, json={
        "title": "Payments API p99 over 2s", "severity": "critical", "service": "payments",
        "summary": "Started 12:03 UTC", "assignee": "ana@example.com",
        "labels": {"team": "payments", "region": "eu-west-1"},
    })
    assert response.status_code == 201
    incident = response.json()
    assert incident["id"].startswith("inc_")
    assert incident["reference"] == "INC-1"
    assert incident["status"] == "triggered"
    assert incident["version"] == 1
    assert incident["labels"] == {"team": "payments", "region": "eu-west-1"}
    assert incident["visibility"] == "public"
    assert incident["created_at"].endswith("Z")
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"{URL}/{incident['id']}"
    second = declare(client, writer)
    assert second["reference"] == "INC-2"


def test_read_by_id_and_by_reference(client: TestClient, writer: Headers) -> None:
    incident = declare(client, writer)
    by_id = client.get(f"{URL}/{incident['id']}", headers=writer)
    by_reference = client.get(f"{URL}/inc-1", headers=writer)
    assert by_id.status_code == by_reference.status_code == 200
    assert by_id.json() == by_reference.json() == incident
    assert by_id.headers["etag"] == '"1"'
    assert client.get(f"{URL}/INC-99", headers=writer).status_code == 404


def test_status_lifecycle_writes_one_event_per_change(
    client: TestClient, writer: Headers, container: Container
) -> None:
    incident = declare(client, writer)
    key = incident["reference"]
    acknowledged = client.post(f"{URL}/{key}/acknowledge", headers=writer).json()
    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["acknowledged_at"] is not None
    assert acknowledged["version"] == 2
    resolved = client.post(f"{URL}/{key}/resolve", headers=writer).json()
    assert (resolved["status"], resolved["version"]) == ("resolved", 3)
    assert resolved["resolved_at"] is not None
    reopened = client.post(f"{URL}/{key}/reopen", headers=writer).json()
    assert (reopened["status"], reopened["version"]) == ("triggered", 4)
    assert reopened["resolved_at"] is None

    rows = event_rows(container, incident["id"])
    assert [row["type"] for row in rows] == [
        "incident.created", "incident.acknowledged", "incident.resolved", "incident.reopened",
    ]
    assert [row["incident_version"] for row in rows] == [1, 2, 3, 4]
    assert all(row["origin"]["kind"] == "api_key" for row in rows)
    assert rows[1]["data"]["changes"]["status"] == {"from": "triggered", "to": "acknowledged"}
    assert rows[1]["data"]["incident"]["version"] == 2


def test_a_change_that_changes_nothing_writes_no_event_and_keeps_the_version(
    client: TestClient, writer: Headers, container: Container
) -> None:
    incident = declare(client, writer)
    key = incident["reference"]
    first = client.post(f"{URL}/{key}/acknowledge", headers=writer).json()
    again = client.post(f"{URL}/{key}/acknowledge", headers=writer)
    assert again.status_code == 200
    assert again.json()["version"] == first["version"] == 2
    same = client.patch(f"{URL}/{key}", headers=writer, json={"service": "checkout"})
    assert same.json()["version"] == 2
    assert client.post(f"{URL}/{key}/reopen", headers=writer).json()["version"] == 2
    assert len(event_rows(container, incident["id"])) == 2


def test_acknowledging_a_resolved_incident_is_a_conflict(
    client: TestClient, writer: Headers
) -> None:
    incident = declare(client, writer)
    client.post(f"{URL}/{incident['id']}/resolve", headers=writer)
    response = client.post(f"{URL}/{incident['id']}/acknowledge", headers=writer)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "reopen" in response.json()["detail"]


def test_patch_changes_fields_and_reports_them(
    client: TestClient, writer: Headers, container: Container
) -> None:
    incident = declare(client, writer, assignee="ana")
    response = client.patch(f"{URL}/{incident['id']}", headers=writer, json={
        "severity": "critical", "assignee": None, "labels": {"team": "core"},
        "summary": "DB failover in progress",
    })
    assert response.status_code == 200
    updated = response.json()
    assert updated["severity"] == "critical"
    assert updated["assignee"] is None
    assert updated["labels"] == {"team": "core"}
    assert updated["version"] == 2
    assert response.headers["etag"] == '"2"'
    last = event_rows(container, incident["id"])[-1]
    assert last["type"] == "incident.updated"
    assert last["data"]["changes"]["severity"] == {"from": "high", "to": "critical"}
    assert last["data"]["changes"]["assignee"] == {"from": "ana", "to": None}


def test_if_match_on_a_stale_version_answers_412_and_changes_nothing(
    client: TestClient, writer: Headers
) -> None:
    incident = declare(client, writer)
    etag = client.get(f"{URL}/{incident['id']}", headers=writer).headers["etag"]
    fresh = client.patch(f"{URL}/{incident['id']}", headers={**writer, "If-Match": etag},
                         json={"title": "Checkout down"})
    assert fresh.status_code == 200
    stale = client.patch(f"{URL}/{incident['id']}", headers={**writer, "If-Match": etag},
                         json={"title": "Something else"})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert "version 2" in stale.json()["detail"]
    stale_ack = client.post(f"{URL}/{incident['id']}/acknowledge",
                            headers={**writer, "If-Match": etag})
    assert stale_ack.status_code == 412
    current = client.get(f"{URL}/{incident['id']}", headers=writer).json()
    assert (current["title"], current["status"], current["version"]) == (
        "Checkout down", "triggered", 2)
    assert client.patch(f"{URL}/{incident['id']}", headers={**writer, "If-Match": "*"},
                        json={"title": "Any version"}).status_code == 200


def test_same_idempotency_key_creates_one_incident_with_the_same_answer(
    client: TestClient, writer: Headers
) -> None:
    headers = {**writer, "Idempotency-Key": "deploy-42"}
    body = {"title": "Deploy 42 broke login", "severity": "high"}
    first = client.post(URL, json=body, headers=headers)
    second = client.post(URL, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    listed = client.get(URL, headers=writer).json()["data"]
    assert [item["id"] for item in listed] == [first.json()["id"]]

    reused = client.post(URL, json={**body, "title": "Other"}, headers=headers)
    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["detail"]
    other_key = client.post(URL, json=body, headers={**writer, "Idempotency-Key": "deploy-43"})
    assert other_key.json()["id"] != first.json()["id"]


def test_idempotency_keys_belong_to_the_api_key_that_used_them(
    client: TestClient, container: Container
) -> None:
    one = make_key(container, Scope.INCIDENTS_WRITE, name="one")
    two = make_key(container, Scope.INCIDENTS_WRITE, name="two")
    body = {"title": "Same key, different callers"}
    first = client.post(URL, json=body, headers={**one, "Idempotency-Key": "k"})
    second = client.post(URL, json=body, headers={**two, "Idempotency-Key": "k"})
    assert first.json()["id"] != second.json()["id"]


def test_comments_are_idempotent_and_appear_in_the_timeline(
    client: TestClient, writer: Headers
) -> None:
    incident = declare(client, writer)
    headers = {**writer, "Idempotency-Key": "c1"}
    posted = client.post(f"{URL}/{incident['id']}/comments", headers=headers,
                         json={"body": "Rolled back to v41"})
    replay = client.post(f"{URL}/{incident['id']}/comments", headers=headers,
                         json={"body": "Rolled back to v41"})
    assert posted.status_code == replay.status_code == 201
    assert posted.json() == replay.json()
    assert posted.json()["body"] == "Rolled back to v41"
    assert posted.json()["actor"] == "writer"
    timeline = client.get(f"{URL}/{incident['id']}/timeline", headers=writer).json()["data"]
    assert [entry["kind"] for entry in timeline] == [
        "incident.created", "incident.comment_added"]
    assert client.get(f"{URL}/{incident['id']}", headers=writer).json()["version"] == 2


def test_timeline_tells_what_happened_when_by_whom_and_through_what(
    client: TestClient, writer: Headers
) -> None:
    incident = declare(client, writer)
    key = incident["id"]
    client.post(f"{URL}/{key}/acknowledge", headers=writer)
    client.patch(f"{URL}/{key}", headers=writer, json={"severity": "critical"})
    client.post(f"{URL}/{key}/comments", headers=writer, json={"body": "Failing over"})
    client.post(f"{URL}/{key}/resolve", headers=writer)
    entries = client.get(f"{URL}/{key}/timeline", headers=writer).json()["data"]
    assert [entry["message"] for entry in entries] == [
        "Incident declared: Checkout is failing",
        "Status changed from triggered to acknowledged",
        "Severity changed from high to critical",
        "Comment added",
        "Status changed from acknowledged to resolved",
    ]
    assert [entry["incident_version"] for entry in entries] == [1, 2, 3, 4, 5]
    assert entries[3]["body"] == "Failing over"
    assert all(entry["origin"]["kind"] == "api_key" for entry in entries)
    assert all(entry["origin"]["name"] == "writer" for entry in entries)
    assert all(entry["actor"] == "writer" for entry in entries)
    times = [entry["at"] for entry in entries]
    assert times == sorted(times)

    page = client.get(f"{URL}/{key}/timeline?limit=2", headers=writer).json()
    assert len(page["data"]) == 2
    rest = client.get(f"{URL}/{key}/timeline?limit=10&cursor={page['next_cursor']}",
                      headers=writer).json()
    assert [entry["id"] for entry in page["data"] + rest["data"]] == [e["id"] for e in entries]
    assert rest["next_cursor"] is None


def test_list_filters(client: TestClient, writer: Headers) -> None:
    checkout = declare(client, writer, title="Checkout latency", severity="high")
    search = declare(client, writer, title="Search index stale", severity="low",
                     service="search")
    payments = declare(client, writer, title="Payments DOWN", severity="critical",
                       service="payments")
    client.post(f"{URL}/{payments['id']}/acknowledge", headers=writer)
    client.post(f"{URL}/{search['id']}/resolve", headers=writer)

    def ids(query: str) -> list[str]:
        response = client.get(f"{URL}?{query}", headers=writer)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    assert ids("") == [payments["id"], search["id"], checkout["id"]]
    assert ids("status=triggered") == [checkout["id"]]
    assert ids("status=triggered,acknowledged") == [payments["id"], checkout["id"]]
    assert ids("status=triggered&status=resolved") == [search["id"], checkout["id"]]
    assert ids("severity=critical&severity=high") == [payments["id"], checkout["id"]]
    assert ids("service=search") == [search["id"]]
    assert ids("q=down") == [payments["id"]]
    assert ids("q=LATENCY") == [checkout["id"]]
    assert ids("q=%25") == []
    created = checkout["created_at"]
    assert ids(f"created_before={created.replace('Z', '%2B00:00')}") == []
    assert checkout["id"] in ids(f"created_after={created.replace('Z', '')}")
    assert client.get(f"{URL}?status=open", headers=writer).status_code == 422


def test_pagination_stays_correct_while_incidents_are_inserted(
    client: TestClient, writer: Headers
) -> None:
    originals = [declare(client, writer, title=f"Incident {n}")["id"] for n in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        query = f"{URL}?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query, headers=writer).json()
        seen += [item["id"] for item in page["data"]]
        declare(client, writer, title="Inserted while paging")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(originals))


def test_private_incidents_do_not_exist_without_the_private_scope(
    client: TestClient, container: Container
) -> None:
    private_writer = make_key(container, Scope.INCIDENTS_WRITE, Scope.INCIDENTS_PRIVATE)
    plain = make_key(container, Scope.INCIDENTS_WRITE)
    secret = declare(client, private_writer, title="Breach investigation", visibility="private")
    public = declare(client, plain, title="Public outage")

    listed = client.get(URL, headers=plain).json()["data"]
    assert [item["id"] for item in listed] == [public["id"]]
    for path in (secret["id"], secret["reference"], f"{secret['id']}/timeline"):
        response = client.get(f"{URL}/{path}", headers=plain)
        assert response.status_code == 404
        assert response.json()["detail"] == f"no incident {path.split('/')[0]}"
    for action in ("acknowledge", "resolve"):
        assert client.post(f"{URL}/{secret['id']}/{action}", headers=plain).status_code == 404
    assert client.patch(f"{URL}/{secret['id']}", headers=plain,
                        json={"title": "x"}).status_code == 404
    assert client.post(f"{URL}/{secret['id']}/comments", headers=plain,
                       json={"body": "x"}).status_code == 404
    assert client.get(f"{URL}/{secret['id']}", headers=private_writer).status_code == 200
    assert len(client.get(URL, headers=private_writer).json()["data"]) == 2


def test_only_private_scope_may_create_or_make_private(
    client: TestClient, writer: Headers
) -> None:
    refused = client.post(URL, headers=writer, json={"title": "x", "visibility": "private"})
    assert refused.status_code == 403
    assert "incidents:private" in refused.json()["detail"]
    incident = declare(client, writer)
    patched = client.patch(f"{URL}/{incident['id']}", headers=writer,
                           json={"visibility": "private"})
    assert patched.status_code == 403
    assert client.get(URL, headers=writer).json()["data"][0]["visibility"] == "public"


def test_read_only_keys_cannot_write(client: TestClient, reader: Headers, writer: Headers
                                     ) -> None:
    incident = declare(client, writer)
    assert client.get(f"{URL}/{incident['id']}", headers=reader).status_code == 200
    response = client.post(f"{URL}/{incident['id']}/acknowledge", headers=reader)
    assert response.status_code == 403
    assert "incidents:write" in response.json()["detail"]
    assert client.get(f"{URL}/{incident['id']}", headers=reader).json()["status"] == "triggered"


@pytest.mark.parametrize("path", ["", "/INC-1", "/INC-1/timeline"])
def test_reading_needs_a_key(client: TestClient, writer: Headers, path: str) -> None:
    declare(client, writer)
    response = client.get(URL + path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_timestamps_follow_the_clock(client: TestClient, writer: Headers,
                                     container: Container) -> None:
    incident = declare(client, writer)
    acknowledged = client.post(f"{URL}/{incident['id']}/acknowledge", headers=writer).json()
    assert acknowledged["updated_at"] >= incident["updated_at"]
    assert acknowledged["acknowledged_at"] == acknowledged["updated_at"]
    age = container.clock.now() - datetime.fromisoformat(acknowledged["updated_at"])
    assert timedelta(0) <= age < timedelta(minutes=1)
