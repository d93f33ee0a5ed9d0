"""Forms drawn from each kind's schema, in a real browser: a connector of every built-in
kind made by filling in its form, a refused form with the problem beside its field,
and a source with options made from its form."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Console, screenshot, sign_in

pytestmark = pytest.mark.browser

#: What a person types into each built-in kind's form, by the label they read.
KINDS: dict[str, dict[str, str]] = {
    "alertmanager": {"Alertmanager URL": "http://127.0.0.1:9093",
                     "Silence length": "90"},
    "jira": {"Jira site": "http://127.0.0.1:9/jira", "Project key": "OPS",
             "Account email": "bot@example.com", "API token": "tok-SECRET-jira",
             "Webhook secret": "whs-SECRET-jira"},
    # Slack's own API host does not resolve in the test sandbox: a loopback proxy.
    "slack": {"Channel ID": "C0123456789", "Web API URL": "http://127.0.0.1:9/api",
              "Bot token": "xoxb-SECRET-slack", "Signing secret": "sig-SECRET-slack"},
    "pagerduty": {"Service id": "PWIXJZS", "From email": "bot@example.com",
                  "REST API URL": "http://127.0.0.1:9/pagerduty",
                  "API key": "pd-SECRET-key", "Webhook signing secret": "pd-SECRET-whs"},
    "servicenow": {"Instance URL": "http://127.0.0.1:9/servicenow", "Username": "interlock",
                   "Password or client secret": "sn-SECRET-pw",
                   "Hook secret": "sn-SECRET-hook"},
    "statuspage": {"API URL": "http://127.0.0.1:9/statuspage", "Page id": "kctbh9vrtdwd",
                   "API key": "sp-SECRET-key"},
    "http": {"Base URL": "http://127.0.0.1:9/tickets",
             "Requests": '{"incident.created": {"method": "POST", "url": '
                         '"{{ base_url }}/tickets", "body": {"title": '
                         '"{{ incident.title }}"}, "external_id": "id"}}',
             "Bearer token": "http-SECRET-token"},
}


def _within(typed: Any, shown: Any) -> bool:
    """Whether what was typed is all in what is shown back (which adds defaults)."""
    if isinstance(typed, dict):
        return isinstance(shown, dict) and all(
            key in shown and _within(value, shown[key]) for key, value in typed.items())
    return bool(typed == shown)


def _open_form(page: Any, console: Console, kind: str) -> None:
    page.goto(console.url + "/connectors/new")
    page.locator(f'a[href="/connectors/new?kind={kind}"]').click()
    expect(page.get_by_role("button", name="Create connector")).to_be_visible()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_built_in_connector_kind_is_created_from_its_form(
        console: Console, open_browser: Any, kind: str) -> None:
    page = open_browser().new_page()
    sign_in(page, console, console.admin_key, "/connectors")
    _open_form(page, console, kind)
    page.get_by_label("Name", exact=False).first.fill(f"{kind}-from-form")
    for label, value in KINDS[kind].items():
        page.get_by_label(label, exact=False).fill(value)
    screenshot(page, f"connector-form-{kind}")
    page.get_by_role("button", name="Create connector").click()

    expect(page.get_by_role("heading", name=f"{kind}-from-form")).to_be_visible()
    secrets = [value for value in KINDS[kind].values() if "SECRET" in value]
    content = page.content()
    assert all(secret not in content for secret in secrets)
    if secrets:
        expect(page.get_by_text("set, stored encrypted")).to_be_visible()
    page.get_by_role("link", name="Edit").click()
    for label, value in KINDS[kind].items():
        field = page.get_by_label(label, exact=False)
        if "SECRET" in value:  # shown as set, never filled in
            expect(field).to_have_value("")
            expect(field).to_have_attribute("type", "password")
        elif value.startswith("{"):  # JSON comes back laid out, with the defaults
            assert _within(json.loads(value), json.loads(field.input_value()))
        else:
            expect(field).to_have_value(value)
    assert page.locator(".badge.ok", has_text="set").count() == len(secrets)
    assert all(secret not in page.content() for secret in secrets)


def test_a_refused_connector_form_shows_the_problem_beside_the_field(
        console: Console, open_browser: Any) -> None:
    page = open_browser().new_page()
    sign_in(page, console, console.admin_key, "/connectors")
    _open_form(page, console, "jira")
    page.get_by_label("Name", exact=False).first.fill("jira-typo")
    for label, value in KINDS["jira"].items():
        page.get_by_label(label, exact=False).fill(value)
    site = page.get_by_label("Jira site", exact=False)
    site.fill("ftp://jira.example.com")  # a URL to the browser, not to Jira's form
    page.get_by_role("button", name="Create connector").click()

    expect(site).to_have_attribute("aria-invalid", "true")
    problem = page.locator("#problem-field-settings-base_url")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("http")
    expect(site).to_have_value("ftp://jira.example.com")  # what was typed stays
    expect(page.get_by_label("Project key", exact=False)).to_have_value("OPS")
    assert "tok-SECRET-jira" not in page.content()
    screenshot(page, "connector-form-refused")


def test_a_source_with_options_is_created_and_edited_from_its_form(
        console: Console, open_browser: Any) -> None:
    page = open_browser().new_page()
    sign_in(page, console, console.admin_key, "/sources")
    page.get_by_label("Name").fill("ci-webhooks")
    page.get_by_label("Sent by").select_option("generic")
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_label("Name", exact=False).first).to_have_value("ci-webhooks")
    page.get_by_label("Mapping", exact=False).fill(
        '{"title": "check.name", "status": "state", "labels": "tags"}')
    page.get_by_label("Fingerprint fields", exact=False).fill("host\ncheck")
    page.get_by_label("Grouping", exact=False).fill("{labels.team}")
    page.get_by_label("The tool signs its requests").check()
    screenshot(page, "source-form")
    page.get_by_role("button", name="Create source").click()

    expect(page.get_by_text("shown only on this page")).to_be_visible()
    expect(page.locator("#source-signing-secret")).to_contain_text("whsec_")
    page.get_by_role("link", name="Go to the source").click()
    settings = page.locator("section", has=page.get_by_role("heading", name="Settings"))
    expect(settings).to_contain_text("check.name")
    expect(settings).to_contain_text("{labels.team}")

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Service label", exact=False).fill("team")
    page.get_by_label("Resolve incidents when their alerts resolve").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Source saved.")).to_be_visible()
    expect(settings).to_contain_text("team")
    expect(settings).to_contain_text("no, people do")
    created = console.api.get("/sources").json()["data"]
    [source] = [item for item in created if item["name"] == "ci-webhooks"]
    assert source["options"]["fingerprint_fields"] == ["host", "check"]
    assert source["signed"] and source["grouping"] == "{labels.team}"


def test_the_drawn_forms_fit_a_phone(console: Console, open_browser: Any) -> None:
    page = open_browser(PHONE).new_page()
    sign_in(page, console, console.admin_key, "/connectors")
    for path in ("/connectors/new?kind=jira", "/connectors/new?kind=slack",
                 "/sources/new?kind=generic"):
        page.goto(console.url + path)
        expect(page.get_by_role("button", name=re.compile("^Create"))).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
