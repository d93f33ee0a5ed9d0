"""The application: FastAPI for the API, raw ASGI for ingest."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from starlette.types import ASGIApp, Receive, Scope, Send

from interlock import __version__, threads
from interlock.api import (
    connectors,
    docs,
    endpoints,
    health,
    incidents,
    keys,
    problems,
    sources,
    status_pages,
    subscribers,
)
from interlock.api.ingest import Admitted, Answer, GroupCommit, IngestApp
from interlock.api.middleware import (
    AccessLog,
    AllowedMethods,
    BodyLimit,
    HttpMetrics,
    RejectNul,
    RequestMetrics,
    log_request,
)
from interlock.api.routing import PlannedRoutes
from interlock.logs import AccessLogMode
from interlock.services.container import Container

DESCRIPTION = """
Interlock keeps incident data in sync across monitoring, ticketing and chat.

Authenticate with `Authorization: Bearer <api key>`. Errors are
`application/problem+json` (RFC 9457). Lists take `?limit=&cursor=` and answer
`{"data": [...], "next_cursor": ...}`.
"""


class _IngestRoute:
    """Stands in for a Starlette route so metrics label ingest requests by template."""

    path = "/ingest/{source_id}"


class Interlock:
    """The outermost ASGI app: ingest requests go straight to the raw ingest app (the
    hot path); everything else to FastAPI."""

    def __init__(self, api: FastAPI, ingest: IngestApp, access_log: AccessLogMode = "errors",
                 *, max_body_bytes: int) -> None:
        self.api = api
        self.state = api.state
        self._ingest_app = ingest
        self._ingest = RequestMetrics(_route_ingest(ingest), api.state.http_metrics)
        self._log = access_log
        # The API's routes, answered by their plans (see interlock.api.routing) behind the
        # same checks FastAPI's stack makes; the methods and OPTIONS of AllowedMethods
        # only concern requests no route takes, which still go to FastAPI.
        self._planned = PlannedRoutes(api, "/api/v1/")
        self._planned_app = RequestMetrics(
            RejectNul(BodyLimit(self._planned, max_body_bytes)), api.state.http_metrics)
        self._fast: tuple[tuple[str, ASGIApp], ...] = ()
        self._entry: ASGIApp = self._route if access_log == "off" else AccessLog(
            self._route, access_log)

    def add_fast_path(self, prefix: str, app: ASGIApp) -> None:
        """Send requests under ``prefix`` to ``app`` before FastAPI's routing, which
        walks every route (a few hundred µs per request); ``app`` hands what it does not
        answer itself to :attr:`api`. For cached public reads (status pages)."""
        self._fast = (*self._fast, (prefix, RequestMetrics(app, self.state.http_metrics)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    def at_once(self, scope: Scope, body_limit: int) -> AtOnce | None:
        """A request the server may answer without calling this app, decided on its
        head: a single-alert ``POST`` to an ingest URL (``IngestApp.admitted``), counted
        and logged as the app would. For the server's protocol
        (:mod:`interlock.cli.http_protocol`)."""
        if not scope["path"].startswith("/ingest/"):
            return None
        admitted = self._ingest_app.admitted(scope, body_limit)
        if admitted is None:
            return None
        return AtOnce(admitted, scope, self._ingest, self._log)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/ingest/"):
                await self._ingest(scope, receive, send)
                return
            if self._planned.find(scope) is not None:
                await self._planned_app(scope, receive, send)
                return
            for prefix, app in self._fast:
                if path.startswith(prefix):
                    await app(scope, receive, send)
                    return
        await self.api(scope, receive, send)


class AtOnce:
    """An admitted ingest request (:class:`interlock.api.ingest.Admitted`), counted in
    the request metrics and the access log once answered, as through the app."""

    __slots__ = ("_admitted", "_log", "_metrics", "_scope", "_started")

    def __init__(self, admitted: Admitted, scope: Scope, metrics: RequestMetrics,
                 log: AccessLogMode) -> None:
        self._admitted = admitted
        self._scope = scope
        self._metrics = metrics
        self._log = log
        self._started = time.perf_counter()

    def accept(self, body: bytes) -> asyncio.Future[None] | None:
        return self._admitted.accept(body)

    def response(self, committed: asyncio.Future[None]) -> tuple[int, Answer]:
        try:
            status, answer = self._admitted.response(committed)
        except BaseException:
            self._answered(500)
            raise
        self._answered(status)
        return status, answer

    def _answered(self, status: int) -> None:
        self._metrics.record("POST", _IngestRoute.path, status, self._started)
        if self._log == "all" or (self._log == "errors" and status >= 400):
            log_request(self._scope, status)


def _route_ingest(ingest: IngestApp) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = _IngestRoute
        await ingest(scope, receive, send)

    return app


def create_app(container: Container) -> Interlock:
    api = create_api(container)
    ingest = IngestApp(container.intake, GroupCommit(container.intake),
                       container.settings.ingest_max_body_bytes)
    return Interlock(api, ingest, container.settings.access_log,
                     max_body_bytes=container.settings.max_body_bytes)


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes to ``app`` itself, in order, instead of including the
    router. FastAPI (0.16x) matches an included router's routes through a context it
    sets and restores around each route it tries, twice per request, and for every
    router before the one that matches: that cost a request for an unknown path
    about 1 ms of CPU, nearly all of it, and every route a share by its place in the
    list. A router's prefix and dependencies are already in its routes."""
    app.router.routes.extend(router.routes)


def create_api(container: Container) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Requests run their database work in these threads (interlock.threads; what
        # Starlette itself hands to a thread goes to anyio's). On SQLite every write
        # queues for one writer anyway; fewer threads means a shorter queue in front of
        # the delivery worker's transactions, so webhooks leave sooner.
        threads.size(container.settings.api_threads)
        anyio.to_thread.current_default_thread_limiter().total_tokens = (
            container.settings.api_threads)
        yield

    app = FastAPI(
        title="Interlock",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # served by interlock.api.docs, offline and with a CSP
        redoc_url=None,
        lifespan=lifespan,
    )
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    app.state.container = container
    app.state.registry = registry
    problems.install(app)
    docs.install(app)
    for router in (health.router, incidents.router, keys.router, endpoints.router,
                   sources.router, connectors.router, connectors.hooks, status_pages.router,
                   subscribers.router):
        add_routes(app, router)

    app.add_middleware(BodyLimit, limit=container.settings.max_body_bytes)
    app.add_middleware(RejectNul)
    app.add_middleware(AllowedMethods, router=app.router)
    metrics = HttpMetrics(registry)
    app.state.http_metrics = metrics
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app
