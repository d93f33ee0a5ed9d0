"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from interlock import __version__
from interlock.api import endpoints, health, incidents, keys, problems
from interlock.api.middleware import BodyLimit, RejectNul, RequestMetrics
from interlock.services.container import Container

DESCRIPTION = """
Interlock keeps incident data in sync across monitoring, ticketing and chat.

Authenticate with `Authorization: Bearer <api key>`. Errors are
`application/problem+json` (RFC 9457). Lists take `?limit=&cursor=` and answer
`{"data": [...], "next_cursor": ...}`.
"""


def create_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="Interlock",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    app.state.container = container
    app.state.registry = registry
    problems.install(app)
    app.include_router(health.router)
    app.include_router(incidents.router)
    app.include_router(keys.router)
    app.include_router(endpoints.router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    app.add_middleware(BodyLimit, limit=container.settings.max_body_bytes)
    app.add_middleware(RejectNul)
    app.add_middleware(RequestMetrics, registry=registry)
    return app
