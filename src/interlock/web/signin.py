"""Signing in with an API key and out again, the home page, and the static files."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from interlock.domain.errors import Unauthenticated
from interlock.threads import run_sync
from interlock.web.pages import (
    NAV,
    ConsoleRoute,
    SignInRequired,
    container,
    local_path,
    render,
    sessions,
    visitor,
)
from interlock.web.session import CSRF_FIELD, SessionData

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
KEY_MAX = 200
STATIC_TYPES = {"console.css": "text/css; charset=utf-8",
                "console.js": "text/javascript; charset=utf-8",
                "favicon.svg": "image/svg+xml",
                "status.css": "text/css; charset=utf-8"}


@router.get("/")
async def home(request: Request) -> Response:
    """The first section the visitor's key may see, or the sign-in page."""
    try:
        person = await visitor(request)
    except SignInRequired:
        return RedirectResponse("/login", status_code=303)
    first = next((path for _, path, scope in NAV if person.can(scope)), None)
    if first is None:
        return render(request, "error.html", {
            "status": 403, "title": "Nothing to show for this key",
            "detail": "This API key has none of the scopes the console shows "
                      "(incidents:read, sources:manage, webhooks:manage). Sign in with "
                      "another key."}, visitor=person, status_code=403)
    return RedirectResponse(first, status_code=303)


@router.get("/login")
def sign_in_page(request: Request,
                 next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    session = sessions(request).open(request) or SessionData.fresh()
    flash = (session.flash, session.flash_kind) if session.flash else None
    session = SessionData(nonce=session.nonce)  # the key (if any) is not reused
    return _sign_in_form(request, session, local_path(next, "/"), flash=flash)


@router.post("/login")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    session = sessions(request).open(request)
    target = local_path(str(form.get("next", "")), "/")
    if session is None or not sessions(request).csrf_valid(session, form.get(CSRF_FIELD)):
        fresh = SessionData.fresh()
        return _sign_in_form(request, fresh, target, status_code=403,
                             flash=("The sign-in form expired; try again.", "error"))
    secret = str(form.get("api_key", "")).strip()
    if not secret or len(secret) > KEY_MAX:
        return _sign_in_form(request, session, target, status_code=400,
                             flash=("Paste an API key (it starts with ilk_).", "error"))
    try:
        await run_sync(container(request).keys.authenticate, secret)
    except Unauthenticated:
        return _sign_in_form(request, session, target, status_code=401,
                             flash=("That API key is unknown or revoked.", "error"))
    response = RedirectResponse(target, status_code=303)
    # A new nonce: CSRF tokens from before signing in are worthless after.
    sessions(request).store(response, request, SessionData.fresh(key=secret))
    return response


@router.post("/logout")
async def sign_out(request: Request) -> Response:
    session = sessions(request).open(request)
    form = await request.form()
    if session is not None and sessions(request).csrf_valid(session, form.get(CSRF_FIELD)):
        response = RedirectResponse("/login", status_code=303)
        signed_out = SessionData(nonce=SessionData.fresh().nonce, flash="You are signed out.")
        sessions(request).store(response, request, signed_out)
        return response
    return RedirectResponse("/", status_code=303)


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it on every page that names no icon (the API's /docs, a JSON
    answer opened in a tab): the console's icon, not a 404 in every log."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC_TYPES:
        return Response("not found", status_code=404, media_type="text/plain")
    body = resources.files("interlock.web").joinpath("static", name).read_bytes()
    # URLs carry a content hash (?v=), so a browser may keep a copy for long.
    return Response(body, media_type=STATIC_TYPES[name],
                    headers={"cache-control": "public, max-age=31536000, immutable",
                             "x-content-type-options": "nosniff"})


def _sign_in_form(request: Request, session: SessionData, target: str, *,
                  status_code: int = 200, flash: tuple[str, str] | None = None) -> Response:
    return render(request, "login.html", {
        "next": target, "login_flash": flash,
        "login_csrf": sessions(request).csrf_token(session),
    }, status_code=status_code, session=session)
