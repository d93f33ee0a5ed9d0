"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from interlock import __version__
from interlock.api.auth import container
from interlock.api.problems import problem
from interlock.domain.errors import StoreUnavailable
from interlock.services.container import Container

router = APIRouter(tags=["health"])
App = Annotated[Container, Depends(container)]


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="The database answers")
def readyz(app: App) -> JSONResponse:
    try:
        app.store.ping()
    except StoreUnavailable as error:
        return problem(503, "Not ready", error.detail, slug="not-ready")
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
