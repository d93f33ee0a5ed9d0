"""``/api/v1/incidents``."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from interlock.api import presenters, problems
from interlock.api.auth import Caller, container, requires
from interlock.api.query import STRICT
from interlock.api.routing import OneHopRoute
from interlock.api.schemas import (
    CommentCreate,
    DateTime,
    IncidentCreate,
    IncidentOut,
    IncidentPatch,
    Omitted,
    PageOut,
    TimelineEntryOut,
    words_list,
)
from interlock.domain.errors import InvalidInput
from interlock.domain.incidents import Incident, Severity, Status, to_dict
from interlock.domain.keys import Scope
from interlock.domain.pagination import DEFAULT_LIMIT, MAX_LIMIT
from interlock.ports.store import IncidentFilter, Transaction
from interlock.services.container import Container
from interlock.services.incidents import Declaration
from interlock.threads import run_sync

router = APIRouter(
    route_class=OneHopRoute, prefix="/api/v1/incidents", tags=["incidents"],
    responses=problems.documented(400, 401, 403, 404, 409, 412, 413, 415, 422),
    dependencies=STRICT)

Reader = Annotated[Caller, requires(Scope.INCIDENTS_READ)]
Writer = Annotated[Caller, requires(Scope.INCIDENTS_WRITE)]
App = Annotated[Container, Depends(container)]
IfMatch = Annotated[str | Omitted, Header(
    description='Answer 412 unless the version is this ETag ("3"), or * for any',
    json_schema_extra={"pattern": presenters.IF_MATCH_PATTERN})]
IdempotencyKey = Annotated[str | Omitted, Header(max_length=255)]
IncidentKey = Annotated[str, "An id (inc_…) or a reference (INC-42)"]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post("", status_code=201, response_model=IncidentOut, summary="Declare an incident")
async def declare(
    body: IncidentCreate, request: Request, caller: Writer, app: App,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    declaration = Declaration(**body.model_dump())

    def create(tx: Transaction) -> tuple[int, dict[str, Any]]:
        return 201, to_dict(app.incidents.declare_in(tx, caller.viewer, declaration))

    return await _idempotent(request, caller, app, idempotency_key, create)


@router.get("", response_model=PageOut[IncidentOut], summary="List incidents, newest first")
def list_incidents(
    caller: Reader,
    app: App,
    status: Annotated[list[str] | Omitted, Query(
        description="triggered, acknowledged or resolved; repeat or comma-separate",
        json_schema_extra={"items": {"type": "string",
                                     "pattern": words_list([*Status])}})] = None,
    severity: Annotated[list[str] | Omitted, Query(
        description="critical, high, medium, low or info; repeat or comma-separate",
        json_schema_extra={"items": {"type": "string",
                                     "pattern": words_list([*Severity])}})] = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
    created_after: DateTime | None = None,
    created_before: DateTime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the title")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    where = IncidentFilter(
        statuses=frozenset(_split(status, Status, "status")),
        severities=frozenset(_split(severity, Severity, "severity")),
        service=_clean(service),
        created_after=presenters.as_utc(created_after, "query.created_after"),
        created_before=presenters.as_utc(created_before, "query.created_before"),
        text=_clean(q),
    )
    page = app.incidents.list(caller.viewer, where, cursor=cursor, limit=limit)
    return {"data": [to_dict(item) for item in page.items], "next_cursor": page.next_cursor}


@router.get("/{incident_id}", response_model=IncidentOut, summary="Read one incident")
def get_incident(incident_id: IncidentKey, caller: Reader, app: App) -> Response:
    return _incident_response(app.incidents.get(caller.viewer, incident_id))


@router.patch("/{incident_id}", response_model=IncidentOut, summary="Change fields")
async def update_incident(
    incident_id: IncidentKey, body: IncidentPatch, caller: Writer, app: App,
    if_match: IfMatch = None,
) -> Response:
    changes, expected = body.changes(), presenters.parse_if_match(if_match)
    incident = await app.writes.run(lambda tx: app.incidents.update_in(
        tx, caller.viewer, incident_id, changes, expected_version=expected))
    return _incident_response(incident)


_STATUS_ACTIONS = {
    "acknowledge": "Take the incident (409 if it is resolved)",
    "resolve": "Resolve the incident",
    "reopen": "Reopen a resolved incident (an open one is left as it is)",
}


def _status_route(action: str, summary: str) -> None:
    """``POST /incidents/{id}/<action>``: the status commands differ only in name."""

    async def change_status(incident_id: IncidentKey, caller: Writer, app: App,
                            if_match: IfMatch = None) -> Response:
        expected = presenters.parse_if_match(if_match)
        incident = await app.writes.run(lambda tx: app.incidents.change_status_in(
            tx, caller.viewer, incident_id, action, expected_version=expected))
        return _incident_response(incident)

    router.add_api_route(f"/{{incident_id}}/{action}", change_status, methods=["POST"],
                         response_model=IncidentOut, name=action, summary=summary)


for _action, _summary in _STATUS_ACTIONS.items():
    _status_route(_action, _summary)


@router.post("/{incident_id}/comments", status_code=201, response_model=TimelineEntryOut,
             summary="Add a comment to the timeline")
async def add_comment(
    incident_id: IncidentKey, body: CommentCreate, request: Request, caller: Writer,
    app: App, idempotency_key: IdempotencyKey = None,
) -> Response:
    def create(tx: Transaction) -> tuple[int, dict[str, Any]]:
        _, entry = app.incidents.comment_in(tx, caller.viewer, incident_id, body.body)
        return 201, presenters.timeline_entry(entry)

    return await _idempotent(request, caller, app, idempotency_key, create)


@router.get("/{incident_id}/timeline", response_model=PageOut[TimelineEntryOut],
            summary="The incident's history, oldest first")
def timeline(
    incident_id: IncidentKey, caller: Reader, app: App, limit: Limit = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    page = app.incidents.timeline(caller.viewer, incident_id, cursor=cursor, limit=limit)
    return {
        "data": [presenters.timeline_entry(entry) for entry in page.items],
        "next_cursor": page.next_cursor,
    }


async def _idempotent(
    request: Request, caller: Caller, app: Container, key: str | None, operation: Any
) -> Response:
    """Run a creating operation once per Idempotency-Key; without a key, just run it."""
    if key is None:
        status, body = await app.writes.run(operation)
        return _created(status, body, replayed=False)
    raw = await request.body()
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + raw
    ).hexdigest()
    status, body, replayed = await run_sync(
        app.idempotency.run, caller.key.id, key, fingerprint, operation
    )
    return _created(status, body, replayed=replayed)


def _created(status: int, body: dict[str, Any], *, replayed: bool) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if "reference" in body and "version" in body:
        headers["ETag"] = presenters.etag(body["version"])
        headers["Location"] = f"/api/v1/incidents/{body['id']}"
    return JSONResponse(body, status_code=status, headers=headers)


def _incident_response(incident: Incident) -> Response:
    return JSONResponse(to_dict(incident), headers={"ETag": presenters.etag(incident.version)})


def _split(values: list[str] | None, kind: type[Any], name: str) -> list[Any]:
    """``?status=a&status=b`` and ``?status=a,b`` alike."""
    parts = [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
    allowed = [member.value for member in kind]
    wrong = [part for part in parts if part not in allowed]
    if wrong:
        raise InvalidInput(
            f"{name} must be one of {', '.join(allowed)}; got {', '.join(wrong)[:200]}",
            errors=[{"field": f"query.{name}", "message": f"one of {', '.join(allowed)}"}],
        )
    return [kind(part) for part in parts]


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    if "\x00" in value:
        raise InvalidInput("query parameters must not contain NUL characters")
    return value
