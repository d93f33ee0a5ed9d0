"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from interlock import __version__
from interlock.api.auth import container
from interlock.api.problems import problem
from interlock.api.routing import OneHopRoute
from interlock.domain.errors import StoreUnavailable
from interlock.domain.timestamps import rfc3339
from interlock.services.container import Container

router = APIRouter(route_class=OneHopRoute, tags=["health"])
App = Annotated[Container, Depends(container)]


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="The database answers and no worker task is failing")
def readyz(app: App) -> JSONResponse:
    """Ready when the database answers and every worker heard from in the last 30 s
    reports all of its tasks running; otherwise 503, naming what is wrong."""
    try:
        app.store.ping()
        readiness = app.workers.readiness()
    except StoreUnavailable as error:
        return problem(503, "Not ready", error.detail, slug="not-ready")
    workers = [{"name": beat.name, "started_at": rfc3339(beat.started_at),
                "beat_at": rfc3339(beat.beat_at), "tasks": dict(beat.tasks)}
               for beat in readiness.workers]
    if not readiness.ready:
        detail = "; ".join(f"{where}: {what}" for where, what in readiness.problems.items())
        response = problem(503, "Not ready", f"worker tasks failing: {detail}"[:2000],
                           slug="not-ready")
        return response
    return JSONResponse({"status": "ready", "workers": workers})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
