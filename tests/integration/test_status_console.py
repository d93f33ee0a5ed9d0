"""Status pages in the console: creating a page and a component, and publishing from the
incident page's composer after a preview that shows what the page will show."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from interlock.domain.events import SYSTEM
from interlock.domain.incidents import Severity, Visibility
from interlock.domain.keys import Scope
from interlock.domain.status_pages import PageVisibility
from interlock.services.container import Container
from interlock.services.incidents import Declaration, Viewer
from interlock.services.status_pages import PageSpec
from tests.integration.test_console import _csrf, _key, _sign_in


def _post(client: TestClient, path: str, page: str, **fields: str) -> str:
    """Post a form found on ``page`` (its CSRF token) and follow to the next page."""
    answer = client.post(path, data={"csrf_token": _csrf(client.get(page).text), **fields})
    assert answer.status_code == 200, answer.text
    return answer.text


def test_compose_preview_and_publish_from_the_console(client: TestClient,
                                                      container: Container) -> None:
    _sign_in(client, _key(container, Scope.ADMIN))
    edit = client.post("/status-pages", data={
        "csrf_token": _csrf(client.get("/status-pages").text), "name": "Acme",
        "slug": "acme", "visibility": "public"})
    assert edit.status_code == 200 and "add its components" in edit.text
    page_path = re.search(r'action="(/status-pages/spg_[A-Z0-9]+)/components"', edit.text)
    assert page_path, edit.text
    edited = _post(client, page_path.group(1) + "/components", page_path.group(1),
                   name="Checkout", services="checkout, payments")
    assert "Component Checkout added." in edited
    component_id = re.search(r'id="component-(cmp_[A-Z0-9]+)"', edited)
    assert component_id

    viewer = Viewer(origin=SYSTEM, can_see_private=True)
    incident = container.incidents.declare(viewer, Declaration(
        title="db-2 disk full", severity=Severity.CRITICAL, service="checkout"))
    page = client.get(f"/incidents/{incident.reference}")
    # The suggestion: a critical incident of the component's service is a major outage.
    assert (f'name="component.{component_id.group(1)}"' in page.text)
    assert '<option value="major_outage" selected>' in page.text

    draft = {"title": "Checkout errors", "status": "investigating",
             "body": "Payments fail for some customers.",
             f"component.{component_id.group(1)}": "major_outage", "eta": ""}
    compose = f"/incidents/{incident.reference}/public-updates/compose"
    preview = client.post(compose, data={"csrf_token": _csrf(page.text),
                                         "action": "preview", **draft})
    assert preview.status_code == 200, preview.text
    assert "Preview, not published yet." in preview.text
    assert "Payments fail for some customers." in preview.text
    assert "Major System Outage" in preview.text
    # And the mail its subscribers will get, as the mail queue would write it.
    mail = re.search(r'<section class="preview-mail".*?</section>', preview.text, re.S)
    assert mail, preview.text
    shown = html.unescape(mail.group(0))
    assert "Subject:</strong> [Acme] Checkout errors: Investigating" in shown
    assert "Payments fail for some customers." in shown and "Checkout: " in shown
    assert "/status/acme" in shown and "db-2" not in shown
    assert container.status_pages.updates(viewer, incident.id) == []
    assert "Payments fail" not in client.get("/status/acme").text

    published = client.post(compose, data={"csrf_token": _csrf(preview.text),
                                           "action": "publish", **draft})
    assert published.status_code == 200
    assert "Public update published." in published.text
    assert "Payments fail for some customers." in published.text  # the published list
    public = client.get("/status/acme").text
    assert "Payments fail for some customers." in public and "db-2" not in public


def test_private_incidents_have_no_composer(client: TestClient, container: Container) -> None:
    _sign_in(client, _key(container, Scope.ADMIN))
    viewer = Viewer(origin=SYSTEM, can_see_private=True)
    incident = container.incidents.declare(viewer, Declaration(
        title="Breach", severity=Severity.CRITICAL, visibility=Visibility.PRIVATE))
    page = client.get(f"/incidents/{incident.reference}").text
    assert "never published" in page and 'id="public-composer"' not in page


def test_internal_pages_are_for_signed_in_people_only(client: TestClient,
                                                      container: Container) -> None:
    container.status_pages.create_page(PageSpec(name="Ops", slug="ops",
                                                visibility=PageVisibility.INTERNAL))
    assert client.get("/status/ops").status_code == 404
    assert client.get("/status/ops/api/v2/summary.json").status_code == 404
    _sign_in(client, _key(container, Scope.INCIDENTS_READ))
    answer = client.get("/status/ops")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "private, no-store"
