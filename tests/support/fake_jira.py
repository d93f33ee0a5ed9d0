"""A Jira Cloud site on loopback, speaking the part of REST API v3 Interlock uses.

It keeps one project of issues (``OPS-1``, ``OPS-2``…) in a workflow whose statuses
carry Jira's status categories, checks Basic auth like Jira (401 otherwise), validates
fields the way Jira does (ADF rich text, labels without spaces, known priorities, a
summary of one line and at most 255 characters), records every request so a test can
assert exactly what Interlock sent, and can play "a person in Jira": move, comment,
assign, move the issue to another project, delete it, each returning the signed
webhook Jira would deliver. Answers and webhooks are built from the documented
payloads in ``tests/fixtures/jira``.

Every request and every answer is checked against Atlassian's own description of the
API (tests/support/specs.py); what the description does not say is enforced here from
Jira's documentation, cited where it is done. Answers over 16 KB arrive in 16 KB
pieces, as over TLS. A test whose traffic breaks the contract
fails when the fake stops.

Use as ``with FakeJira() as jira:``; ``jira.url`` is the site's base URL.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support import specs
from tests.support.loopback import LoopbackServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jira"


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of a documented payload, to fill in."""
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


@dataclass(frozen=True)
class Account:
    account_id: str
    display_name: str
    email: str


#: The account the API token belongs to: Interlock itself, as Jira sees it.
BOT = Account("5b10a2844c20165700ede21g", "Interlock Bot", "interlock@example.com")
ALICE = Account("5b10ac8d82e05b22cc7d4ef5", "Alice Example", "alice@example.com")
BOB = Account("5b109f2e9729b51b54dc274d", "Bob Example", "bob@example.com")

#: status id → (name, category key); category key → (id, name, colour).
STATUSES = {"10000": ("To Do", "new"), "10001": ("In Progress", "indeterminate"),
            "10002": ("Done", "done"), "10003": ("Won't Do", "done"),
            "10004": ("Waiting for support", "indeterminate")}
CATEGORIES = {"new": (2, "To Do", "blue-gray"), "indeterminate": (4, "In Progress", "yellow"),
              "done": (3, "Done", "green")}


@dataclass(frozen=True)
class Transition:
    """One workflow transition: its name, the status it leads to, and the statuses it
    is offered from (None: a global transition, offered from every other status)."""

    name: str
    to: str
    sources: frozenset[str] | None = None


#: The team-managed default: global transitions to each status.
WORKFLOW = {"11": Transition("To Do", "10000"), "21": Transition("In Progress", "10001"),
            "31": Transition("Done", "10002")}
#: A company-managed workflow as people build them: transitions only between
#: neighbours, named for the action, and two statuses in the "done" category.
CLASSIC_WORKFLOW = {
    "21": Transition("Start progress", "10001", frozenset({"10000"})),
    "41": Transition("Won't do", "10003", frozenset({"10000", "10001"})),
    "31": Transition("Done", "10002", frozenset({"10001"})),
    "11": Transition("Stop progress", "10000", frozenset({"10001"})),
    "51": Transition("Reopen", "10000", frozenset({"10002", "10003"})),
}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
ISSUE_TYPES = {"Task": "10001", "Bug": "10004"}
#: Jira's limit on an issue summary (the field is a single line of at most 255
#: characters: https://support.atlassian.com/jira-cloud-administration/docs/
#: what-are-the-character-limits-in-jira-cloud/, and create/edit answer 400 otherwise).
SUMMARY_MAX = 255
#: Answers larger than this are sent in pieces of this size (a TLS record's largest).
PIECE = 16 * 1024
#: The JQL Interlock may send: project and label clauses joined by AND.
_CLAUSE = re.compile(r'^\s*(project|labels)\s*=\s*"([^"]*)"\s*$')


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    json: Any


@dataclass(frozen=True)
class Webhook:
    headers: dict[str, str]
    body: bytes


@dataclass
class Comment:
    id: str
    author: Account
    body: dict[str, Any]
    created: str


@dataclass
class Issue:
    id: str
    key: str
    fields: dict[str, Any]
    status: str = "10000"
    assignee: Account | None = None
    comments: list[Comment] = field(default_factory=list)


class FakeJira(LoopbackServer):
    name = "fake Jira"

    def __init__(self, *, email: str = BOT.email, api_token: str = "jira-token",
                 webhook_secret: str = "jira-webhook-secret", project_key: str = "OPS"
                 ) -> None:
        super().__init__()
        self.email, self.api_token, self.webhook_secret = email, api_token, webhook_secret
        self.project_key = project_key
        #: Set to answer every request with 503, as Jira does during an outage.
        self.down = False
        #: Transitions the workflow offers, by id (tests change it).
        self.workflow: dict[str, Transition] = dict(WORKFLOW)
        #: The status a new issue starts in (its workflow's initial status).
        self.initial_status = "10000"
        #: How many comments an issue answer embeds and a comment page holds at most.
        self.comment_page = 50
        #: Issues by key; a moved issue is here under its new key only.
        self.issues: dict[str, Issue] = {}
        #: Old keys of moved issues → the issue id (Jira still resolves them).
        self.moved: dict[str, str] = {}
        #: Requests still to refuse with 429 (rate limited) and the Retry-After given.
        self.throttled = 0
        self.retry_after = 2
        #: Create the next issue but answer only after this many seconds (a lost answer).
        self.slow_create = 0.0
        #: What the API description forbids that this fake saw (see tests/support/specs).
        self.checker = specs.Checker(specs.jira())
        self._requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._slow_answers = 0
        self._ids = itertools.count(10000)
        self._numbers = itertools.count(1)
        self._deliveries = itertools.count(1)

    # -- running ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    def __exit__(self, kind: object, *rest: object) -> None:
        give_up = time.monotonic() + 10
        while self._slow_answers and time.monotonic() < give_up:  # let a late answer end
            time.sleep(0.05)
        super().__exit__(kind, *rest)
        if kind is None and self.checker.violations:
            raise AssertionError("traffic the Jira Cloud REST API description forbids:\n"
                                 + "\n".join(self.checker.violations))

    # -- what tests read -------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def calls(self) -> list[tuple[str, str]]:
        """``(method, path with query)`` of every request, in order."""
        return [(item.method, item.path + _query(item.query)) for item in self.requests]

    def forget_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def status_of(self, key: str) -> str:
        with self._lock:
            return STATUSES[self.issues[key].status][0]

    def expire_token(self) -> None:
        """As when the API token expires or is revoked: every call answers 401."""
        self.api_token = "expired:" + self.api_token

    # -- a person in Jira ------------------------------------------------------------

    def transition_as(self, key: str, status_name: str, by: Account = ALICE) -> Webhook:
        """Move the issue to ``status_name`` as ``by``; the jira:issue_updated it sends."""
        target = next(sid for sid, (name, _) in STATUSES.items() if name == status_name)
        with self._lock:
            issue = self.issues[key]
            before, issue.status = issue.status, target
            item = {"field": "status", "fieldtype": "jira", "fieldId": "status",
                    "from": before, "fromString": STATUSES[before][0],
                    "to": target, "toString": status_name}
            return self._issue_updated(issue, by, [item])

    def assign_as(self, key: str, assignee: Account | None, by: Account = ALICE) -> Webhook:
        with self._lock:
            issue = self.issues[key]
            before, issue.assignee = issue.assignee, assignee
            item = {"field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
                    "from": before.account_id if before else None,
                    "fromString": before.display_name if before else None,
                    "to": assignee.account_id if assignee else None,
                    "toString": assignee.display_name if assignee else None}
            return self._issue_updated(issue, by, [item])

    def move_as(self, key: str, project_key: str, by: Account = ALICE) -> Webhook:
        """Move the issue to another project, as ``by``: it gets a new key and keeps its
        id, and Jira still answers for the old key. The jira:issue_updated it sends
        names the old key only in its changelog."""
        with self._lock:
            issue = self.issues.pop(key)
            new_key = f"{project_key}-{next(self._numbers)}"
            issue.key = new_key
            self.issues[new_key] = issue
            self.moved[key] = issue.id
            items = [{"field": "Key", "fieldtype": "jira", "from": None, "fromString": key,
                      "to": None, "toString": new_key},
                     {"field": "project", "fieldtype": "jira", "fieldId": "project",
                      "from": "10000", "fromString": self.project_key, "to": "10001",
                      "toString": project_key}]
            return self._issue_updated(issue, by, items)

    def delete_as(self, key: str, by: Account = ALICE) -> Webhook:
        """Delete the issue; from now on Jira answers 404 for it. The jira:issue_deleted
        webhook it sends."""
        with self._lock:
            issue = self.issues.pop(key)
            payload = fixture("webhook_issue_updated.json")
            payload.update(webhookEvent="jira:issue_deleted",
                           issue_event_type_name="issue_deleted",
                           timestamp=int(time.time() * 1000), user=self._user(by, api=2),
                           issue={"id": issue.id, "key": issue.key,
                                  "self": f"{self.url}/rest/api/2/{issue.id}", "fields": {}})
            payload.pop("changelog", None)
            return self.signed(payload)

    def comment_as(self, key: str, text: str, by: Account = ALICE) -> Webhook:
        """Add a comment as ``by``; the comment_created webhook Jira sends for it."""
        body = {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": text}]}]}
        with self._lock:
            issue = self.issues[key]
            comment = self._add_comment(issue, by, body)
            payload = fixture("webhook_comment_created.json")
            payload["timestamp"] = int(time.time() * 1000)
            payload["comment"].update(
                self._comment_json(issue, comment, api=2), body=text)
            payload["issue"].update(id=issue.id, key=issue.key,
                                    self=f"{self.url}/rest/api/2/{issue.id}")
            payload["issue"]["fields"]["summary"] = issue.fields["summary"]
            return self.signed(payload)

    def signed(self, payload: Any, secret: str | None = None) -> Webhook:
        """``payload`` as Jira delivers it: raw JSON, signed, with a delivery id."""
        body = json.dumps(payload).encode()
        digest = hmac.new((secret or self.webhook_secret).encode(), body,
                          hashlib.sha256).hexdigest()
        return Webhook(headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": f"{next(self._deliveries)}-{int(time.time())}",
            "X-Hub-Signature": f"sha256={digest}",
        }, body=body)

    def _issue_updated(self, issue: Issue, by: Account, items: list[dict[str, Any]]
                       ) -> Webhook:
        payload = fixture("webhook_issue_updated.json")
        payload["timestamp"] = int(time.time() * 1000)
        payload["user"] = self._user(by, api=2)
        payload["issue"] = self._issue_json(issue, None)
        payload["changelog"] = {"id": str(next(self._ids)), "items": items}
        return self.signed(payload)

    # -- the REST API ----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self._requests.append(Recorded(request.method, request.path,
                                           dict(request.query), body))
            known = len(self.checker.violations)
            operation = self.checker.request(request.method, request.path,
                                             dict(request.query), dict(request.headers), body)
            if len(self.checker.violations) > known:  # Jira refuses what it cannot read
                response, delay = _json(400, {"errorMessages": self.checker.violations[known:],
                                              "errors": {}}), 0.0
            else:
                response, delay = self._answer(request, body)
        if delay:
            self._slow_answers += 1
            try:
                await asyncio.sleep(delay)
            finally:
                self._slow_answers -= 1
        sent = response.body if isinstance(response.body, bytes) else b""
        self.checker.response(operation, response.status, dict(response.headers), sent)
        if len(sent) <= PIECE:
            return response
        return await _in_pieces(request, response, sent)

    def _answer(self, request: web.Request, body: Any) -> tuple[web.Response, float]:
        if self.down:
            return web.Response(status=503, text="Service Unavailable"), 0
        if self.throttled > 0:
            # https://developer.atlassian.com/cloud/jira/platform/rate-limiting/: 429
            # with Retry-After (seconds) when a cost budget or burst limit is spent.
            self.throttled -= 1
            return _json(429, {"errorMessages": ["Rate limit exceeded."], "errors": {}},
                         headers={"Retry-After": str(self.retry_after)}), 0
        if not self._authenticated(request):
            return _json(401, {"errorMessages": [
                "You are not authenticated. Authentication required to perform this "
                "operation."], "errors": {}}), 0
        response = self._route(request.method, request.path.split("/")[1:], request, body)
        delay = 0.0
        if request.method == "POST" and request.path == "/rest/api/3/issue" \
                and response.status == 201 and self.slow_create:
            delay, self.slow_create = self.slow_create, 0.0
        return response, delay

    def _authenticated(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        return hmac.compare_digest(request.headers.get("Authorization", ""),
                                   f"Basic {expected}")

    def _find(self, id_or_key: str) -> Issue | None:
        """By key, old key (of a moved issue) or id, as Jira's issueIdOrKey."""
        issue_id = self.moved.get(id_or_key, id_or_key)
        return self.issues.get(id_or_key) or next(
            (item for item in self.issues.values() if item.id == issue_id), None)

    def _route(self, method: str, parts: list[str], request: web.Request, body: Any
               ) -> web.Response:
        if parts[:3] != ["rest", "api", "3"]:
            return _json(404, {"errorMessages": ["Not found"], "errors": {}})
        rest = parts[3:]
        if rest == ["myself"] and method == "GET":
            return _json(200, self._user(BOT, api=3, full=True))
        if rest == ["issue"] and method == "POST":
            return self._create(body)
        if rest == ["search", "jql"] and method == "POST":
            return self._search(body)
        if len(rest) < 2 or rest[0] != "issue":
            return _json(404, {"errorMessages": ["Not found"], "errors": {}})
        issue = self._find(rest[1])
        if issue is None:
            return _json(404, {"errorMessages": [
                "Issue does not exist or you do not have permission to see it."],
                "errors": {}})
        action = (method, tuple(rest[2:]))
        if action == ("GET", ()):
            wanted = request.query.get("fields")
            return _json(200, self._issue_json(issue, wanted.split(",") if wanted else None))
        if action == ("PUT", ()):
            return self._update(issue, body)
        if action == ("GET", ("transitions",)):
            return _json(200, {"expand": "transitions",
                               "transitions": self._transitions(issue)})
        if action == ("POST", ("transitions",)):
            return self._transition(issue, body)
        if action == ("GET", ("comment",)):
            start = int(request.query.get("startAt", 0))
            size = min(int(request.query.get("maxResults", 50)), self.comment_page)
            return _json(200, self._comment_page(issue, start, size))
        if action == ("POST", ("comment",)):
            if not _is_adf((body or {}).get("body")):
                return _bad({"comment": "Comment body is not valid!"})
            comment = self._add_comment(issue, BOT, body["body"])
            return _json(201, self._comment_json(issue, comment, api=3))
        return _json(405, {"errorMessages": [f"{method} is not supported here"], "errors": {}})

    def _create(self, body: Any) -> web.Response:
        fields = (body or {}).get("fields") or {}
        errors = self._field_errors(fields, creating=True)
        if errors:
            return _bad(errors)
        number = next(self._numbers)
        key = f"{self.project_key}-{number}"
        issue = Issue(id=str(next(self._ids)), key=key, status=self.initial_status, fields={
            "summary": fields["summary"], "description": fields.get("description"),
            "labels": list(fields.get("labels") or []),
            "priority": (fields.get("priority") or {"name": "Medium"})["name"],
            "issuetype": fields["issuetype"]["name"],
        })
        self.issues[key] = issue
        created = fixture("issue_created.json")
        created.pop("transition", None)
        created.update(id=issue.id, key=key, self=f"{self.url}/rest/api/3/issue/{issue.id}")
        return _json(201, created)

    def _search(self, body: Any) -> web.Response:
        """``POST /rest/api/3/search/jql`` for the JQL Interlock writes: clauses on the
        project and labels, joined by AND (anything else is refused as Jira refuses
        JQL it cannot parse: 400 with errorMessages)."""
        jql = str((body or {}).get("jql") or "")
        wanted: dict[str, list[str]] = {"project": [], "labels": []}
        for clause in re.split(r"\s+AND\s+", jql):
            match = _CLAUSE.match(clause)
            if match is None:
                return _json(400, {"errorMessages": [
                    f"Error in the JQL Query: cannot read {clause!r}."], "errors": {}})
            wanted[match.group(1)].append(match.group(2))
        found = [issue for issue in self.issues.values()
                 if all(key == self.project_key for key in wanted["project"])
                 and all(label in issue.fields["labels"] for label in wanted["labels"])]
        limit = int((body or {}).get("maxResults") or 50)
        fields = (body or {}).get("fields") or ["id"]
        return _json(200, {"isLast": len(found) <= limit, "issues": [
            self._issue_json(issue, list(fields)) for issue in found[:limit]]})

    def _update(self, issue: Issue, body: Any) -> web.Response:
        fields = (body or {}).get("fields") or {}
        errors = self._field_errors(fields, creating=False)
        if errors:
            return _bad(errors)
        for name, value in fields.items():
            issue.fields[name] = value["name"] if name == "priority" else value
        return web.Response(status=204)

    def _field_errors(self, fields: dict[str, Any], *, creating: bool) -> dict[str, str]:
        errors: dict[str, str] = {}
        if creating:
            if (fields.get("project") or {}).get("key") != self.project_key:
                errors["project"] = "Specify a valid project ID or key"
            if (fields.get("issuetype") or {}).get("name") not in ISSUE_TYPES:
                errors["issuetype"] = "Specify an issue type"
            if not fields.get("summary"):
                errors["summary"] = "You must specify a summary of the issue."
        unknown = set(fields) - {"project", "issuetype", "summary", "description",
                                 "priority", "labels"}
        for name in unknown:
            errors[name] = (f"Field '{name}' cannot be set. It is not on the appropriate "
                            "screen, or unknown.")
        summary = fields.get("summary")
        if isinstance(summary, str) and len(summary) > SUMMARY_MAX:
            errors["summary"] = "Summary must be less than 255 characters."
        elif isinstance(summary, str) and ("\n" in summary or "\r" in summary):
            errors["summary"] = "The summary is invalid because it contains newline characters."
        if "description" in fields and fields["description"] is not None \
                and not _is_adf(fields["description"]):
            errors["description"] = "Operation value must be an Atlassian Document (see the " \
                                    "Atlassian Document Format)."
        if "priority" in fields and (fields["priority"] or {}).get("name") not in PRIORITIES:
            errors["priority"] = "Specify the Priority (name) in the string format"
        for label in fields.get("labels") or []:
            if " " in label or len(label) > 255:
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        return errors

    def _transitions(self, issue: Issue) -> list[dict[str, Any]]:
        """What the workflow offers from where the issue stands, and nothing else:
        Jira lists only the transitions out of the issue's current status."""
        template = fixture("transitions.json")["transitions"][0]
        offered = []
        for transition_id, transition in self.workflow.items():
            if transition.to == issue.status:
                continue
            if transition.sources is not None and issue.status not in transition.sources:
                continue
            item = copy.deepcopy(template)
            item.update(id=transition_id, name=transition.name,
                        to=self._status(transition.to), isGlobal=transition.sources is None)
            offered.append(item)
        return offered

    def _transition(self, issue: Issue, body: Any) -> web.Response:
        transition_id = str(((body or {}).get("transition") or {}).get("id"))
        offered = {item["id"] for item in self._transitions(issue)}
        if transition_id not in offered:
            return _json(400, {"errorMessages": [
                f"Transition id '{transition_id}' is not valid for this issue."],
                "errors": {}})
        issue.status = self.workflow[transition_id].to
        return web.Response(status=204)

    def _add_comment(self, issue: Issue, author: Account, body: dict[str, Any]) -> Comment:
        comment = Comment(id=str(next(self._ids)), author=author, body=body,
                          created=time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime()))
        issue.comments.append(comment)
        return comment

    # -- rendering, from the documented shapes ---------------------------------------

    def _issue_json(self, issue: Issue, wanted: list[str] | None) -> dict[str, Any]:
        answer = fixture("issue.json")
        fields = answer["fields"]
        fields.update(
            summary=issue.fields["summary"], description=issue.fields.get("description"),
            labels=list(issue.fields.get("labels") or []), status=self._status(issue.status),
            assignee=self._user(issue.assignee, api=3) if issue.assignee else None,
            comment=self._comment_page(issue, 0, self.comment_page, embedded=True))
        name = issue.fields["priority"]
        fields["priority"].update(name=name, id=PRIORITIES[name],
                                  self=f"{self.url}/rest/api/3/priority/{PRIORITIES[name]}")
        fields["issuetype"].update(name=issue.fields["issuetype"],
                                   id=ISSUE_TYPES[issue.fields["issuetype"]])
        fields["project"].update(key=self.project_key, name=f"{self.project_key} project")
        if wanted is not None:
            answer["fields"] = {name: value for name, value in fields.items() if name in wanted}
        answer.update(id=issue.id, key=issue.key, self=f"{self.url}/rest/api/3/issue/{issue.id}")
        return answer

    def _status(self, status_id: str) -> dict[str, Any]:
        name, category = STATUSES[status_id]
        category_id, category_name, colour = CATEGORIES[category]
        return {"self": f"{self.url}/rest/api/3/status/{status_id}", "description": "",
                "iconUrl": f"{self.url}/", "name": name, "id": status_id,
                "statusCategory": {
                    "self": f"{self.url}/rest/api/3/statuscategory/{category_id}",
                    "id": category_id, "key": category, "colorName": colour,
                    "name": category_name}}

    def _comment_page(self, issue: Issue, start: int, size: int, embedded: bool = False
                      ) -> dict[str, Any]:
        page = fixture("comments_page.json")
        chosen = issue.comments[start:start + size]
        page.update(startAt=start, maxResults=size, total=len(issue.comments),
                    comments=[self._comment_json(issue, item, api=3) for item in chosen])
        if embedded:
            page["self"] = f"{self.url}/rest/api/3/issue/{issue.id}/comment"
        return page

    def _comment_json(self, issue: Issue, comment: Comment, *, api: int) -> dict[str, Any]:
        answer = fixture("comment.json")
        answer.update(
            self=f"{self.url}/rest/api/{api}/issue/{issue.id}/comment/{comment.id}",
            id=comment.id, author=self._user(comment.author, api=api), body=comment.body,
            updateAuthor=self._user(comment.author, api=api), created=comment.created,
            updated=comment.created)
        return answer

    def _user(self, account: Account, *, api: int, full: bool = False) -> dict[str, Any]:
        user = fixture("myself.json")
        user.update(self=f"{self.url}/rest/api/{api}/user?accountId={account.account_id}",
                    accountId=account.account_id, displayName=account.display_name,
                    emailAddress=account.email, active=True, timeZone="Etc/UTC")
        if not full:
            for name in ("groups", "applicationRoles", "expand", "locale"):
                user.pop(name, None)
        return user


async def _in_pieces(request: web.Request, response: web.Response, body: bytes
                     ) -> web.StreamResponse:
    """A large answer as it comes over TLS: in records of at most 16 KB (RFC 8446,
    section 5.1), the next one a moment later, so a client that reads only what has
    arrived gets a cut body."""
    streamed = web.StreamResponse(status=response.status, headers={
        "Content-Type": response.headers.get("Content-Type", "application/json")})
    streamed.enable_chunked_encoding()
    await streamed.prepare(request)
    for start in range(0, len(body), PIECE):
        await streamed.write(body[start:start + PIECE])
        await asyncio.sleep(0.01)
    await streamed.write_eof()
    return streamed


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and value.get("version") == 1


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), headers=headers,
                        content_type="application/json")


def _bad(errors: dict[str, str]) -> web.Response:
    return _json(400, {"errorMessages": [], "errors": errors})


def _query(query: dict[str, str]) -> str:
    return ("?" + "&".join(f"{name}={value}" for name, value in query.items())) if query else ""
