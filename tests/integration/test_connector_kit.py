"""The connector kit from the outside: kinds publish their schemas, a connector kind
installed from another package works through a real app, and the edges a user reaches
(the list's credentials, a changed secret key, a broken connector beside good ones)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from interlock import config
from interlock.api.app import create_app
from interlock.bootstrap import build
from interlock.crypto import FernetBox
from interlock.services.container import Container
from interlock.store.tables import connectors, sources
from tests.conftest import TEST_SECRET_KEY
from tests.support.receiver import Receiver
from tests.support.sync import sync_all

Headers = dict[str, str]


@pytest.fixture
def admin_key(hub: Container) -> Headers:
    from interlock.domain.keys import Scope
    from tests.conftest import make_key
    return make_key(hub, Scope.ADMIN, name="ops")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _card_connector(client: TestClient, headers: Headers, name: str, url: str,
                    **credentials: str) -> dict[str, Any]:
    response = client.post("/api/v1/connectors", headers=headers, json={
        "name": name, "kind": "webhook_card", "settings": {"url": url},
        "credentials": credentials})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _declare(client: TestClient, headers: Headers, title: str) -> dict[str, Any]:
    response = client.post("/api/v1/incidents", headers=headers, json={"title": title})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


# -- kinds publish their schemas ---------------------------------------------------


def test_connector_kinds_publish_the_schema_of_their_settings_and_credentials(
        hub_client: TestClient, admin_key: Headers) -> None:
    response = hub_client.get("/api/v1/connector-kinds", headers=admin_key)
    assert response.status_code == 200
    kinds = {item["kind"]: item for item in response.json()["data"]}
    assert {"alertmanager", "jira", "slack", "webhook_card"} <= set(kinds)

    jira = kinds["jira"]
    assert jira["title"] == "Jira Cloud" and jira["link_kind"] == "jira_issue"
    assert jira["capabilities"] == ["push", "pull", "hooks", "reconcile"]
    settings = jira["settings_schema"]
    assert settings["properties"]["base_url"]["format"] == "uri"
    assert settings["properties"]["project_key"]["title"] == "Project key"
    assert set(settings["required"]) == {"base_url", "project_key"}
    token = jira["credentials_schema"]["properties"]["api_token"]
    assert token["writeOnly"] is True and token["format"] == "password"
    assert jira["mapping"]["owners"]["assignee"] == "tool"

    assert kinds["alertmanager"]["capabilities"] == ["push", "pull", "reconcile"]
    assert kinds["alertmanager"]["credentials_schema"].get("properties", {}) == {}
    # The example from another package: push only, as it says.
    assert kinds["webhook_card"]["capabilities"] == ["push"]


def test_source_kinds_publish_their_options(hub_client: TestClient,
                                            admin_key: Headers) -> None:
    response = hub_client.get("/api/v1/source-kinds", headers=admin_key)
    assert response.status_code == 200
    kinds = {item["kind"]: item for item in response.json()["data"]}
    assert set(kinds) >= {"alertmanager", "grafana", "datadog", "pagerduty", "generic"}
    assert kinds["generic"]["takes_mapping"] is True
    assert "mapping" in kinds["generic"]["options_schema"]["required"]
    assert kinds["grafana"]["signing"] == "hmac"
    assert kinds["pagerduty"]["title"] == "PagerDuty Events v2"


# -- a connector from another package --------------------------------------------------


def test_a_connector_kind_from_another_package_reaches_its_tool(
        hub: Container, hub_client: TestClient, admin_key: Headers,
        receiver: Receiver) -> None:
    connector = _card_connector(hub_client, admin_key, "ops room", receiver.url,
                                token="card-SECRET-token")
    assert connector["credentials_set"] == ["token"]
    assert "card-SECRET-token" not in json.dumps(connector)
    incident = _declare(hub_client, admin_key, "Checkout is down")
    sync_all(hub)

    [card] = receiver.received
    body = json.loads(card.body)
    assert body["title"] == f"Incident {incident['reference']}: Checkout is down"
    assert body["event"] == "incident.created"
    assert card.headers["Authorization"] == "Bearer card-SECRET-token"
    activity = hub_client.get(f"/api/v1/connectors/{connector['id']}/activity",
                              headers=admin_key).json()["data"]
    assert activity[0]["outcome"] == "succeeded"
    assert activity[0]["summary"] == f"posted a card for {incident['reference']}"


def test_every_url_setting_of_every_kind_is_checked_against_the_target_rules(
        hub_client: TestClient, admin_key: Headers) -> None:
    # The example kind never said its URL needs the guard: its type (ToolUrl) does.
    refused = hub_client.post("/api/v1/connectors", headers=admin_key, json={
        "name": "metadata", "kind": "webhook_card",
        "settings": {"url": "http://169.254.169.254/latest/meta-data"}})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "settings.url"
    not_a_url = hub_client.post("/api/v1/connectors", headers=admin_key, json={
        "name": "x", "kind": "webhook_card", "settings": {"url": "file:///etc/passwd"}})
    assert not_a_url.status_code == 422
    assert not_a_url.json()["errors"][0]["field"] == "settings.url"
    assert "http(s) URL" in not_a_url.json()["errors"][0]["message"]


# -- mends ----------------------------------------------------------------------------


def test_the_list_says_which_credentials_are_set_as_the_connector_does(
        hub_client: TestClient, admin_key: Headers, receiver: Receiver) -> None:
    made = _card_connector(hub_client, admin_key, "ops room", receiver.url, token="t0ken")
    listed = hub_client.get("/api/v1/connectors", headers=admin_key).json()["data"]
    one = hub_client.get(f"/api/v1/connectors/{made['id']}", headers=admin_key).json()
    assert one["credentials_set"] == ["token"]
    assert [item["credentials_set"] for item in listed] == [["token"]]


def _with_key(hub: Container, secret_key: str) -> Container:
    settings = config.load({"database_url": hub.settings.database_url,
                            "allowed_targets": "127.0.0.0/8", "secret_key": secret_key},
                           environ={})
    return build(settings, clock=hub.clock)


def test_after_the_secret_key_changes_credentials_can_be_given_again(
        hub: Container, hub_client: TestClient, admin_key: Headers) -> None:
    made = hub_client.post("/api/v1/connectors", headers=admin_key, json={
        "name": "ops", "kind": "slack",
        "settings": {"channel": "C123", "api_base": "http://127.0.0.1:9/api"},
        "credentials": {"bot_token": "xoxb-old", "signing_secret": "old"}}).json()
    moved = _with_key(hub, TEST_SECRET_KEY + "-rotated")
    try:
        with TestClient(create_app(moved), raise_server_exceptions=False) as client:
            path = f"/api/v1/connectors/{made['id']}"
            renamed = client.patch(path, headers=admin_key, json={"name": "ops room"})
            assert renamed.status_code == 422
            assert "give all of its credentials" in renamed.json()["detail"]
            partly = client.patch(path, headers=admin_key,
                                  json={"credentials": {"bot_token": "xoxb-new"}})
            assert partly.status_code == 422
            assert partly.json()["errors"][0]["field"] == "credentials.signing_secret"
            again = client.patch(path, headers=admin_key, json={
                "name": "ops room",
                "credentials": {"bot_token": "xoxb-new", "signing_secret": "new"}})
            assert again.status_code == 200, again.text
            assert again.json()["credentials_set"] == ["bot_token", "signing_secret"]
            assert client.get(path, headers=admin_key).json()["name"] == "ops room"
    finally:
        moved.close()


def test_a_connector_whose_credentials_do_not_decrypt_fails_alone(
        hub: Container, hub_client: TestClient, admin_key: Headers) -> None:
    with Receiver() as good_tool, Receiver() as broken_tool:
        good = _card_connector(hub_client, admin_key, "good", good_tool.url)
        broken = _card_connector(hub_client, admin_key, "broken", broken_tool.url)
        other_key = FernetBox(lambda: "another deployment's key")
        with hub.store.transaction(write=True) as tx:  # type: ignore[attr-defined]
            tx.connection.execute(sa.update(connectors).where(
                connectors.c.id == broken["id"]).values(credentials=other_key.seal("{}")))
        _declare(hub_client, admin_key, "Checkout is down")
        sync_all(hub)  # before: the claim raised, for every connector

        assert len(good_tool.received) == 1
        assert broken_tool.received == []
    shown = hub_client.get(f"/api/v1/connectors/{broken['id']}", headers=admin_key)
    activity = hub_client.get(f"/api/v1/connectors/{broken['id']}/activity",
                              headers=admin_key).json()["data"]
    assert activity[0]["outcome"] == "failed"
    assert "cannot be decrypted" in activity[0]["error"]
    assert shown.status_code == 422  # and it says what to do
    assert "save the connector's credentials again" in shown.json()["detail"]
    listed = hub_client.get("/api/v1/connectors", headers=admin_key).json()["data"]
    failing = {item["id"]: item["last_error"] for item in listed}
    assert "cannot be decrypted" in (failing[broken["id"]] or "")
    assert failing[good["id"]] is None


def _every_page(client: TestClient, path: str, pattern: str) -> set[str]:
    """The ids linked from a console list and all the pages its links lead to."""
    seen: set[str] = set()
    url: str | None = path
    for _ in range(10):
        assert url is not None
        html = client.get(url).text
        seen |= set(re.findall(pattern, html))
        more = re.search(r'href="(' + re.escape(path) + r'\?cursor=[^"]+)"', html)
        url = more.group(1).replace("&amp;", "&") if more else None
        if url is None:
            return seen
    raise AssertionError("the list pages never end")


def test_the_console_lists_reach_every_source_and_connector(
        hub: Container, hub_client: TestClient) -> None:
    from interlock.domain.keys import Scope
    from interlock.services.connectors import ConnectorSpec
    from interlock.services.sources import SourceSpec
    from tests.integration.test_console import _key, _sign_in

    _sign_in(hub_client, _key(hub, Scope.ADMIN))
    made_sources = {hub.sources.create(SourceSpec(name=f"s{i}", kind="alertmanager"))[0].id
                    for i in range(201)}
    made_connectors = {hub.connectors.create(ConnectorSpec(
        name=f"c{i}", kind="webhook_card", settings={"url": "http://127.0.0.1:9/card"},
        credentials={})).id for i in range(201)}
    assert _every_page(hub_client, "/sources", r'href="/sources/(src_[^"/?]+)"') == (
        made_sources)
    assert _every_page(hub_client, "/connectors",
                       r'href="/connectors/(con_[^"/?]+)"') == made_connectors


def test_a_source_of_a_kind_no_longer_installed_still_shows(
        hub: Container, hub_client: TestClient) -> None:
    from interlock.domain.keys import Scope
    from interlock.services.sources import SourceSpec
    from tests.integration.test_console import _key, _sign_in

    _sign_in(hub_client, _key(hub, Scope.ADMIN))
    source, _ = hub.sources.create(SourceSpec(name="zabbix", kind="generic",
                                              options={"mapping": {"title": "name"}}))
    with hub.store.transaction(write=True) as tx:  # type: ignore[attr-defined]
        tx.connection.execute(sa.update(sources).where(sources.c.id == source.id)
                              .values(kind="zabbix"))  # its plugin was uninstalled
    listing = hub_client.get("/sources")
    assert listing.status_code == 200 and "zabbix" in listing.text
    page = hub_client.get(f"/sources/{source.id}")
    assert page.status_code == 200 and "zabbix" in page.text


def test_a_source_kind_from_another_package_opens_incidents_with_its_own_options(
        hub: Container, hub_client: TestClient, admin_key: Headers) -> None:
    from tests.support.ingest import basic, create_source, process_all

    refused = hub_client.post("/api/v1/sources", headers=admin_key, json={
        "name": "uptime", "kind": "uptime_check", "options": {"down_word": ""}})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "options.down_word"
    source = create_source(hub_client, admin_key, name="uptime", kind="uptime_check",
                           options={"down_word": "FAILING"})
    assert source["options"] == {"down_word": "FAILING"}
    kinds = hub_client.get("/api/v1/source-kinds", headers=admin_key).json()["data"]
    [uptime] = [item for item in kinds if item["kind"] == "uptime_check"]
    assert uptime["options_schema"]["properties"]["down_word"]["default"] == "down"

    sent = hub_client.post(source["path"], json={"check": "api", "state": "failing"},
                           headers=basic(source["token"]))
    assert sent.status_code == 202, sent.text
    process_all(hub)
    [incident] = hub_client.get("/api/v1/incidents", headers=admin_key).json()["data"]
    assert incident["title"] == "api is failing"
