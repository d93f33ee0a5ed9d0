"""Endpoint pages: the list with disabled ones marked and why, the create and edit form
with its template preview, the secret shown once, and the attempt log with the
operator's levers (resend one message, recover everything failed since, send a test).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from interlock.domain.errors import InvalidInput, NotFound, Unauthenticated
from interlock.domain.events import EVENT_DESCRIPTIONS
from interlock.domain.keys import Scope
from interlock.services.endpoints import EndpointSpec
from interlock.threads import run_sync
from interlock.web import live
from interlock.web.endpoint_form import EndpointForm, preview, sample_types
from interlock.web.pages import ConsoleRoute, checked_form, container, redirect, render, visitor
from interlock.web.session import Visitor

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[Visitor, Depends(visitor)]
ATTEMPT_PAGE = 50
#: Recover-since choices, in hours (the retry schedule gives up after about a day and a
#: half; an endpoint is disabled after five days).
RECOVER_HOURS = (1, 6, 24, 72, 168)


@router.get("/endpoints")
def endpoint_list(request: Request, person: Signed) -> Response:
    person.require(Scope.WEBHOOKS_MANAGE)
    app = container(request)
    endpoints = app.endpoints.list(cursor=None, limit=200).items
    return render(request, "endpoints.html", {
        "endpoints": [(endpoint, app.endpoints.counts(endpoint.id))
                      for endpoint in endpoints],
    }, visitor=person)


@router.get("/endpoints/new")
def new_endpoint(request: Request, person: Signed) -> Response:
    person.require(Scope.WEBHOOKS_MANAGE)
    return _form_page(request, person, EndpointForm(), None)


@router.post("/endpoints/new")
async def create_endpoint(request: Request, person: Signed) -> Response:
    posted = await checked_form(request, person)
    person.require(Scope.WEBHOOKS_MANAGE)
    form = EndpointForm.posted(posted)
    if posted.get("action") == "preview":
        return _form_page(request, person, form, None, show_preview=True)
    app = container(request)
    try:
        endpoint, secret = await run_sync(
            app.endpoints.create, EndpointSpec(**form.fields()))
    except InvalidInput as error:
        return _form_page(request, person, form, None, error=error.detail, status_code=422)
    return render(request, "endpoint_created.html", {"endpoint": endpoint, "secret": secret},
                  visitor=person, status_code=201)


@router.get("/endpoints/{endpoint_id}")
def endpoint_page(request: Request, endpoint_id: str, person: Signed,
                  cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    person.require(Scope.WEBHOOKS_MANAGE)
    app = container(request)
    endpoint = app.endpoints.get(endpoint_id)
    # Where the live stream starts: what is on the page now, so an attempt made while the
    # page loads (the "Send test" just pressed) still redraws it.
    newest = app.endpoints.follow_attempts(after=None, limit=1, endpoint_id=endpoint_id)
    page = app.endpoints.attempts(endpoint_id, cursor=cursor, limit=ATTEMPT_PAGE)
    return render(request, "endpoint.html", {
        "endpoint": endpoint, "attempts": page.items, "next_cursor": page.next_cursor,
        "live_after": newest[-1][0] if newest else 0, "now": app.clock.now(),
        "subjects": app.endpoints.subjects(attempt.event_id for attempt in page.items),
        "tried": {(attempt.delivery_id, attempt.number) for attempt in page.items},
        "cursor": cursor, "counts": app.endpoints.counts(endpoint_id),
        "recover_hours": RECOVER_HOURS,
    }, visitor=person)


@router.get("/endpoints/{endpoint_id}/edit")
def edit_endpoint(request: Request, endpoint_id: str, person: Signed) -> Response:
    person.require(Scope.WEBHOOKS_MANAGE)
    endpoint = container(request).endpoints.get(endpoint_id)
    return _form_page(request, person, EndpointForm.of(endpoint), endpoint_id)


@router.post("/endpoints/{endpoint_id}/edit")
async def update_endpoint(request: Request, endpoint_id: str, person: Signed) -> Response:
    posted = await checked_form(request, person)
    person.require(Scope.WEBHOOKS_MANAGE)
    form = EndpointForm.posted(posted)
    if posted.get("action") == "preview":
        return _form_page(request, person, form, endpoint_id, show_preview=True)
    app = container(request)
    try:
        stored = await run_sync(app.endpoints.get, endpoint_id)
        await run_sync(app.endpoints.update, endpoint_id,
                       form.fields(stored.headers))
    except InvalidInput as error:
        return _form_page(request, person, form, endpoint_id, error=error.detail,
                          status_code=422)
    return redirect(request, f"/endpoints/{endpoint_id}", person, "Endpoint saved.")


@router.post("/endpoints/{endpoint_id}/{action}")
async def endpoint_action(request: Request, endpoint_id: str, action: str, person: Signed
                          ) -> Response:
    form = await checked_form(request, person)
    person.require(Scope.WEBHOOKS_MANAGE)
    app = container(request)
    back = f"/endpoints/{endpoint_id}"
    try:
        notice = await run_sync(_act, app, person, endpoint_id, action, form)
    except InvalidInput as error:
        return redirect(request, back, person, error.detail, "error")
    return redirect(request, back, person, notice)


def _act(app: Any, person: Visitor, endpoint_id: str, action: str, form: Any) -> str:
    endpoints = app.endpoints
    if action == "test":
        endpoints.send_test(endpoint_id, person.viewer.origin)
        return "Test message queued; it appears in the attempt log within seconds."
    if action == "resend":
        message_id = str(form.get("message_id", ""))
        endpoints.resend(message_id, endpoint_id)
        return f"Message {message_id} queued again, with the same webhook-id."
    if action == "recover":
        hours = int(form.get("hours", "0")) if str(form.get("hours", "")).isdigit() else 0
        if hours not in RECOVER_HOURS:
            raise InvalidInput("choose how far back to recover")
        count = endpoints.recover(endpoint_id, app.clock.now() - timedelta(hours=hours))
        return (f"{count} failed message{'s' if count != 1 else ''} from the last "
                f"{hours} h queued again." if count else
                f"Nothing failed in the last {hours} h; nothing to recover.")
    if action in ("enable", "disable"):
        endpoints.update(endpoint_id, {"enabled": action == "enable"})
        return f"Endpoint {action}d."
    raise NotFound(f"no action {action}")


@router.get("/endpoints/{endpoint_id}/live")
async def endpoint_live(request: Request, endpoint_id: str, person: Signed,
                        after: Annotated[int | None, Query(ge=0)] = None) -> Response:
    """An ``attempt`` event whenever this endpoint's attempt log grows past ``after`` (the
    page's newest attempt; else the newest now)."""
    person.require(Scope.WEBHOOKS_MANAGE)
    app = container(request)
    await run_sync(app.endpoints.get, endpoint_id)
    feed: live.ChangeFeed = request.app.state.console_feed
    secret = person.session.key or ""
    position = after
    if position is None:
        newest = await run_sync(app.endpoints.follow_attempts, after=None, limit=1,
                                endpoint_id=endpoint_id)
        position = newest[-1][0] if newest else 0

    async def next_messages() -> list[str] | None:
        nonlocal position
        await asyncio.sleep(live.POLL_SECONDS)
        found = await run_sync(app.endpoints.follow_attempts, after=position,
                               limit=100, endpoint_id=endpoint_id)
        if not found:
            return None
        position = found[-1][0]
        return [live.message("attempt", {"id": attempt.id}) for _, attempt in found]

    async def still_allowed() -> bool:
        try:
            await run_sync(app.keys.authenticate, secret)
        except Unauthenticated:
            return False
        return True

    return StreamingResponse(live.stream(next_messages, still_allowed, feed),
                             media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


def _form_page(request: Request, person: Visitor, form: EndpointForm,
               endpoint_id: str | None, *, error: str | None = None,
               show_preview: bool = False, status_code: int = 200) -> Response:
    return render(request, "endpoint_form.html", {
        "form": form, "endpoint_id": endpoint_id, "error": error,
        "preview": preview(form) if show_preview else None,
        "event_types": EVENT_DESCRIPTIONS, "sample_types": sample_types(),
    }, visitor=person, status_code=status_code)
