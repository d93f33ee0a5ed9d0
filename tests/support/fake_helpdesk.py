"""A generic ticketing API on loopback, for the README's second generic HTTP connector
example: not any one product, but the shape most in-house and smaller ticketing tools
have, so the example shows the connector's other options.

* ``X-API-Key`` authentication (401 ``{"error": "unauthorized"}`` otherwise);
* ``POST /api/tickets`` → 201 ticket; ``GET``/``PATCH /api/tickets/{id}`` (statuses
  ``new``, ``in_progress``, ``closed``; priorities ``urgent``, ``high``, ``normal``,
  ``low``; 422 ``{"error", "field"}`` otherwise); ``POST /api/tickets/{id}/notes``;
  a ticket embeds its notes, each with an author ``{"name", "type"}`` whose type is
  ``agent`` for a person and ``integration`` for an API key;
* webhooks (``ticket.updated``, ``ticket.note_added``, ``ping``) signed with
  ``X-Helpdesk-Signature``: base64 HMAC-SHA256 of ``{X-Helpdesk-Timestamp}.{body}``,
  with a delivery id in ``X-Helpdesk-Delivery``.

Use as ``with FakeHelpdesk() as helpdesk:``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.loopback import LoopbackServer

API_KEY = "hd_live_test_key"
WEBHOOK_SECRET = "helpdesk-webhook-secret"
STATUSES = ("new", "in_progress", "closed")
PRIORITIES = ("urgent", "high", "normal", "low")
#: The name tickets show for changes made with the API key.
INTEGRATION = {"name": "Interlock", "type": "integration"}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    json: Any


@dataclass(frozen=True)
class Webhook:
    headers: dict[str, str]
    body: bytes


@dataclass
class Ticket:
    id: str
    subject: str
    description: str
    priority: str
    status: str = "new"
    assignee: str | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)


class FakeHelpdesk(LoopbackServer):
    name = "fake helpdesk"

    def __init__(self) -> None:
        super().__init__()
        self.tickets: dict[str, Ticket] = {}
        #: Set to answer every request with 503 and Retry-After, as during an outage.
        self.down = False
        self._requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count(1001)
        self._notes = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def forget_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- an agent in the helpdesk ----------------------------------------------------

    def move_as(self, ticket_id: str, status: str, by: str = "Bob Agent") -> Webhook:
        with self._lock:
            self.tickets[ticket_id].status = status
        return self.webhook("ticket.updated", ticket_id, {"name": by, "type": "agent"})

    def assign_as(self, ticket_id: str, assignee: str | None, by: str = "Bob Agent"
                  ) -> Webhook:
        with self._lock:
            self.tickets[ticket_id].assignee = assignee
        return self.webhook("ticket.updated", ticket_id, {"name": by, "type": "agent"})

    def note_as(self, ticket_id: str, text: str, by: str = "Bob Agent") -> Webhook:
        with self._lock:
            self._add_note(self.tickets[ticket_id], text, {"name": by, "type": "agent"})
        return self.webhook("ticket.note_added", ticket_id, {"name": by, "type": "agent"})

    def webhook(self, event: str, ticket_id: str | None, actor: dict[str, str],
                timestamp: int | None = None, secret: str = WEBHOOK_SECRET) -> Webhook:
        payload = {"event": event, "ticket": {"id": ticket_id} if ticket_id else None,
                   "actor": actor}
        body = json.dumps(payload).encode()
        sent_at = str(int(time.time()) if timestamp is None else timestamp)
        digest = hmac.new(secret.encode(), f"{sent_at}.".encode() + body,
                          hashlib.sha256).digest()
        return Webhook(headers={
            "Content-Type": "application/json",
            "X-Helpdesk-Delivery": str(uuid.uuid4()),
            "X-Helpdesk-Timestamp": sent_at,
            "X-Helpdesk-Signature": base64.b64encode(digest).decode(),
        }, body=body)

    # -- the API ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _json(400, {"error": "body is not JSON"})
        with self._lock:
            self._requests.append(Recorded(request.method, request.path, body))
            if self.down:
                return web.Response(status=503, text="maintenance",
                                    headers={"Retry-After": "7"})
            if not hmac.compare_digest(request.headers.get("X-API-Key", "").encode(),
                                       API_KEY.encode()):
                return _json(401, {"error": "unauthorized"})
            return self._route(request.method, request.path.strip("/").split("/"), body)

    def _route(self, method: str, parts: list[str], body: Any) -> web.Response:
        if parts[:2] != ["api", "tickets"] or not isinstance(body, dict):
            return _json(404, {"error": "not found"})
        rest = parts[2:]
        if not rest and method == "POST":
            return self._create(body)
        ticket = self.tickets.get(rest[0]) if rest else None
        if ticket is None:
            return _json(404, {"error": "not found"})
        if method == "GET" and len(rest) == 1:
            return _json(200, self._ticket_json(ticket))
        if method == "PATCH" and len(rest) == 1:
            return self._update(ticket, body)
        if method == "POST" and rest[1:] == ["notes"]:
            text = body.get("text")
            if not isinstance(text, str) or not text:
                return _json(422, {"error": "a note needs text", "field": "text"})
            return _json(201, self._add_note(ticket, text, INTEGRATION))
        return _json(405, {"error": "method not allowed"})

    def _create(self, body: dict[str, Any]) -> web.Response:
        subject = body.get("subject")
        if not isinstance(subject, str) or not subject:
            return _json(422, {"error": "a ticket needs a subject", "field": "subject"})
        priority = body.get("priority") or "normal"
        if priority not in PRIORITIES:
            return _json(422, {"error": f"unknown priority {priority}", "field": "priority"})
        ticket = Ticket(id=f"T-{next(self._numbers)}", subject=subject,
                        description=str(body.get("description") or ""), priority=priority)
        self.tickets[ticket.id] = ticket
        return _json(201, self._ticket_json(ticket))

    def _update(self, ticket: Ticket, body: dict[str, Any]) -> web.Response:
        unknown = set(body) - {"subject", "description", "priority", "status"}
        if unknown:
            return _json(422, {"error": "unknown field", "field": sorted(unknown)[0]})
        if "status" in body and body["status"] not in STATUSES:
            return _json(422, {"error": f"unknown status {body['status']}", "field": "status"})
        if "priority" in body and (body["priority"] or "normal") not in PRIORITIES:
            return _json(422, {"error": "unknown priority", "field": "priority"})
        for name, value in body.items():
            if name == "priority":
                value = value or "normal"
            setattr(ticket, name, value)
        return _json(200, self._ticket_json(ticket))

    def _add_note(self, ticket: Ticket, text: str, author: dict[str, str]) -> dict[str, Any]:
        note = {"id": f"N-{next(self._notes)}", "author": dict(author), "text": text}
        ticket.notes.append(note)
        return note

    def _ticket_json(self, ticket: Ticket) -> dict[str, Any]:
        return {"id": ticket.id, "subject": ticket.subject,
                "description": ticket.description, "priority": ticket.priority,
                "status": ticket.status,
                "assignee": {"name": ticket.assignee} if ticket.assignee else None,
                "notes": list(ticket.notes),
                "links": {"web": f"https://helpdesk.example.com/t/{ticket.id}"}}


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(),
                        content_type="application/json")
