"""A PagerDuty account on loopback, speaking the part of REST API v2 Interlock uses, and
sending v3 webhooks the way PagerDuty does.

Fidelity comes from PagerDuty's own descriptions, not from what the driver happens to
send: every request is checked against PagerDuty's OpenAPI description (body schema,
the ``From`` header where the operation requires it, the versioned ``Accept``), and
every answer the fake gives is checked against it too; a mismatch on either side is
kept in ``violations`` (tests assert it stays empty) and a bad request is refused with
PagerDuty's error shape. Answers are the documented response examples with this
account's values filled in; webhooks are the documented v3 payloads
(``tests/fixtures/pagerduty``), signed ``v1=`` with every signing secret, with an
``X-Webhook-Id``.

Like PagerDuty, the fake sends a webhook for every change, whoever made it: an API
write shows the ``From`` user as the event's agent, which is how Interlock must tell
its own changes from people's. ``subscribe(url)`` starts deliveries, in order, one at
a time (PagerDuty orders per incident); ``deliveries`` records what each got back.

Rate limits (developer.pagerduty.com, REST API Rate Limits): ``rate_limit(n, reset)``
answers the next ``n`` requests 429 with the documented ``ratelimit-*`` headers and
body.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support import pd_spec
from tests.support.hook_sender import Delivery, HookSender
from tests.support.loopback import LoopbackServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pagerduty"
ACCEPT = "application/vnd.pagerduty+json;version=2"
API_KEY = "u+pd-api-key-for-tests"
WEBHOOK_SECRET = "pd-signing-secret"
SERVICE_ID = "PSVC123"
POLICY_ID = "PEP4567"


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str


#: The From user: Interlock itself, as PagerDuty sees it.
BOT = User("PBOT123", "Interlock Bot", "interlock@example.com")
ALICE = User("PALICE1", "Alice Oncall", "alice@example.com")
BOB = User("PBOB234", "Bob Second", "bob@example.com")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass(frozen=True)
class Webhook:
    event_type: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Note:
    id: str
    user: User
    content: str
    created_at: str


@dataclass
class Incident:
    id: str
    number: int
    title: str
    urgency: str
    incident_key: str | None
    details: str
    created_at: str
    status: str = "triggered"
    assignee: User | None = None
    acknowledged_by: User | None = None
    updated_at: str = ""
    notes: list[Note] = field(default_factory=list)


class FakePagerDuty(LoopbackServer):
    name = "fake PagerDuty"

    def __init__(self, *, api_key: str = API_KEY, secrets: tuple[str, ...] = (WEBHOOK_SECRET,),
                 on_call: User = ALICE) -> None:
        super().__init__()
        self.api_key = api_key
        self.secrets = secrets
        self.on_call = on_call
        self.users = (BOT, ALICE, BOB)
        self.incidents: dict[str, Incident] = {}
        #: Spec mismatches of requests sent to the fake, or of the fake's own answers.
        self.violations: list[str] = []
        self.sender = HookSender()
        #: Every webhook PagerDuty made, delivered or not (no subscription).
        self.emitted: list[Webhook] = []
        self.hook_url: str | None = None
        self._requests: list[Recorded] = []
        self._limited: list[float] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._ids = itertools.count(1000)

    # -- running ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_startup.append(lambda _: self.sender.start())
        app.on_cleanup.append(lambda _: self.sender.stop())

    def subscribe(self, url: str) -> None:
        """Deliver a webhook to ``url`` for every change from now on."""
        self.hook_url = url

    # -- what tests read -------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def calls(self) -> list[tuple[str, str]]:
        return [(item.method, item.path) for item in self.requests]

    def forget_requests(self) -> None:
        with self._lock:
            self._requests.clear()
        self.sender.clear()

    @property
    def deliveries(self) -> list[tuple[str, int | str]]:
        """(event type, HTTP status or error) of every webhook delivered, in order."""
        return self.sender.snapshot()

    def rate_limit(self, count: int, reset: float) -> None:
        """Answer the next ``count`` requests 429, saying the limit resets in ``reset`` s."""
        with self._lock:
            self._limited.extend([reset] * count)

    def only(self) -> Incident:
        with self._lock:
            [incident] = self.incidents.values()
            return incident

    # -- a person in PagerDuty ---------------------------------------------------------

    def acknowledge_as(self, incident_id: str, by: User = ALICE) -> Webhook:
        return self._change_status(incident_id, "acknowledged", by)

    def resolve_as(self, incident_id: str, by: User = ALICE) -> Webhook:
        return self._change_status(incident_id, "resolved", by)

    def reassign_as(self, incident_id: str, to: User, by: User = ALICE) -> Webhook:
        with self._lock:
            incident = self.incidents[incident_id]
            incident.assignee = to
            incident.updated_at = _now()
            return self._emit("incident.reassigned", incident, by)

    def note_as(self, incident_id: str, text: str, by: User = ALICE) -> Webhook:
        with self._lock:
            incident = self.incidents[incident_id]
            note = self._add_note(incident, by, text)
            return self._emit("incident.annotated", incident, by, note=note)

    def signed(self, event_type: str, payload: Any, secrets: tuple[str, ...] | None = None
               ) -> Webhook:
        body = json.dumps(payload).encode()
        signatures = ",".join(
            "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            for secret in (secrets or self.secrets))
        return Webhook(event_type, {
            "Content-Type": "application/json", "User-Agent": "PagerDuty-Webhook/V3.0",
            "X-PagerDuty-Signature": signatures, "X-Webhook-Id": str(uuid.uuid4()),
            "X-Webhook-Subscription": "PSUB001"}, body)

    def _change_status(self, incident_id: str, status: str, by: User) -> Webhook:
        with self._lock:
            incident = self.incidents[incident_id]
            event_type = self._set_status(incident, status, by)
            return self._emit(event_type or f"incident.{status}", incident, by)

    # -- the REST API ----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        method, path = request.method, request.path
        with self._lock:
            self._requests.append(Recorded(method, path, dict(request.query),
                                           dict(request.headers), body))
            if self._limited:
                reset = self._limited.pop(0)
                return web.Response(status=429, content_type="application/json", headers={
                    "ratelimit-limit": "960", "ratelimit-remaining": "0",
                    "ratelimit-reset": f"{reset:g}"}, body=json.dumps({"error": {
                        "message": "Rate Limit Exceeded", "code": 2020}}).encode())
            status, answer = self._answer(method, path, request, body)
            if status != 404:
                for problem in pd_spec.response_errors(method, path, status, answer):
                    self.violations.append(f"fake answered {method} {path} {status}: {problem}")
        return web.Response(status=status, body=json.dumps(answer).encode(),
                            content_type="application/json")

    def _answer(self, method: str, path: str, request: web.Request, body: Any
                ) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"Token token={self.api_key}":
            return 401, _error("Unauthorized", 2006)
        try:
            template = pd_spec.template_of(path)
        except KeyError:
            return 404, _error("Not Found", 2100)
        if request.headers.get("Accept") != ACCEPT:
            self.violations.append(f"{method} {path} without Accept: {ACCEPT}")
        if pd_spec.header_required(method, path, "From"):
            sender = request.headers.get("From", "")
            if not sender:
                self.violations.append(f"{method} {path} without the From header")
                return 400, _error("Invalid Input Provided", 2001, ["From header is missing"])
            if not any(user.email == sender for user in self.users):
                return 400, _error("Invalid Input Provided", 2001,
                                   ["Requester User Not Found"])
        for problem in pd_spec.query_errors(method, path, list(request.query.items())):
            self.violations.append(problem)
        problems = pd_spec.request_errors(method, path, body)
        if problems:
            self.violations.extend(f"{method} {path} body: {item}" for item in problems)
            return 400, _error("Invalid Input Provided", 2001, problems)
        actor = next((user for user in self.users
                      if user.email == request.headers.get("From")), BOT)
        return self._route(method, template, path.split("/"), request, body, actor)

    def _route(self, method: str, template: str, parts: list[str], request: web.Request,
               body: Any, actor: User) -> tuple[int, Any]:
        if template == "/users":
            wanted = request.query.get("query", "").lower()
            return 200, {"users": [self._user_json(user) for user in self.users
                                   if wanted in user.email.lower() or wanted in user.name.lower()],
                         "limit": 25, "offset": 0, "more": False, "total": None}
        if (method, template) == ("POST", "/incidents"):
            return self._create(body["incident"], actor)
        if (method, template) == ("GET", "/incidents"):
            key = request.query.get("incident_key")
            statuses = request.query.getall("statuses[]", [])
            found = [self._incident_json(item) for item in self.incidents.values()
                     if (key is None or item.incident_key == key)
                     and (not statuses or item.status in statuses)]
            return 200, {"incidents": found, "limit": 25, "offset": 0, "more": False,
                         "total": None}
        incident = self.incidents.get(parts[2])
        if incident is None:
            return 404, _error("Not Found", 2100)
        if (method, template) == ("GET", "/incidents/{id}"):
            return 200, {"incident": self._incident_json(incident)}
        if (method, template) == ("PUT", "/incidents/{id}"):
            return self._update(incident, body["incident"], actor)
        if (method, template) == ("GET", "/incidents/{id}/notes"):
            return 200, {"notes": [self._note_json(note) for note in incident.notes]}
        if (method, template) == ("POST", "/incidents/{id}/notes"):
            note = self._add_note(incident, actor, body["note"]["content"])
            self._emit("incident.annotated", incident, actor, note=note)
            return 200, {"note": self._note_json(note)}
        return 404, _error("Not Found", 2100)

    def _create(self, given: dict[str, Any], actor: User) -> tuple[int, Any]:
        if given["service"].get("id") != SERVICE_ID:
            return 400, _error("Invalid Input Provided", 2001, ["Service not found"])
        key = given.get("incident_key")
        if key and any(item.incident_key == key and item.status != "resolved"
                       for item in self.incidents.values()):
            return 400, _error("Invalid Input Provided", 2001, [
                "Open incident with matching dedup key already exists on this service"])
        body = given.get("body") or {}
        incident = Incident(id=f"Q{next(self._ids)}INC", number=next(self._numbers),
                            title=given["title"], urgency=given.get("urgency", "high"),
                            incident_key=key, details=str(body.get("details") or ""),
                            created_at=_now(), assignee=self.on_call, updated_at=_now())
        self.incidents[incident.id] = incident
        self._emit("incident.triggered", incident, actor)
        return 201, {"incident": self._incident_json(incident)}

    def _update(self, incident: Incident, given: dict[str, Any], actor: User
                ) -> tuple[int, Any]:
        if "title" in given:
            incident.title = given["title"]
        if "urgency" in given:
            incident.urgency = given["urgency"]
        if "status" in given:
            event_type = self._set_status(incident, given["status"], actor)
            if event_type:
                self._emit(event_type, incident, actor)
        incident.updated_at = _now()
        return 200, {"incident": self._incident_json(incident)}

    def _set_status(self, incident: Incident, status: str, by: User) -> str | None:
        """Change the status as PagerDuty does; the webhook event type, None if no change."""
        before = incident.status
        if status == before:
            return None
        incident.status = status
        incident.updated_at = _now()
        if status == "acknowledged":
            incident.acknowledged_by = by
            return "incident.acknowledged"
        incident.acknowledged_by = None
        if status == "resolved":
            return "incident.resolved"
        return "incident.reopened" if before == "resolved" else "incident.unacknowledged"

    def _add_note(self, incident: Incident, user: User, content: str) -> Note:
        note = Note(id=f"N{next(self._ids)}", user=user, content=content, created_at=_now())
        incident.notes.append(note)
        return note

    # -- webhooks ----------------------------------------------------------------------

    def _emit(self, event_type: str, incident: Incident, agent: User,
              note: Note | None = None) -> Webhook:
        payload = _fixture("webhook_incident_note.json" if note else "webhook_incident.json")
        event = payload["event"]
        event.update(id=str(uuid.uuid4()), event_type=event_type, occurred_at=_now(),
                     agent=self._reference(agent, "users"), client=None)
        if note is not None:
            event["data"].update(id=note.id, content=note.content, incident={
                **self._reference_of(incident), "summary": incident.title})
        else:
            data = event["data"]
            data.update(id=incident.id, number=incident.number, status=incident.status,
                        title=incident.title, urgency=incident.urgency,
                        incident_key=incident.incident_key, created_at=incident.created_at,
                        self=f"{self.url}/incidents/{incident.id}",
                        html_url=f"{self.url}/web/incidents/{incident.id}",
                        assignees=[self._reference(incident.assignee, "users")]
                        if incident.assignee else [], priority=None)
            data["service"].update(id=SERVICE_ID, summary="Checkout")
        webhook = self.signed(event_type, payload)
        self.emitted.append(webhook)
        if self.hook_url:
            self.sender.send(Delivery(event_type, webhook.headers, webhook.body),
                             self.hook_url)
        return webhook

    # -- rendering, from the documented examples ---------------------------------------

    def _incident_json(self, incident: Incident) -> dict[str, Any]:
        answer: dict[str, Any] = pd_spec.example("get", "/incidents/{id}", 200)["incident"]
        for name in ("incidents_responders", "responder_requests", "pending_actions",
                     "custom_fields", "priority", "teams"):
            answer.pop(name, None)
        answer.update(
            id=incident.id, incident_number=incident.number, title=incident.title,
            summary=f"[#{incident.number}] {incident.title}", status=incident.status,
            urgency=incident.urgency, incident_key=incident.incident_key,
            created_at=incident.created_at, updated_at=incident.updated_at or incident.created_at,
            last_status_change_at=incident.updated_at or incident.created_at,
            resolved_at=incident.updated_at if incident.status == "resolved" else None,
            self=f"{self.url}/incidents/{incident.id}",
            html_url=f"{self.url}/web/incidents/{incident.id}",
            service={**answer["service"], "id": SERVICE_ID, "summary": "Checkout"},
            assignments=[{"at": incident.created_at,
                          "assignee": self._reference(incident.assignee, "users")}]
            if incident.assignee and incident.status != "resolved" else [],
            acknowledgements=[{"at": incident.updated_at,
                               "acknowledger": self._reference(incident.acknowledged_by,
                                                               "users")}]
            if incident.acknowledged_by else [])
        return answer

    def _note_json(self, note: Note) -> dict[str, Any]:
        answer: dict[str, Any] = pd_spec.example("get", "/incidents/{id}/notes", 200)["notes"][0]
        answer.update(id=note.id, user=self._reference(note.user, "users"),
                      content=note.content, created_at=note.created_at,
                      updated_at=note.created_at)
        return answer

    def _user_json(self, user: User) -> dict[str, Any]:
        answer: dict[str, Any] = pd_spec.example("get", "/users", 200)["users"][0]
        answer.update(id=user.id, name=user.name, summary=user.name, email=user.email,
                      self=f"{self.url}/users/{user.id}",
                      html_url=f"{self.url}/web/users/{user.id}")
        return answer

    def _reference(self, user: User | None, kind: str) -> dict[str, Any]:
        assert user is not None
        return {"id": user.id, "type": "user_reference", "summary": user.name,
                "self": f"{self.url}/{kind}/{user.id}",
                "html_url": f"{self.url}/web/{kind}/{user.id}"}

    def _reference_of(self, incident: Incident) -> dict[str, Any]:
        return {"id": incident.id, "type": "incident_reference",
                "self": f"{self.url}/incidents/{incident.id}",
                "html_url": f"{self.url}/web/incidents/{incident.id}"}


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def _error(message: str, code: int, errors: list[str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "code": code}
    if errors:
        error["errors"] = errors
    return {"error": error}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
