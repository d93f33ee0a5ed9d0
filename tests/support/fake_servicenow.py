"""A ServiceNow instance on loopback: the ``incident`` and ``sys_journal_field`` tables
through the Table API, OAuth client credentials, and the Business Rule the README
tells people to add.

What it follows, from ServiceNow's documentation:

* Table API (REST API reference > Table API): ``/api/now/table/{table}`` and
  ``/{sys_id}``; answers wrapped as ``{"result": …}``; ``sysparm_fields`` narrows the
  fields; ``sysparm_display_value`` false (values), true (labels) or all (both, as
  ``{"display_value", "value"}``); reference fields carry ``{"link", "value"}`` unless
  ``sysparm_exclude_reference_link=true``; ``sysparm_query`` encoded queries
  (``a=b^c=d^ORDERBYx``); a POST answers 201, a PATCH 200.
* Errors (REST API HTTP response codes): ``{"error": {"message", "detail"},
  "status": "failure"}``, 401 "User Not Authenticated", 404 "No Record found".
* Inbound REST API rate limiting: 429 with ``Retry-After`` (seconds) and
  ``X-RateLimit-Limit`` / ``X-RateLimit-Reset`` (``rate_limit(n, seconds)``).
* The base system's incident data policy: Resolved and Closed need ``close_code`` and
  ``close_notes`` (refused 403 "Data Policy Exception" otherwise).
* OAuth (``POST /oauth_token.do``, ``grant_type=client_credentials``): a Bearer
  token with ``expires_in``.

Unlike the real Table API, which silently ignores unknown fields, the fake keeps them
in ``violations``: a test asserts the driver only writes columns the table has.

The Business Rule (after insert and update) calls ``subscribe``'s URL with
``{"sys_id", "number", "sys_mod_count", "sys_updated_by", "table"}`` and the
``X-Interlock-Secret`` header, for every change by anyone, as the README's script does.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from tests.support.hook_sender import Delivery, HookSender
from tests.support.loopback import LoopbackServer

HOOK_SECRET = "sn-hook-secret"
CLIENT_ID = "b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6"
CLIENT_SECRET = "sn-client-secret"

#: The base system's incident state choices.
STATE_LABELS = {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved",
                "7": "Closed", "8": "Canceled"}
LEVEL_LABELS = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
PRIORITY = {("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2", ("1", "3"): "3",
            ("2", "2"): "3", ("3", "1"): "3", ("2", "3"): "4", ("3", "2"): "4",
            ("3", "3"): "5"}
#: Columns of the incident table the fake knows (a small part of the real one).
COLUMNS = frozenset({
    "sys_id", "number", "short_description", "description", "urgency", "impact",
    "priority", "state", "caller_id", "assignment_group", "assigned_to", "correlation_id",
    "correlation_display", "close_code", "close_notes", "work_notes", "comments",
    "sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by",
    "sys_mod_count", "active",
})
REFERENCES = frozenset({"caller_id", "assignment_group", "assigned_to"})
READ_ONLY = frozenset({"sys_id", "number", "priority", "sys_created_on", "sys_created_by",
                       "sys_updated_on", "sys_updated_by", "sys_mod_count"})


@dataclass(frozen=True)
class User:
    sys_id: str
    user_name: str
    name: str
    password: str = ""


INTEGRATION = User("6816f79cc0a8016401c5a33be04be441", "interlock.integration",
                   "Interlock Integration", "integration-password")
BETH = User("46d44a23a9fe19810012d100cca80666", "beth.anglin", "Beth Anglin")
DAVID = User("5137153cc611227c000bbd1bd8cd2005", "david.loo", "David Loo")


@dataclass(frozen=True)
class Webhook:
    headers: dict[str, str]
    body: bytes


@dataclass
class Record:
    fields: dict[str, str]
    journal: list[dict[str, str]] = field(default_factory=list)


class FakeServiceNow(LoopbackServer):
    name = "fake ServiceNow"

    def __init__(self, *, hook_secret: str = HOOK_SECRET,
                 states: dict[str, str] | None = None) -> None:
        super().__init__()
        self.hook_secret = hook_secret
        #: state choice value → label (an instance may renumber them).
        self.states = dict(states or STATE_LABELS)
        self.users = (INTEGRATION, BETH, DAVID)
        self.records: dict[str, Record] = {}
        self.violations: list[str] = []
        self.tokens: dict[str, User] = {}
        self.token_requests = 0
        self.hook_url: str | None = None
        self.sender = HookSender()
        self._requests: list[tuple[str, str, dict[str, str], Any]] = []
        self._limited: list[float] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count(10001)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_startup.append(lambda _: self.sender.start())
        app.on_cleanup.append(lambda _: self.sender.stop())

    def subscribe(self, url: str) -> None:
        """Activate the Business Rule, calling ``url`` on every insert and update."""
        self.hook_url = url

    # -- what tests read -------------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str], Any]]:
        """(method, path, query, JSON body) of every request, in order."""
        with self._lock:
            return list(self._requests)

    def forget_requests(self) -> None:
        with self._lock:
            self._requests.clear()
        self.sender.clear()

    @property
    def deliveries(self) -> list[tuple[str, int | str]]:
        return self.sender.snapshot()

    def rate_limit(self, count: int, retry_after: float) -> None:
        with self._lock:
            self._limited.extend([retry_after] * count)

    def only(self) -> dict[str, str]:
        with self._lock:
            [record] = self.records.values()
            return dict(record.fields)

    def notes_of(self, sys_id: str, element: str = "work_notes") -> list[tuple[str, str]]:
        with self._lock:
            return [(entry["sys_created_by"], entry["value"])
                    for entry in self.records[sys_id].journal if entry["element"] == element]

    # -- a person in ServiceNow --------------------------------------------------------

    def update_as(self, sys_id: str, by: User = BETH, **fields: str) -> Webhook:
        """Change the record as ``by`` (``assigned_to`` may name a user_name)."""
        with self._lock:
            record = self.records[sys_id]
            if "assigned_to" in fields:
                fields["assigned_to"] = self._user_by_name(fields["assigned_to"]).sys_id
            self._write(record, fields, by)
            return self._business_rule(record)

    def work_note_as(self, sys_id: str, text: str, by: User = BETH,
                     element: str = "work_notes") -> Webhook:
        with self._lock:
            record = self.records[sys_id]
            self._write(record, {element: text}, by)
            return self._business_rule(record)

    # -- the Table API ---------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        with self._lock:
            try:
                body = json.loads(raw) if raw and request.path.startswith("/api/") else None
            except ValueError:
                return _error(400, "Exception while reading request",
                              "The payload is not valid JSON.")
            self._requests.append((request.method, request.path, dict(request.query), body))
            if self._limited:
                wait = self._limited.pop(0)
                response = _error(429, "Rate limit exceeded",
                                  "The API rate limit for this user has been reached")
                response.headers.update({"Retry-After": f"{wait:g}", "X-RateLimit-Limit": "100",
                                         "X-RateLimit-Reset": str(int(time.time() + wait))})
                return response
            if request.path == "/oauth_token.do" and request.method == "POST":
                return self._token(raw)
            user = self._caller(request.headers.get("Authorization", ""))
            if user is None:
                return _error(401, "User Not Authenticated", "Required to provide Auth "
                                                             "information")
            return self._route(request, body, user)

    def _token(self, raw: bytes) -> web.Response:
        form = {name: values[0] for name, values in parse_qs(raw.decode()).items()}
        self.token_requests += 1
        if form.get("grant_type") != "client_credentials" or (
                form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error_description": "access_denied",
                                      "error": "server_error"}, status=401)
        token = uuid.uuid4().hex
        self.tokens[token] = INTEGRATION
        return web.json_response({"access_token": token, "scope": "useraccount",
                                  "token_type": "Bearer", "expires_in": 1799})

    def _caller(self, authorization: str) -> User | None:
        scheme, _, value = authorization.partition(" ")
        if scheme == "Bearer":
            return self.tokens.get(value)
        if scheme == "Basic":
            name, _, password = base64.b64decode(value).decode().partition(":")
            return next((user for user in self.users
                         if user.password and (user.user_name, user.password) == (name, password)),
                        None)
        return None

    def _route(self, request: web.Request, body: Any, user: User) -> web.Response:
        parts = request.path.strip("/").split("/")
        if parts[:3] != ["api", "now", "table"] or len(parts) not in (4, 5):
            return _error(400, "Requested URI does not represent any resource",
                          f"{request.path} is not a Table API URI")
        table, sys_id = parts[3], parts[4] if len(parts) == 5 else None
        query = request.query
        if table == "sys_journal_field" and request.method == "GET" and sys_id is None:
            return self._journal(query)
        if table != "incident":
            return _error(400, "Invalid table", f"table {table} is not in this fake")
        if request.method == "POST" and sys_id is None:
            return self._insert(body, user, query)
        if request.method == "GET" and sys_id is None:
            return self._list(query)
        record = self.records.get(sys_id or "")
        if record is None:
            return _error(404, "No Record found", "Record doesn't exist or ACL restricts the "
                                                  "record retrieval")
        if request.method == "GET":
            return web.json_response({"result": self._render(record, query)})
        if request.method in ("PATCH", "PUT"):
            refused = self._check_fields(body, record.fields)
            if refused is not None:
                return refused
            self._write(record, body, user)
            self._business_rule(record)
            return web.json_response({"result": self._render(record, query)})
        return _error(405, "Method not Supported", f"{request.method} is not supported")

    def _insert(self, body: Any, user: User, query: Any) -> web.Response:
        refused = self._check_fields(body, None)
        if refused is not None:
            return refused
        now = _now()
        record = Record(fields={name: "" for name in COLUMNS - {"work_notes", "comments"}})
        record.fields.update(sys_id=uuid.uuid4().hex, number=f"INC{next(self._numbers):07d}",
                             state=next(iter(self.states)), urgency="3", impact="3", active="true",
                             sys_created_on=now, sys_created_by=user.user_name,
                             sys_mod_count="-1")
        self.records[record.fields["sys_id"]] = record
        self._write(record, body, user)
        self._business_rule(record)
        return web.json_response({"result": self._render(record, query)}, status=201)

    def _check_fields(self, body: Any, current: dict[str, str] | None) -> web.Response | None:
        if not isinstance(body, dict):
            return _error(400, "Exception while reading request", "The payload is not an "
                                                                  "object")
        unknown = sorted(set(body) - COLUMNS)
        if unknown:
            self.violations.append(f"fields the incident table does not have: {unknown}")
        for name in sorted(set(body) & READ_ONLY):
            self.violations.append(f"wrote the read-only field {name}")
        for name in ("urgency", "impact"):
            if name in body and str(body[name]) not in LEVEL_LABELS:
                self.violations.append(f"{name} {body[name]!r} is not a choice")
        if "state" in body and str(body["state"]) not in self.states:
            self.violations.append(f"state {body['state']!r} is not a choice")
        state = str(body.get("state", (current or {}).get("state", "1")))
        closing = {**(current or {}), **{k: str(v) for k, v in body.items()}}
        closed = {value for value, label in self.states.items()
                  if label in ("Resolved", "Closed")}
        if state in closed and not (closing.get("close_code") and closing.get("close_notes")):
            return _error(403, "Operation Failed", "Data Policy Exception: \n The following "
                          "fields are mandatory: Resolution code, Resolution notes")
        return None

    def _write(self, record: Record, given: dict[str, Any], user: User) -> None:
        now = _now()
        for name, value in given.items():
            if name in ("work_notes", "comments"):
                if str(value).strip():
                    record.journal.append({
                        "sys_id": uuid.uuid4().hex, "element": name,
                        "element_id": record.fields["sys_id"], "name": "incident",
                        "value": str(value), "sys_created_by": user.user_name,
                        "sys_created_on": now})
            elif name in COLUMNS - READ_ONLY:
                record.fields[name] = "" if value is None else str(value)
        fields = record.fields
        fields["priority"] = PRIORITY[(fields["urgency"] or "3", fields["impact"] or "3")]
        done = {"Resolved", "Closed", "Canceled"}
        fields["active"] = "false" if self.states.get(fields["state"]) in done else "true"
        fields.update(sys_updated_on=now, sys_updated_by=user.user_name,
                      sys_mod_count=str(int(fields["sys_mod_count"]) + 1))

    def _list(self, query: Any) -> web.Response:
        conditions, _ = _encoded(query.get("sysparm_query", ""))
        found = [self._render(record, query) for record in self.records.values()
                 if all(record.fields.get(name) == value for name, value in conditions)]
        limit = int(query.get("sysparm_limit", 10000))
        return web.json_response({"result": found[:limit]})

    def _journal(self, query: Any) -> web.Response:
        conditions, order = _encoded(query.get("sysparm_query", ""))
        entries = [entry for record in self.records.values() for entry in record.journal
                   if all(entry.get(name) == value for name, value in conditions)]
        if order:
            entries.sort(key=lambda entry: entry.get(order, ""))
        wanted = query.get("sysparm_fields")
        names = wanted.split(",") if wanted else list(entries[0]) if entries else []
        limit = int(query.get("sysparm_limit", 10000))
        return web.json_response({"result": [{name: entry.get(name, "") for name in names}
                                             for entry in entries[:limit]]})

    def _render(self, record: Record, query: Any) -> dict[str, Any]:
        wanted = query.get("sysparm_fields")
        names = [name for name in wanted.split(",") if name in record.fields] if wanted \
            else sorted(record.fields)
        mode = query.get("sysparm_display_value", "false")
        links = query.get("sysparm_exclude_reference_link", "false") != "true"
        return {name: self._value(name, record.fields[name], mode, links) for name in names}

    def _value(self, name: str, value: str, mode: str, links: bool) -> Any:
        label = value
        if name == "state":
            label = self.states.get(value, value)
        elif name in ("urgency", "impact"):
            label = LEVEL_LABELS.get(value, value)
        elif name in REFERENCES and value:
            label = next((user.name for user in self.users if user.sys_id == value), value)
        if mode == "all":
            shown: dict[str, Any] = {"display_value": label, "value": value}
        elif name in REFERENCES and value and links:
            shown = {"link": f"{self.url}/api/now/table/sys_user/{value}", "value": value}
            return {**shown, "display_value": label} if mode == "true" else shown
        else:
            return label if mode == "true" else value
        if name in REFERENCES and value and links:
            shown["link"] = f"{self.url}/api/now/table/sys_user/{value}"
        return shown

    def _user_by_name(self, user_name: str) -> User:
        return next(user for user in self.users if user.user_name == user_name)

    # -- the Business Rule -------------------------------------------------------------

    def _business_rule(self, record: Record) -> Webhook:
        fields = record.fields
        body = json.dumps({"table": "incident", "sys_id": fields["sys_id"],
                           "number": fields["number"], "sys_mod_count": fields["sys_mod_count"],
                           "sys_updated_by": fields["sys_updated_by"]}).encode()
        webhook = Webhook({"Content-Type": "application/json",
                           "X-Interlock-Secret": self.hook_secret}, body)
        if self.hook_url:
            self.sender.send(Delivery(f"{fields['number']}:{fields['sys_updated_by']}",
                                      webhook.headers, body), self.hook_url)
        return webhook


def _encoded(query: str) -> tuple[list[tuple[str, str]], str | None]:
    """Conditions (``a=b``) and the ORDERBY field of an encoded query."""
    conditions, order = [], None
    for part in query.split("^") if query else []:
        if part.startswith("ORDERBY"):
            order = part.removeprefix("ORDERBY")
        elif "=" in part:
            name, _, value = part.partition("=")
            conditions.append((name, value))
    return conditions, order


def _error(status: int, message: str, detail: str) -> web.Response:
    return web.json_response({"error": {"message": message, "detail": detail},
                              "status": "failure"}, status=status)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
