"""A GitHub repository's issues on loopback, speaking the part of the REST API the
README's generic HTTP connector example uses, in GitHub's documented shapes:

* issues: https://docs.github.com/en/rest/issues/issues (create: ``POST
  /repos/{owner}/{repo}/issues`` → 201; get: ``GET …/issues/{issue_number}``; update:
  ``PATCH …/issues/{issue_number}`` with ``state`` open/closed and ``state_reason``
  completed/not_planned/reopened; 422 "Validation Failed" otherwise);
* comments: https://docs.github.com/en/rest/issues/comments (``POST`` and ``GET
  …/issues/{issue_number}/comments``);
* auth: https://docs.github.com/en/rest/authentication (``Authorization: Bearer`` or
  ``token``; 401 "Bad credentials");
* webhooks: https://docs.github.com/en/webhooks/webhook-events-and-payloads (``issues``
  and ``issue_comment`` events, headers ``X-GitHub-Event``, ``X-GitHub-Delivery``,
  ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``, validated as
  https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries says).

It records every request, and plays "a person on GitHub": close, reopen, assign or
comment on an issue, each returning the signed webhook GitHub would deliver. Changes
made through the API (by the token's account, ``interlock-bot``) also queue the webhook
GitHub would send for them, in ``api_webhooks``: Interlock must take those as echoes.

Use as ``with FakeGitHub() as github:``; ``github.url`` stands for https://api.github.com.
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
from typing import Any

from aiohttp import web

from tests.support.loopback import LoopbackServer

OWNER, REPO = "acme", "ops"
BOT = "interlock-bot"
TOKEN = "github_pat_test_0123456789"
WEBHOOK_SECRET = "github-webhook-secret"
STATE_REASONS = {"closed": {"completed", "not_planned"}, "open": {"reopened"}}


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
class Comment:
    id: int
    author: str
    body: str
    created_at: str


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str | None
    author: str
    labels: list[str]
    state: str = "open"
    state_reason: str | None = None
    assignee: str | None = None
    comments: list[Comment] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""
    closed_at: str | None = None


class FakeGitHub(LoopbackServer):
    name = "fake GitHub"

    def __init__(self, *, token: str = TOKEN, webhook_secret: str = WEBHOOK_SECRET) -> None:
        super().__init__()
        self.token, self.webhook_secret = token, webhook_secret
        self.issues: dict[int, Issue] = {}
        #: Webhooks GitHub would send for the changes made through the API (echoes).
        self.api_webhooks: list[Webhook] = []
        self._requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1_000_001)
        self._numbers = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def calls(self) -> list[tuple[str, str]]:
        return [(item.method, item.path) for item in self.requests]

    def forget_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self.api_webhooks.clear()

    # -- a person on GitHub ----------------------------------------------------------

    def close_as(self, number: int, by: str = "alice") -> Webhook:
        with self._lock:
            issue = self.issues[number]
            self._set_state(issue, "closed", "completed")
            return self._issues_event("closed", issue, by)

    def reopen_as(self, number: int, by: str = "alice") -> Webhook:
        with self._lock:
            issue = self.issues[number]
            self._set_state(issue, "open", "reopened")
            return self._issues_event("reopened", issue, by)

    def assign_as(self, number: int, login: str, by: str = "alice") -> Webhook:
        with self._lock:
            issue = self.issues[number]
            issue.assignee = login
            return self._issues_event("assigned", issue, by, assignee=_user(login))

    def comment_as(self, number: int, text: str, by: str = "alice") -> Webhook:
        with self._lock:
            issue = self.issues[number]
            comment = self._add_comment(issue, by, text)
            return self._comment_event(issue, comment, by)

    def signed(self, event: str, payload: Any, secret: str | None = None) -> Webhook:
        """``payload`` as GitHub delivers it: raw JSON, both signatures, a delivery id."""
        body = json.dumps(payload).encode()
        key = (secret or self.webhook_secret).encode()
        return Webhook(headers={
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/044aadd",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "292430182",
            "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
        }, body=body)

    # -- the REST API ----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return _message(400, "Problems parsing JSON")
        with self._lock:
            self._requests.append(Recorded(request.method, request.path_qs, body))
            authorization = request.headers.get("Authorization", "")
            if not authorization:
                return _message(401, "Requires authentication")
            scheme, _, given = authorization.partition(" ")
            if scheme.lower() not in ("bearer", "token") or not hmac.compare_digest(
                    given.encode(), self.token.encode()):
                return _message(401, "Bad credentials")
            return self._route(request.method, request.path.strip("/").split("/"), body)

    def _route(self, method: str, parts: list[str], body: Any) -> web.Response:
        if parts[:4] != ["repos", OWNER, REPO, "issues"]:
            return _message(404, "Not Found")
        rest = parts[4:]
        if not rest and method == "POST":
            return self._create(body or {})
        if not rest or not rest[0].isdigit() or int(rest[0]) not in self.issues:
            return _message(404, "Not Found")
        issue = self.issues[int(rest[0])]
        action = (method, tuple(rest[1:]))
        if action == ("GET", ()):
            return _json(200, self._issue_json(issue))
        if action == ("PATCH", ()):
            return self._update(issue, body or {})
        if action == ("GET", ("comments",)):
            return _json(200, [self._comment_json(issue, item) for item in issue.comments])
        if action == ("POST", ("comments",)):
            text = (body or {}).get("body")
            if not isinstance(text, str) or not text:
                return _invalid("IssueComment", "missing_field", "body")
            comment = self._add_comment(issue, BOT, text)
            self.api_webhooks.append(self._comment_event(issue, comment, BOT))
            return _json(201, self._comment_json(issue, comment))
        return _message(404, "Not Found")

    def _create(self, body: dict[str, Any]) -> web.Response:
        title = body.get("title")
        if not isinstance(title, str | int) or title == "":
            return _invalid("Issue", "missing_field", "title")
        labels = body.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(item, str) for item in labels):
            return _invalid("Issue", "invalid", "labels")
        now = _now()
        issue = Issue(id=next(self._ids), number=next(self._numbers), title=str(title),
                      body=body.get("body"), author=BOT, labels=labels, created_at=now,
                      updated_at=now)
        self.issues[issue.number] = issue
        self.api_webhooks.append(self._issues_event("opened", issue, BOT))
        return _json(201, self._issue_json(issue))

    def _update(self, issue: Issue, body: dict[str, Any]) -> web.Response:
        unknown = set(body) - {"title", "body", "state", "state_reason", "labels",
                               "assignees", "milestone"}
        if unknown:
            return _invalid("Issue", "invalid", sorted(unknown)[0])
        state = body.get("state", issue.state)
        reason = body.get("state_reason")
        if state not in STATE_REASONS:
            return _invalid("Issue", "invalid", "state")
        if reason is not None and reason not in STATE_REASONS[state]:
            return _invalid("Issue", "invalid", "state_reason")
        if "title" in body:
            issue.title = str(body["title"])
        if "body" in body:
            issue.body = body["body"]
        if state != issue.state:
            self._set_state(issue, state, reason)
            self.api_webhooks.append(self._issues_event(
                "closed" if state == "closed" else "reopened", issue, BOT))
        issue.updated_at = _now()
        return _json(200, self._issue_json(issue))

    def _set_state(self, issue: Issue, state: str, reason: str | None) -> None:
        issue.state, issue.state_reason = state, reason
        issue.closed_at = _now() if state == "closed" else None
        issue.updated_at = _now()

    def _add_comment(self, issue: Issue, author: str, text: str) -> Comment:
        comment = Comment(id=next(self._ids), author=author, body=text, created_at=_now())
        issue.comments.append(comment)
        return comment

    # -- documented shapes -----------------------------------------------------------

    def _issues_event(self, action: str, issue: Issue, by: str, **extra: Any) -> Webhook:
        payload = {"action": action, "issue": self._issue_json(issue), **extra,
                   "repository": self._repository(), "sender": _user(by)}
        return self.signed("issues", payload)

    def _comment_event(self, issue: Issue, comment: Comment, by: str) -> Webhook:
        payload = {"action": "created", "issue": self._issue_json(issue),
                   "comment": self._comment_json(issue, comment),
                   "repository": self._repository(), "sender": _user(by)}
        return self.signed("issue_comment", payload)

    def _issue_json(self, issue: Issue) -> dict[str, Any]:
        api = f"{self.url}/repos/{OWNER}/{REPO}/issues/{issue.number}"
        return {
            "id": issue.id, "node_id": f"I_kwDO{issue.id}", "url": api,
            "repository_url": f"{self.url}/repos/{OWNER}/{REPO}",
            "labels_url": f"{api}/labels{{/name}}", "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": f"https://github.com/{OWNER}/{REPO}/issues/{issue.number}",
            "number": issue.number, "state": issue.state, "state_reason": issue.state_reason,
            "title": issue.title, "body": issue.body, "user": _user(issue.author),
            "labels": [{"id": 208045946 + index, "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=",
                        "url": f"{self.url}/repos/{OWNER}/{REPO}/labels/{name}",
                        "name": name, "description": "", "color": "f29513",
                        "default": False} for index, name in enumerate(issue.labels)],
            "assignee": _user(issue.assignee) if issue.assignee else None,
            "assignees": [_user(issue.assignee)] if issue.assignee else [],
            "milestone": None, "locked": False, "active_lock_reason": None,
            "comments": len(issue.comments), "closed_at": issue.closed_at,
            "created_at": issue.created_at, "updated_at": issue.updated_at,
            "author_association": "COLLABORATOR",
        }

    def _comment_json(self, issue: Issue, comment: Comment) -> dict[str, Any]:
        return {
            "id": comment.id, "node_id": f"IC_kwDO{comment.id}",
            "url": f"{self.url}/repos/{OWNER}/{REPO}/issues/comments/{comment.id}",
            "html_url": f"https://github.com/{OWNER}/{REPO}/issues/{issue.number}"
                        f"#issuecomment-{comment.id}",
            "body": comment.body, "user": _user(comment.author),
            "created_at": comment.created_at, "updated_at": comment.created_at,
            "issue_url": f"{self.url}/repos/{OWNER}/{REPO}/issues/{issue.number}",
            "author_association": "COLLABORATOR",
        }

    def _repository(self) -> dict[str, Any]:
        return {"id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": REPO,
                "full_name": f"{OWNER}/{REPO}", "private": True, "owner": _user(OWNER),
                "html_url": f"https://github.com/{OWNER}/{REPO}"}


def _user(login: str) -> dict[str, Any]:
    number = int(hashlib.sha256(login.encode()).hexdigest()[:7], 16)
    return {"login": login, "id": number, "node_id": f"MDQ6VXNlcj{number}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4",
            "gravatar_id": "", "url": f"https://api.github.com/users/{login}",
            "html_url": f"https://github.com/{login}",
            "type": "User", "site_admin": False}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(),
                        content_type="application/json")


def _message(status: int, message: str) -> web.Response:
    return _json(status, {"message": message,
                          "documentation_url": "https://docs.github.com/rest",
                          "status": str(status)})


def _invalid(resource: str, code: str, name: str) -> web.Response:
    return _json(422, {"message": "Validation Failed",
                       "errors": [{"resource": resource, "code": code, "field": name}],
                       "documentation_url": "https://docs.github.com/rest"})
