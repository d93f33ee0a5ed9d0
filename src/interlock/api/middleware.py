"""Pure ASGI middleware: request body limit and request metrics.

Written against raw ASGI rather than BaseHTTPMiddleware so they add microseconds,
not a task and a queue, to every request.
"""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlock.api.problems import MEDIA_TYPE

_BODY_METHODS = {"POST", "PUT", "PATCH"}


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether announced by Content-Length
    or streamed; the app downstream sees the whole body already read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _too_large(send, self.limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestMetrics:
    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "interlock_http_requests", "HTTP requests answered",
            ["method", "route", "status"], registry=registry,
        )
        self.duration = Histogram(
            "interlock_http_request_duration_seconds", "Time to answer HTTP requests",
            ["method", "route"], registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            # Label by route template, never by raw path: ids would explode cardinality.
            template = getattr(route, "path", None) or "unmatched"
            self.requests.labels(scope["method"], template, str(status)).inc()
            self.duration.labels(scope["method"], template).observe(
                time.perf_counter() - started
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


async def _too_large(send: Send, limit: int) -> None:
    body: dict[str, Any] = {
        "type": "https://interlock.dev/problems/payload-too-large",
        "title": "Payload too large",
        "status": 413,
        "detail": f"the request body is larger than {limit} bytes",
    }
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [(b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": payload})
