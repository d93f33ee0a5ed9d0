"""What every console page shares: templates, who is signed in, forms checked against
CSRF, and errors shown as pages (or a trip to the sign-in page) rather than JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from interlock.domain.errors import (
    Forbidden,
    InterlockError,
    NotFound,
    StoreUnavailable,
    Unauthenticated,
)
from interlock.domain.keys import Scope
from interlock.services.console import ConsoleService
from interlock.services.container import Container
from interlock.threads import run_sync
from interlock.web.session import CSRF_FIELD, SessionData, Sessions, Visitor

#: The sections in the navigation bar, and the scope each needs. A new section is one
#: more line here and one more router.
NAV: list[tuple[str, str, Scope]] = [
    ("Incidents", "/incidents", Scope.INCIDENTS_READ),
    ("Sources", "/sources", Scope.SOURCES_MANAGE),
    ("Endpoints", "/endpoints", Scope.WEBHOOKS_MANAGE),
    ("Connectors", "/connectors", Scope.CONNECTORS_MANAGE),
    ("Status pages", "/status-pages", Scope.STATUS_PUBLISH),
]

#: No inline script or style anywhere, so the policy can forbid both.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class SignInRequired(Exception):
    """Raised anywhere in a console request: the answer is the sign-in page."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


class BadForm(Exception):
    """A form without a valid CSRF token: sent from another site, or a stale page."""


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("interlock.web", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["iso"] = iso
    environment.filters["utc"] = lambda value: (
        value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "")
    # Links from monitoring payloads only when they are web links (never javascript:).
    environment.filters["http_url"] = lambda value: bool(
        value and str(value).lower().startswith(("http://", "https://")))
    environment.globals["urlquote"] = lambda value: quote(str(value), safe="")
    return environment


def iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""


TEMPLATES = _environment()


def _static_version() -> str:
    digest = hashlib.sha256()
    for name in ("console.css", "console.js", "favicon.svg", "status.css"):
        digest.update(resources.files("interlock.web").joinpath("static", name).read_bytes())
    return digest.hexdigest()[:12]


STATIC_VERSION = _static_version()


def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.console_sessions
    return found


def console(request: Request) -> ConsoleService:
    found: ConsoleService = request.app.state.console
    return found


async def visitor(request: Request) -> Visitor:
    """The signed-in visitor, or SignInRequired. The key is checked on every request, so
    revoking it signs its sessions out."""
    session = sessions(request).open(request)
    if session is None or session.key is None:
        raise SignInRequired()
    keys = container(request).keys
    key = keys.recently_authenticated(session.key)
    if key is None:
        try:
            key = await run_sync(keys.authenticate, session.key)
        except Unauthenticated as error:
            raise SignInRequired("That API key was revoked; sign in with another.") from error
    return Visitor(key=key, session=session, csrf=sessions(request).csrf_token(session))


async def checked_form(request: Request, visitor: Visitor) -> FormData:
    """The posted form, once its CSRF token matches the visitor's session."""
    form = await request.form()
    if not sessions(request).csrf_valid(visitor.session, form.get(CSRF_FIELD)):
        raise BadForm()
    return form


def render(request: Request, name: str, context: dict[str, Any], *,
           visitor: Visitor | None = None, status_code: int = 200,
           session: SessionData | None = None) -> HTMLResponse:
    flash = visitor.take_flash() if visitor else None
    nav = [(label, path) for label, path, scope in NAV if visitor and visitor.can(scope)]
    html = TEMPLATES.get_template(name).render(
        request=request, visitor=visitor, nav=nav, flash=flash, path=request.url.path,
        static_version=STATIC_VERSION, csrf=visitor.csrf if visitor else "",
        csrf_field=CSRF_FIELD, **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    if visitor is not None and visitor.changed:
        sessions(request).store(response, request, visitor.session)
    elif session is not None:
        sessions(request).store(response, request, session)
    return response


def redirect(request: Request, to: str, visitor: Visitor | None = None,
             flash: str | None = None, kind: str = "info") -> RedirectResponse:
    """303 to ``to`` (Post/Redirect/Get), carrying a one-time message to that page."""
    response = RedirectResponse(to, status_code=303)
    if visitor is not None and flash is not None:
        sessions(request).store(response, request,
                                replace(visitor.session, flash=flash, flash_kind=kind))
    return response


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site; never another site (open redirects)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default


_STATUS = {NotFound: 404, Forbidden: 403, StoreUnavailable: 503}


class ConsoleRoute(APIRoute):
    """Routes whose errors are pages: sign-in for a missing session, 403 for a lacking
    scope, 404, and a readable page for anything else the domain refused."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as error:
                return _to_sign_in(request, error.reason)
            except BadForm:
                return _error_page(request, 403, "This form has expired",
                                   "Reload the page and try again.")
            except InterlockError as error:
                status = next((code for kind, code in _STATUS.items()
                               if isinstance(error, kind)), error.status)
                return _error_page(request, status, error.title, error.detail)

        return handle


def _to_sign_in(request: Request, reason: str | None) -> Response:
    wanted = request.url.path if request.method == "GET" else "/"
    if request.query_params:
        wanted += "?" + str(request.query_params)
    response = RedirectResponse("/login?next=" + quote(wanted, safe=""), status_code=303)
    session = SessionData.fresh()
    if reason:
        session = replace(session, flash=reason, flash_kind="error")
    sessions(request).store(response, request, session)
    return response


def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    session = sessions(request).open(request)
    current: Visitor | None = None
    if session is not None and session.key is not None:
        key = container(request).keys.recently_authenticated(session.key)
        if key is not None:
            current = Visitor(key, session, sessions(request).csrf_token(session))
    return render(request, "error.html", {"status": status, "title": title,
                                          "detail": detail},
                  visitor=current, status_code=status)
