"""Subscribing to a public status page without a key, and the links its mails carry.

* ``/status/{slug}/subscribe``: GET a form; POST it (a form, or JSON
  ``{"email", "components"}`` answered 202 in JSON). An address that is not one is a
  422 (problem+json for JSON, the form again for a form). The answer is the same
  whether or not the address was already subscribed.
* ``/status/{slug}/subscribe/confirm?token=…``: GET shows a button, POST confirms.
  Mail scanners and link previews fetch links, so a GET never changes anything.
* ``/status/{slug}/unsubscribe?token=…``: the one-click unsubscribe of RFC 8058. The
  mail client POSTs ``List-Unsubscribe=One-Click`` here (``List-Unsubscribe-Post``);
  a person who opens the link gets a page with one button that does the same.

Handlers are plain functions (FastAPI runs them in its thread pool), so the database
and template rendering never run on the event loop; only reading the body is async.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from interlock.domain.errors import Conflict, InterlockError, InvalidInput, NotFound
from interlock.domain.status_pages import StatusPage
from interlock.domain.subscribers import TokenPurpose
from interlock.services.container import Container
from interlock.threads import run_sync
from interlock.web.pages import STATIC_VERSION, TEMPLATES, container

Slug = Annotated[str, Path(max_length=64)]
Token = Annotated[str, Query(max_length=200)]
#: As the page itself, but forms may post back here.
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
SENT = ("If that address is not subscribed yet, a mail is on its way to it: follow its "
        "link to confirm. Nothing else is sent until you do.")

router = APIRouter(include_in_schema=False)


def _public_page(app: Container, slug: str) -> StatusPage | None:
    with app.store.transaction() as tx:
        page = tx.status_pages.find_page(slug)
        return page if page is not None and page.is_public else None


def _html(page: StatusPage, status: int = 200, **context: Any) -> HTMLResponse:
    values = {"message": None, "error": None, "components": [], "chosen": set(), "email": "",
              "action": "", "button": "", **context}
    body = TEMPLATES.get_template("status_subscribe.html").render(
        page=page, static_version=STATIC_VERSION, **values)
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _missing() -> Response:
    return Response("No such status page.\n", status_code=404, media_type="text/plain",
                    headers=HEADERS)


@router.get("/status/{slug}/subscribe")
def subscribe_form(request: Request, slug: Slug) -> Response:
    app = container(request)
    page = _public_page(app, slug)
    if page is None:
        return _missing()
    return _html(page, heading="Subscribe to updates", mode="form",
                 components=app.status_pages.components(page.id))


@router.post("/status/{slug}/subscribe")
async def subscribe(request: Request, slug: Slug) -> Response:
    wants_json = request.headers.get("content-type", "").startswith("application/json")
    email, components = await _read(request, wants_json)
    return await run_sync(_subscribe, container(request), slug, email, components,
                          wants_json)


def _subscribe(app: Container, slug: str, email: str, components: list[str],
               wants_json: bool) -> Response:
    """In a worker thread: the database, and rendering (never on the event loop)."""
    page = _public_page(app, slug)
    if page is None:
        return _missing()
    try:
        app.subscribers.subscribe_email(page.id, email, components, public=True)
    except InvalidInput as error:
        if wants_json:
            raise
        return _html(page, 422, heading="Subscribe to updates", mode="form",
                     components=app.status_pages.components(page.id),
                     chosen=set(components), email=email, error=error.detail)
    if wants_json:
        return JSONResponse({"status": "pending", "message": SENT}, status_code=202,
                            headers=HEADERS)
    return _html(page, heading="Check your inbox", message=SENT, mode="sent")


async def _read(request: Request, wants_json: bool) -> tuple[str, list[str]]:
    if wants_json:
        try:
            body = await request.json()
        except ValueError as error:
            raise InvalidInput("the body is not JSON", errors=[
                {"field": "body", "message": "must be a JSON object"}]) from error
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object",
                               errors=[{"field": "body", "message": "must be an object"}])
        email, components = body.get("email"), body.get("components") or []
    else:
        form = await request.form()
        email = form.get("email")
        components = [str(item) for item in form.getlist("components")]
    if not isinstance(email, str):
        raise InvalidInput("an e-mail address is needed",
                           errors=[{"field": "email", "message": "required"}])
    if not isinstance(components, list) or not all(isinstance(item, str)
                                                   for item in components):
        raise InvalidInput("components must be a list of component ids",
                           errors=[{"field": "components", "message": "a list of ids"}])
    return email, components


@router.get("/status/{slug}/subscribe/confirm")
def confirm_page(request: Request, slug: Slug, token: Token) -> Response:
    return _link_page(container(request), slug, token, TokenPurpose.CONFIRM)


@router.post("/status/{slug}/subscribe/confirm")
def confirm(request: Request, slug: Slug, token: Token) -> Response:
    app = container(request)
    try:
        _, page = app.subscribers.by_token(slug, token, TokenPurpose.CONFIRM)
        app.subscribers.confirm(slug, token)
    except (NotFound, Conflict) as error:
        return _invalid(app, slug, error)
    return _html(page, heading="Subscription confirmed", mode="done",
                 message=f"You will receive {page.title} status updates by mail.")


@router.get("/status/{slug}/unsubscribe")
def unsubscribe_page(request: Request, slug: Slug, token: Token) -> Response:
    return _link_page(container(request), slug, token, TokenPurpose.UNSUBSCRIBE)


@router.post("/status/{slug}/unsubscribe")
def unsubscribe(request: Request, slug: Slug, token: Token) -> Response:
    """RFC 8058 one-click: the body (``List-Unsubscribe=One-Click``) needs no reading."""
    app = container(request)
    try:
        _, page = app.subscribers.by_token(slug, token, TokenPurpose.UNSUBSCRIBE)
        app.subscribers.unsubscribe(slug, token)
    except NotFound as error:
        return _invalid(app, slug, error)
    return _html(page, heading="Unsubscribed", mode="done",
                 message=f"You will receive no more {page.title} status mail.")


def _link_page(app: Container, slug: str, token: str, purpose: TokenPurpose) -> Response:
    try:
        _, page = app.subscribers.by_token(slug, token, purpose)
    except NotFound as error:
        return _invalid(app, slug, error)
    path = "subscribe/confirm" if purpose is TokenPurpose.CONFIRM else "unsubscribe"
    if purpose is TokenPurpose.CONFIRM:
        heading, button = "Confirm your subscription", "Confirm"
    else:
        heading, button = "Unsubscribe", "Unsubscribe"
    return _html(page, heading=heading, mode=purpose.value, button=button,
                 action=f"/status/{page.slug}/{path}?token={token}")


def _invalid(app: Container, slug: str, error: InterlockError) -> Response:
    with_page = _any_page(app, slug)
    if with_page is None:
        return _missing()
    return _html(with_page, error.status, heading="This link does not work",
                 error=error.detail, mode="invalid")


def _any_page(app: Container, slug: str) -> StatusPage | None:
    with app.store.transaction() as tx:
        return tx.status_pages.find_page(slug)
