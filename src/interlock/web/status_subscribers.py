"""The console's view of a status page's subscribers and of the mail sent to them:
what waits for the mail server, how many tries it had, and why the last one failed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from interlock.domain.keys import Scope
from interlock.web.pages import ConsoleRoute, container, render, visitor
from interlock.web.session import Visitor

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Signed = Annotated[Visitor, Depends(visitor)]
#: Subscribers shown, and recent mails looked through for this page's.
SHOWN = 200


@router.get("/status-pages/{page_id}/subscribers")
def subscribers_page(request: Request, page_id: str, person: Signed) -> Response:
    person.require(Scope.STATUS_PUBLISH)
    app = container(request)
    page = app.status_pages.get_page(page_id)
    subscribers = app.subscribers.list(page_id, cursor=None, limit=SHOWN).items
    names = {component.id: component.name for component in app.status_pages.components(page_id)}
    ours = {subscriber.id for subscriber in subscribers}
    mail = [item for item in app.mail.list(cursor=None, limit=SHOWN).items
            if item.subscriber_id in ours]
    return render(request, "status_subscribers.html", {
        "page": page, "subscribers": subscribers, "names": names, "mail": mail,
        "counts": app.mail.counts()}, visitor=person)
