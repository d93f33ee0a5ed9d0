"""Source pages: each source's ingest URL to copy into a monitoring tool, what it sent
lately and why a payload could not be read; and creating one, its token shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from interlock.domain.alerts import ReceivedPayload
from interlock.domain.errors import InvalidInput
from interlock.domain.keys import Scope
from interlock.domain.sources import Source
from interlock.services.container import Container
from interlock.services.sources import SourceSpec
from interlock.web.pages import ConsoleRoute, checked_form, container, render, visitor
from interlock.web.session import Visitor

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
        "kinds": kind_labels(app), "form": {"name": "", "kind": "alertmanager"},
        "error": None,
        "base_url": app.settings.base_url,
    }, visitor=person)


@router.post("/sources")
async def create_source(request: Request, person: Signed) -> Response:
    form = await checked_form(request, person)
    person.require(Scope.SOURCES_MANAGE)
    app = container(request)
    name = str(form.get("name", "")).strip()
    kind = str(form.get("kind", ""))
    try:
        if kind not in app.sources.kinds:
            raise InvalidInput("choose what kind of tool sends to this source")
        source, credentials = await run_in_threadpool(
            app.sources.create, SourceSpec(name=name, kind=kind))
    except InvalidInput as error:
        page = app.sources.list(cursor=None, limit=LIST_PAGE)
        return render(request, "sources.html", {
            "sources": [(item, ingest_url(app, item)) for item in page.items],
            "cursor": None, "next_cursor": page.next_cursor,
            "kinds": kind_labels(app), "form": {"name": name, "kind": kind},
            "error": error.detail, "base_url": app.settings.base_url,
        }, visitor=person, status_code=422)
    return render(request, "source_created.html", {
        "source": source, "url": ingest_url(app, source), "token": credentials.token,
        "kind_label": kind_label(app, source.kind),
    }, visitor=person, status_code=201)


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
