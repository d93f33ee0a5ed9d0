"""The web console in a real browser, as an on-call engineer uses it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Console, screenshot, sign_in
from tests.support.fake_jira import FakeJira
from tests.support.ingest import am_alert, am_payload
from tests.support.receiver import Receiver, ok, status

pytestmark = pytest.mark.browser


def _source(console: Console, name: str) -> dict[str, Any]:
    response = console.api.post("/sources", json={"name": name, "kind": "alertmanager"})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _fire(source: dict[str, Any], name: str, service: str) -> None:
    response = httpx.post(source["ingest_url"], json=am_payload(am_alert(name, service=service)),
                          auth=("alertmanager", source["token"]), timeout=10)
    assert response.status_code == 202, response.text


def test_an_alert_appears_live_and_is_acknowledged_from_its_page(
        console: Console, open_browser: Any) -> None:
    page = open_browser().new_page()
    page.goto(console.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    screenshot(page, "sign-in", full_page=False)
    sign_in(page, console, console.admin_key)
    expect(page.get_by_role("heading", name="Incidents")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    source = _source(console, "prometheus")
    _fire(source, "PaymentsLatencyHigh", "payments")

    row = page.get_by_role("row").filter(has_text="PaymentsLatencyHigh on payments")
    expect(row).to_be_visible()
    assert page.evaluate("window.notReloaded") is True, "the page reloaded instead of updating"
    expect(row.get_by_text("triggered")).to_be_visible()
    _fire(source, "SearchErrors", "search")
    console.declare("Status page shows stale data", severity="low", service="status")
    expect(page.get_by_role("row").filter(has_text="Status page shows stale data")).to_be_visible()
    screenshot(page, "incidents")

    row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name=re.compile("PaymentsLatencyHigh"))).to_be_visible()
    expect(page.get_by_text("Incident declared by an alert: PaymentsLatencyHigh")).to_be_visible()
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status").filter(has_text="acknowledged.")).to_be_visible()
    expect(page.locator("#incident-head").get_by_text("acknowledged", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.get_by_text("Status changed from triggered to acknowledged")).to_be_visible()

    page.get_by_label("Add to the timeline").fill("Rolled back deploy 2291.")
    page.get_by_role("button", name="Comment").click()
    expect(page.locator("blockquote.comment")).to_have_text("Rolled back deploy 2291.")
    screenshot(page, "incident")

    phone = open_browser(PHONE).new_page()
    sign_in(phone, console, console.admin_key, "/incidents")
    expect(phone.get_by_text("PaymentsLatencyHigh on payments")).to_be_visible()
    no_sideways_scroll = phone.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth")
    assert no_sideways_scroll, "the incident list is wider than a phone"
    screenshot(phone, "incidents-phone")


def test_a_broken_endpoint_is_resent_from_the_attempt_log(
        console: Console, open_browser: Any) -> None:
    page = open_browser().new_page()
    sign_in(page, console, console.admin_key, "/endpoints")
    with Receiver(status(500, b"database is down")) as receiver:
        page.get_by_role("link", name="New endpoint").first.click()
        page.get_by_label("URL").fill(receiver.url)
        page.get_by_role("checkbox", name=re.compile(r"^incident\.created")).check()
        page.get_by_label("Payload template").fill(
            '{% if data.incident.title is defined %}'
            '{"text": {{ ("[" ~ data.incident.reference ~ "] " ~ data.incident.title)'
            ' | tojson }}}{% else %}{"text": "A private incident changed"}{% endif %}')
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("#preview-body")).to_contain_text('"text": "[INC-7] Checkout down"')
        screenshot(page, "endpoint-form")
        page.get_by_role("button", name="Create endpoint").click()
        expect(page.get_by_text("shown only on this page")).to_be_visible()
        expect(page.locator("#endpoint-secret")).to_have_text(re.compile(r"^whsec_"))
        page.get_by_role("link", name="Go to the endpoint").click()
        expect(page.get_by_text("No attempts yet.")).to_be_visible()

        console.declare("Checkout returns 502", severity="high", service="checkout")
        failed = page.locator("tr.attempt.failed")
        expect(failed.first).to_be_visible()
        expect(failed.first).to_contain_text("500")

        receiver.behaviour = ok
        failed.first.get_by_role("button", name=re.compile("Resend")).click()
        expect(page.get_by_role("status").filter(has_text="queued again")).to_be_visible()
        delivered = page.locator("tr.attempt.ok")
        expect(delivered.first).to_contain_text("200")
        expect(delivered.first).to_contain_text("manual")
        assert len(receiver.received) >= 2
        screenshot(page, "endpoint")

        page.get_by_role("link", name="Endpoints").first.click()
        expect(page.get_by_role("cell", name=receiver.url)).to_be_visible()
        screenshot(page, "endpoints")


def test_sources_show_their_ingest_url_and_parse_errors(
        console: Console, open_browser: Any) -> None:
    page = open_browser().new_page()
    sign_in(page, console, console.admin_key, "/sources")
    page.get_by_label("Name").fill("grafana-eu")
    page.get_by_label("Sent by").select_option("grafana")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Create source").click()
    expect(page.get_by_text("shown only on this page")).to_be_visible()
    url = page.locator("#ingest-url").inner_text()
    token = page.locator("#source-token").inner_text()
    assert url.startswith(console.url + "/ingest/src_")
    page.get_by_role("button", name="Copy the token").click()
    expect(page.get_by_role("button", name="Copy the token")).to_have_text("Copied")

    rejected = httpx.post(url, content=b'{"alerts": "not a list"}', timeout=10,
                          headers={"Authorization": f"Bearer {token}",
                                   "Content-Type": "application/json"})
    assert rejected.status_code == 202
    page.get_by_role("link", name="Go to the source").click()
    page.wait_for_timeout(500)
    page.reload()
    expect(page.get_by_text("parse error")).to_be_visible()
    screenshot(page, "source")
    page.get_by_role("link", name="Sources").first.click()
    expect(page.get_by_role("heading", name="grafana-eu")).to_be_visible()
    screenshot(page, "sources")


def test_a_read_only_key_sees_no_private_incidents_and_no_buttons(
        console: Console, open_browser: Any) -> None:
    public = console.declare("Login page slow", severity="medium", service="auth")
    private = console.declare("Suspected credential leak", severity="critical",
                              visibility="private")
    reader = console.create_key("status-page", "incidents:read")
    page = open_browser().new_page()
    sign_in(page, console, reader, "/incidents")

    expect(page.get_by_text("Login page slow")).to_be_visible()
    expect(page.get_by_text("Suspected credential leak")).to_have_count(0)
    nav = page.get_by_role("navigation", name="Sections")
    expect(nav.get_by_role("link", name="Incidents")).to_be_visible()
    expect(nav.get_by_role("link", name="Endpoints")).to_have_count(0)
    expect(nav.get_by_role("link", name="Sources")).to_have_count(0)

    page.goto(f"{console.url}/incidents/{public['reference']}")
    expect(page.get_by_role("heading", name=re.compile("Login page slow"))).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
    expect(page.get_by_label("Add to the timeline")).to_have_count(0)

    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    pressed = page.request.post(
        f"{console.url}/incidents/{public['reference']}/acknowledge",
        form={"csrf_token": token or ""}, max_redirects=0)
    assert pressed.status == 403
    assert "incidents:write" in pressed.text()

    hidden = page.goto(f"{console.url}/incidents/{private['reference']}")
    assert hidden is not None and hidden.status == 404
    endpoints = page.goto(f"{console.url}/endpoints")
    assert endpoints is not None and endpoints.status == 403
    still = console.api.get(f"/incidents/{public['reference']}").json()
    assert still["status"] == "triggered"


def _connector(console: Console, **body: Any) -> dict[str, Any]:
    response = console.api.post("/connectors", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_connectors_show_their_health_and_the_incident_its_links(
        console: Console, open_browser: Any) -> None:
    with FakeJira() as jira:
        _connector(console, name="jira-ops", kind="jira",
                   settings={"base_url": jira.url, "project_key": "OPS"},
                   credentials={"email": jira.email, "api_token": jira.api_token,
                                "webhook_secret": jira.webhook_secret})
        _connector(console, name="alertmanager-prod", kind="alertmanager",
                   settings={"url": "http://127.0.0.1:9"})
        # One made with the console's form, for a Jira that is not there: it fails.
        page = open_browser().new_page()
        sign_in(page, console, console.admin_key, "/connectors")
        page.get_by_role("link", name="New connector").click()
        page.get_by_role("link", name="Jira Cloud").click()
        page.get_by_label("Name").fill("jira-staging")
        page.locator("#field-settings-base_url").fill("http://127.0.0.1:9")
        page.locator("#field-settings-project_key").fill("STAGE")
        page.locator("#field-credentials-email").fill("bot@example.com")
        page.locator("#field-credentials-api_token").fill("staging-token")
        page.locator("#field-credentials-webhook_secret").fill("staging-secret")
        screenshot(page, "connector-form")
        page.get_by_role("button", name="Create connector").click()
        expect(page.get_by_role("heading", name="jira-staging")).to_be_visible()
        incident = console.declare("Checkout returns 502", severity="high",
                                   service="checkout")
        acknowledged = console.api.post(f"/incidents/{incident['id']}/acknowledge")
        assert acknowledged.status_code == 200, acknowledged.text
        page.goto(f"{console.url}/incidents/{incident['reference']}")
        links = page.locator("#incident-links")
        for _ in range(40):
            if "OPS-" in links.inner_text():
                break
            page.wait_for_timeout(250)
            page.reload()
        expect(links.get_by_role("link", name=re.compile(r"^OPS-\d+$"))).to_be_visible()
        expect(links).to_contain_text("via jira-ops")

        page.get_by_role("navigation", name="Sections").get_by_role(
            "link", name="Connectors").click()
        expect(page.get_by_role("heading", name="jira-ops")).to_be_visible()
        for _ in range(40):
            if "failing" in page.locator("li.connector").filter(
                    has_text="jira-staging").inner_text():
                break
            page.wait_for_timeout(250)
            page.reload()
        expect(page.locator("li.connector").filter(has_text="jira-staging")
               ).to_contain_text("failing")
        # Nothing of a hand-declared incident is in Alertmanager: skipped, not failing.
        expect(page.locator("li.connector").filter(has_text="alertmanager-prod")
               ).not_to_contain_text("failing")
        assert jira.api_token not in page.content()
        screenshot(page, "connectors")
