"""``/api/v1/keys``: API keys, for admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from interlock.api import presenters, problems
from interlock.api.auth import Caller, container, requires
from interlock.api.query import STRICT
from interlock.api.routing import OneHopRoute
from interlock.api.schemas import KeyCreate, KeyCreated, KeyOut, PageOut
from interlock.domain.keys import Scope
from interlock.services.container import Container

router = APIRouter(
    route_class=OneHopRoute, prefix="/api/v1/keys", tags=["api keys"],
    responses=problems.documented(400, 401, 403, 404, 413, 415, 422),
    dependencies=STRICT)
Admin = Annotated[Caller, requires(Scope.ADMIN)]
App = Annotated[Container, Depends(container)]


@router.post("", status_code=201, response_model=KeyCreated,
             summary="Create an API key; its secret is in this answer only")
def create_key(body: KeyCreate, _caller: Admin, app: App) -> JSONResponse:
    key, secret = app.keys.create(body.name, body.scopes)
    return JSONResponse({**presenters.api_key(key), "key": secret}, status_code=201)


@router.get("", response_model=PageOut[KeyOut], summary="List API keys (never their secrets)")
def list_keys(_caller: Admin, app: App) -> dict[str, Any]:
    return {"data": [presenters.api_key(key) for key in app.keys.list()], "next_cursor": None}


@router.get("/{key_id}", response_model=KeyOut)
def get_key(key_id: str, _caller: Admin, app: App) -> dict[str, Any]:
    return presenters.api_key(app.keys.get(key_id))


@router.delete("/{key_id}", response_model=KeyOut, summary="Revoke an API key at once")
def revoke_key(key_id: str, _caller: Admin, app: App) -> dict[str, Any]:
    return presenters.api_key(app.keys.revoke(key_id))
