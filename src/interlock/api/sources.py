"""``/api/v1/sources``, ``/api/v1/maintenance``, ``/api/v1/alerts`` and an incident's
alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from interlock.api import problems
from interlock.api.auth import Caller, authenticated, container, requires
from interlock.api.presenters import as_utc
from interlock.api.query import STRICT
from interlock.api.routing import OneHopRoute
from interlock.api.schemas import PageOut
from interlock.api.source_schemas import (
    AlertOut,
    MaintenanceCreate,
    MaintenanceOut,
    MaintenancePatch,
    PayloadOut,
    SourceCreate,
    SourceCreated,
    SourceKindOut,
    SourceOut,
    SourcePatch,
)
from interlock.domain.alerts import ReceivedPayload, alert_to_dict
from interlock.domain.keys import Scope
from interlock.domain.maintenance import MaintenanceWindow
from interlock.domain.pagination import DEFAULT_LIMIT, MAX_LIMIT
from interlock.domain.sources import Source
from interlock.domain.timestamps import rfc3339
from interlock.services.container import Container
from interlock.services.sources import Credentials, SourceSpec

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1", tags=["alerts"],
                   responses=problems.documented(400, 401, 403, 404, 413, 415, 422),
                   dependencies=STRICT)
Manager = Annotated[Caller, requires(Scope.SOURCES_MANAGE)]
Reader = Annotated[Caller, requires(Scope.INCIDENTS_READ)]
App = Annotated[Container, Depends(container)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200)]
BODY_PREVIEW = 2048


@router.get("/source-kinds", response_model=PageOut[SourceKindOut],
            summary="Installed source kinds, with the JSON Schema of their options")
def source_kinds(_caller: Annotated[Caller, Depends(authenticated)], app: App
                 ) -> dict[str, Any]:
    return {"data": [{"kind": kind, "title": plugin.title,
                      "description": plugin.description,
                      "options_schema": plugin.options.model_json_schema(),
                      "signing": plugin.signing.value, "takes_mapping": plugin.takes_mapping}
                     for kind, plugin in sorted(app.sources.kinds.items())],
            "next_cursor": None}


@router.post("/sources", status_code=201, response_model=SourceCreated,
             summary="Create a source; its token (and signing secret) are in this answer only")
def create_source(body: SourceCreate, request: Request, _caller: Manager, app: App
                  ) -> JSONResponse:
    source, credentials = app.sources.create(SourceSpec(
        name=body.name, kind=body.kind, options=body.options, grouping=body.grouping,
        auto_resolve=body.auto_resolve,
        reopen_window=timedelta(seconds=body.reopen_window_seconds),
        rate_limit=body.rate_limit, enabled=body.enabled, signed=body.signed,
        timestamp_header=body.timestamp_header))
    return JSONResponse(_created(source, credentials, app), status_code=201)


@router.get("/sources", response_model=PageOut[SourceOut])
def list_sources(_caller: Manager, app: App, limit: Limit = DEFAULT_LIMIT,
                 cursor: Cursor = None) -> dict[str, Any]:
    page = app.sources.list(cursor=cursor, limit=limit)
    return {"data": [source_view(item, app) for item in page.items],
            "next_cursor": page.next_cursor}


@router.get("/sources/{source_id}", response_model=SourceOut)
def get_source(source_id: str, _caller: Manager, app: App) -> dict[str, Any]:
    return source_view(app.sources.get(source_id), app)


@router.patch("/sources/{source_id}", response_model=SourceOut)
def update_source(source_id: str, body: SourcePatch, _caller: Manager, app: App
                  ) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "reopen_window_seconds" in changes:
        changes["reopen_window"] = timedelta(seconds=changes.pop("reopen_window_seconds"))
    if "options" in changes and changes["options"] is None:
        changes["options"] = {}
    source = app.sources.update(source_id, changes)
    app.intake.forget(source_id)
    return source_view(source, app)


@router.post("/sources/{source_id}/rotate-token", response_model=SourceCreated,
             summary="A new token; the old one stops working at once")
def rotate_token(source_id: str, _caller: Manager, app: App) -> dict[str, Any]:
    source, credentials = app.sources.rotate_token(source_id)
    app.intake.forget(source_id)
    return _created(source, credentials, app)


@router.delete("/sources/{source_id}", status_code=204, response_class=Response)
def delete_source(source_id: str, _caller: Manager, app: App) -> Response:
    app.sources.delete(source_id)
    app.intake.forget(source_id)
    return Response(status_code=204)


@router.get("/sources/{source_id}/payloads", response_model=PageOut[PayloadOut],
            summary="What the source sent, newest first, with parse errors")
def list_payloads(source_id: str, _caller: Manager, app: App, limit: Limit = DEFAULT_LIMIT,
                  cursor: Cursor = None) -> dict[str, Any]:
    page = app.sources.payloads(source_id, cursor=cursor, limit=limit)
    return {"data": [payload_view(item) for item in page.items],
            "next_cursor": page.next_cursor}


@router.get("/alerts", response_model=PageOut[AlertOut], summary="Alerts, newest first")
def list_alerts(caller: Reader, app: App, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
                source_id: Annotated[str | None, Query(max_length=40)] = None,
                suppressed: bool | None = None) -> dict[str, Any]:
    page = app.sources.alerts(cursor=cursor, limit=limit, source_id=source_id,
                              suppressed=suppressed,
                              include_private=caller.viewer.can_see_private)
    return {"data": [alert_to_dict(item) for item in page.items],
            "next_cursor": page.next_cursor}


@router.get("/incidents/{incident_id}/alerts", response_model=PageOut[AlertOut],
            tags=["incidents"], summary="The alerts correlated into an incident")
def incident_alerts(incident_id: str, caller: Reader, app: App) -> dict[str, Any]:
    alerts = app.incidents.alerts(caller.viewer, incident_id)
    return {"data": [alert_to_dict(item) for item in alerts], "next_cursor": None}


@router.post("/maintenance", status_code=201, response_model=MaintenanceOut,
             summary="Plan a maintenance window")
def create_window(body: MaintenanceCreate, _caller: Manager, app: App) -> JSONResponse:
    window = app.maintenance.create(
        body.name, as_utc(body.starts_at, "body.starts_at"),
        as_utc(body.ends_at, "body.ends_at"), body.mode, body.matchers,
        body.source_id)
    return JSONResponse(window_view(window, (0, 0)), status_code=201)


@router.get("/maintenance", response_model=PageOut[MaintenanceOut])
def list_windows(_caller: Manager, app: App) -> dict[str, Any]:
    return {"data": [window_view(window, counts) for window, counts in app.maintenance.list()],
            "next_cursor": None}


@router.get("/maintenance/{window_id}", response_model=MaintenanceOut)
def get_window(window_id: str, _caller: Manager, app: App) -> dict[str, Any]:
    window, counts = app.maintenance.get(window_id)
    return window_view(window, counts)


@router.patch("/maintenance/{window_id}", response_model=MaintenanceOut)
def update_window(window_id: str, body: MaintenancePatch, _caller: Manager, app: App
                  ) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    for name in ("starts_at", "ends_at"):
        if name in changes:
            changes[name] = as_utc(changes[name], f"body.{name}")
    app.maintenance.update(window_id, changes)
    window, counts = app.maintenance.get(window_id)
    return window_view(window, counts)


@router.delete("/maintenance/{window_id}", status_code=204, response_class=Response)
def delete_window(window_id: str, _caller: Manager, app: App) -> Response:
    app.maintenance.delete(window_id)
    return Response(status_code=204)


def source_view(source: Source, app: Container) -> dict[str, Any]:
    return {
        "id": source.id,
        "name": source.name,
        "kind": str(source.kind),
        "ingest_url": app.settings.base_url + source.ingest_path(),
        "options": dict(source.options),
        "grouping": source.grouping,
        "auto_resolve": source.auto_resolve,
        "reopen_window_seconds": source.reopen_window.total_seconds(),
        "rate_limit": source.rate_limit,
        "enabled": source.enabled,
        "signed": source.signing_secret is not None,
        "timestamp_header": source.timestamp_header,
        "created_at": rfc3339(source.created_at),
        "updated_at": rfc3339(source.updated_at),
    }


def payload_view(payload: ReceivedPayload) -> dict[str, Any]:
    preview = payload.body[:BODY_PREVIEW].decode("utf-8", errors="replace")
    return {
        "id": payload.id,
        "received_at": rfc3339(payload.received_at),
        "content_type": payload.content_type,
        "size": len(payload.body),
        "status": payload.status.value,
        "error": payload.error,
        "alerts": payload.alerts,
        "dropped": payload.dropped,
        "suppressed": payload.suppressed,
        "processed_at": rfc3339(payload.processed_at),
        "body_preview": preview,
    }


def window_view(window: MaintenanceWindow, counts: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": window.id,
        "name": window.name,
        "starts_at": rfc3339(window.starts_at),
        "ends_at": rfc3339(window.ends_at),
        "mode": window.mode.value,
        "matchers": dict(window.matchers),
        "source_id": window.source_id,
        "dropped": counts[0],
        "suppressed": counts[1],
        "created_at": rfc3339(window.created_at),
    }


def _created(source: Source, credentials: Credentials, app: Container) -> dict[str, Any]:
    return {**source_view(source, app), "token": credentials.token,
            "signing_secret": credentials.signing_secret}
