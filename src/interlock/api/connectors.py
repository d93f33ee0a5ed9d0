"""``/api/v1/connectors``, incident links, and connectors' inbound ``/hooks/{id}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from interlock.api import problems
from interlock.api.auth import Caller, authenticated, container, requires
from interlock.api.connector_schemas import (
    ActivityOut,
    ConnectorCreate,
    ConnectorKindOut,
    ConnectorOut,
    ConnectorPatch,
    LinkOut,
)
from interlock.api.query import STRICT
from interlock.api.routing import OneHopRoute
from interlock.api.schemas import PageOut
from interlock.domain.connectors import Activity, Connector, Link
from interlock.domain.keys import Scope
from interlock.domain.pagination import DEFAULT_LIMIT, MAX_LIMIT
from interlock.domain.timestamps import rfc3339
from interlock.services.connectors import ConnectorSpec
from interlock.services.container import Container
from interlock.threads import run_sync

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1", tags=["connectors"],
                   responses=problems.documented(400, 401, 403, 404, 413, 415, 422),
                   dependencies=STRICT)
hooks = APIRouter(route_class=OneHopRoute, tags=["connectors"],
                  responses=problems.documented(400, 401, 404, 413))
Manager = Annotated[Caller, requires(Scope.CONNECTORS_MANAGE)]
Reader = Annotated[Caller, requires(Scope.INCIDENTS_READ)]
App = Annotated[Container, Depends(container)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200)]


@router.get("/connector-kinds", response_model=PageOut[ConnectorKindOut],
            summary="Installed connector kinds: the JSON Schema of their settings and "
                    "credentials, what they can do, their default mapping")
def connector_kinds(_caller: Annotated[Caller, Depends(authenticated)], app: App
                    ) -> dict[str, Any]:
    data = []
    for kind in app.connectors.kinds:
        plugin = app.connectors.plugin(kind)
        data.append({
            "kind": kind, "title": plugin.title, "description": plugin.description,
            "link_kind": plugin.link_kind,
            "capabilities": list(app.connectors.capabilities(kind)),
            "settings_schema": plugin.settings.model_json_schema(),
            "credentials_schema": plugin.credentials.model_json_schema(),
            "settings": plugin.default_settings(),
            "credentials": list(plugin.credential_names()),
            "mapping": plugin.default_mapping.to_json()})
    return {"data": data, "next_cursor": None}


@router.post("/connectors", status_code=201, response_model=ConnectorOut,
             summary="Connect a tool; credentials are stored encrypted and never returned")
def create_connector(body: ConnectorCreate, _caller: Manager, app: App) -> JSONResponse:
    connector = app.connectors.create(ConnectorSpec(**body.model_dump()))
    return JSONResponse(connector_view(app, connector), status_code=201)


@router.get("/connectors", response_model=PageOut[ConnectorOut])
def list_connectors(_caller: Manager, app: App, limit: Limit = DEFAULT_LIMIT,
                    cursor: Cursor = None) -> dict[str, Any]:
    page = app.connectors.list(cursor=cursor, limit=limit)
    return {"data": [connector_view(app, item, queue=False) for item in page.items],
            "next_cursor": page.next_cursor}


@router.get("/connectors/{connector_id}", response_model=ConnectorOut)
def get_connector(connector_id: str, _caller: Manager, app: App) -> dict[str, Any]:
    return connector_view(app, app.connectors.get(connector_id))


@router.patch("/connectors/{connector_id}", response_model=ConnectorOut,
              summary="Change a connector; credentials given replace those stored")
def update_connector(connector_id: str, body: ConnectorPatch, _caller: Manager, app: App
                     ) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return connector_view(app, app.connectors.update(connector_id, changes))


@router.delete("/connectors/{connector_id}", status_code=204, response_class=Response)
def delete_connector(connector_id: str, _caller: Manager, app: App) -> Response:
    app.connectors.delete(connector_id)
    return Response(status_code=204)


@router.get("/connectors/{connector_id}/activity", response_model=PageOut[ActivityOut],
            summary="Every call the connector made and every webhook it received, newest "
                    "first")
def list_activity(connector_id: str, _caller: Manager, app: App, limit: Limit = DEFAULT_LIMIT,
                  cursor: Cursor = None,
                  incident_id: Annotated[str | None, Query(max_length=40)] = None
                  ) -> dict[str, Any]:
    page = app.connectors.activity(connector_id, cursor=cursor, limit=limit,
                                   incident_id=incident_id)
    return {"data": [activity_view(item) for item in page.items],
            "next_cursor": page.next_cursor}


@router.get("/incidents/{incident_id}/links", response_model=PageOut[LinkOut],
            summary="The incident's objects in connected tools (Jira issue, Slack message, "
                    "silence)")
def incident_links(incident_id: str, caller: Reader, app: App) -> dict[str, Any]:
    incident = app.incidents.get(caller.viewer, incident_id)
    return {"data": [link_view(link) for link in app.connectors.links_for_incident(
        incident.id)], "next_cursor": None}


@hooks.post("/hooks/{connector_id}", summary="A connected tool's webhook (verified by the "
            "tool's own signature)")
async def receive_hook(connector_id: str, request: Request, app: App) -> Response:
    body = await request.body()
    answer = await run_sync(app.hooks.receive, connector_id[:40],
                            dict(request.headers), body)
    if answer.body is None:
        return Response(status_code=answer.status)
    return JSONResponse(answer.body, status_code=answer.status)


def connector_view(app: Container, connector: Connector, *, queue: bool = True
                   ) -> dict[str, Any]:
    return {
        "id": connector.id,
        "name": connector.name,
        "kind": connector.kind,
        "settings": dict(connector.settings),
        "credentials_set": sorted(connector.credentials),
        "mapping": connector.mapping.to_json(),
        "filter": connector.filter,
        "enabled": connector.enabled,
        "hook_url": app.settings.base_url + connector.hook_path(),
        "state": dict(connector.state),
        "last_success_at": rfc3339(connector.last_success_at),
        "last_error": connector.last_error,
        "last_error_at": rfc3339(connector.last_error_at),
        "failing_since": rfc3339(connector.failing_since),
        "needs_attention": connector.state.get("needs_attention") or None,
        "queue": app.connectors.queue(connector.id) if queue else None,
        "created_at": rfc3339(connector.created_at),
        "updated_at": rfc3339(connector.updated_at),
    }


def activity_view(item: Activity) -> dict[str, Any]:
    return {
        "id": item.id,
        "at": rfc3339(item.at),
        "direction": item.direction.value,
        "action": item.action,
        "outcome": item.outcome.value,
        "summary": item.summary,
        "incident_id": item.incident_id,
        "job_id": item.job_id,
        "attempt": item.attempt,
        "calls": [call.to_dict() for call in item.calls],
        "error": item.error,
        "next_attempt_at": rfc3339(item.next_attempt_at),
    }


def link_view(link: Link) -> dict[str, Any]:
    return link.to_dict()
