"""Bad input gets a problem+json 4xx that names the problem, and changes nothing.

Each test sends one kind of garbage a real client could send (by bug, typo or malice)
and checks what that client would see: the status, the media type, a ``detail`` that
points at the culprit, and, for writes, that no incident was created or changed.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.conftest import make_key

INCIDENTS = "/api/v1/incidents"
PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, *named: str) -> dict[str, Any]:
    """An RFC 9457 problem with ``status`` whose detail mentions every string in
    ``named`` (ignoring case, as header names do); returns the body for further checks."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"]
    for word in named:
        assert word.lower() in body["detail"].lower(), f"{word!r} not in {body['detail']!r}"
    return body


def stored(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every incident, as the API lists them (enough rows for any test here)."""
    response = client.get(INCIDENTS, headers=headers, params={"limit": 200})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


@pytest.fixture
def incident(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    response = client.post(INCIDENTS, headers=admin, json={"title": "Checkout is down"})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def post_raw(client: TestClient, headers: dict[str, str], content: bytes | Iterator[bytes],
             content_type: str | None = "application/json", path: str = INCIDENTS
             ) -> httpx.Response:
    extra = {"Content-Type": content_type} if content_type else {}
    return client.post(path, headers={**headers, **extra}, content=content)


# -- bodies ----------------------------------------------------------------------------


def test_malformed_json_is_400_and_stores_nothing(client: TestClient, admin: dict[str, str]
                                                   ) -> None:
    response = post_raw(client, admin, b'{"title": "Checkout is down",')
    assert_problem(response, 400, "not valid JSON")
    assert stored(client, admin) == []


def test_body_that_is_not_utf8_is_400(client: TestClient, admin: dict[str, str]) -> None:
    response = post_raw(client, admin, b'{"title": "caf\xe9"}')
    assert_problem(response, 400, "UTF-8")
    assert stored(client, admin) == []


def test_json_nested_too_deeply_is_400(client: TestClient, admin: dict[str, str]) -> None:
    response = post_raw(client, admin, b"[" * 100_000 + b"]" * 100_000)
    assert_problem(response, 400, "nested too deeply")


def test_an_unknown_query_parameter_is_400_naming_it(client: TestClient,
                                                     admin: dict[str, str]) -> None:
    """A typo in a filter is refused, not ignored (which would answer with everything)."""
    client.post("/api/v1/incidents", headers=admin, json={"title": "a", "severity": "low"})
    typo = client.get("/api/v1/incidents?statsu=resolved", headers=admin)
    assert_problem(typo, 400, "statsu")
    assert client.get("/api/v1/incidents?status=resolved", headers=admin).json()["data"] == []


def test_every_api_route_refuses_an_unknown_query_parameter(client: TestClient,
                                                             admin: dict[str, str]) -> None:
    """The check is each API router's own dependency (their routes are added to the app
    one by one, not included with it): none may be without it."""
    routes = [route for route in client.app.api.routes  # type: ignore[attr-defined]
              if isinstance(route, APIRoute) and route.path.startswith("/api/v1")]
    assert len(routes) > 50
    missed = []
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in sorted(route.methods):
            response = client.request(method, f"{path}?bogus=1", headers=admin)
            if response.status_code != 400 or "bogus" not in response.text:
                missed.append(f"{method} {route.path}: {response.status_code}")
    assert missed == []


def test_unknown_field_is_422_naming_it(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(INCIDENTS, headers=admin,
                           json={"title": "Checkout is down", "colour": "red"})
    body = assert_problem(response, 422, "colour")
    assert [error["field"] for error in body["errors"]] == ["body.colour"]
    assert stored(client, admin) == []


def test_wrong_type_is_422_naming_the_field(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(INCIDENTS, headers=admin, json={"title": 42, "labels": ["a"]})
    body = assert_problem(response, 422, "body.title", "body.labels")
    assert {error["field"] for error in body["errors"]} == {"body.title", "body.labels"}
    assert stored(client, admin) == []


def test_missing_required_field_is_422_naming_it(client: TestClient, admin: dict[str, str]
                                                 ) -> None:
    response = client.post(INCIDENTS, headers=admin, json={"severity": "high"})
    assert_problem(response, 422, "body.title", "required")
    assert stored(client, admin) == []


def test_bad_enum_value_is_422_listing_the_allowed_ones(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(INCIDENTS, headers=admin,
                           json={"title": "Checkout is down", "severity": "urgent"})
    assert_problem(response, 422, "body.severity", "critical")
    assert stored(client, admin) == []


def test_bad_enum_in_a_query_is_422_naming_it(client: TestClient, admin: dict[str, str]
                                              ) -> None:
    response = client.get(INCIDENTS, headers=admin, params={"status": "triggered,sleeping"})
    assert_problem(response, 422, "status", "sleeping")


def test_array_body_where_an_object_is_expected_is_422(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(INCIDENTS, headers=admin, json=[{"title": "Checkout is down"}])
    body = assert_problem(response, 422, "body")
    assert body["errors"][0]["field"] == "body"
    assert stored(client, admin) == []


def test_null_for_a_field_that_cannot_be_cleared_is_422(
    client: TestClient, admin: dict[str, str], incident: dict[str, Any]
) -> None:
    response = client.patch(f"{INCIDENTS}/{incident['reference']}", headers=admin,
                            json={"title": None})
    assert_problem(response, 422, "title")
    assert stored(client, admin) == [incident]


def test_nul_character_in_a_string_is_422(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(INCIDENTS, headers=admin,
                           json={"title": "Checkout\x00 is down", "labels": {"team": "a\x00"}})
    body = assert_problem(response, 422, "body.title", "NUL")
    assert {error["field"] for error in body["errors"]} == {"body.title", "body.labels.team"}
    assert stored(client, admin) == []


def test_wrong_content_type_is_415_and_stores_nothing(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = post_raw(client, admin, b'{"title": "Checkout is down"}', "text/plain")
    assert_problem(response, 415, "application/json", "text/plain")
    assert stored(client, admin) == []


def test_body_without_content_type_is_415(client: TestClient, admin: dict[str, str]) -> None:
    response = post_raw(client, admin, b'{"title": "Checkout is down"}', content_type=None)
    assert_problem(response, 415, "application/json")
    assert stored(client, admin) == []


# -- size ------------------------------------------------------------------------------


def test_body_over_the_limit_with_content_length_is_413(
    client: TestClient, container: Container, admin: dict[str, str]
) -> None:
    limit = container.settings.max_body_bytes
    body = json.dumps({"title": "Checkout is down", "summary": "x" * limit}).encode()
    response = post_raw(client, admin, body)
    assert response.request.headers["content-length"] == str(len(body))
    assert_problem(response, 413, str(limit))
    assert stored(client, admin) == []


def test_chunked_body_over_the_limit_is_413(
    client: TestClient, container: Container, admin: dict[str, str]
) -> None:
    limit = container.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        yield b'{"title": "Checkout is down", "summary": "'
        for _ in range(limit // 65_536 + 1):
            yield b"x" * 65_536
        yield b'"}'

    response = post_raw(client, admin, chunks())
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, str(limit))
    assert stored(client, admin) == []


def test_body_just_under_the_limit_is_accepted(
    client: TestClient, container: Container, admin: dict[str, str]
) -> None:
    """The limit is on bytes, not a guess: a body that fits is read whole and judged on
    its content (here: a summary longer than allowed)."""
    limit = container.settings.max_body_bytes
    prefix = b'{"title": "Checkout is down", "summary": "'
    body = prefix + b"x" * (limit - len(prefix) - 2) + b'"}'
    assert len(body) == limit
    assert_problem(post_raw(client, admin, body), 422, "body.summary")


def test_content_length_that_is_not_a_number_is_400(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(INCIDENTS, content=b'{"title": "Checkout is down"}',
                           headers={**admin, "Content-Type": "application/json",
                                    "Content-Length": "lots"})
    assert_problem(response, 400, "Content-Length")
    assert stored(client, admin) == []


# -- queries, paths and headers --------------------------------------------------------


@pytest.mark.parametrize("cursor", [
    "not-a-cursor",
    base64.urlsafe_b64encode(b'{"q": 1}').decode(),
    base64.urlsafe_b64encode(b'{"p": -1}').decode(),
    base64.urlsafe_b64encode(json.dumps({"p": 10**30}).encode()).decode(),
])
def test_bad_cursor_is_400(client: TestClient, admin: dict[str, str],
                           incident: dict[str, Any], cursor: str) -> None:
    listing = client.get(INCIDENTS, headers=admin, params={"cursor": cursor})
    assert_problem(listing, 400, "cursor")
    timeline = client.get(f"{INCIDENTS}/{incident['id']}/timeline", headers=admin,
                          params={"cursor": cursor})
    assert_problem(timeline, 400, "cursor")


@pytest.mark.parametrize("limit", ["0", "201", "-1", "9" * 40, "ten", "1.5"])
def test_limit_out_of_range_or_not_a_number_is_422(
    client: TestClient, admin: dict[str, str], limit: str
) -> None:
    response = client.get(INCIDENTS, headers=admin, params={"limit": limit})
    body = assert_problem(response, 422, "query.limit")
    assert body["errors"][0]["field"] == "query.limit"


@pytest.mark.parametrize("field", ["created_after", "created_before"])
@pytest.mark.parametrize("value", ["yesterday", "0001-01-01T00:00:00+01:00",
                                   "9999-12-31T23:59:59-01:00"])
def test_unusable_date_in_a_query_is_422(
    client: TestClient, admin: dict[str, str], field: str, value: str
) -> None:
    response = client.get(INCIDENTS, headers=admin, params={field: value})
    assert_problem(response, 422, field)


@pytest.mark.parametrize("request_", [
    ("GET", ""), ("PATCH", ""), ("POST", "/acknowledge"), ("POST", "/resolve"),
    ("POST", "/reopen"), ("POST", "/comments"), ("GET", "/timeline"),
])
@pytest.mark.parametrize("key", ["INC-999", "inc_01JD3K2Q6W4Y8Z0A1B2C3D4E5F", "nonsense",
                                 "INC-99999999999999999999"])
def test_unknown_incident_is_404_naming_it(
    client: TestClient, admin: dict[str, str], incident: dict[str, Any],
    request_: tuple[str, str], key: str,
) -> None:
    method, suffix = request_
    body = {"body": "hello"} if suffix == "/comments" else {"title": "x"}
    response = client.request(method, f"{INCIDENTS}/{key}{suffix}", headers=admin,
                              json=body if method != "GET" else None)
    assert_problem(response, 404, key)
    assert stored(client, admin) == [incident]


def test_unknown_api_key_id_is_404(client: TestClient, admin: dict[str, str]) -> None:
    assert_problem(client.get("/api/v1/keys/key_nope", headers=admin), 404, "key_nope")
    assert_problem(client.delete("/api/v1/keys/key_nope", headers=admin), 404, "key_nope")


@pytest.mark.parametrize("url", [
    f"{INCIDENTS}/INC-1%00", f"{INCIDENTS}?service=api%00", f"{INCIDENTS}?q=%00",
    "/api/v1/keys/key_%00",
])
def test_nul_character_in_the_url_is_400(
    client: TestClient, admin: dict[str, str], incident: dict[str, Any], url: str
) -> None:
    assert_problem(client.get(url, headers=admin), 400, "NUL")


@pytest.mark.parametrize("if_match", ["garbage", '"3', "W/", '"1", "2"', '"' + "9" * 30 + '"'])
def test_garbage_if_match_is_400_and_changes_nothing(
    client: TestClient, admin: dict[str, str], incident: dict[str, Any], if_match: str
) -> None:
    url = f"{INCIDENTS}/{incident['id']}"
    patched = client.patch(url, headers={**admin, "If-Match": if_match},
                           json={"title": "Renamed"})
    assert_problem(patched, 400, "If-Match")
    acked = client.post(f"{url}/acknowledge", headers={**admin, "If-Match": if_match})
    assert_problem(acked, 400, "If-Match")
    assert stored(client, admin) == [incident]


def test_stale_if_match_is_412_and_changes_nothing(
    client: TestClient, admin: dict[str, str], incident: dict[str, Any]
) -> None:
    response = client.patch(f"{INCIDENTS}/{incident['id']}", json={"title": "Renamed"},
                            headers={**admin, "If-Match": '"7"'})
    assert_problem(response, 412, incident["reference"], "version 1")
    assert stored(client, admin) == [incident]


@pytest.mark.parametrize("idempotency_key", ["", "x" * 256, "tab\there", "bell\x07"])
def test_unusable_idempotency_key_is_422_and_stores_nothing(
    client: TestClient, admin: dict[str, str], idempotency_key: str
) -> None:
    response = client.post(INCIDENTS, json={"title": "Checkout is down"},
                           headers={**admin, "Idempotency-Key": idempotency_key})
    assert_problem(response, 422, "Idempotency-Key")
    assert stored(client, admin) == []


# -- who is asking ---------------------------------------------------------------------


def test_missing_key_is_401_with_a_challenge(client: TestClient, admin: dict[str, str]
                                             ) -> None:
    response = client.post(INCIDENTS, json={"title": "Checkout is down"})
    assert_problem(response, 401, "Bearer")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert stored(client, admin) == []


@pytest.mark.parametrize("authorization", [
    "Basic YWRtaW46aHVudGVyMg==", "Token ilk_abc", "Bearer", "ilk_abc",
])
def test_non_bearer_authorization_is_401(
    client: TestClient, admin: dict[str, str], authorization: str
) -> None:
    response = client.post(INCIDENTS, json={"title": "Checkout is down"},
                           headers={"Authorization": authorization})
    assert_problem(response, 401, "Authorization: Bearer")
    assert stored(client, admin) == []


def test_unknown_key_is_401(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(INCIDENTS, json={"title": "Checkout is down"},
                           headers={"Authorization": "Bearer ilk_not-a-real-key"})
    assert_problem(response, 401, "unknown or revoked")
    assert stored(client, admin) == []


def test_revoked_key_is_401(client: TestClient, container: Container, admin: dict[str, str]
                            ) -> None:
    key, secret = container.keys.create("ci bot", [Scope.INCIDENTS_WRITE])
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get(INCIDENTS, headers=headers).status_code == 200
    revoked = client.delete(f"/api/v1/keys/{key.id}", headers=admin)
    assert revoked.status_code == 200, revoked.text
    response = client.post(INCIDENTS, json={"title": "Checkout is down"}, headers=headers)
    assert_problem(response, 401, "revoked")
    assert stored(client, admin) == []


def test_key_without_the_scope_is_403_naming_it(
    client: TestClient, admin: dict[str, str], reader: dict[str, str],
    incident: dict[str, Any],
) -> None:
    created = client.post(INCIDENTS, headers=reader, json={"title": "Checkout is down"})
    assert_problem(created, 403, "incidents:write")
    acked = client.post(f"{INCIDENTS}/{incident['id']}/acknowledge", headers=reader)
    assert_problem(acked, 403, "incidents:write")
    assert stored(client, admin) == [incident]


def test_non_admin_key_cannot_manage_keys(client: TestClient, container: Container) -> None:
    writer = make_key(container, Scope.INCIDENTS_WRITE, Scope.INCIDENTS_PRIVATE)
    response = client.post("/api/v1/keys", headers=writer,
                           json={"name": "escalate", "scopes": ["admin"]})
    assert_problem(response, 403, "admin")
    assert len(container.keys.list()) == 1


def test_private_incident_needs_the_private_scope(
    client: TestClient, admin: dict[str, str], writer: dict[str, str]
) -> None:
    response = client.post(INCIDENTS, headers=writer,
                           json={"title": "Payroll leak", "visibility": "private"})
    assert_problem(response, 403, "incidents:private")
    assert stored(client, admin) == []
