"""Connector pages: each connector's health, queue and hook URL, and one connector's
settings (never its credentials, only which are set), mapping, activity log and links.

Connectors are created and edited here with a form per kind (``connector_form``), or
with the API (``POST /api/v1/connectors``). An operator sees whether a tool is in step
and why not, and can switch a connector off and on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from interlock.domain.connectors import Connector, Link
from interlock.domain.errors import InvalidInput, NotFound
from interlock.domain.keys import Scope
from interlock.services.connectors import ConnectorSpec
from interlock.services.container import Container
from interlock.services.incidents import Viewer
from interlock.threads import run_sync
from interlock.web.connector_form import ConnectorForm, KindSchemas
from interlock.web.pages import ConsoleRoute, checked_form, container, redirect, render, visitor
from interlock.web.session import Visitor

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[Visitor, Depends(visitor)]
ACTIVITY_PAGE = 50
#: Connectors per page of the list (a "More connectors" link leads on).
LIST_PAGE = 100
LINKS_SHOWN = 50
LINK_LABELS = {
    "jira_issue": "Jira issue",
    "slack_message": "Slack message",
    "alertmanager_silence": "Alertmanager silence",
}
OUTCOME_BADGES = {"succeeded": "ok", "failed": "failed", "skipped": "skipped"}


def labeller(app: Container) -> Callable[[str], str]:
    """A kind's title from its plugin; a kind no longer installed shows as its name."""
    def kind_label(kind: str) -> str:
        try:
            return app.connectors.plugin(kind).title
        except InvalidInput:
            return kind
    return kind_label


def link_label(kind: str) -> str:
    """What a link stands for, as a person would say it ("Jira issue")."""
    return LINK_LABELS.get(kind, kind.replace("_", " ").capitalize())


@dataclass(frozen=True)
class LinkRow:
    link: Link
    label: str
    #: None when the viewer may not see the incident (private): no reference is shown.
    reference: str | None


@dataclass(frozen=True)
class IncidentLink:
    """A row of an incident's "Linked in tools" panel."""

    link: Link
    label: str
    connector: str


def hook_url(app: Container, connector: Connector) -> str:
    return app.settings.base_url + connector.hook_path()


@router.get("/connectors")
def connector_list(request: Request, person: Signed,
                   cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    person.require(Scope.CONNECTORS_MANAGE)
    app = container(request)
    page = app.connectors.list(cursor=cursor, limit=LIST_PAGE)
    return render(request, "connectors.html", {
        "connectors": [(connector, app.connectors.queue(connector.id),
                        hook_url(app, connector)) for connector in page.items],
        "cursor": cursor, "next_cursor": page.next_cursor,
        "kind_label": labeller(app), "kinds": app.connectors.kinds,
        "base_url": app.settings.base_url,
    }, visitor=person)


@router.get("/connectors/new")
def new_connector(request: Request, person: Signed,
                  kind: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    person.require(Scope.CONNECTORS_MANAGE)
    app = container(request)
    if kind is None or kind not in app.connectors.kinds:
        return render(request, "connector_kinds.html", {
            "kinds": [(name, app.connectors.plugin(name).title, _description(app, name))
                      for name in app.connectors.kinds]}, visitor=person)
    return _form_page(request, person, ConnectorForm.blank(kind, _schemas(app, kind)), None)


@router.post("/connectors/new")
async def create_connector(request: Request, person: Signed,
                           kind: Annotated[str, Query(max_length=40)]) -> Response:
    posted = await checked_form(request, person)
    person.require(Scope.CONNECTORS_MANAGE)
    app = container(request)
    form = ConnectorForm.posted(kind, posted, _schemas(app, kind))  # 422 for an unknown kind
    try:
        fields = form.change(editing=False)
        connector = await run_sync(app.connectors.create,
                                   ConnectorSpec(kind=kind, **fields))
    except InvalidInput as error:
        return _form_page(request, person, form, None, error=error, status_code=422)
    return redirect(request, f"/connectors/{connector.id}", person,
                    f"{connector.name} created. Point the tool at its webhook URL below.")


@router.get("/connectors/{connector_id}/edit")
def edit_connector(request: Request, connector_id: str, person: Signed) -> Response:
    person.require(Scope.CONNECTORS_MANAGE)
    app = container(request)
    connector = app.connectors.get(connector_id)
    return _form_page(request, person,
                      ConnectorForm.of(connector, _schemas(app, connector.kind)), connector)


@router.post("/connectors/{connector_id}/edit")
async def save_connector(request: Request, connector_id: str, person: Signed) -> Response:
    posted = await checked_form(request, person)
    person.require(Scope.CONNECTORS_MANAGE)
    app = container(request)
    connector = await run_sync(app.connectors.get, connector_id)
    form = ConnectorForm.posted(connector.kind, posted, _schemas(app, connector.kind))
    try:
        await run_sync(app.connectors.update, connector_id,
                       form.change(editing=True))
    except InvalidInput as error:
        return _form_page(request, person, form, connector, error=error, status_code=422)
    return redirect(request, f"/connectors/{connector_id}", person, "Connector saved.")


def _form_page(request: Request, person: Visitor, form: ConnectorForm,
               connector: Connector | None, *, error: InvalidInput | None = None,
               status_code: int = 200) -> Response:
    app = container(request)
    return render(request, "connector_form.html", {
        "form": form, "connector": connector,
        "kind_label": app.connectors.plugin(form.kind).title,
        "description": _description(app, form.kind),
        "drawn": form.drawn(error, sorted(connector.credentials) if connector else ()),
        "error": error.detail if error else None,
    }, visitor=person, status_code=status_code)


def _schemas(app: Container, kind: str) -> KindSchemas:
    """The JSON Schema of the kind's settings and credentials models, as published at
    GET /api/v1/connector-kinds (InvalidInput for a kind not installed)."""
    plugin = app.connectors.plugin(kind)
    return KindSchemas(settings=plugin.settings.model_json_schema(),
                       credentials=plugin.credentials.model_json_schema())


def _description(app: Container, kind: str) -> str:
    return app.connectors.plugin(kind).description


# After /connectors/new, which it would otherwise take for an id.
@router.get("/connectors/{connector_id}")
def connector_page(request: Request, connector_id: str, person: Signed,
                   cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    person.require(Scope.CONNECTORS_MANAGE)
    app = container(request)
    connector = app.connectors.get(connector_id)
    page = app.connectors.activity(connector_id, cursor=cursor, limit=ACTIVITY_PAGE)
    links = app.connectors.links(connector_id, limit=LINKS_SHOWN)
    references = _references(app, person.viewer, [
        *(link.incident_id for link in links),
        *(item.incident_id for item in page.items if item.incident_id)])
    return render(request, "connector.html", {
        "connector": connector, "kind_label": labeller(app)(connector.kind),
        "credentials_set": sorted(connector.credentials),
        "owners": sorted(connector.mapping.owners.items()),
        "mapping": connector.mapping.to_json(),
        "queue": app.connectors.queue(connector_id), "hook_url": hook_url(app, connector),
        "activity": page.items, "next_cursor": page.next_cursor, "cursor": cursor,
        "outcome_badges": OUTCOME_BADGES,
        "links": [LinkRow(link, link_label(link.kind), references[link.incident_id])
                  for link in links],
        "references": references,
    }, visitor=person)


@router.post("/connectors/{connector_id}/{action}")
async def connector_action(request: Request, connector_id: str, action: str,
                           person: Signed) -> Response:
    await checked_form(request, person)
    person.require(Scope.CONNECTORS_MANAGE)
    if action not in ("enable", "disable"):
        raise NotFound(f"no action {action}")
    app = container(request)
    connector = await run_sync(app.connectors.update, connector_id,
                               {"enabled": action == "enable"})
    notice = (f"{connector.name} enabled: incident changes are synced again."
              if connector.enabled else
              f"{connector.name} disabled: nothing is sent to or taken from it.")
    return redirect(request, f"/connectors/{connector_id}", person, notice)


def _references(app: Container, viewer: Viewer, incident_ids: list[str]
                ) -> dict[str, str | None]:
    """Incident id → reference, or None for an incident the viewer may not see (a
    private one): the page then names no incident rather than leak its reference."""
    references: dict[str, str | None] = {}
    for incident_id in incident_ids:
        if incident_id in references:
            continue
        try:
            references[incident_id] = app.incidents.get(viewer, incident_id).reference
        except NotFound:
            references[incident_id] = None
    return references
