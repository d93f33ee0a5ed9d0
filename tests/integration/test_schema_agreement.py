"""What /openapi.json promises is what the API does.

A client generated from the OpenAPI document (or a person reading /docs) must be able
to rely on it both ways: what the schema rules out is refused with 422, not quietly
turned into something else (``0`` into ``false``, ``-2476`` into 1969); what the schema
allows, null included, is accepted. And ``OPTIONS`` tells every method a path takes.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.conftest import make_key
from tests.integration.test_bad_input import assert_problem

Headers = dict[str, str]
WINDOW = {"name": "db upgrade", "starts_at": "2026-12-01T10:00:00Z",
          "ends_at": "2026-12-01T12:00:00Z"}
#: The smallest valid body of each creating operation, and the collection it makes.
CREATES: dict[str, dict[str, Any]] = {
    "/api/v1/incidents": {"title": "Checkout is down"},
    "/api/v1/sources": {"name": "prometheus", "kind": "alertmanager"},
    "/api/v1/endpoints": {"url": "http://127.0.0.1:9/hook"},
    "/api/v1/connectors": {"name": "silences", "kind": "alertmanager",
                           "settings": {"url": "http://127.0.0.1:9"}},
    "/api/v1/maintenance": WINDOW,
    "/api/v1/keys": {"name": "ci", "scopes": ["incidents:read"]},
}


@pytest.fixture
def admin_key(hub: Container) -> Headers:
    return make_key(hub, Scope.ADMIN, name="ops")


@pytest.fixture
def openapi(hub_client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = hub_client.get("/openapi.json").json()
    return document


def _create(client: TestClient, headers: Headers, path: str, **extra: Any) -> dict[str, Any]:
    response = client.post(path, headers=headers, json={**CREATES[path], **extra})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _body_properties(openapi: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation = openapi["paths"][path][method]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[1]
    properties: dict[str, Any] = openapi["components"]["schemas"][name]["properties"]
    return properties


def _nullable(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(
        option.get("type") == "null" for option in schema.get("anyOf", []))


# -- invalid values the schema rules out -------------------------------------------------


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v1/sources", {"signed": 0}),
    ("/api/v1/sources", {"enabled": 1}),
    ("/api/v1/sources", {"rate_limit": True}),
    ("/api/v1/sources", {"reopen_window_seconds": "60"}),
    ("/api/v1/endpoints", {"enabled": "true"}),
    ("/api/v1/endpoints", {"timeout": False}),
    ("/api/v1/connectors", {"enabled": 0}),
    ("/api/v1/maintenance", {"starts_at": -2476}),
    ("/api/v1/maintenance", {"ends_at": "1800000000"}),
], ids=lambda value: str(value))
def test_values_of_the_wrong_type_are_422_and_create_nothing(
        hub_client: TestClient, admin_key: Headers, path: str, body: dict[str, Any]) -> None:
    [(field, _)] = body.items()
    response = hub_client.post(path, headers=admin_key, json={**CREATES[path], **body})
    assert_problem(response, 422, field)
    assert hub_client.get(path, headers=admin_key).json()["data"] == []


def test_a_number_where_a_date_time_is_expected_is_422(
        hub_client: TestClient, admin_key: Headers) -> None:
    for value in ("0.5", "1700000000", "-2476", "2026-11-30"):
        response = hub_client.get("/api/v1/incidents", headers=admin_key,
                                  params={"created_before": value})
        assert_problem(response, 422, "created_before")
    endpoint = _create(hub_client, admin_key, "/api/v1/endpoints")
    response = hub_client.post(f"/api/v1/endpoints/{endpoint['id']}/recover",
                               headers=admin_key, json={"since": 0})
    assert_problem(response, 422, "since")
    still = hub_client.get("/api/v1/incidents", headers=admin_key,
                           params={"created_before": "2030-01-01T00:00:00Z"})
    assert still.status_code == 200, still.text


# -- null: accepted exactly where the schema allows it -----------------------------------


@pytest.mark.parametrize("path", sorted(CREATES))
def test_null_is_accepted_on_create_exactly_where_the_schema_allows_it(
        hub_client: TestClient, admin_key: Headers, openapi: dict[str, Any],
        path: str) -> None:
    for name, schema in _body_properties(openapi, path, "post").items():
        response = hub_client.post(path, headers=admin_key,
                                   json={**CREATES[path], name: None})
        if _nullable(schema):
            assert response.status_code == 201, (name, response.text)
        else:
            assert_problem(response, 422, name)


@pytest.mark.parametrize("path", ["/api/v1/incidents", "/api/v1/sources",
                                  "/api/v1/endpoints", "/api/v1/connectors",
                                  "/api/v1/maintenance"])
def test_null_is_accepted_on_update_exactly_where_the_schema_allows_it(
        hub_client: TestClient, admin_key: Headers, openapi: dict[str, Any],
        path: str) -> None:
    made = _create(hub_client, admin_key, path)
    item = f"{path}/{made['id']}"
    template = next(key for key in openapi["paths"] if key.startswith(path + "/{")
                    and key.count("/") == path.count("/") + 1)
    for name, schema in _body_properties(openapi, template, "patch").items():
        before = hub_client.get(item, headers=admin_key).json()
        response = hub_client.patch(item, headers=admin_key, json={name: None})
        if _nullable(schema):
            assert response.status_code == 200, (name, response.text)
        else:
            assert_problem(response, 422, name)
            assert hub_client.get(item, headers=admin_key).json() == before


# -- methods ---------------------------------------------------------------------------


def test_options_lists_every_method_a_path_takes(
        hub_client: TestClient, admin_key: Headers, openapi: dict[str, Any]) -> None:
    incident = _create(hub_client, admin_key, "/api/v1/incidents")
    for template, operations in openapi["paths"].items():
        response = hub_client.options(_concrete(template, incident["id"]))
        assert response.status_code == 204, (template, response.status_code)
        allowed = {method.strip() for method in response.headers["allow"].split(",")}
        documented = {method.upper() for method in operations}
        assert documented | {"OPTIONS"} <= allowed, (template, allowed)


def test_a_method_a_path_does_not_take_is_405_listing_those_it_does(
        hub_client: TestClient, admin_key: Headers) -> None:
    incident = _create(hub_client, admin_key, "/api/v1/incidents")
    response = hub_client.put(f"/api/v1/incidents/{incident['id']}", headers=admin_key,
                              json={"title": "x"})
    assert_problem(response, 405)
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "PATCH", "OPTIONS"} <= allowed
    assert "PUT" not in allowed


def _concrete(template: str, incident_id: str) -> str:
    """The template with real or made-up ids (routing needs only the shape)."""
    parts = []
    for part in template.split("/"):
        if part == "{incident_id}":
            parts.append(incident_id)
        elif part.startswith("{"):
            parts.append("x_1")
        else:
            parts.append(part)
    return "/".join(parts)


def test_a_cursor_the_api_did_not_issue_is_400_on_every_list(
        hub_client: TestClient, admin_key: Headers, openapi: dict[str, Any]) -> None:
    lists = [path for path, operations in openapi["paths"].items()
             if "{" not in path and any(parameter["name"] == "cursor" for parameter in
                                        operations.get("get", {}).get("parameters", []))]
    assert len(lists) >= 6, lists
    for path in lists:
        response = hub_client.get(path, headers=admin_key, params={"cursor": "0" * 40})
        assert_problem(response, 400, "cursor")


def test_every_bound_in_the_schema_is_one_json_schema_knows(openapi: dict[str, Any]) -> None:
    """A bound pydantic could not translate lands in the document under its own name
    (``ge``, ``le``), which JSON Schema and every client generator ignore: clients are
    then told any number goes, and the API answers 422 (schemathesis found a
    component's ``position`` so)."""
    misnamed: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            misnamed.extend(f"{where}: {key}" for key in ("ge", "gt", "le", "lt")
                            if key in node and "type" in node)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(openapi, "")
    assert misnamed == []
