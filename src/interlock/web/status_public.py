"""The public status pages: ``/status/{slug}`` as HTML, its Atom and RSS feeds, and
Statuspage-shaped JSON under ``/status/{slug}/api/v2/``. No key needed (an internal
page needs a console session, and is missing to anyone else).

Every output is rendered once per page version and kept: a request that finds a fresh
copy is a dictionary lookup on the event loop, with no database and no thread. A copy
is fresh for :data:`RECHECK` seconds; then one cheap read of the page's version (and of
how many of its incidents were made private since) says whether to render again. A
change made by this process drops every copy at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from interlock.domain import uptime
from interlock.domain.errors import Unauthenticated
from interlock.domain.status_maintenance import MaintenanceStatus
from interlock.domain.status_pages import Component
from interlock.services.container import Container
from interlock.services.status_public import PublicStatus, Snapshot, Token
from interlock.threads import run_sync
from interlock.web import status_render
from interlock.web.pages import STATIC_VERSION, TEMPLATES, container, sessions

#: How long a rendered copy is served before the page's version is read again: the
#: longest another process's change takes to show.
RECHECK = 1.0
#: No script, no inline style; images may come from the page's own logo URL.
PUBLIC_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' "
                               "https: data:; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
JSON_HEADERS = {"access-control-allow-origin": "*", "x-content-type-options": "nosniff"}
_TYPES = {
    "page": "text/html; charset=utf-8",
    "feed.atom": "application/atom+xml; charset=utf-8",
    "feed.rss": "application/rss+xml; charset=utf-8",
}
JSON_DOCUMENTS = ("summary.json", "status.json", "components.json", "incidents.json",
                  "incidents/unresolved.json", "scheduled-maintenances.json",
                  "scheduled-maintenances/upcoming.json",
                  "scheduled-maintenances/active.json")
#: What follows /status/{slug}/ in a URL → the output's name.
_NAMES = {"": "page", "feed.atom": "feed.atom", "feed.rss": "feed.rss",
          **{f"api/v2/{document}": document for document in JSON_DOCUMENTS}}
Slug = Annotated[str, Path(max_length=64)]
#: Resolved incidents listed under "Past incidents".
PAST_SHOWN = 10


@dataclass
class _Copy:
    token: Token
    snapshot: Snapshot
    generation: int
    checked_at: float
    public: bool
    outputs: dict[str, bytes] = field(default_factory=dict)


class StatusCache:
    """Rendered outputs per page slug, kept while the page's version holds."""

    def __init__(self, status: PublicStatus, render: Callable[[Snapshot, str], bytes]) -> None:
        self._status = status
        self._render = render
        self._copies: dict[str, _Copy] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._generation += 1

    def fresh(self, slug: str, name: str) -> tuple[bytes, bool] | None:
        """A fresh rendered copy and whether the page is public, or None (hot path)."""
        copy = self._copies.get(slug)
        if (copy is None or copy.generation != self._generation
                or time.monotonic() - copy.checked_at > RECHECK):
            return None
        output = copy.outputs.get(name)
        return None if output is None else (output, copy.public)

    def load(self, slug: str, name: str) -> tuple[bytes, bool] | None:
        """Check the version, render if needed (in a thread: reads and renders)."""
        generation = self._generation
        token = self._status.token(slug)
        if token is None:
            self._copies.pop(slug, None)
            return None
        with self._lock:
            copy = self._copies.get(slug)
        if copy is None or copy.token != token:
            snapshot = self._status.snapshot(slug)
            if snapshot is None:
                return None
            copy = _Copy(snapshot.token, snapshot, generation, time.monotonic(),
                         snapshot.page.is_public)
        else:
            copy.checked_at, copy.generation = time.monotonic(), generation
        output = copy.outputs.get(name)
        if output is None:
            output = self._render(copy.snapshot, name)
            copy.outputs = {**copy.outputs, name: output}
        with self._lock:
            self._copies[slug] = copy
        return output, copy.public


def install(app_container: Container) -> StatusCache:
    """A cache for ``app_container``'s pages, dropped on each change this process makes."""
    base_url = app_container.settings.base_url

    def render(snapshot: Snapshot, name: str) -> bytes:
        if name == "page":
            return _html(snapshot)
        if name == "feed.atom":
            return status_render.atom(snapshot, base_url)
        if name == "feed.rss":
            return status_render.rss(snapshot, base_url)
        return status_render.encode(status_render.documents(snapshot, base_url)[name])

    cache = StatusCache(app_container.public_status, render)
    app_container.status_pages.on_change(cache.invalidate)
    return cache


def page_context(snapshot: Snapshot) -> dict[str, Any]:
    """What ``status_macros.page_body`` draws a page from (the public page and the
    console's preview alike)."""
    groups: dict[str | None, list[Component]] = {}
    for component in snapshot.components:
        groups.setdefault(component.group, []).append(component)
    past = [item for item in snapshot.recent if not item.is_open][:PAST_SHOWN]
    planned = snapshot.maintenances_in(MaintenanceStatus.IN_PROGRESS,
                                       MaintenanceStatus.SCHEDULED)
    return {"snapshot": snapshot, "groups": groups, "past": past, "bars": snapshot.bars,
            "overall": uptime.overall, "indicator": status_render.status(snapshot),
            "planned": planned, "names": snapshot.component_names()}


def _html(snapshot: Snapshot) -> bytes:
    return TEMPLATES.get_template("status_page.html").render(
        static_version=STATIC_VERSION, **page_context(snapshot)).encode()


class _Route:
    """Stands in for a Starlette route so metrics label fast-path answers by template."""

    path = "/status/{slug}"


class FastPath:
    """A raw ASGI app answering ``GET /status/…`` from a fresh cached copy of a public
    page, without FastAPI's routing; anything else (a stale or missing copy, an internal
    page, another method) goes to ``fallback``, whose routes below load and render."""

    def __init__(self, cache: StatusCache, fallback: ASGIApp) -> None:
        self._cache = cache
        self._fallback = fallback
        self._headers: dict[str, list[tuple[bytes, bytes]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET":
            slug, _, rest = scope["path"][len("/status/"):].partition("/")
            name = _NAMES.get(rest)
            found = self._cache.fresh(slug, name) if name else None
            if found is not None and found[1]:
                scope["route"] = _Route
                await send({"type": "http.response.start", "status": 200,
                            "headers": [*self._header_list(name or ""),
                                        (b"content-length", str(len(found[0])).encode())]})
                await send({"type": "http.response.body", "body": found[0]})
                return
        await self._fallback(scope, receive, send)

    def _header_list(self, name: str) -> list[tuple[bytes, bytes]]:
        if name not in self._headers:
            media_type, headers = _media(name)
            self._headers[name] = [
                (b"content-type", media_type.encode()),
                *((key.encode(), value.encode()) for key, value in headers.items()),
                (b"cache-control", b"public, max-age=10")]
        return self._headers[name]


def _media(name: str) -> tuple[str, dict[str, str]]:
    if name in _TYPES:
        return _TYPES[name], PUBLIC_HEADERS
    return "application/json", JSON_HEADERS


router = APIRouter(include_in_schema=False)


async def _serve(request: Request, slug: str, name: str, media_type: str,
                 headers: dict[str, str]) -> Response:
    cache: StatusCache = request.app.state.status_cache
    found = cache.fresh(slug, name)
    if found is None:
        found = await run_sync(cache.load, slug, name)
    if found is None or not (found[1] or await _signed_in(request)):
        return Response("No such status page.\n", status_code=404, media_type="text/plain",
                        headers=PUBLIC_HEADERS)
    body, public = found
    caching = "public, max-age=10" if public else "private, no-store"
    return Response(body, media_type=media_type,
                    headers={**headers, "cache-control": caching})


async def _signed_in(request: Request) -> bool:
    """Internal pages: for people signed in to the console, missing to the rest."""
    session = sessions(request).open(request)
    if session is None or session.key is None:
        return False
    keys = container(request).keys
    if keys.recently_authenticated(session.key) is not None:
        return True
    try:
        await run_sync(keys.authenticate, session.key)
    except Unauthenticated:
        return False
    return True


@router.get("/status/{slug}")
async def status_page(request: Request, slug: Slug) -> Response:
    return await _serve(request, slug, "page", _TYPES["page"], PUBLIC_HEADERS)


@router.get("/status/{slug}/feed.atom")
async def atom_feed(request: Request, slug: Slug) -> Response:
    return await _serve(request, slug, "feed.atom", _TYPES["feed.atom"], PUBLIC_HEADERS)


@router.get("/status/{slug}/feed.rss")
async def rss_feed(request: Request, slug: Slug) -> Response:
    return await _serve(request, slug, "feed.rss", _TYPES["feed.rss"], PUBLIC_HEADERS)


def _json_route(document: str) -> None:
    async def serve(request: Request, slug: Slug) -> Response:
        return await _serve(request, slug, document, "application/json", JSON_HEADERS)

    router.add_api_route(f"/status/{{slug}}/api/v2/{document}", serve, methods=["GET"],
                         name=f"status_{document}")


for _document in JSON_DOCUMENTS:
    _json_route(_document)
