"""``/api/v1/endpoints``, ``/api/v1/messages`` and ``/api/v1/event-types``."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from interlock.api import problems
from interlock.api.auth import Caller, authenticated, container, requires
from interlock.api.presenters import as_utc
from interlock.api.query import STRICT
from interlock.api.routing import OneHopRoute
from interlock.api.schemas import Omitted, PageOut
from interlock.api.webhook_schemas import (
    AttemptOut,
    DeliveryOut,
    EndpointCreate,
    EndpointOut,
    EndpointPatch,
    EndpointWithSecret,
    EventTypeOut,
    MessageOut,
    Recover,
    Resend,
)
from interlock.domain.delivery import Attempt, Delivery
from interlock.domain.endpoints import Endpoint
from interlock.domain.errors import InvalidInput
from interlock.domain.events import EVENT_DESCRIPTIONS, SUBSCRIBABLE, EventType
from interlock.domain.keys import Scope
from interlock.domain.pagination import DEFAULT_LIMIT, MAX_LIMIT
from interlock.domain.timestamps import rfc3339
from interlock.services.container import Container
from interlock.services.endpoints import EndpointSpec, Message

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1", tags=["webhooks"],
                   responses=problems.documented(400, 401, 403, 404, 413, 415, 422),
                   dependencies=STRICT)
Manager = Annotated[Caller, requires(Scope.WEBHOOKS_MANAGE)]
App = Annotated[Container, Depends(container)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200)]
_SECRET_HEADER = re.compile(r"auth|token|secret|key|password|cookie|signature", re.IGNORECASE)


@router.post("/endpoints", status_code=201, response_model=EndpointWithSecret,
             summary="Register a webhook endpoint; its secret is in this answer only")
def create_endpoint(body: EndpointCreate, _caller: Manager, app: App) -> JSONResponse:
    fields = body.model_dump()
    fields["event_types"] = _event_types(fields["event_types"])
    endpoint, secret = app.endpoints.create(EndpointSpec(**fields))
    return JSONResponse({**endpoint_view(endpoint), "secret": secret}, status_code=201)


@router.get("/endpoints", response_model=PageOut[EndpointOut])
def list_endpoints(_caller: Manager, app: App, limit: Limit = DEFAULT_LIMIT,
                   cursor: Cursor = None) -> dict[str, Any]:
    page = app.endpoints.list(cursor=cursor, limit=limit)
    return {"data": [endpoint_view(item) for item in page.items],
            "next_cursor": page.next_cursor}


@router.get("/endpoints/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(endpoint_id: str, _caller: Manager, app: App) -> dict[str, Any]:
    return endpoint_view(app.endpoints.get(endpoint_id))


@router.patch("/endpoints/{endpoint_id}", response_model=EndpointOut,
              summary="Change an endpoint; enabled=true re-enables a disabled one")
def update_endpoint(endpoint_id: str, body: EndpointPatch, _caller: Manager, app: App
                    ) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "event_types" in changes:
        changes["event_types"] = _event_types(changes["event_types"])
    for name in ("filter", "headers"):
        if name in changes and changes[name] is None:
            changes[name] = {}
    return endpoint_view(app.endpoints.update(endpoint_id, changes))


@router.delete("/endpoints/{endpoint_id}", status_code=204, response_class=Response)
def delete_endpoint(endpoint_id: str, _caller: Manager, app: App) -> Response:
    app.endpoints.delete(endpoint_id)
    return Response(status_code=204)


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret,
             summary="New secret; the previous one keeps signing for 24 hours")
def rotate_secret(endpoint_id: str, _caller: Manager, app: App) -> dict[str, Any]:
    endpoint, secret = app.endpoints.rotate_secret(endpoint_id)
    return {**endpoint_view(endpoint), "secret": secret}


@router.post("/endpoints/{endpoint_id}/test", status_code=202, response_model=DeliveryOut,
             summary="Send an endpoint.test message to this endpoint now")
def send_test(endpoint_id: str, caller: Manager, app: App) -> JSONResponse:
    delivery = app.endpoints.send_test(endpoint_id, caller.viewer.origin)
    return JSONResponse(delivery_view(delivery), status_code=202)


@router.post("/endpoints/{endpoint_id}/recover", status_code=202,
             summary="Send again every message that failed since a time")
def recover(endpoint_id: str, body: Recover, _caller: Manager, app: App) -> JSONResponse:
    count = app.endpoints.recover(endpoint_id, as_utc(body.since, "body.since"))
    return JSONResponse({"rescheduled": count}, status_code=202)


@router.get("/endpoints/{endpoint_id}/attempts", response_model=PageOut[AttemptOut],
            summary="Every delivery attempt to this endpoint, newest first")
def list_attempts(endpoint_id: str, _caller: Manager, app: App, limit: Limit = DEFAULT_LIMIT,
                  cursor: Cursor = None) -> dict[str, Any]:
    page = app.endpoints.attempts(endpoint_id, cursor=cursor, limit=limit)
    return {"data": [attempt_view(item) for item in page.items],
            "next_cursor": page.next_cursor}


@router.get("/messages", response_model=PageOut[MessageOut],
            summary="Events as messages, newest first, with where each went")
def list_messages(_caller: Manager, app: App, limit: Limit = DEFAULT_LIMIT,
                  cursor: Cursor = None, event_type: Annotated[str | Omitted, Query(
                      json_schema_extra={"enum": [*SUBSCRIBABLE]})] = None
                  ) -> dict[str, Any]:
    kind = next(iter(_event_types([event_type]))) if event_type else None
    page = app.endpoints.messages(cursor=cursor, limit=limit, event_type=kind)
    return {"data": [message_view(item) for item in page.items],
            "next_cursor": page.next_cursor}


@router.post("/messages/{message_id}/resend", status_code=202, response_model=DeliveryOut,
             summary="Send one message to one endpoint again, with the same webhook-id")
def resend(message_id: str, body: Resend, _caller: Manager, app: App) -> JSONResponse:
    delivery = app.endpoints.resend(message_id, body.endpoint_id)
    return JSONResponse(delivery_view(delivery), status_code=202)


@router.get("/event-types", response_model=PageOut[EventTypeOut],
            summary="Event types an endpoint can subscribe to")
def event_types(_caller: Annotated[Caller, Depends(authenticated)]) -> dict[str, Any]:
    return {"data": [{"name": kind.value, "description": description}
                     for kind, description in EVENT_DESCRIPTIONS.items()],
            "next_cursor": None}


def _event_types(values: list[str] | None) -> frozenset[EventType]:
    known = {kind.value for kind in EVENT_DESCRIPTIONS}
    wrong = [value for value in values or [] if value not in known]
    if wrong:
        raise InvalidInput(
            f"unknown event types: {', '.join(wrong)[:300]}; see GET /api/v1/event-types",
            errors=[{"field": "event_types", "message": f"unknown: {value[:64]}"}
                    for value in wrong],
        )
    return frozenset(EventType(value) for value in values or [])


def endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": sorted(kind.value for kind in endpoint.event_types),
        "filter": dict(endpoint.filter),
        "headers": {name: "********" if _SECRET_HEADER.search(name) else value
                    for name, value in endpoint.headers.items()},
        "template": endpoint.template,
        "timeout": endpoint.timeout,
        "rate_limit": endpoint.rate_limit,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": rfc3339(endpoint.disabled_at),
        "failing_since": rfc3339(endpoint.failing_since),
        "last_success_at": rfc3339(endpoint.last_success_at),
        "created_at": rfc3339(endpoint.created_at),
        "updated_at": rfc3339(endpoint.updated_at),
    }


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "message_id": delivery.event_id,
        "endpoint_id": delivery.endpoint_id,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "next_attempt_at": rfc3339(delivery.next_attempt_at),
        "trigger": delivery.trigger.value,
        "last_status_code": delivery.last_status_code,
        "last_failure": delivery.last_failure,
    }


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "message_id": attempt.event_id,
        "event_type": attempt.event_type,
        "attempt": attempt.number,
        "trigger": attempt.trigger.value,
        "at": rfc3339(attempt.at),
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "response_body": attempt.response_body,
        "failure": attempt.failure.value if attempt.failure else None,
        "detail": attempt.detail,
        "next_attempt_at": rfc3339(attempt.next_attempt_at),
    }


def message_view(message: Message) -> dict[str, Any]:
    event = message.event
    return {
        "id": event.id,
        "type": event.type.value,
        "timestamp": rfc3339(event.occurred_at),
        "incident_id": event.incident_id,
        "incident_version": event.incident_version,
        "deliveries": [delivery_view(item) for item in message.deliveries],
    }


