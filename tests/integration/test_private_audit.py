"""One audit of every GET route: a private incident, with all that hangs on it (alerts
from a source, a comment, timeline entries, events and messages), never shows through
any of them to a key without ``incidents:private``: not its id, reference or title, nor
its alerts. The routes are read from the app itself, so a new route is audited too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.conftest import make_key
from tests.support.delivery import deliver_all
from tests.support.ingest import am_alert, am_payload, basic, create_source, process_all
from tests.support.receiver import Receiver

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PARAMETER = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")
#: Streams that never end; the live feed's filtering has its own tests (test_console).
ENDLESS = re.compile(r"/live$")
SECRET_HOST = "zanzibar-secret-host"
PRIVATE_TITLE = "Zanzibar payroll breach"


def _get_routes(app: FastAPI) -> Iterator[str]:
    """Every GET route's path template, however FastAPI keeps included routers."""
    try:
        from fastapi.routing import iter_route_contexts
        routes: Any = iter_route_contexts(app.routes)
    except ImportError:  # older FastAPI: app.routes is already flat
        routes = app.routes
    for route in routes:
        methods = getattr(route, "methods", None) or set()
        if "GET" in methods and route.path:
            yield route.path


def _private_incident(client: TestClient, admin: dict[str, str], hub: Container
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """An incident correlated from a source's alerts, made private, then given a second
    alert, a comment and an acknowledgement while private."""
    source = create_source(client, admin)
    first = am_payload(am_alert("ZanzibarLeak", service="vault", instance="a"))
    assert client.post(source["path"], json=first, headers=basic(source["token"])
                       ).status_code == 202
    process_all(hub)
    (incident,) = client.get("/api/v1/incidents", headers=admin).json()["data"]
    url = f"/api/v1/incidents/{incident['id']}"
    made_private = client.patch(url, headers=admin,
                                json={"visibility": "private", "title": PRIVATE_TITLE})
    assert made_private.status_code == 200, made_private.text
    second = am_payload(am_alert("ZanzibarLeak", service="vault", instance=SECRET_HOST))
    assert client.post(source["path"], json=second, headers=basic(source["token"])
                       ).status_code == 202
    process_all(hub)
    assert client.post(f"{url}/comments", headers=admin,
                       json={"body": "Zanzibar: rotate the payroll keys"}).status_code == 201
    assert client.post(f"{url}/acknowledge", headers=admin).status_code == 200
    alerts = client.get(f"{url}/alerts", headers=admin).json()["data"]
    assert {alert["labels"]["instance"] for alert in alerts} == {"a", SECRET_HOST}
    return client.get(url, headers=admin).json(), source


def _sign_in(client: TestClient, secret: str) -> None:
    form = client.get("/login")
    found = CSRF.search(form.text)
    assert found, form.text
    answer = client.post("/login", data={"csrf_token": found.group(1), "api_key": secret},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


def test_no_get_route_shows_a_private_incident_to_a_key_without_the_private_scope(
    hub_client: TestClient, hub: Container
) -> None:
    admin = make_key(hub, Scope.ADMIN, name="ops")
    with Receiver() as receiver:
        endpoint = hub_client.post("/api/v1/endpoints", headers=admin,
                                   json={"url": receiver.url}).json()
        incident, source = _private_incident(hub_client, admin, hub)
        public = hub_client.post("/api/v1/incidents", headers=admin,
                                 json={"title": "Public checkout errors"}).json()
        deliver_all(hub)
    secrets = [incident["id"], incident["reference"], PRIVATE_TITLE, SECRET_HOST,
               "Zanzibar"]

    _, reader_secret = hub.keys.create("reader", [Scope.INCIDENTS_READ])
    reader = {"Authorization": f"Bearer {reader_secret}"}
    _sign_in(hub_client, reader_secret)  # the console pages too
    values = {
        "incident_id": incident["id"], "reference": incident["reference"],
        "source_id": source["id"], "endpoint_id": endpoint["id"], "key_id": "key_x",
        "window_id": "mw_x", "connector_id": "con_x", "message_id": "msg_x",
        "name": "console.css", "page_id": "spg_x", "component_id": "cmp_x",
        "subscriber_id": "sub_x", "maintenance_id": "smt_x",
        "slug": "status-x",
    }
    urls = []
    for path in sorted(set(_get_routes(hub_client.app.api))):  # type: ignore[attr-defined]
        if ENDLESS.search(path) or path == "/login":  # the sign-in form signs out
            continue
        urls.append(PARAMETER.sub(lambda match: values[match.group(1)], path))
        if "{incident_id}" in path or "{reference}" in path:
            urls.append(PARAMETER.sub(
                lambda match: incident["reference"] if match.group(1) == "incident_id"
                else values[match.group(1)], path))
    urls += ["/api/v1/incidents?q=Zanzibar", "/api/v1/incidents?service=vault",
             "/api/v1/incidents?status=acknowledged&limit=200", "/api/v1/alerts?limit=200",
             "/incidents?q=Zanzibar", "/incidents?status=acknowledged"]

    missing = {incident["id"]: "inc_01AAAAAAAAAAAAAAAAAAAAAAAA",
               incident["reference"]: "INC-999999"}
    answered = {}
    leaks = []
    for url in urls:
        response = hub_client.get(url, headers=reader, follow_redirects=False)
        answered[url] = response.status_code
        asked = [known for known in missing if known in url]
        if asked:  # the answer may name what was asked for, exactly as for a missing one
            twin = hub_client.get(url.replace(asked[0], missing[asked[0]]), headers=reader,
                                  follow_redirects=False)
            if (twin.status_code, twin.text) != (
                    response.status_code, response.text.replace(asked[0], missing[asked[0]])):
                leaks.append(f"GET {url} ({response.status_code}) differs from a missing one")
            continue
        shown = [secret for secret in secrets if secret in response.text]
        if shown:
            leaks.append(f"GET {url} ({response.status_code}) shows {shown}")
    assert not leaks, "\n".join(leaks)
    # The walk saw real pages, not only refusals: the public incident is listed.
    assert answered["/api/v1/incidents"] == 200 and answered["/incidents"] == 200
    listed = hub_client.get("/api/v1/alerts", headers=reader)
    assert listed.status_code == 200
    assert public["title"] in hub_client.get("/incidents", headers=reader).text
    assert answered[f"/api/v1/incidents/{incident['id']}"] == 404


def test_alert_pages_skip_private_incidents_alerts_and_still_reach_the_end(
    hub_client: TestClient, hub: Container
) -> None:
    admin = make_key(hub, Scope.ADMIN, name="ops")
    _, source = _private_incident(hub_client, admin, hub)
    for name in ("DiskFull", "QueueBacklog"):
        assert hub_client.post(source["path"], json=am_payload(am_alert(name)),
                               headers=basic(source["token"])).status_code == 202
    process_all(hub)

    def names(headers: dict[str, str]) -> list[str]:
        seen, cursor = [], None
        for _ in range(10):
            page = hub_client.get("/api/v1/alerts", headers=headers,
                                  params={"limit": 1, **({"cursor": cursor} if cursor else {})})
            seen += [alert["labels"]["alertname"] for alert in page.json()["data"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return seen
        raise AssertionError(f"no end after 10 pages: {seen}")

    assert names(make_key(hub, Scope.INCIDENTS_READ)) == ["QueueBacklog", "DiskFull"]
    assert len(names(admin)) == 4
