"""Source pages: each source's ingest URL to copy into a monitoring tool, what it sent
lately and why a payload could not be read; and creating one, its token shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from interlock.domain.alerts import ReceivedPayload, SourceSigning
from interlock.domain.errors import InvalidInput
from interlock.domain.keys import Scope
from interlock.domain.sources import Source
from interlock.services.container import Container
from interlock.services.sources import SourceSpec
from interlock.threads import run_sync
from interlock.web.pages import (
    ConsoleRoute,
    checked_form,
    container,
    redirect,
    render,
    visitor,
)
from interlock.web.session import Visitor
from interlock.web.source_form import SourceForm, SourceKindForm

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[Visitor, Depends(visitor)]
PAYLOAD_PAGE = 25
#: Sources per page of the list (a "More sources" link leads on).
LIST_PAGE = 100
BODY_PREVIEW = 2048


def kind_labels(app: Container) -> dict[str, str]:
    """Each installed kind's title, for the form's choices."""
    return {kind: plugin.title for kind, plugin in app.sources.kinds.items()}


def kind_label(app: Container, kind: str) -> str:
    """A kind's title; a kind whose plugin is no longer installed shows as its name."""
    plugin = app.sources.kinds.get(kind)
    return plugin.title if plugin is not None else kind


def ingest_url(app: Container, source: Source) -> str:
    return app.settings.base_url + source.ingest_path()


@router.get("/sources")
def source_list(request: Request, person: Signed,
                cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    person.require(Scope.SOURCES_MANAGE)
    app = container(request)
    page = app.sources.list(cursor=cursor, limit=LIST_PAGE)
    return render(request, "sources.html", {
        "sources": [(source, ingest_url(app, source)) for source in page.items],
        "cursor": cursor, "next_cursor": page.next_cursor,
        "kinds": list(app.sources.kinds.values()),
        "kind_title": lambda kind: kind_label(app, kind),
        "base_url": app.settings.base_url,
    }, visitor=person)


@router.get("/sources/new")
def new_source(request: Request, person: Signed,
               kind: Annotated[str | None, Query(max_length=40)] = None,
               name: Annotated[str, Query(max_length=200)] = "") -> Response:
    person.require(Scope.SOURCES_MANAGE)
    app = container(request)
    if kind is None or kind not in app.sources.kinds:
        return redirect(request, "/sources#new-source")
    form = SourceForm.blank(_kind(app, kind))
    form.name = name.strip()
    return _form_page(request, person, form, None)


@router.post("/sources")
async def create_source(request: Request, person: Signed) -> Response:
    posted = await checked_form(request, person)
    person.require(Scope.SOURCES_MANAGE)
    app = container(request)
    kind = _kind(app, str(posted.get("kind", "")))
    form = SourceForm.posted(kind, posted, editing=False)
    try:
        spec = SourceSpec(kind=kind.kind, **form.change())
        source, credentials = await run_sync(app.sources.create, spec)
    except InvalidInput as error:
        return _form_page(request, person, form, None, error=error, status_code=422)
    return render(request, "source_created.html", {
        "source": source, "url": ingest_url(app, source), "token": credentials.token,
        "signing_secret": credentials.signing_secret, "kind_label": kind.title,
    }, visitor=person, status_code=201)


@router.get("/sources/{source_id}/edit")
def edit_source(request: Request, source_id: str, person: Signed) -> Response:
    person.require(Scope.SOURCES_MANAGE)
    app = container(request)
    source = app.sources.get(source_id)
    return _form_page(request, person, SourceForm.of(source, _kind(app, source.kind)), source)


@router.post("/sources/{source_id}/edit")
async def save_source(request: Request, source_id: str, person: Signed) -> Response:
    posted = await checked_form(request, person)
    person.require(Scope.SOURCES_MANAGE)
    app = container(request)
    source = await run_sync(app.sources.get, source_id)
    form = SourceForm.posted(_kind(app, source.kind), posted, editing=True)
    try:
        await run_sync(app.sources.update, source_id, form.change())
    except InvalidInput as error:
        return _form_page(request, person, form, source, error=error, status_code=422)
    app.intake.forget(source_id)  # ingest reads the source afresh
    return redirect(request, f"/sources/{source_id}", person, "Source saved.")


def _form_page(request: Request, person: Visitor, form: SourceForm, source: Source | None,
               *, error: InvalidInput | None = None, status_code: int = 200) -> Response:
    return render(request, "source_form.html", {
        "form": form, "source": source, "kind": form.kind, "drawn": form.drawn(error),
        "error": error.detail if error else None,
    }, visitor=person, status_code=status_code)


def _kind(app: Container, kind: str) -> SourceKindForm:
    """What the form needs of an installed kind: the JSON Schema of its options model
    (as GET /api/v1/source-kinds publishes it) and how its tool signs. InvalidInput
    (field ``kind``) for a kind not installed."""
    plugin = app.sources.kinds.get(kind)
    if plugin is None:
        raise InvalidInput(f"unknown source kind {kind!r}", errors=[
            {"field": "kind", "message": f"one of {', '.join(app.sources.kinds)}"}])
    return SourceKindForm(
        kind=plugin.kind, title=plugin.title, description=plugin.description,
        options=plugin.options.model_json_schema(),
        signs=plugin.signing is not SourceSigning.NONE,
        timestamped=plugin.signing is SourceSigning.HMAC)


@router.get("/sources/{source_id}")
def source_page(request: Request, source_id: str, person: Signed,
                cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    person.require(Scope.SOURCES_MANAGE)
    app = container(request)
    source = app.sources.get(source_id)
    page = app.sources.payloads(source_id, cursor=cursor, limit=PAYLOAD_PAGE)
    return render(request, "source.html", {
        "source": source, "url": ingest_url(app, source),
        "kind_label": kind_label(app, source.kind),
        "payloads": [(payload, _preview(payload)) for payload in page.items],
        "next_cursor": page.next_cursor, "cursor": cursor,
    }, visitor=person)


def _preview(payload: ReceivedPayload) -> str:
    text = payload.body[:BODY_PREVIEW].decode("utf-8", errors="replace")
    return text + ("\n…" if len(payload.body) > BODY_PREVIEW else "")
