"""The console's routers, and what it keeps on the application's state."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from interlock.services.console import ConsoleService
from interlock.services.container import Container
from interlock.web import (
    connectors,
    endpoints,
    incidents,
    signin,
    sources,
    status_console,
    status_public,
    status_subscribe,
    status_subscribers,
)
from interlock.web.live import ChangeFeed
from interlock.web.session import Sessions


def install(app: FastAPI, container: Container, secret: bytes) -> ChangeFeed:
    """Add the console's pages to ``app``; ``secret`` seals session cookies (every
    process serving one deployment needs the same). Returns the live feed, which the
    server closes when it stops so open pages do not hold up the shutdown."""
    console = ConsoleService(container.store, container.clock)
    feed = ChangeFeed(console, container.store)
    app.state.console = console
    app.state.console_sessions = Sessions(secret)
    app.state.console_feed = feed
    app.state.status_cache = status_public.install(container)
    # The routes themselves, not the routers included: see interlock.api.app.add_routes.
    for part in ROUTERS:
        app.router.routes.extend(part.routes)
    return feed


#: The console's pages, in the order they are matched.
ROUTERS: tuple[APIRouter, ...] = (
    signin.router, incidents.router, sources.router, endpoints.router, connectors.router,
    status_public.router, status_console.router, status_subscribe.router,
    status_subscribers.router)
