"""A Jira Cloud site on loopback, speaking the part of REST API v3 Interlock uses.

It keeps one project of issues (``OPS-1``, ``OPS-2``…) in a simplified workflow whose
statuses carry Jira's status categories, checks Basic auth like Jira (401 otherwise),
validates fields the way Jira does (ADF rich text, labels without spaces, known
priorities), records every request so a test can assert exactly what Interlock sent,
and can play "a person in Jira": move an issue, comment, assign, each returning the
signed webhook Jira would deliver. Answers and webhooks are built from the documented
payloads in ``tests/fixtures/jira``.

Use as ``with FakeJira() as jira:``; ``jira.url`` is the site's base URL.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

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
            "10002": ("Done", "done")}
CATEGORIES = {"new": (2, "To Do", "blue-gray"), "indeterminate": (4, "In Progress", "yellow"),
              "done": (3, "Done", "green")}
#: The simplified workflow: global transitions, id → target status id.
WORKFLOW = {"11": "10000", "21": "10001", "31": "10002"}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
ISSUE_TYPES = {"Task": "10001", "Bug": "10004"}


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
        #: Transitions the workflow offers (tests remove some to break the workflow).
        self.workflow = dict(WORKFLOW)
        #: How many comments an issue answer embeds and a comment page holds at most.
        self.comment_page = 50
        self.issues: dict[str, Issue] = {}
        self._requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(10000)
        self._numbers = itertools.count(1)
        self._deliveries = itertools.count(1)

    # -- running ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

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

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self._requests.append(Recorded(request.method, request.path,
                                           dict(request.query), body))
            if self.down:
                return web.Response(status=503, text="Service Unavailable")
            if not self._authenticated(request):
                return _json(401, {"errorMessages": [
                    "You are not authenticated. Authentication required to perform this "
                    "operation."], "errors": {}})
            return self._route(request.method, request.path.split("/")[1:], request, body)

    def _authenticated(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        return hmac.compare_digest(request.headers.get("Authorization", ""),
                                   f"Basic {expected}")

    def _route(self, method: str, parts: list[str], request: web.Request, body: Any
               ) -> web.Response:
        if parts[:3] != ["rest", "api", "3"]:
            return _json(404, {"errorMessages": ["Not found"], "errors": {}})
        rest = parts[3:]
        if rest == ["myself"] and method == "GET":
            return _json(200, self._user(BOT, api=3, full=True))
        if rest == ["issue"] and method == "POST":
            return self._create(body)
        if len(rest) < 2 or rest[0] != "issue":
            return _json(404, {"errorMessages": ["Not found"], "errors": {}})
        issue = self.issues.get(rest[1])
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
        issue = Issue(id=str(next(self._ids)), key=key, fields={
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
        template = fixture("transitions.json")["transitions"][0]
        offered = []
        for transition_id, target in self.workflow.items():
            if target == issue.status:
                continue
            item = copy.deepcopy(template)
            item.update(id=transition_id, name=STATUSES[target][0], to=self._status(target))
            offered.append(item)
        return offered

    def _transition(self, issue: Issue, body: Any) -> web.Response:
        transition_id = str(((body or {}).get("transition") or {}).get("id"))
        offered = {item["id"] for item in self._transitions(issue)}
        if transition_id not in offered:
            return _json(400, {"errorMessages": [
                f"Transition id '{transition_id}' is not valid for this issue."],
                "errors": {}})
        issue.status = self.workflow[transition_id]
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


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and value.get("version") == 1


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(),
                        content_type="application/json")


def _bad(errors: dict[str, str]) -> web.Response:
    return _json(400, {"errorMessages": [], "errors": errors})


def _query(query: dict[str, str]) -> str:
    return ("?" + "&".join(f"{name}={value}" for name, value in query.items())) if query else ""
