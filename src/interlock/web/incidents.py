"""Incident pages: the filterable list with its 24-hour chart, one incident with its
alerts and timeline, the status buttons and comments, and the live stream both watch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from interlock.domain.alerts import differing_labels
from interlock.domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from interlock.domain.incidents import Incident, Severity, Status
from interlock.domain.keys import Scope
from interlock.domain.pagination import MAX_LIMIT
from interlock.domain.timeline import TimelineEntry
from interlock.ports.store import IncidentFilter
from interlock.services.console import Change
from interlock.services.container import Container
from interlock.services.incidents import IncidentService, Viewer
from interlock.threads import run_sync
from interlock.web import chart, live, status_console
from interlock.web.connectors import IncidentLink, link_label
from interlock.web.live import ChangeFeed
from interlock.web.pages import (
    ConsoleRoute,
    checked_form,
    console,
    container,
    redirect,
    render,
    visitor,
)
from interlock.web.session import Visitor

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[Visitor, Depends(visitor)]
PAGE_SIZE = 50
#: Timeline entries shown on one incident page; a longer history links to the API.
TIMELINE_MAX = 1000
STATUS_CHOICES = {
    "open": frozenset({Status.TRIGGERED, Status.ACKNOWLEDGED}),
    **{status.value: frozenset({status}) for status in Status},
}
SEVERITIES = [severity.value for severity in Severity]
#: The status buttons: what each is called once done.
ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved", "reopen": "reopened"}


@router.get("/incidents")
def incident_list(
    request: Request, person: Signed,
    status: Annotated[str, Query(max_length=20)] = "",
    severity: Annotated[str, Query(max_length=20)] = "",
    service: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    person.require(Scope.INCIDENTS_READ)
    app = container(request)
    where = IncidentFilter(
        statuses=STATUS_CHOICES.get(status, frozenset()),
        severities=frozenset({Severity(severity)}) if severity in SEVERITIES else frozenset(),
        service=service.strip() or None,
    )
    page = app.incidents.list(person.viewer, where, cursor=cursor, limit=PAGE_SIZE)
    activity = console(request).activity(include_private=person.viewer.can_see_private)
    filtered = bool(status or severity or service.strip())
    return render(request, "incidents.html", {
        "incidents": page.items, "next_cursor": page.next_cursor, "cursor": cursor,
        "status": status, "severity": severity, "service": service, "filtered": filtered,
        "statuses": list(STATUS_CHOICES), "severities": SEVERITIES,
        "charts": chart.series(activity),
    }, visitor=person)


@router.get("/incidents/live")
async def incidents_live(
    request: Request, person: Signed,
    incident: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Events ``incident`` (``{"reference"}``) for every change the visitor may see,
    or to one incident only."""
    person.require(Scope.INCIDENTS_READ)
    feed: ChangeFeed = request.app.state.console_feed
    can_see_private = person.viewer.can_see_private
    keys = container(request).keys
    secret = person.session.key or ""

    def wanted(change: Change) -> bool:
        if change.incident_id is None or (change.private and not can_see_private):
            return False
        return incident is None or change.incident_id == incident

    async def still_allowed() -> bool:
        try:
            await run_sync(keys.authenticate, secret)
        except Unauthenticated:
            return False
        return True

    async def body() -> AsyncIterator[str]:
        async with feed.watch() as queue:

            async def next_messages() -> list[str] | None:
                changes = await live.next_from(queue)
                if not changes:
                    return None
                return [live.message("incident", {"reference": change.reference,
                                                  "type": change.event_type})
                        for change in changes if wanted(change)]

            async for chunk in live.stream(next_messages, still_allowed, feed):
                yield chunk

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"cache-control": "no-store",
                                      "x-accel-buffering": "no"})


@router.get("/incidents/{reference}")
def incident_page(request: Request, reference: str, person: Signed) -> Response:
    person.require(Scope.INCIDENTS_READ)
    app = container(request)
    incident = app.incidents.get(person.viewer, reference)
    alerts = app.incidents.alerts(person.viewer, incident.id)
    return render(request, "incident.html", {
        "incident": incident,
        "alerts": alerts,
        # The labels that tell alerts apart (instance, pod…): their titles are often alike.
        "alert_labels": differing_labels([alert.labels for alert in alerts]),
        "timeline": _timeline(app.incidents, person.viewer, incident),
        "can_write": person.can(Scope.INCIDENTS_WRITE),
        "links": _links(app, incident),
        **status_console.composer_context(app, person, incident),
    }, visitor=person)


@router.post("/incidents/{reference}/comment")
async def comment(request: Request, reference: str, person: Signed) -> Response:
    form = await checked_form(request, person)
    person.require(Scope.INCIDENTS_WRITE)
    app = container(request)
    body = str(form.get("body", "")).strip()
    target = f"/incidents/{reference}"
    if not body:
        return redirect(request, target, person, "Write something before commenting.",
                        "error")
    incident, _ = await run_sync(app.incidents.comment, person.viewer, reference,
                                 body)
    return redirect(request, f"/incidents/{incident.reference}", person,
                    f"Comment added to {incident.reference}.")


@router.post("/incidents/{reference}/{action}")
async def change_status(request: Request, reference: str, action: str, person: Signed
                        ) -> Response:
    await checked_form(request, person)
    person.require(Scope.INCIDENTS_WRITE)
    if action not in ACTIONS:
        raise InvalidInput(f"no action {action}")
    service = container(request).incidents
    command = {"acknowledge": service.acknowledge, "resolve": service.resolve,
               "reopen": service.reopen}[action]
    try:
        incident = await run_sync(command, person.viewer, reference)
    except Conflict as error:
        return redirect(request, f"/incidents/{reference}", person, error.detail, "error")
    return redirect(request, f"/incidents/{incident.reference}", person,
                    f"{incident.reference} {ACTIONS[action]}.")


def _links(app: Container, incident: Incident) -> list[IncidentLink]:
    """The incident's objects in connected tools (the caller has checked the viewer may
    see the incident; seeing its links needs no connectors:manage)."""
    links = app.connectors.links_for_incident(incident.id)
    if not links:
        return []
    names: dict[str, str] = {}
    for connector_id in {link.connector_id for link in links}:
        try:
            names[connector_id] = app.connectors.get(connector_id).name
        except NotFound:  # deleted a moment ago (its links go with it)
            names[connector_id] = "a removed connector"
    return [IncidentLink(link, link_label(link.kind), names[link.connector_id])
            for link in links]


def _timeline(incidents: IncidentService, viewer: Viewer, incident: Incident
              ) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    cursor: str | None = None
    while len(entries) < TIMELINE_MAX:
        page = incidents.timeline(viewer, incident.id, cursor=cursor, limit=MAX_LIMIT)
        entries.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return entries
