"""Connector and source forms in the console, drawn from each kind's schema: what a
person sees (labels, help, secrets as set/not set), what saving stores (typed values),
and a refused form coming back with each problem beside its field and the rest of
what was typed kept."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from httpx import Response

from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.integration.test_console import _csrf, _key, _sign_in
from tests.support.ingest import am_alert, am_payload, basic, process_all

JIRA = {"name": "ops jira", "settings.base_url": "http://127.0.0.1:9/jira",
        "settings.project_key": "OPS", "credentials.email": "bot@example.com",
        "credentials.api_token": "tok-SECRET-123",
        "credentials.webhook_secret": "whs-SECRET"}


def _post(client: TestClient, path: str, **fields: str) -> Response:
    token = _csrf(client.get(path).text)
    return client.post(path, data={"csrf_token": token, **fields}, follow_redirects=False)


def _problem(page: str, field: str) -> str:
    """The message shown beside the input named ``field``."""
    found = re.search(r'id="problem-field-' + re.escape(field.replace(".", "-"))
                      + r'">([^<]*)</p>', page)
    assert found, f"no problem shown beside {field}"
    return html.unescape(found.group(1))


def _value(page: str, field: str) -> str:
    found = re.search(r'name="' + re.escape(field) + r'" value="([^"]*)"', page)
    assert found, f"no input {field}"
    return html.unescape(found.group(1))


def _inputs(page: str) -> set[str]:
    return set(re.findall(r'<(?:input|select|textarea)[^>]* name="([^"]+)"', page))


def test_every_installed_kind_gets_a_form_of_every_field_its_models_publish(
        hub: Container, hub_client: TestClient) -> None:
    """No kind needs code in the console: each field of its schema has an input,
    labelled with the field's title and explained by its description."""
    _sign_in(hub_client, _key(hub, Scope.ADMIN))
    assert hub.connectors.kinds and hub.sources.kinds
    for kind in hub.connectors.kinds:
        plugin = hub.connectors.plugin(kind)
        page = hub_client.get(f"/connectors/new?kind={kind}").text
        text = html.unescape(page)
        for part, model in (("settings", plugin.settings),
                            ("credentials", plugin.credentials)):
            for name, info in model.model_fields.items():
                inputs = _inputs(page)  # a nested model is a fieldset of inputs
                assert f"{part}.{name}" in inputs or any(
                    item.startswith(f"{part}.{name}.") for item in inputs), (kind, name)
                assert re.search(rf">\s*{re.escape(str(info.title))}", text), (kind, name)
                assert f">{info.description}<" in text, (kind, name)
    for kind, source_plugin in hub.sources.kinds.items():
        page = hub_client.get(f"/sources/new?kind={kind}").text
        options = {f"options.{name}" for name in source_plugin.options.model_fields}
        assert options <= _inputs(page), kind
        assert source_plugin.title in page


def test_a_refused_connector_form_shows_each_problem_beside_its_field(
        hub: Container, hub_client: TestClient) -> None:
    _sign_in(hub_client, _key(hub, Scope.CONNECTORS_MANAGE))
    form = hub_client.get("/connectors/new?kind=alertmanager").text
    assert 'name="settings.url"' in form and _value(form, "settings.duration_minutes") == "240"
    assert 'name="credentials.' not in form  # Alertmanager needs none

    refused = _post(hub_client, "/connectors/new?kind=alertmanager", **{
        "name": "am-prod", "settings.url": "http://127.0.0.1:9093",
        "settings.duration_minutes": "two hours", "filter": "{oops"})
    assert refused.status_code == 422
    page = refused.text
    assert _problem(page, "settings.duration_minutes").startswith("a number")
    assert 'id="problem-filter">not valid JSON' in page
    assert _value(page, "name") == "am-prod"  # what was typed stays
    assert _value(page, "settings.url") == "http://127.0.0.1:9093"
    assert _value(page, "settings.duration_minutes") == "two hours"
    assert hub.connectors.list(cursor=None, limit=10).items == []

    created = _post(hub_client, "/connectors/new?kind=alertmanager", **{
        "name": "am-prod", "settings.url": "http://127.0.0.1:9093",
        "settings.duration_minutes": "90", "filter": '{"severity": ["critical", "high"]}'})
    assert created.status_code == 303, created.text
    [connector] = hub.connectors.list(cursor=None, limit=10).items
    assert created.headers["location"] == f"/connectors/{connector.id}"
    assert connector.settings["duration_minutes"] == 90  # a number, not "90"
    assert dict(connector.filter) == {"severity": ["critical", "high"]}

    edit = hub_client.get(f"/connectors/{connector.id}/edit").text
    assert _value(edit, "settings.duration_minutes") == "90"
    saved = _post(hub_client, f"/connectors/{connector.id}/edit", **{
        "name": "am-staging", "settings.url": "http://127.0.0.1:9094",
        "settings.duration_minutes": "30"})
    assert saved.status_code == 303, saved.text
    changed = hub.connectors.get(connector.id)
    assert (changed.name, changed.settings["url"], changed.settings["duration_minutes"]) == (
        "am-staging", "http://127.0.0.1:9094", 30)


def test_the_services_refusal_lands_beside_the_field_it_names(
        hub: Container, hub_client: TestClient) -> None:
    _sign_in(hub_client, _key(hub, Scope.CONNECTORS_MANAGE))
    refused = _post(hub_client, "/connectors/new?kind=jira", **{
        **JIRA, "settings.base_url": "ftp://jira.example.com"})
    assert refused.status_code == 422
    assert _problem(refused.text, "settings.base_url")
    assert _value(refused.text, "settings.project_key") == "OPS"
    assert _value(refused.text, "credentials.email") == "bot@example.com"
    # Secrets typed into a refused form are not sent back in the page.
    assert "tok-SECRET-123" not in refused.text and "whs-SECRET" not in refused.text

    private = _post(hub_client, "/connectors/new?kind=slack", **{
        "name": "chat", "settings.channel": "C123",
        "settings.api_base": "http://169.254.169.254/api",
        "credentials.bot_token": "xoxb-SECRET", "credentials.signing_secret": "sig-SECRET"})
    assert private.status_code == 422  # the target guard, on a URL setting
    assert _problem(private.text, "settings.api_base")
    assert "xoxb-SECRET" not in private.text


def test_credentials_are_password_inputs_shown_as_set_never_their_values(
        hub: Container, hub_client: TestClient) -> None:
    _sign_in(hub_client, _key(hub, Scope.CONNECTORS_MANAGE))
    form = hub_client.get("/connectors/new?kind=jira").text
    for name in ("api_token", "webhook_secret"):
        assert re.search(f'name="credentials.{name}" type="password"', form)
    assert '<span class="badge unset">not set</span>' in form

    created = _post(hub_client, "/connectors/new?kind=jira", **JIRA)
    assert created.status_code == 303, created.text
    [connector] = hub.connectors.list(cursor=None, limit=10).items
    shown = hub_client.get(created.headers["location"]).text
    assert "tok-SECRET-123" not in shown and "whs-SECRET" not in shown
    edit = hub_client.get(f"/connectors/{connector.id}/edit").text
    assert "tok-SECRET-123" not in edit and "whs-SECRET" not in edit
    assert "leave empty to keep" in edit
    assert edit.count('<span class="badge ok">set</span>') >= 2

    kept = _post(hub_client, f"/connectors/{connector.id}/edit", **{
        "name": "ops jira", "settings.base_url": "http://127.0.0.1:9/jira",
        "settings.project_key": "SRE", "credentials.email": "bot@example.com"})
    assert kept.status_code == 303, kept.text
    after = hub.connectors.get(connector.id)
    assert after.settings["project_key"] == "SRE"
    assert after.credentials["api_token"] == "tok-SECRET-123"
    assert after.credentials["webhook_secret"] == "whs-SECRET"

    replaced = _post(hub_client, f"/connectors/{connector.id}/edit", **{
        "name": "ops jira", "settings.base_url": "http://127.0.0.1:9/jira",
        "settings.project_key": "SRE", "credentials.email": "bot@example.com",
        "credentials.api_token": "tok-NEW"})
    assert replaced.status_code == 303, replaced.text
    assert hub.connectors.get(connector.id).credentials["api_token"] == "tok-NEW"


def test_a_form_for_a_kind_not_installed_is_refused(
        hub: Container, hub_client: TestClient) -> None:
    _sign_in(hub_client, _key(hub, Scope.CONNECTORS_MANAGE))
    kinds = hub_client.get("/connectors/new?kind=teams").text  # unknown: the kinds
    assert all(f"/connectors/new?kind={kind}" in kinds for kind in hub.connectors.kinds)
    refused = _post(hub_client, "/connectors/new?kind=alertmanager", name="x")
    assert refused.status_code == 422
    token = _csrf(hub_client.get("/connectors/new").text)
    unknown = hub_client.post("/connectors/new?kind=teams",
                              data={"csrf_token": token, "name": "x"})
    assert unknown.status_code == 422 and "teams" in unknown.text


def test_a_source_of_any_kind_is_created_from_its_options_form(
        container: Container, client: TestClient) -> None:
    _sign_in(client, _key(container, Scope.SOURCES_MANAGE))
    listing = client.get("/sources").text
    assert 'action="/sources/new"' in listing and '<option value="generic">' in listing
    form = client.get("/sources/new?kind=generic&name=webhooks").text
    assert _value(form, "name") == "webhooks"
    assert 'name="options.mapping"' in form and 'name="options.fingerprint_fields"' in form
    assert 'name="signed"' in form and 'name="grouping"' in form
    assert 'name="timestamp_header"' not in form  # generic signs without one
    grafana = client.get("/sources/new?kind=grafana").text  # HMAC, maybe timestamped
    assert 'name="signed"' in grafana and 'name="timestamp_header"' in grafana
    alertmanager = client.get("/sources/new?kind=alertmanager").text  # never signs
    assert 'name="signed"' not in alertmanager and 'name="options.mapping"' not in alertmanager

    fields = {"kind": "generic", "name": "webhooks", "grouping": "{service}",
              "auto_resolve": "on", "reopen_window_seconds": "600", "rate_limit": "5",
              "enabled": "on", "options.service_label": "team",
              "options.fingerprint_fields": "host\r\ncheck\r\n"}
    missing = _post(client, "/sources", **fields)
    assert missing.status_code == 422
    assert _problem(missing.text, "options.mapping") == "required"
    assert _value(missing.text, "grouping") == "{service}"

    bad = _post(client, "/sources", **{
        **fields, "options.mapping": '{"title": "check.[name"}', "reopen_window_seconds": "-5"})
    assert bad.status_code == 422
    assert _problem(bad.text, "reopen_window_seconds") == "at least 0"
    bad = _post(client, "/sources", **fields, **{"options.mapping": '{"title": "check.[name"}'})
    assert bad.status_code == 422  # the service's JMESPath check, shown on the mapping
    assert _problem(bad.text, "options.mapping").startswith("title: ")

    created = _post(client, "/sources", **fields, signed="on", **{
        "options.mapping": '{"title": "check.name", "status": "state"}'})
    assert created.status_code == 201, created.text
    assert "shown only on this page" in created.text
    assert 'id="source-signing-secret">whsec_' in created.text
    [source] = container.sources.list(cursor=None, limit=10).items
    assert (source.name, source.grouping, source.rate_limit) == ("webhooks", "{service}", 5)
    assert source.reopen_window.total_seconds() == 600 and source.signing_secret
    assert dict(source.options) == {
        "service_label": "team", "fingerprint_fields": ["host", "check"],
        "mapping": {"title": "check.name", "status": "state"}}


def test_a_sources_options_are_changed_on_its_page(
        container: Container, client: TestClient) -> None:
    _sign_in(client, _key(container, Scope.SOURCES_MANAGE))
    created = _post(client, "/sources", kind="alertmanager", name="prom", auto_resolve="on",
                    enabled="on", grouping="{service}/{name}", reopen_window_seconds="3600")
    assert created.status_code == 201, created.text
    [source] = container.sources.list(cursor=None, limit=10).items
    page = client.get(f"/sources/{source.id}").text
    assert f'href="/sources/{source.id}/edit"' in page
    edit = client.get(f"/sources/{source.id}/edit").text
    assert _value(edit, "options.service_label") == "service"
    assert 'name="auto_resolve" value="on" checked' in edit
    assert 'name="signed"' not in edit  # asked once, at creation

    saved = _post(client, f"/sources/{source.id}/edit", name="prom-eu",
                  grouping="{labels.cluster}", reopen_window_seconds="60",
                  enabled="on", **{"options.service_label": "app",
                                   "options.severity_label": "level"})
    assert saved.status_code == 303, saved.text
    changed = container.sources.get(source.id)
    assert (changed.name, changed.grouping, changed.auto_resolve) == (
        "prom-eu", "{labels.cluster}", False)  # unticked: off
    assert dict(changed.options) == {"service_label": "app", "severity_label": "level"}
    assert "<code>app</code>" in client.get(f"/sources/{source.id}").text

    refused = _post(client, f"/sources/{source.id}/edit", name="prom-eu",
                    grouping="no placeholder", reopen_window_seconds="60")
    assert refused.status_code == 422
    assert _problem(refused.text, "grouping") == "no placeholder"


def test_what_is_saved_in_the_console_applies_to_the_next_payload(
        container: Container, client: TestClient) -> None:
    """Ingest keeps recently read sources in memory: saving must replace them."""
    _sign_in(client, _key(container, Scope.ADMIN))
    created = _post(client, "/sources", kind="alertmanager", name="prom", auto_resolve="on",
                    enabled="on", grouping="{service}/{name}", reopen_window_seconds="3600")
    token = re.search(r'id="source-token">([^<]+)<', created.text)
    assert token, created.text
    [source] = container.sources.list(cursor=None, limit=10).items
    ingest, auth = f"/ingest/{source.id}", basic(html.unescape(token.group(1)))
    first = client.post(ingest, headers=auth, json=am_payload(am_alert("Before", app="pay")))
    assert first.status_code == 202, first.text
    process_all(container)

    saved = _post(client, f"/sources/{source.id}/edit", name="prom", enabled="on",
                  grouping="{service}/{name}", reopen_window_seconds="3600",
                  **{"options.service_label": "app"})
    assert saved.status_code == 303, saved.text
    second = client.post(ingest, headers=auth, json=am_payload(am_alert("After", app="pay")))
    assert second.status_code == 202, second.text
    process_all(container)
    alerts = container.sources.alerts(cursor=None, limit=10, include_private=True).items
    assert {alert.name: alert.service for alert in alerts} == {
        "Before": "checkout", "After": "pay"}

    disabled = _post(client, f"/sources/{source.id}/edit", name="prom",
                     grouping="{service}/{name}", reopen_window_seconds="3600")
    assert disabled.status_code == 303, disabled.text  # "enabled" unticked
    refused = client.post(ingest, headers=auth, json=am_payload(am_alert("Off")))
    assert refused.status_code >= 400
