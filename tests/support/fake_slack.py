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
        settings = {"channel": "C123", "api_base": slack.api_base}

``button_request`` and ``slash_command_request`` build what Slack POSTs to Interlock's
hook URL: a form body from the fixtures and the ``X-Slack-Signature`` headers, signed
here independently of Interlock's own code.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from tests.support.loopback import LoopbackServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "slack"
TOKEN = "xoxb-1111-2222-interlocktest"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


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


class FakeSlack(LoopbackServer):
    name = "fake Slack"

    def __init__(self, *, token: str = TOKEN, channels: tuple[str, ...] = ("C123",)) -> None:
        super().__init__()
        self.token = token
        self.requests: list[Request] = []
        self.channels: dict[str, list[Message]] = {channel: [] for channel in channels}
        self._trouble: tuple[int, dict[str, str], bytes] | None = None
        self._sequence = 0
        self._lock = threading.Lock()

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
        if trouble is not None:
            status, headers, text = trouble
            return web.Response(status=status, headers=headers, body=text)
        answer = self._answer(api_method, request.headers.get("Authorization"), body)
        return web.json_response(answer)

    def _answer(self, api_method: str, authorization: str | None, body: Any) -> dict[str, Any]:
        if not authorization:
            return {"ok": False, "error": "not_authed"}
        if authorization != f"Bearer {self.token}":
            return {"ok": False, "error": "invalid_auth"}
        if not isinstance(body, dict):
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            if api_method == "chat.postMessage":
                return self._post_message(body)
            if api_method == "chat.update":
                return self._update(body)
        return {"ok": False, "error": "unknown_method"}

    def _post_message(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        self._sequence += 1
        ts = f"1700000000.{self._sequence * 100:06d}"
        message = Message(ts, body.get("text", ""), body.get("blocks"))
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
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        message = next((item for item in self.channels[channel] if item.ts == ts), None)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text = body.get("text", message.text)
        message.blocks = body.get("blocks", message.blocks)
        answer = fixture("chat_update.json")
        answer.update(channel=channel, ts=ts, text=message.text)
        answer["message"].update(text=message.text)
        return dict(answer)


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
