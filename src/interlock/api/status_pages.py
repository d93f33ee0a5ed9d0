"""``/api/v1/status-pages`` (pages and their components) and an incident's
``/public-updates``. Managing pages and publishing need ``status:publish``; reading
what an incident published needs only ``incidents:read`` (it is public anyway)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic.json_schema import SkipJsonSchema

from interlock.api import presenters, problems
from interlock.api.auth import Caller, container, requires
from interlock.api.query import STRICT
from interlock.api.routing import OneHopRoute
from interlock.api.schemas import PageOut
from interlock.api.status_schemas import (
    ComponentCreate,
    ComponentOut,
    ComponentPatch,
    PageCreate,
    PagePatch,
    PublicUpdateCreate,
    PublicUpdateOut,
    StatusMaintenanceCreate,
    StatusMaintenanceOut,
    StatusMaintenancePatch,
    component_view,
    maintenance_view,
    page_view,
)
from interlock.api.status_schemas import PageOut as StatusPageOut
from interlock.domain.keys import Scope
from interlock.domain.pagination import DEFAULT_LIMIT, MAX_LIMIT
from interlock.domain.status_pages import update_to_dict
from interlock.ports.store import Transaction
from interlock.services.container import Container
from interlock.services.status_maintenance import MaintenanceSpec
from interlock.services.status_pages import ComponentSpec, Draft, PageSpec
from interlock.threads import run_sync

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1", tags=["status pages"],
                   responses=problems.documented(400, 401, 403, 404, 409, 413, 415, 422),
                   dependencies=STRICT)
Publisher = Annotated[Caller, requires(Scope.STATUS_PUBLISH)]
Reader = Annotated[Caller, requires(Scope.INCIDENTS_READ)]
App = Annotated[Container, Depends(container)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200)]
IdempotencyKey = Annotated[str | SkipJsonSchema[None], Header(max_length=255)]


@router.post("/status-pages", status_code=201, response_model=StatusPageOut,
             summary="Create a status page, served at /status/{slug}")
def create_page(body: PageCreate, _caller: Publisher, app: App) -> JSONResponse:
    page = app.status_pages.create_page(PageSpec(
        name=body.name, slug=body.slug, title=body.title, logo_url=body.logo_url,
        link_url=body.link_url, visibility=body.visibility))
    return JSONResponse(page_view(page, app.settings.base_url), status_code=201,
                        headers={"Location": f"/api/v1/status-pages/{page.id}"})


@router.get("/status-pages", response_model=PageOut[StatusPageOut])
def list_pages(_caller: Publisher, app: App, limit: Limit = DEFAULT_LIMIT,
               cursor: Cursor = None) -> dict[str, Any]:
    page = app.status_pages.list_pages(cursor=cursor, limit=limit)
    return {"data": [page_view(item, app.settings.base_url) for item in page.items],
            "next_cursor": page.next_cursor}


@router.get("/status-pages/{page_id}", response_model=StatusPageOut)
def get_page(page_id: str, _caller: Publisher, app: App) -> dict[str, Any]:
    return page_view(app.status_pages.get_page(page_id), app.settings.base_url)


@router.patch("/status-pages/{page_id}", response_model=StatusPageOut)
def update_page(page_id: str, body: PagePatch, _caller: Publisher, app: App
                ) -> dict[str, Any]:
    page = app.status_pages.update_page(page_id, body.model_dump(exclude_unset=True))
    return page_view(page, app.settings.base_url)


@router.delete("/status-pages/{page_id}", status_code=204, response_class=Response,
               summary="Delete a page with its components; incidents keep their updates")
def delete_page(page_id: str, _caller: Publisher, app: App) -> Response:
    app.status_pages.delete_page(page_id)
    return Response(status_code=204)


@router.post("/status-pages/{page_id}/components", status_code=201,
             response_model=ComponentOut, summary="Add a component (mapped to services)")
def create_component(page_id: str, body: ComponentCreate, _caller: Publisher, app: App
                     ) -> JSONResponse:
    component = app.status_pages.add_component(page_id, ComponentSpec(
        name=body.name, services=body.services, group=body.group,
        description=body.description, status=body.status))
    return JSONResponse(component_view(component), status_code=201)


@router.get("/status-pages/{page_id}/components", response_model=PageOut[ComponentOut],
            summary="The page's components, in display order")
def list_components(page_id: str, _caller: Publisher, app: App) -> dict[str, Any]:
    return {"data": [component_view(item) for item in app.status_pages.components(page_id)],
            "next_cursor": None}


@router.get("/status-pages/{page_id}/components/{component_id}", response_model=ComponentOut)
def get_component(page_id: str, component_id: str, _caller: Publisher, app: App
                  ) -> dict[str, Any]:
    return component_view(app.status_pages.get_component(page_id, component_id))


@router.patch("/status-pages/{page_id}/components/{component_id}",
              response_model=ComponentOut,
              summary="Change a component; a status set here enters its history")
def update_component(page_id: str, component_id: str, body: ComponentPatch,
                     _caller: Publisher, app: App) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "services" in changes:
        changes["services"] = tuple(changes["services"])
    return component_view(app.status_pages.update_component(page_id, component_id, changes))


@router.delete("/status-pages/{page_id}/components/{component_id}", status_code=204,
               response_class=Response)
def delete_component(page_id: str, component_id: str, _caller: Publisher, app: App
                     ) -> Response:
    app.status_pages.delete_component(page_id, component_id)
    return Response(status_code=204)


@router.post("/status-pages/{page_id}/maintenances", status_code=201,
             response_model=StatusMaintenanceOut,
             summary="Announce planned maintenance on the page (422 for a component of "
                     "another page or a window that is not forward or too long)")
def create_maintenance(page_id: str, body: StatusMaintenanceCreate, _caller: Publisher, app: App
                       ) -> JSONResponse:
    maintenances = app.status_pages.maintenances
    item = maintenances.create(page_id, MaintenanceSpec(
        title=body.title, body=body.body, components=body.components,
        scheduled_for=presenters.as_utc(body.scheduled_for, "body.scheduled_for"),
        scheduled_until=presenters.as_utc(body.scheduled_until, "body.scheduled_until")))
    return JSONResponse(maintenance_view(item, maintenances.now()), status_code=201,
                        headers={"Location": f"/api/v1/status-pages/{page_id}/maintenances/"
                                             f"{item.id}"})


@router.get("/status-pages/{page_id}/maintenances", response_model=PageOut[StatusMaintenanceOut],
            summary="The page's planned maintenances, latest window first (at most 50)")
def list_maintenances(page_id: str, _caller: Publisher, app: App) -> dict[str, Any]:
    maintenances = app.status_pages.maintenances
    now = maintenances.now()
    return {"data": [maintenance_view(item, now) for item in maintenances.for_page(page_id)],
            "next_cursor": None}


@router.get("/status-pages/{page_id}/maintenances/{maintenance_id}",
            response_model=StatusMaintenanceOut)
def get_maintenance(page_id: str, maintenance_id: str, _caller: Publisher, app: App
                    ) -> dict[str, Any]:
    maintenances = app.status_pages.maintenances
    return maintenance_view(maintenances.get(page_id, maintenance_id), maintenances.now())


@router.patch("/status-pages/{page_id}/maintenances/{maintenance_id}",
              response_model=StatusMaintenanceOut,
              summary="Change or cancel planned maintenance")
def update_maintenance(page_id: str, maintenance_id: str, body: StatusMaintenancePatch,
                       _caller: Publisher, app: App) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    for name in ("scheduled_for", "scheduled_until"):
        if name in changes:
            changes[name] = presenters.as_utc(changes[name], f"body.{name}")
    maintenances = app.status_pages.maintenances
    return maintenance_view(maintenances.update(page_id, maintenance_id, changes),
                            maintenances.now())


@router.delete("/status-pages/{page_id}/maintenances/{maintenance_id}", status_code=204,
               response_class=Response)
def delete_maintenance(page_id: str, maintenance_id: str, _caller: Publisher, app: App
                       ) -> Response:
    app.status_pages.maintenances.delete(page_id, maintenance_id)
    return Response(status_code=204)


@router.post("/incidents/{incident_id}/public-updates", status_code=201,
             response_model=PublicUpdateOut, tags=["incidents"],
             summary="Publish a public update on the pages of its components (409 for a "
                     "private incident)")
async def publish(incident_id: str, body: PublicUpdateCreate, request: Request,
                  caller: Publisher, app: App, idempotency_key: IdempotencyKey = None
                  ) -> Response:
    draft = Draft(status=body.status, body=body.body, components=body.components,
                  title=body.title, estimated_resolution_at=presenters.as_utc(
                      body.estimated_resolution_at, "body.estimated_resolution_at"))

    def create(tx: Transaction) -> tuple[int, dict[str, Any]]:
        update = app.status_pages.publish_in(tx, caller.viewer, incident_id, draft)
        return 201, update_to_dict(update)

    if idempotency_key is None:
        def once() -> tuple[int, dict[str, Any]]:
            with app.store.transaction(write=True) as tx:
                return create(tx)

        status, answer = await run_sync(once)
        replayed = False
    else:
        fingerprint = hashlib.sha256(b"POST " + request.url.path.encode() + b"\n"
                                     + await request.body()).hexdigest()
        status, answer, replayed = await run_sync(
            app.idempotency.run, caller.key.id, idempotency_key, fingerprint, create)
    app.status_pages.changed()
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(answer, status_code=status, headers=headers)


@router.get("/incidents/{incident_id}/public-updates", response_model=PageOut[PublicUpdateOut],
            tags=["incidents"], summary="What was published on the incident, newest first")
def list_updates(incident_id: str, caller: Reader, app: App) -> dict[str, Any]:
    updates = app.status_pages.updates(caller.viewer, incident_id)
    return {"data": [update_to_dict(update) for update in updates], "next_cursor": None}
