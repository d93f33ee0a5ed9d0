"""``/api/v1/status-pages/{id}/subscribers`` and ``/api/v1/outgoing-mail`` (scope
``status:publish``): who hears of a page's public updates, and what mail waits for
the mail server and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from interlock.api import problems
from interlock.api.auth import Caller, container, requires
from interlock.api.query import STRICT
from interlock.api.routing import OneHopRoute
from interlock.api.schemas import NO_NUL, PageOut
from interlock.api.schemas import Request as Body
from interlock.domain.keys import Scope
from interlock.domain.mail import ADDRESS_MAX, ADDRESS_PATTERN, MailStatus, OutgoingMail
from interlock.domain.pagination import DEFAULT_LIMIT, MAX_LIMIT
from interlock.domain.subscribers import COMPONENTS_MAX, Subscriber
from interlock.domain.timestamps import rfc3339
from interlock.services.container import Container

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1", tags=["status pages"],
                   responses=problems.documented(400, 401, 403, 404, 409, 413, 415, 422),
                   dependencies=STRICT)
Publisher = Annotated[Caller, requires(Scope.STATUS_PUBLISH)]
App = Annotated[Container, Depends(container)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200)]
ComponentId = Annotated[str, Field(min_length=1, max_length=40, pattern=NO_NUL)]


Components = Annotated[list[ComponentId], Field(
    default_factory=list, max_length=COMPONENTS_MAX,
    description="Component ids of the page to follow; none for the whole page")]


class EmailSubscriberCreate(Body):
    """An address: its owner confirms by a link in a mail before anything else is sent."""

    email: str = Field(max_length=ADDRESS_MAX, examples=["ada@example.com"],
                       json_schema_extra={"pattern": ADDRESS_PATTERN})
    components: Components


class WebhookSubscriberCreate(Body):
    """A webhook URL, active at once; its signing secret is in the answer, once."""

    url: str = Field(max_length=2048, pattern=r"^[hH][tT][tT][pP][sS]?://[^\u0000]*$",
                     examples=["https://example.com/hooks/status"])
    components: Components


SubscriberCreate = EmailSubscriberCreate | WebhookSubscriberCreate


class SubscriberOut(BaseModel):
    id: str
    page_id: str
    type: Literal["email", "webhook"]
    status: Literal["pending", "confirmed", "unsubscribed"]
    email: str | None
    url: str | None
    endpoint_id: str | None = Field(
        description="The webhook's endpoint: its attempts are under /endpoints/{id}/attempts")
    components: list[str]
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    secret: str | None = Field(None, description="The webhook's signing secret; only in the "
                                                  "answer that created it")


class MailOut(BaseModel):
    id: str
    recipient: str
    subject: str
    kind: str
    subscriber_id: str | None
    status: Literal["pending", "sent", "failed"]
    attempts: int
    next_attempt_at: datetime | None = Field(description="When it is tried again (pending)")
    last_error: str | None = Field(description="Why the last try failed")
    created_at: datetime
    sent_at: datetime | None


def subscriber_view(subscriber: Subscriber, secret: str | None = None) -> dict[str, Any]:
    view = {
        "id": subscriber.id, "page_id": subscriber.page_id, "type": subscriber.kind.value,
        "status": subscriber.status.value, "email": subscriber.email, "url": subscriber.url,
        "endpoint_id": subscriber.endpoint_id, "components": list(subscriber.components),
        "created_at": rfc3339(subscriber.created_at),
        "confirmed_at": rfc3339(subscriber.confirmed_at),
        "unsubscribed_at": rfc3339(subscriber.unsubscribed_at),
    }
    if secret is not None:
        view["secret"] = secret
    return view


def mail_view(mail: OutgoingMail) -> dict[str, Any]:
    return {"id": mail.id, "recipient": mail.recipient, "subject": mail.subject,
            "kind": mail.kind.value, "subscriber_id": mail.subscriber_id,
            "status": mail.status.value, "attempts": mail.attempts,
            "next_attempt_at": rfc3339(mail.next_attempt_at), "last_error": mail.last_error,
            "created_at": rfc3339(mail.created_at), "sent_at": rfc3339(mail.sent_at)}


@router.post("/status-pages/{page_id}/subscribers", status_code=201,
             response_model=SubscriberOut,
             summary="Subscribe an address (a confirmation mail goes out first) or a "
                     "webhook URL (its secret is in this answer only)")
def create_subscriber(page_id: str, body: SubscriberCreate, _caller: Publisher, app: App
                      ) -> JSONResponse:
    if isinstance(body, EmailSubscriberCreate):
        subscriber = app.subscribers.subscribe_email(page_id, body.email, body.components)
        return JSONResponse(subscriber_view(subscriber), status_code=201)
    subscriber, secret = app.subscribers.subscribe_webhook(page_id, body.url, body.components)
    return JSONResponse(subscriber_view(subscriber, secret), status_code=201)


@router.get("/status-pages/{page_id}/subscribers", response_model=PageOut[SubscriberOut])
def list_subscribers(page_id: str, _caller: Publisher, app: App, limit: Limit = DEFAULT_LIMIT,
                     cursor: Cursor = None) -> dict[str, Any]:
    page = app.subscribers.list(page_id, cursor=cursor, limit=limit)
    return {"data": [subscriber_view(item) for item in page.items],
            "next_cursor": page.next_cursor}


@router.get("/status-pages/{page_id}/subscribers/{subscriber_id}",
            response_model=SubscriberOut)
def get_subscriber(page_id: str, subscriber_id: str, _caller: Publisher, app: App
                   ) -> dict[str, Any]:
    return subscriber_view(app.subscribers.get(page_id, subscriber_id))


@router.delete("/status-pages/{page_id}/subscribers/{subscriber_id}", status_code=204,
               response_class=Response)
def delete_subscriber(page_id: str, subscriber_id: str, _caller: Publisher, app: App
                      ) -> Response:
    app.subscribers.delete(page_id, subscriber_id)
    return Response(status_code=204)


@router.get("/outgoing-mail", response_model=PageOut[MailOut],
            summary="Mail to subscribers, newest first: what was sent, what waits for the "
                    "mail server (attempts, next try, last error)")
def list_mail(_caller: Publisher, app: App, limit: Limit = DEFAULT_LIMIT,
              cursor: Cursor = None, status: MailStatus | None = None,
              subscriber_id: Annotated[str | None, Query(max_length=40)] = None
              ) -> dict[str, Any]:
    page = app.mail.list(cursor=cursor, limit=limit, status=status,
                         subscriber_id=subscriber_id)
    return {"data": [mail_view(item) for item in page.items],
            "next_cursor": page.next_cursor}
