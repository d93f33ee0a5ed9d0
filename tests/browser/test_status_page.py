"""The public status page in a real browser, as a customer sees it (no key, no
session), at desktop and phone width; and the composer a responder publishes from.

With INTERLOCK_SCREENSHOTS=docs the desktop picture is docs/status-page.png (README)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LAPTOP, PHONE, Console, screenshot, sign_in

pytestmark = pytest.mark.browser
#: What responders wrote inside Interlock; none of it may reach the public page.
INTERNAL = ["db-2 disk full on shard 7", "customer_id=4411", "Rolled back deploy 1f3c9",
            "HighErrorRate", "INC-"]


def _post(console: Console, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = console.api.post(path, json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _prepare(console: Console) -> dict[str, str]:
    page = _post(console, "/status-pages", {"name": "Acme Cloud", "slug": "acme",
                                            "link_url": "https://example.com/"})
    components = {}
    for name, services, group in [("API", ["api"], "Platform"),
                                  ("Dashboard", ["web"], "Platform"),
                                  ("Payments", ["payments"], None),
                                  ("Email delivery", ["mail"], None)]:
        components[name] = _post(console, f"/status-pages/{page['id']}/components",
                                 {"name": name, "services": services, "group": group})["id"]
    old = console.declare("HighErrorRate on mail", severity="high", service="mail")
    _post(console, f"/incidents/{old['id']}/public-updates", {
        "status": "identified", "title": "Delayed emails",
        "body": "Emails are delayed by up to 20 minutes.",
        "components": {components["Email delivery"]: "degraded_performance"}})
    _post(console, f"/incidents/{old['id']}/public-updates", {
        "status": "resolved", "body": "Emails are delivered on time again."})
    incident = console.declare("db-2 disk full on shard 7", severity="critical",
                               service="api", summary="customer_id=4411 reported it")
    _post(console, f"/incidents/{incident['id']}/comments",
          {"body": "Rolled back deploy 1f3c9"})
    _post(console, f"/incidents/{incident['id']}/public-updates", {
        "status": "investigating", "title": "Elevated API error rates",
        "body": "Some API requests fail with errors. We are investigating.",
        "components": {components["API"]: "major_outage",
                       components["Payments"]: "degraded_performance"},
        "estimated_resolution_at": "2030-01-01T12:00:00Z"})
    return {"incident": incident["reference"], **components}


def _no_internal_text(page: Any) -> None:
    text = page.locator("body").inner_text()
    html = page.content()
    for word in INTERNAL:
        assert word not in text and word not in html, word


def test_a_visitor_sees_components_incidents_and_uptime_and_nothing_internal(
        console: Console, open_browser: Any) -> None:
    _prepare(console)
    visitor = open_browser(viewport=LAPTOP)
    page = visitor.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)
    page.goto(console.url + "/status/acme")
    expect(page.get_by_text("Acme Cloud").first).to_be_visible()
    expect(page.locator("#overall")).to_have_text("Major System Outage")
    incident = page.get_by_role("article").filter(has_text="Elevated API error rates")
    expect(incident).to_be_visible()
    expect(incident.get_by_text("Some API requests fail with errors.")).to_be_visible()
    expect(incident.get_by_text("Estimated resolution")).to_be_visible()
    expect(page.get_by_text("Delayed emails")).to_be_visible()  # past incidents
    api = page.locator(".component").filter(has_text="API")
    expect(api.get_by_text("Major outage")).to_be_visible()
    expect(api.locator(".bar")).to_have_count(90)
    expect(page.locator(".component").filter(has_text="Dashboard").get_by_text(
        "Operational")).to_be_visible()
    _no_internal_text(page)
    assert problems == [], problems  # no CSP violation, no failed load
    screenshot(page, "status-page")

    phone = open_browser(viewport=PHONE).new_page()
    phone.goto(console.url + "/status/acme")
    expect(phone.locator("#overall")).to_have_text("Major System Outage")
    expect(phone.get_by_text("Elevated API error rates")).to_be_visible()
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at phone width"
    _no_internal_text(phone)
    screenshot(phone, "status-page-phone")


def test_a_responder_previews_then_publishes_from_the_incident_page(
        console: Console, open_browser: Any) -> None:
    status_page = _post(console, "/status-pages", {"name": "Search", "slug": "search"})
    _post(console, f"/status-pages/{status_page['id']}/components",
          {"name": "Search box", "services": ["search"]})
    incident = console.declare("Search index lagging", severity="high", service="search")
    page = open_browser().new_page()
    sign_in(page, console, console.admin_key, f"/incidents/{incident['reference']}")
    composer = page.locator("#public-composer")
    expect(composer).to_be_visible()
    search_box = composer.get_by_label(re.compile("Search · Search box"))
    expect(search_box).to_have_value("partial_outage")  # suggested: high severity, search
    composer.get_by_label("Public title").fill("Slow search")
    composer.get_by_label("What customers read").fill("Search results are delayed.")
    composer.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("Preview, not published yet.")).to_be_visible()
    expect(page.get_by_role("article").filter(has_text="Slow search")).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status").filter(has_text="Public update published.")
           ).to_be_visible()
    expect(page.locator("#public-updates").get_by_text("Search results are delayed.")
           ).to_be_visible()
    expect(page.locator("#incident-timeline").get_by_text(
        "Public update published: investigating")).to_be_visible()

    visitor = open_browser().new_page()
    visitor.goto(console.url + "/status/search")
    expect(visitor.get_by_text("Search results are delayed.")).to_be_visible()
    expect(visitor.locator(".component").filter(has_text="Search box").get_by_text(
        "Partial outage")).to_be_visible()
