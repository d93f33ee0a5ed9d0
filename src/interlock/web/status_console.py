"""Console pages for status pages: creating and editing pages and their components,
and on an incident, the composer for public updates with a preview drawn by the public
page's own template, so what it shows is exactly what visitors will see."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from interlock.domain.errors import Conflict, InvalidInput
from interlock.domain.incidents import Incident
from interlock.domain.keys import Scope
from interlock.domain.status_pages import (
    ComponentStatus,
    PageVisibility,
    PublicIncident,
    UpdateStatus,
)
from interlock.services.container import Container
from interlock.services.status_pages import ComponentSpec, Draft, Outcome, PageSpec
from interlock.services.status_public import Snapshot
from interlock.threads import run_sync
from interlock.web.pages import (
    SECURITY_HEADERS,
    STATIC_VERSION,
    TEMPLATES,
    ConsoleRoute,
    checked_form,
    container,
    redirect,
    render,
    visitor,
)
from interlock.web.session import CSRF_FIELD, Visitor
from interlock.web.status_public import page_context

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[Visitor, Depends(visitor)]
STATUSES = [status.value for status in ComponentStatus]
UPDATE_STATUSES = [status.value for status in UpdateStatus]


@router.get("/status-pages")
def page_list(request: Request, person: Signed) -> Response:
    person.require(Scope.STATUS_PUBLISH)
    pages = container(request).status_pages.list_pages(cursor=None, limit=200).items
    return render(request, "status_pages.html", {"pages": pages, "error": None,
                                                 "form": {}}, visitor=person)


@router.post("/status-pages")
async def create_page(request: Request, person: Signed) -> Response:
    form = await checked_form(request, person)
    person.require(Scope.STATUS_PUBLISH)
    app = container(request)
    try:
        page = await run_sync(app.status_pages.create_page, PageSpec(
            name=_text(form, "name"), slug=_text(form, "slug"),
            title=_text(form, "title") or None,
            visibility=_choice(form, "visibility", PageVisibility)))
    except (InvalidInput, Conflict) as error:
        pages = app.status_pages.list_pages(cursor=None, limit=200).items
        return render(request, "status_pages.html", {
            "pages": pages, "error": error.detail, "form": dict(form)},
            visitor=person, status_code=error.status)
    return redirect(request, f"/status-pages/{page.id}", person,
                    f"Status page {page.name} created; add its components.")


@router.get("/status-pages/{page_id}")
def page_edit(request: Request, page_id: str, person: Signed) -> Response:
    person.require(Scope.STATUS_PUBLISH)
    service = container(request).status_pages
    return render(request, "status_page_edit.html", {
        "page": service.get_page(page_id), "components": service.components(page_id),
        "statuses": STATUSES, "visibilities": [item.value for item in PageVisibility],
    }, visitor=person)


@router.post("/status-pages/{page_id}")
async def update_page(request: Request, page_id: str, person: Signed) -> Response:
    form = await checked_form(request, person)
    person.require(Scope.STATUS_PUBLISH)
    changes = {"name": _text(form, "name"), "slug": _text(form, "slug"),
               "title": _text(form, "title") or _text(form, "name"),
               "logo_url": _text(form, "logo_url") or None,
               "link_url": _text(form, "link_url") or None,
               "visibility": _choice(form, "visibility", PageVisibility)}
    return await _then_back(request, person, page_id, "Page saved.",
                            container(request).status_pages.update_page, page_id, changes)


@router.post("/status-pages/{page_id}/delete")
async def delete_page(request: Request, page_id: str, person: Signed) -> Response:
    await checked_form(request, person)
    person.require(Scope.STATUS_PUBLISH)
    await run_sync(container(request).status_pages.delete_page, page_id)
    return redirect(request, "/status-pages", person, "Status page deleted.")


@router.post("/status-pages/{page_id}/components")
async def add_component(request: Request, page_id: str, person: Signed) -> Response:
    form = await checked_form(request, person)
    person.require(Scope.STATUS_PUBLISH)
    spec = ComponentSpec(name=_text(form, "name"), services=_services(form),
                         group=_text(form, "group") or None)
    return await _then_back(request, person, page_id, f"Component {spec.name} added.",
                            container(request).status_pages.add_component, page_id, spec)


@router.post("/status-pages/{page_id}/components/{component_id}")
async def update_component(request: Request, page_id: str, component_id: str,
                           person: Signed) -> Response:
    form = await checked_form(request, person)
    person.require(Scope.STATUS_PUBLISH)
    changes = {"name": _text(form, "name"), "services": _services(form),
               "group": _text(form, "group") or None,
               "status": _choice(form, "status", ComponentStatus)}
    return await _then_back(request, person, page_id, "Component saved.",
                            container(request).status_pages.update_component, page_id,
                            component_id, changes)


@router.post("/status-pages/{page_id}/components/{component_id}/delete")
async def delete_component(request: Request, page_id: str, component_id: str,
                           person: Signed) -> Response:
    await checked_form(request, person)
    person.require(Scope.STATUS_PUBLISH)
    return await _then_back(request, person, page_id, "Component removed.",
                            container(request).status_pages.delete_component, page_id,
                            component_id)


async def _then_back(request: Request, person: Visitor, page_id: str, done: str,
                     action: Any, *arguments: Any) -> Response:
    """Run ``action``; back to the page's editor with what happened."""
    try:
        await run_sync(action, *arguments)
    except (InvalidInput, Conflict) as error:
        return redirect(request, f"/status-pages/{page_id}", person, error.detail, "error")
    return redirect(request, f"/status-pages/{page_id}", person, done)


# -- the composer on the incident page ----------------------------------------------------


def composer_context(app: Container, person: Visitor, incident: Incident) -> dict[str, Any]:
    """What the incident page needs to draw the composer and the published updates."""
    updates = app.status_pages.updates(person.viewer, incident.id)
    can_publish = person.can(Scope.STATUS_PUBLISH) and not incident.is_private
    pages = []
    suggested: dict[str, ComponentStatus] = {}
    if can_publish:
        listed = app.status_pages.list_pages(cursor=None, limit=200).items
        pages = [(page, app.status_pages.components(page.id)) for page in listed]
        suggested = app.status_pages.suggestion(person.viewer, incident.id)
    return {"public": {
        "updates": updates, "can_publish": can_publish, "pages": pages,
        "suggested": {key: value.value for key, value in suggested.items()},
        "statuses": STATUSES, "update_statuses": UPDATE_STATUSES,
        "page_names": {page.id: page.name for page, _ in pages},
        "draft": {"status": updates[0].status.value if updates else "investigating",
                  "title": updates[0].title if updates else incident.title},
    }}


@router.post("/incidents/{reference}/public-updates/compose")
async def compose(request: Request, reference: str, person: Signed) -> Response:
    """``action=preview`` draws the pages as they would be; ``action=publish``
    publishes and returns to the incident."""
    form = await checked_form(request, person)
    person.require(Scope.STATUS_PUBLISH)
    app = container(request)
    target = f"/incidents/{reference}"
    try:
        draft = _draft(form)
        if form.get("action") == "publish":
            await run_sync(app.status_pages.publish, person.viewer, reference, draft)
            return redirect(request, target, person, "Public update published.")
        outcome = await run_sync(app.status_pages.preview, person.viewer, reference,
                                 draft)
        previews = await run_sync(_previews, app, outcome)
    except (InvalidInput, Conflict) as error:
        return redirect(request, target, person, error.detail, "error")
    html = TEMPLATES.get_template("status_preview.html").render(
        previews=previews, fields=_fields(form), reference=reference,
        csrf=person.csrf, csrf_field=CSRF_FIELD, static_version=STATIC_VERSION)
    return HTMLResponse(html, headers=SECURITY_HEADERS)


def _previews(app: Container, outcome: Outcome) -> list[dict[str, Any]]:
    """Each page the update goes on, as it would look once published."""
    pages = []
    for view in outcome.views:
        page = app.status_pages.get_page(view.page_id)
        current = app.public_status.snapshot(page.slug)
        if current is not None:
            context = page_context(_as_published(current, outcome, view))
            context["mail"] = app.subscribers.sample_mail(page, outcome.update,
                                                          current.components)
            pages.append(context)
    return pages


def _as_published(snapshot: Snapshot, outcome: Outcome, view: PublicIncident) -> Snapshot:
    components = [dataclasses.replace(item, status=outcome.statuses.get(item.id, item.status))
                  for item in snapshot.components]
    earlier = next((item.updates for item in snapshot.recent + snapshot.open
                    if item.incident_id == view.incident_id), ())
    shown = dataclasses.replace(view, updates=(outcome.update, *earlier))
    others = [item for item in snapshot.recent if item.incident_id != view.incident_id]
    still_open = [item for item in snapshot.open if item.incident_id != view.incident_id]
    return dataclasses.replace(
        snapshot, components=components, recent=[shown, *others],
        open=[shown, *still_open] if shown.is_open else still_open)


def _draft(form: FormData) -> Draft:
    components = {key.removeprefix("component."): _choice(form, key, ComponentStatus)
                  for key, value in form.multi_items()
                  if key.startswith("component.") and value}
    eta = _text(form, "eta")
    try:
        estimated = datetime.fromisoformat(eta).replace(tzinfo=UTC) if eta else None
    except ValueError as error:
        raise InvalidInput("the estimated resolution is not a date and time") from error
    return Draft(status=_choice(form, "status", UpdateStatus), body=str(form.get("body", "")),
                 components=components, title=_text(form, "title") or None,
                 estimated_resolution_at=estimated)


def _fields(form: FormData) -> list[tuple[str, str]]:
    """The draft's fields, to carry from the preview to publishing."""
    return [(key, str(value)) for key, value in form.multi_items()
            if key not in (CSRF_FIELD, "action")]


def _text(form: FormData | Mapping[str, Any], name: str) -> str:
    return str(form.get(name, "") or "").strip()


def _services(form: FormData) -> list[str]:
    return [part.strip() for part in _text(form, "services").split(",") if part.strip()]


def _choice(form: FormData, name: str, kind: Any) -> Any:
    value = _text(form, name)
    allowed = [member.value for member in kind]
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}")
    return kind(value)

