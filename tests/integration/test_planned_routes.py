"""The API's routes answer through their plans (interlock.api.routing), and a plan
answers exactly as FastAPI's own handler would have: the same status, headers and body
for good requests and for every kind of bad one.

The reference answers come from the same application with the plans taken out: each
route given back FastAPI's handler and the application's own routing and middleware in
front of it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute, request_response
from fastapi.testclient import TestClient

from interlock.api.app import Interlock
from interlock.api.routing import OneHopRoute, PlannedRoutes
from interlock.asgi import create_app
from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.conftest import make_key

#: Headers that differ between two answers for reasons other than the handler.
_VARYING = {"date", "content-length", "etag", "location"}


@pytest.fixture
def app(container: Container) -> Interlock:
    return create_app(container)


def test_every_api_route_is_answered_by_its_plan(app: Interlock) -> None:
    routes = [route for route in app.api.router.routes
              if getattr(route, "path", "").startswith("/api/v1/")]
    assert len(routes) > 50
    unplanned = [route.path for route in routes
                 if not isinstance(route, OneHopRoute) or route.plan is None]
    assert unplanned == []
    probe = {"type": "http", "method": "GET", "path": "/api/v1/incidents/INC-1",
             "root_path": "", "query_string": b"", "headers": []}
    found = app._planned.find(probe)
    assert found is not None and found.path == "/api/v1/incidents/{incident_id}"
    assert probe["path_params"] == {"incident_id": "INC-1"}


def _without_plans(app: Interlock, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on ``app`` answers as before plans: FastAPI's routing, middleware and
    request handler for every route (the routes are shared between apps, so
    ``monkeypatch`` puts them back)."""
    monkeypatch.setattr(app, "_planned", PlannedRoutes(app.api, "/nowhere/"))
    for route in app.api.router.routes:
        if isinstance(route, OneHopRoute):
            monkeypatch.setattr(route, "app", request_response(
                APIRoute.get_route_handler(route)))


def _answer(client: TestClient, request: tuple[Any, ...]) -> tuple[int, dict[str, str], Any]:
    method, path, headers, body = request
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    response = client.request(method, path, **kwargs)
    kept = {name: value for name, value in response.headers.items() if name not in _VARYING}
    content = response.json() if response.content and "json" in kept.get(
        "content-type", "") else response.content
    return response.status_code, kept, content


def test_plans_answer_as_fastapi_would(container: Container, app: Interlock,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    writer = make_key(container, Scope.INCIDENTS_READ, Scope.INCIDENTS_WRITE)
    reader = make_key(container, Scope.INCIDENTS_READ)
    admin = make_key(container, Scope.ADMIN)
    as_json = {**writer, "content-type": "application/json"}
    with TestClient(app, raise_server_exceptions=False) as client:
        created = client.post("/api/v1/incidents", headers=writer,
                              json={"title": "Checkout is down", "severity": "high"})
        assert created.status_code == 201
        incident = created.json()["id"]
        comments = f"/api/v1/incidents/{incident}/comments"
        requests: list[tuple[Any, ...]] = [
            ("GET", f"/api/v1/incidents/{incident}", reader, None),
            ("GET", "/api/v1/incidents/INC-1", reader, None),
            ("GET", "/api/v1/incidents/inc_nosuchthing", reader, None),
            ("GET", "/api/v1/incidents", reader, None),
            ("GET", "/api/v1/incidents?limit=0", reader, None),
            ("GET", "/api/v1/incidents?limit=abc&status=nope", reader, None),
            ("GET", "/api/v1/incidents?statsu=open", reader, None),
            ("GET", f"/api/v1/incidents/{incident}/timeline?limit=2", reader, None),
            ("GET", f"/api/v1/incidents/{incident}", {}, None),
            ("GET", f"/api/v1/incidents/{incident}", {"authorization": "Bearer nope"}, None),
            ("GET", f"/api/v1/incidents/{incident}", {"authorization": "Basic x"}, None),
            ("POST", comments, reader, {"body": "readers cannot write"}),
            ("POST", comments, writer, {"body": ""}),
            ("POST", comments, writer, {"bodyy": "a typo"}),
            ("POST", comments, writer, [1, 2]),
            ("POST", comments, as_json, b'{"body": '),
            ("POST", comments, as_json, b"\xff\xfe"),
            ("POST", comments, as_json, b""),
            ("POST", comments, {**writer, "content-type": "text/plain"}, b'{"body": "x"}'),
            ("POST", comments, {**writer, "idempotency-key": "k" * 300}, {"body": "long"}),
            ("PATCH", f"/api/v1/incidents/{incident}", as_json, {"severity": "extreme"}),
            ("PATCH", f"/api/v1/incidents/{incident}", {**as_json, "if-match": "W/\"99\""},
             {"severity": "low"}),
            ("POST", "/api/v1/incidents/INC-999/acknowledge", writer, None),
            ("GET", "/api/v1/keys", admin, None),
            ("GET", "/api/v1/keys", writer, None),
            ("GET", "/api/v1/event-types", admin, None),
            ("POST", "/api/v1/endpoints", admin, {"url": "ftp://example.com"}),
            ("DELETE", "/api/v1/endpoints/ep_missing", admin, None),
            ("GET", "/api/v1/nosuchthing", reader, None),
            ("PUT", f"/api/v1/incidents/{incident}", writer, {"title": "x"}),
            ("GET", "/api/v1/incidents/%00", reader, None),
        ]
        planned = [_answer(client, request) for request in requests]
        _without_plans(app, monkeypatch)
        reference = [_answer(client, request) for request in requests]
    # Nothing above changes anything (writes are refused), so both passes see the same.
    for request, got, wanted in zip(requests, planned, reference, strict=True):
        assert got == wanted, f"{request[0]} {request[1]}"
    statuses = {status for status, _, _ in planned}
    assert {200, 400, 401, 403, 404, 405, 415, 422} <= statuses


def test_a_comment_through_a_plan_is_stored_and_answered_whole(
        container: Container, app: Interlock) -> None:
    writer = make_key(container, Scope.INCIDENTS_READ, Scope.INCIDENTS_WRITE)
    with TestClient(app, raise_server_exceptions=False) as client:
        incident = client.post("/api/v1/incidents", headers=writer,
                               json={"title": "Checkout is down"}).json()["id"]
        answer = client.post(f"/api/v1/incidents/{incident}/comments", headers=writer,
                             json={"body": "rolling back"})
        assert answer.status_code == 201
        assert answer.json()["body"] == "rolling back"
        # Any application/*+json is JSON, as FastAPI reads it.
        other = client.post(f"/api/v1/incidents/{incident}/comments",
                            headers={**writer, "content-type": "application/vnd.x+json"},
                            content=b'{"body": "fixed"}')
        assert other.status_code == 201, other.text
        timeline = client.get(f"/api/v1/incidents/{incident}/timeline", headers=writer)
    assert [entry["body"] for entry in timeline.json()["data"]
            if entry["body"]] == ["rolling back", "fixed"]
