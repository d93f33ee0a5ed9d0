"""A Slack Web API on loopback, and the signed requests Slack sends to an app.

``FakeSlack`` speaks ``chat.postMessage`` and ``chat.update`` as Slack documents them:
Bearer-token auth, HTTP 200 with ``{"ok": false, "error": ...}`` for refusals
(``not_authed``, ``invalid_auth``, ``channel_not_found``, ``message_not_found``), answers
shaped like the fixtures in ``tests/fixtures/slack``, and ``ts`` values such as
``1700000000.000100`` handed out in order. It keeps each channel's messages and their
thread replies, and records every request so a test can assert exactly what Interlock
sent. ``rate_limited()`` and ``unavailable()`` make it answer 429 (with Retry-After) or
503 until ``healthy()``.

    with FakeSlack() as slack:
        settings = {"channel": "C0INCIDENT", "api_base": slack.api_base}

``button_request`` and ``slash_command_request`` build what Slack POSTs to Interlock's
hook URL: a form body from the fixtures and the ``X-Slack-Signature`` headers, signed
here independently of Interlock's own code.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from tests.support import specs
from tests.support.loopback import LoopbackServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "slack"
TOKEN = "xoxb-1111-2222-interlocktest"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
#: chat.postMessage's limit on ``text`` (https://api.slack.com/methods/chat.postMessage
#: #truncating: beyond 40,000 characters the call fails with msg_too_long).
TEXT_MAX = 40_000
#: chat.postMessage allows about one message a second per channel, with short bursts
#: (https://api.slack.com/methods/chat.postMessage#rate_limiting); beyond, 429. Here:
#: at most 8 in any 5 seconds.
BURST, BURST_WINDOW = 8, 5.0
#: The scopes the README's app manifest asks for.
SCOPES = frozenset({"chat:write", "channels:history", "groups:history", "commands"})


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass(frozen=True)
class Request:
    method: str
    #: The Web API method called ("chat.postMessage"), the last part of the path.
    api_method: str
    headers: dict[str, str]
    json: Any


@dataclass
class Message:
    ts: str
    text: str
    blocks: list[Any] | None
    replies: list[Message] = field(default_factory=list)
    metadata: Any = None


class FakeSlack(LoopbackServer):
    name = "fake Slack"

    def __init__(self, *, token: str = TOKEN, channels: tuple[str, ...] = ("C0INCIDENT",)) -> None:
        super().__init__()
        self.token = token
        self.requests: list[Request] = []
        self.channels: dict[str, list[Message]] = {channel: [] for channel in channels}
        self._trouble: tuple[int, dict[str, str], bytes] | None = None
        #: The app's scopes, the channels it was invited to, the archived ones.
        self.scopes = set(SCOPES)
        self.joined = set(channels)
        self.archived: set[str] = set()
        #: What a wrong token is answered: invalid_auth, token_expired, token_revoked.
        self.refusal = "invalid_auth"
        self.retry_after = 1
        #: Messages a channel takes in any BURST_WINDOW seconds before answering 429.
        self.burst = BURST
        #: Post the next message but answer only after this many seconds (lost answer).
        self.slow_post = 0.0
        self.checker = specs.Checker(specs.slack())
        self._posted: dict[str, list[float]] = {}
        #: How many 429s the channel limit answered.
        self.rate_limited_answers = 0
        self._sequence = 0
        self._lock = threading.Lock()
        self._slow_answers = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    # What tests look at and switch.

    def calls(self) -> list[tuple[str, Any]]:
        """(API method, JSON body) of every request so far, in order."""
        with self._lock:
            return [(request.api_method, request.json) for request in self.requests]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            return next(item for item in self.channels[channel] if item.ts == ts)

    def delete(self, channel: str, ts: str) -> None:
        """As a person deleting the card in Slack would."""
        with self._lock:
            self.channels[channel] = [item for item in self.channels[channel] if item.ts != ts]

    def rate_limited(self, retry_after: int = 30) -> None:
        body = json.dumps({"ok": False, "error": "ratelimited"}).encode()
        self._trouble = (429, {"Retry-After": str(retry_after),
                               "Content-Type": "application/json"}, body)

    def unavailable(self) -> None:
        self._trouble = (503, {"Content-Type": "text/html"},
                         b"<html><body>Slack is temporarily unavailable</body></html>")

    def healthy(self) -> None:
        self._trouble = None

    # The server.

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._handle)

    def __exit__(self, kind: object, *rest: object) -> None:
        give_up = time.monotonic() + 10
        while self._slow_answers and time.monotonic() < give_up:  # let a late answer end
            time.sleep(0.05)
        super().__exit__(kind, *rest)
        if kind is None and self.checker.violations:
            raise AssertionError("traffic the Slack Web API description forbids:\n"
                                 + "\n".join(self.checker.violations))

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        api_method = request.match_info["method"]
        with self._lock:
            self.requests.append(Request(request.method, api_method, dict(request.headers),
                                         body))
            trouble = self._trouble
            known = len(self.checker.violations)
            operation = self.checker.request(request.method, request.path,
                                             dict(request.query), dict(request.headers), body)
            refused = len(self.checker.violations) > known
        if trouble is not None:
            status, headers, text = trouble
            response = web.Response(status=status, headers=headers, body=text)
        elif refused:  # what Slack answers to arguments it cannot read
            response = web.json_response({"ok": False, "error": "invalid_arg_name"})
        else:
            answer, delay = self._answer(api_method, request.headers.get("Authorization"),
                                         body, dict(request.query))
            if delay:
                self._slow_answers += 1
                try:
                    await asyncio.sleep(delay)
                finally:
                    self._slow_answers -= 1
            if answer.get("error") == "ratelimited":
                self.rate_limited_answers += 1
                response = web.json_response(answer, status=429, headers={
                    "Retry-After": str(self.retry_after)})
            else:
                response = web.json_response(answer)
        self.checker.response(operation, response.status, dict(response.headers),
                              response.body if isinstance(response.body, bytes) else b"")
        return response

    def _answer(self, api_method: str, authorization: str | None, body: Any,
                query: dict[str, str]) -> tuple[dict[str, Any], float]:
        if not authorization:
            return {"ok": False, "error": "not_authed"}, 0
        if authorization != f"Bearer {self.token}":
            return {"ok": False, "error": self.refusal}, 0
        with self._lock:
            if api_method == "conversations.history":
                return self._history(query), 0
            if not isinstance(body, dict):
                return {"ok": False, "error": "invalid_arg_name"}, 0
            if api_method == "chat.postMessage":
                answer = self._post_message(body)
                delay, self.slow_post = (self.slow_post, 0.0) if answer.get("ok") \
                    else (0.0, self.slow_post)
                return answer, delay
            if api_method == "chat.update":
                return self._update(body), 0
        return {"ok": False, "error": "unknown_method"}, 0

    def _refusal(self, channel: Any, body: dict[str, Any], scope: str) -> str | None:
        """Slack's refusals before anything is posted, in the order it checks them."""
        if scope not in self.scopes:
            return "missing_scope"
        if channel not in self.channels:
            return "channel_not_found"
        if channel in self.archived:
            return "is_archived"
        if channel not in self.joined:
            return "not_in_channel"
        text = body.get("text")
        if isinstance(text, str) and len(text) > TEXT_MAX:
            return "msg_too_long"
        if body.get("blocks") is not None and block_kit_problems(body["blocks"]):
            return "invalid_blocks"
        return None

    def _post_message(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel")
        refused = self._refusal(channel, body, "chat:write")
        if refused:
            return {"ok": False, "error": refused}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        now = time.monotonic()
        recent = [at for at in self._posted.get(str(channel), []) if now - at < BURST_WINDOW]
        if len(recent) >= self.burst:
            return {"ok": False, "error": "ratelimited"}
        self._posted[str(channel)] = [*recent, now]
        self._sequence += 1
        ts = f"1700000000.{self._sequence * 100:06d}"
        message = Message(ts, body.get("text", ""), body.get("blocks"),
                          metadata=body.get("metadata"))
        parent = body.get("thread_ts")
        if parent is None:
            self.channels[channel].append(message)
        else:
            thread = next((item for item in self.channels[channel] if item.ts == parent), None)
            if thread is None:
                return {"ok": False, "error": "thread_not_found"}
            thread.replies.append(message)
        answer = fixture("chat_postMessage.json")
        answer.update(channel=channel, ts=ts)
        answer["message"].update(text=message.text, ts=ts)
        return dict(answer)

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        channel, ts = body.get("channel"), body.get("ts")
        refused = self._refusal(channel, body, "chat:write")
        if refused:
            return {"ok": False, "error": refused}
        message = next((item for item in self.channels[channel] if item.ts == ts), None)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text = body.get("text", message.text)
        message.blocks = body.get("blocks", message.blocks)
        answer = fixture("chat_update.json")
        answer.update(channel=channel, ts=ts, text=message.text)
        answer["message"].update(text=message.text)
        return dict(answer)

    def _history(self, query: dict[str, str]) -> dict[str, Any]:
        """``conversations.history``, newest first; metadata only when asked for
        (https://api.slack.com/methods/conversations.history#arg_include_all_metadata)."""
        channel = query.get("channel")
        if "channels:history" not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": "channels:history",
                    "provided": ",".join(sorted(self.scopes))}
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if channel not in self.joined:
            return {"ok": False, "error": "not_in_channel"}
        oldest = float(query.get("oldest") or 0)
        limit = int(query.get("limit") or 100)
        found = [item for item in reversed(self.channels[channel]) if float(item.ts) > oldest]
        messages = []
        for item in found[:limit]:
            shown: dict[str, Any] = {"type": "message", "ts": item.ts, "text": item.text,
                                     "bot_id": "B0INTERLK"}
            if item.metadata is not None and query.get("include_all_metadata") == "true":
                shown["metadata"] = item.metadata
            messages.append(shown)
        return {"ok": True, "messages": messages, "has_more": len(found) > limit,
                "pin_count": 0, "channel_actions_ts": None, "channel_actions_count": 0}


def block_kit_problems(blocks: Any) -> list[str]:
    """What Slack's Block Kit refuses (``invalid_blocks``) that the API description
    leaves open (its ``blocks`` schema is "a very loose definition"). The limits are
    from https://api.slack.com/reference/block-kit/blocks: at most 50 blocks; a section's
    text at most 3,000 characters and its fields at most 10, each 2,000; a header's
    plain text 150; a context's elements at most 10; an actions block's at most 25."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return ["blocks must be a list of at most 50"]
    problems = []
    for index, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "section":
            text = (block.get("text") or {}).get("text")
            if isinstance(text, str) and len(text) > 3000:
                problems.append(f"blocks[{index}].text is over 3000 characters")
            fields = block.get("fields") or []
            if len(fields) > 10 or any(len(item.get("text", "")) > 2000 for item in fields):
                problems.append(f"blocks[{index}].fields: at most 10 of 2000 characters")
        elif kind == "header":
            if len((block.get("text") or {}).get("text", "")) > 150:
                problems.append(f"blocks[{index}].text is over 150 characters")
        elif kind == "context":
            if len(block.get("elements") or []) > 10:
                problems.append(f"blocks[{index}] has more than 10 elements")
        elif kind == "actions":
            if len(block.get("elements") or []) > 25:
                problems.append(f"blocks[{index}] has more than 25 elements")
        else:
            problems.append(f"blocks[{index}] is of unknown type {kind!r}")
    return problems


def sign(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers Slack adds to a request it sends: its timestamp and v0 signature."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": f"v0={digest}"}


def button_payload(action_id: str, incident_id: str, *, username: str = "alice",
                   trigger_id: str | None = None) -> dict[str, Any]:
    """The documented block_actions payload, for a press on one of the card's buttons."""
    payload = copy.deepcopy(fixture("block_actions.json"))
    payload["user"].update(username=username, name=username)
    payload["actions"][0].update(action_id=action_id, value=incident_id)
    if trigger_id is not None:
        payload["trigger_id"] = trigger_id
    return dict(payload)


def button_request(payload: dict[str, Any], *, timestamp: int,
                   secret: str = SIGNING_SECRET) -> tuple[dict[str, str], bytes]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return sign(secret, timestamp, body), body


def slash_command_fields(text: str, *, user_name: str = "alice") -> dict[str, str]:
    """The documented slash command form, with this ``text`` typed after ``/incident``."""
    fields = dict(parse_qsl((FIXTURES / "slash_command.txt").read_text(),
                            keep_blank_values=True))
    fields.update(text=text, user_name=user_name)
    return fields


def slash_command_request(fields: dict[str, str], *, timestamp: int,
                          secret: str = SIGNING_SECRET) -> tuple[dict[str, str], bytes]:
    body = urlencode(fields).encode()
    return sign(secret, timestamp, body), body
