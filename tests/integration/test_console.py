"""The web console over HTTP: signing in and out, the session cookie, CSRF, what a key's
scopes show and allow, private incidents, the live stream, and empty states."""

from __future__ import annotations

import re
import socket
import threading
import time

from fastapi.testclient import TestClient

from interlock.asgi import create_app
from interlock.domain.events import SYSTEM
from interlock.domain.incidents import Severity, Visibility
from interlock.domain.keys import Scope
from interlock.services.connectors import ConnectorSpec
from interlock.services.container import Container
from interlock.services.incidents import Declaration, Viewer
from interlock.web.session import COOKIE
from tests.support.fake_jira import FakeJira
from tests.support.sync import sync_all, sync_round

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
JIRA_SECRETS = {"email": "a@b.c", "api_token": "tok-SECRET-123",
                "webhook_secret": "whs-SECRET"}


def _key(container: Container, *scopes: Scope) -> str:
    _, secret = container.keys.create("person", scopes)
    return secret


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


def _sign_in(client: TestClient, secret: str) -> None:
    form = client.get("/login")
    answer = client.post("/login", data={"csrf_token": _csrf(form.text), "api_key": secret,
                                         "next": "/incidents"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/incidents"


def _declare(container: Container, title: str, *, private: bool = False) -> str:
    viewer = Viewer(origin=SYSTEM, can_see_private=True)
    incident = container.incidents.declare(viewer, Declaration(
        title=title, severity=Severity.HIGH,
        visibility=Visibility.PRIVATE if private else Visibility.PUBLIC))
    return incident.reference


def test_pages_need_signing_in_and_the_root_leads_there(client: TestClient) -> None:
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/login"
    incidents = client.get("/incidents?status=open", follow_redirects=False)
    assert incidents.status_code == 303
    assert incidents.headers["location"] == "/login?next=%2Fincidents%3Fstatus%3Dopen"
    assert "API key" in client.get("/login").text


def test_the_session_cookie_is_sealed_http_only_and_signing_out_ends_it(
        client: TestClient, container: Container) -> None:
    secret = _key(container, Scope.ADMIN)
    form = client.get("/login")
    answer = client.post("/login", data={"csrf_token": _csrf(form.text), "api_key": secret},
                         follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback (make run) must work
    assert secret not in cookie and secret[4:20] not in cookie
    page = client.get("/incidents")
    assert page.status_code == 200 and "person" in page.text

    forged = client.cookies.get(COOKIE, "")[:-4] + "AAAA"
    client.cookies.set(COOKIE, forged)
    assert client.get("/incidents", follow_redirects=False).status_code == 303

    client.cookies.clear()
    _sign_in(client, secret)
    out = client.post("/logout", data={"csrf_token": _csrf(client.get("/incidents").text)})
    assert "You are signed out." in out.text
    assert client.get("/incidents", follow_redirects=False).status_code == 303


def test_cookies_are_secure_over_https(container: Container) -> None:
    secret = _key(container, Scope.ADMIN)
    with TestClient(create_app(container), base_url="https://testserver") as client:
        form = client.get("/login")
        answer = client.post("/login", data={"csrf_token": _csrf(form.text),
                                             "api_key": secret}, follow_redirects=False)
    assert "Secure" in answer.headers["set-cookie"]


def test_an_unknown_key_is_refused(client: TestClient) -> None:
    form = client.get("/login")
    answer = client.post("/login", data={"csrf_token": _csrf(form.text),
                                         "api_key": "ilk_not-a-key"})
    assert answer.status_code == 401
    assert "unknown or revoked" in answer.text


def test_forms_without_this_sessions_csrf_token_change_nothing(
        client: TestClient, container: Container) -> None:
    reference = _declare(container, "Checkout down")
    _sign_in(client, _key(container, Scope.ADMIN))
    missing = client.post(f"/incidents/{reference}/acknowledge", data={})
    assert missing.status_code == 403 and "This form has expired" in missing.text
    stale = client.post(f"/incidents/{reference}/acknowledge",
                        data={"csrf_token": "made-up-elsewhere"})
    assert stale.status_code == 403
    viewer = Viewer(origin=SYSTEM, can_see_private=True)
    assert container.incidents.get(viewer, reference).status.value == "triggered"

    token = _csrf(client.get(f"/incidents/{reference}").text)
    done = client.post(f"/incidents/{reference}/acknowledge", data={"csrf_token": token})
    assert done.status_code == 200 and f"{reference} acknowledged." in done.text
    assert container.incidents.get(viewer, reference).status.value == "acknowledged"


def test_a_read_only_key_sees_no_buttons_and_is_refused_when_it_posts(
        client: TestClient, container: Container) -> None:
    public = _declare(container, "Login page slow")
    private = _declare(container, "Suspected credential leak", private=True)
    _sign_in(client, _key(container, Scope.INCIDENTS_READ))

    listing = client.get("/incidents").text
    assert "Login page slow" in listing and "Suspected credential leak" not in listing
    assert 'href="/endpoints"' not in listing and 'href="/sources"' not in listing
    page = client.get(f"/incidents/{public}").text
    assert ">Acknowledge</button>" not in page and ">Resolve</button>" not in page
    assert "Add to the timeline" not in page
    refused = client.post(f"/incidents/{public}/acknowledge",
                          data={"csrf_token": _csrf(page)})
    assert refused.status_code == 403 and "incidents:write" in refused.text
    assert client.get(f"/incidents/{private}").status_code == 404
    assert client.get("/endpoints").status_code == 403
    assert client.get("/sources").status_code == 403
    assert 'href="/connectors"' not in listing
    refused_page = client.get("/connectors")
    assert refused_page.status_code == 403 and "connectors:manage" in refused_page.text


def test_private_incidents_show_for_keys_with_the_private_scope(
        client: TestClient, container: Container) -> None:
    private = _declare(container, "Suspected credential leak", private=True)
    _sign_in(client, _key(container, Scope.INCIDENTS_READ, Scope.INCIDENTS_PRIVATE))
    assert "Suspected credential leak" in client.get("/incidents").text
    assert client.get(f"/incidents/{private}").status_code == 200


def test_revoking_the_key_signs_its_sessions_out(client: TestClient, container: Container
                                                 ) -> None:
    container.keys.create("stays", [Scope.ADMIN])  # the last admin key cannot be revoked
    key, secret = container.keys.create("leaver", [Scope.ADMIN])
    _sign_in(client, secret)
    container.keys.revoke(key.id)
    answer = client.get("/incidents")
    assert answer.url.path == "/login"
    assert "revoked" in answer.text


def test_empty_states_say_what_to_do_next(client: TestClient, container: Container) -> None:
    _sign_in(client, _key(container, Scope.ADMIN))
    assert "No incidents yet." in client.get("/incidents").text
    sources = client.get("/sources").text
    assert "No sources yet." in sources and "point Alertmanager" in sources
    assert "No endpoints yet." in client.get("/endpoints").text
    connectors = client.get("/connectors").text
    assert "No connectors yet." in connectors
    assert "curl -X POST" in connectors and "/api/v1/connectors" in connectors
    filtered = client.get("/incidents?severity=critical").text
    assert "No incidents match these filters." in filtered


def test_the_live_stream_tells_a_page_when_an_incident_changes(
        client: TestClient, container: Container) -> None:
    _sign_in(client, _key(container, Scope.INCIDENTS_READ))
    feed = client.app.state.console_feed  # type: ignore[attr-defined]
    received: list[str] = []

    def change_soon() -> None:
        time.sleep(0.5)
        _declare(container, "Hidden from this key", private=True)
        _declare(container, "Queue backlog growing")

    threading.Thread(target=change_soon).start()
    with client.stream("GET", "/incidents/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            received.append(line)
            if line.startswith("data:") and "INC-2" in line:
                feed.close()
                break
    events = "\n".join(received)
    assert "event: incident" in events
    assert '"reference": "INC-2"' in events
    assert "INC-1" not in events  # the private one, invisible to this key


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_connectors_show_health_activity_and_never_credentials(
        hub: Container, hub_client: TestClient) -> None:
    silences = hub.connectors.create(ConnectorSpec(
        name="alertmanager-prod", kind="alertmanager",
        settings={"url": "http://127.0.0.1:9093"}, credentials={}))
    down = f"http://127.0.0.1:{_closed_port()}"
    jira = hub.connectors.create(ConnectorSpec(
        name="jira-ops", kind="jira", settings={"base_url": down, "project_key": "OPS"},
        credentials=JIRA_SECRETS))
    reference = _declare(hub, "Checkout down")
    assert sync_round(hub) == 1  # the Jira push, refused: nothing listens there
    _sign_in(hub_client, _key(hub, Scope.CONNECTORS_MANAGE))

    listing = hub_client.get("/connectors")
    assert listing.status_code == 200
    assert 'href="/connectors"' in listing.text and ">Connectors</a>" in listing.text
    assert "alertmanager-prod" in listing.text and "Prometheus Alertmanager" in listing.text
    assert f"/hooks/{silences.id}" in listing.text and f"/hooks/{jira.id}" in listing.text
    assert "1 pending · 0 failed" in listing.text
    page = hub_client.get(f"/connectors/{jira.id}").text
    assert "<code>api_token</code> <code>email</code> <code>webhook_secret</code>" in page
    assert f"<code>GET {down}/rest/api/3/myself</code>" in page and "no answer" in page
    assert "connection refused" in page and "retry <time datetime=" in page
    assert f'href="/incidents/{reference}"' in page
    for html in (listing.text, page):
        for secret in JIRA_SECRETS.values():
            assert secret not in html

    disabled = hub_client.post(f"/connectors/{jira.id}/disable",
                               data={"csrf_token": _csrf(page)})
    assert disabled.status_code == 200 and "jira-ops disabled" in disabled.text
    assert not hub.connectors.get(jira.id).enabled
    enabled = hub_client.post(f"/connectors/{jira.id}/enable",
                              data={"csrf_token": _csrf(disabled.text)})
    assert "jira-ops enabled" in enabled.text and hub.connectors.get(jira.id).enabled
    assert hub_client.post(f"/connectors/{jira.id}/disable", data={}).status_code == 403


def test_the_incident_page_lists_what_stands_for_it_in_other_tools(
        hub: Container, hub_client: TestClient) -> None:
    with FakeJira() as site:
        connector = hub.connectors.create(ConnectorSpec(
            name="jira-ops", kind="jira",
            settings={"base_url": site.url, "project_key": "OPS"},
            credentials={"email": site.email, "api_token": site.api_token,
                         "webhook_secret": site.webhook_secret}))
        reference = _declare(hub, "Checkout down")
        _sign_in(hub_client, _key(hub, Scope.INCIDENTS_READ))
        before = hub_client.get(f"/incidents/{reference}").text
        assert 'id="incident-links" data-live-region' in before
        assert "Not in any connected tool yet." in before
        sync_all(hub)
        [issue] = site.issues.values()

    page = hub_client.get(f"/incidents/{reference}").text
    assert "Linked in tools" in page and "Jira issue" in page
    assert f'href="{site.url}/browse/{issue.key}"' in page
    assert "via jira-ops" in page
    _sign_in(hub_client, _key(hub, Scope.CONNECTORS_MANAGE))
    links = hub_client.get(f"/connectors/{connector.id}").text
    assert f'<a href="/incidents/{reference}">{reference}</a>' in links
    assert f"<code>{issue.key}</code>" in links
