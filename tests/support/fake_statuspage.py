"""An Atlassian Statuspage on loopback, speaking the part of its REST API v1 Interlock uses.

Written from Atlassian's documentation of the "Manage" API (https://developer.statuspage.io,
generated from its OpenAPI document; the field tables are the same in the SDKs generated
from it):

* Authentication: ``Authorization: OAuth <api key>`` on every request; anything else is
  401 ``{"error": "Could not authenticate"}``.
  (developer.statuspage.io, "Authentication")
* Rate limit: one request per second per API key, the limit issue 16 states. The
  Atlassian text found for it, the 2020 notice "Upcoming rate limiting changes to
  Statuspage REST API" (community.atlassian.com), gives 60 requests a minute (1 a
  minute for unpaginated component lists, which Interlock never asks for), answered
  over it with 429 and a ``Retry-After`` header (420 before February 2021). The fake
  holds the stricter reading: any second request of a key within one second is a 429.
* ``POST /v1/pages/{page_id}/incidents`` with ``{"incident": {...}}``: ``name`` (at most
  255 characters), ``status`` (``investigating|identified|monitoring|resolved`` for a
  realtime incident), ``body`` (the first incident update, at most 25,000
  characters), ``components`` (``{"<component id>": "<component status>"}``: sets those
  components' statuses), ``component_ids``, ``deliver_notifications`` (default true).
  Answers 201 with the incident. (developer.statuspage.io, "Create an incident")
* ``PATCH /v1/pages/{page_id}/incidents/{incident_id}``, the same fields: a new status
  or body adds an incident update. (developer.statuspage.io, "Update an incident")
* ``GET /v1/pages/{page_id}/incidents/{incident_id}``: the incident, its
  ``incident_updates`` newest first, each with ``id``, ``status``, ``body``,
  ``created_at``, ``display_at``, ``affected_components``
  (``[{"code", "name", "old_status", "new_status"}]``), ``deliver_notifications``.
  (developer.statuspage.io, "Get an incident"; the Incident and IncidentUpdate schemas)
* ``PATCH /v1/pages/{page_id}/components/{component_id}`` with
  ``{"component": {"status": ...}}``; statuses ``operational``,
  ``under_maintenance``, ``degraded_performance``, ``partial_outage``,
  ``major_outage``. (developer.statuspage.io, "Update a component")

An incident update carries no author, so "who wrote it" is only known to whoever kept
the ids it created. Statuspage's own webhooks go to page *subscribers*, unsigned and
without an author either (support.atlassian.com, "Enable webhook notifications"), so
Interlock reads changes back by polling the incident; the fake has no webhooks.

A test plays "a person in Statuspage" with :meth:`post_update_as_person` and
:meth:`resolve_as_person`. Use as ``with FakeStatuspage() as statuspage:``.
"""

from __future__ import annotations

import itertools
import json
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.loopback import LoopbackServer

INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = ("operational", "under_maintenance", "degraded_performance",
                      "partial_outage", "major_outage")
#: The documented limit: one request per second per API key.
RATE_INTERVAL = 1.0
NAME_MAX = 255
BODY_MAX = 25_000


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    json: Any
    at: float
    status: int


@dataclass
class Component:
    id: str
    name: str
    status: str = "operational"

    def to_json(self, page_id: str) -> dict[str, Any]:
        return {"id": self.id, "page_id": page_id, "group_id": None, "name": self.name,
                "description": None, "position": 1, "status": self.status,
                "showcase": True, "only_show_if_degraded": False, "group": False,
                "created_at": "2026-01-01T00:00:00.000Z", "updated_at": _now()}


@dataclass
class Incident:
    id: str
    name: str
    status: str
    created_at: str
    updates: list[dict[str, Any]] = field(default_factory=list)  # newest first
    component_ids: list[str] = field(default_factory=list)
    resolved_at: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ids(prefix: str) -> Any:
    """Statuspage ids are 12 lowercase letters and digits; these stay readable."""
    alphabet = string.ascii_lowercase
    return (f"{prefix}{alphabet[n // 26 % 26]}{alphabet[n % 26]}{n:06d}"[:12]
            for n in itertools.count(1))


class FakeStatuspage(LoopbackServer):
    name = "fake Statuspage"

    def __init__(self, *, page_id: str = "kctbh9vrtdwd", api_key: str = "sp-api-key",
                 components: dict[str, str] | None = None) -> None:
        super().__init__()
        self.page_id, self.api_key = page_id, api_key
        self.components = {
            component_id: Component(component_id, name)
            for component_id, name in (components or {"ftgks51sfs2d": "API",
                                                      "bb5w0kc1234x": "Website"}).items()}
        self.incidents: dict[str, Incident] = {}
        #: Set to answer every request with 503.
        self.down = False
        self._requests: list[Recorded] = []
        self._last_request: dict[str, float] = {}
        self._lock = threading.Lock()
        self._incident_ids = _ids("inc")
        self._update_ids = _ids("upd")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    # -- what tests read ---------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def rate_limited(self) -> list[Recorded]:
        return [item for item in self.requests if item.status == 429]

    def incident(self, incident_id: str | None = None) -> Incident:
        with self._lock:
            if incident_id is None:
                [only] = self.incidents.values()
                return only
            return self.incidents[incident_id]

    def component_status(self, component_id: str) -> str:
        with self._lock:
            return self.components[component_id].status

    # -- a person in Statuspage --------------------------------------------------------

    def post_update_as_person(self, incident_id: str, status: str, body: str) -> str:
        """Post an update in Statuspage's own UI; its id."""
        with self._lock:
            incident = self.incidents[incident_id]
            return self._add_update(incident, status, body, {}, deliver=True)

    def resolve_as_person(self, incident_id: str, body: str = "This incident has been "
                          "resolved.") -> str:
        return self.post_update_as_person(incident_id, "resolved", body)

    # -- the API ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._answer(request, None, 400, {"error": "Malformed JSON"})
        if self.down:
            return self._answer(request, body, 503, {"error": "Service Unavailable"})
        auth = request.headers.get("Authorization", "")
        if auth != f"OAuth {self.api_key}":
            return self._answer(request, body, 401, {"error": "Could not authenticate"})
        now = time.monotonic()
        with self._lock:
            last = self._last_request.get(auth)
            self._last_request[auth] = now
        if last is not None and now - last < RATE_INTERVAL:
            return self._answer(request, body, 429, {"error": "Rate limit exceeded"},
                                headers={"Retry-After": "1"})
        parts = request.path.strip("/").split("/")
        if parts[:2] != ["v1", "pages"] or len(parts) < 4 or parts[2] != self.page_id:
            return self._answer(request, body, 404, {"error": "Page not found"})
        with self._lock:
            status, answer = self._route(request.method, parts[3:], body)
        return self._answer(request, body, status, answer)

    def _answer(self, request: web.Request, body: Any, status: int, answer: Any,
                headers: dict[str, str] | None = None) -> web.Response:
        with self._lock:
            self._requests.append(Recorded(request.method, request.path, body,
                                           time.monotonic(), status))
        return web.json_response(answer, status=status, headers=headers)

    def _route(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if rest == ["incidents"] and method == "POST":
            return self._create(body)
        if len(rest) == 2 and rest[0] == "incidents":
            incident = self.incidents.get(rest[1])
            if incident is None:
                return 404, {"error": "Incident not found"}
            if method == "GET":
                return 200, self._incident_json(incident)
            if method == "PATCH":
                return self._update(incident, body)
        if len(rest) == 2 and rest[0] == "components" and method == "PATCH":
            return self._patch_component(rest[1], body)
        if rest == ["components"] and method == "GET":
            return 200, [item.to_json(self.page_id) for item in self.components.values()]
        return 404, {"error": "Not found"}

    def _fields(self, body: Any, creating: bool) -> tuple[dict[str, Any] | None, str | None]:
        fields = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return None, "incident is missing"
        name = fields.get("name")
        if creating and not (isinstance(name, str) and name.strip()):
            return None, "Name can't be blank"
        if name is not None and (not isinstance(name, str) or len(name) > NAME_MAX):
            return None, f"Name is too long (maximum is {NAME_MAX} characters)"
        status = fields.get("status")
        if status is not None and status not in INCIDENT_STATUSES:
            return None, f"Status {status!r} is not a valid realtime incident status"
        text = fields.get("body")
        if text is not None and (not isinstance(text, str) or len(text) > BODY_MAX):
            return None, f"Body is too long (maximum is {BODY_MAX} characters)"
        components = fields.get("components") or {}
        if not isinstance(components, dict):
            return None, "components must map component ids to statuses"
        for component_id, value in components.items():
            if component_id not in self.components:
                return None, f"Component {component_id} not found"
            if value not in COMPONENT_STATUSES:
                return None, f"Component status {value!r} is not valid"
        return fields, None

    def _create(self, body: Any) -> tuple[int, Any]:
        fields, error = self._fields(body, creating=True)
        if fields is None:
            return 422, {"error": error}
        incident = Incident(id=next(self._incident_ids), name=fields["name"],
                            status=fields.get("status") or "investigating",
                            created_at=_now())
        self.incidents[incident.id] = incident
        self._apply(incident, fields, force_update=True)
        return 201, self._incident_json(incident)

    def _update(self, incident: Incident, body: Any) -> tuple[int, Any]:
        fields, error = self._fields(body, creating=False)
        if fields is None:
            return 422, {"error": error}
        if fields.get("name"):
            incident.name = fields["name"]
        self._apply(incident, fields, force_update=False)
        return 200, self._incident_json(incident)

    def _apply(self, incident: Incident, fields: dict[str, Any], force_update: bool) -> None:
        status = fields.get("status") or incident.status
        components = dict(fields.get("components") or {})
        for component_id in fields.get("component_ids") or list(components):
            if component_id in self.components and component_id not in incident.component_ids:
                incident.component_ids.append(component_id)
        if force_update or fields.get("body") or status != incident.status or components:
            self._add_update(incident, status, str(fields.get("body") or ""), components,
                             deliver=fields.get("deliver_notifications", True) is not False)

    def _add_update(self, incident: Incident, status: str, body: str,
                    components: dict[str, str], deliver: bool) -> str:
        affected = []
        for component_id, new_status in components.items():
            component = self.components[component_id]
            affected.append({"code": component_id, "name": component.name,
                             "old_status": component.status, "new_status": new_status})
            component.status = new_status
        incident.status = status
        at = _now()
        if status == "resolved" and incident.resolved_at is None:
            incident.resolved_at = at
        update_id = next(self._update_ids)
        incident.updates.insert(0, {
            "id": update_id, "incident_id": incident.id, "status": status, "body": body,
            "created_at": at, "display_at": at, "updated_at": at,
            "affected_components": affected, "deliver_notifications": deliver,
            "custom_tweet": None, "tweet_id": None, "twitter_updated_at": None,
            "wants_twitter_update": False,
        })
        return update_id

    def _patch_component(self, component_id: str, body: Any) -> tuple[int, Any]:
        component = self.components.get(component_id)
        if component is None:
            return 404, {"error": "Component not found"}
        fields = body.get("component") if isinstance(body, dict) else None
        status = fields.get("status") if isinstance(fields, dict) else None
        if status not in COMPONENT_STATUSES:
            return 422, {"error": f"Status {status!r} is not a valid component status"}
        component.status = status
        return 200, component.to_json(self.page_id)

    def _incident_json(self, incident: Incident) -> dict[str, Any]:
        return {
            "id": incident.id, "page_id": self.page_id, "name": incident.name,
            "status": incident.status, "impact": "minor", "impact_override": None,
            "created_at": incident.created_at, "updated_at": _now(),
            "monitoring_at": None, "resolved_at": incident.resolved_at,
            "shortlink": f"https://stspg.io/{incident.id[-5:]}",
            "postmortem_body": None, "metadata": {},
            "incident_updates": [dict(update) for update in incident.updates],
            "components": [self.components[component_id].to_json(self.page_id)
                           for component_id in incident.component_ids],
        }
