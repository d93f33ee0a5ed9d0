"""Pure ASGI middleware: request body limit, NUL-free URLs, allowed methods, request
metrics and the access log.

Written against raw ASGI rather than BaseHTTPMiddleware so they add microseconds,
not a task and a queue, to every request.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlock.api.problems import is_json, send_problem
from interlock.domain import json_input
from interlock.domain.errors import MalformedJson
from interlock.logs import AccessLogMode, mask_query_values

_BODY_METHODS = {"POST", "PUT", "PATCH"}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether announced by Content-Length
    or streamed, and JSON nested deeper than the API reads with 400 (FastAPI's decoder
    would take a few hundred levels, and a settings object that deep would be stored);
    the app downstream sees the whole body already read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and not declared.isdigit():
            await send_problem(send, 400, "Bad request",
                               "the Content-Length header is not a number",
                               slug="bad-request", close=True)
            return
        if declared is not None and int(declared) > self.limit:
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
        if is_json(_header(scope, b"content-type")):
            try:
                json_input.check_depth(body)
            except MalformedJson as error:
                await send_problem(send, 400, "Bad request", error.detail,
                                   slug=error.slug)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RejectNul:
    """Refuse a NUL character anywhere in the path or query with 400.

    No identifier or filter can contain one, and PostgreSQL cannot even compare text
    with one, so a lookup like ``/incidents/%00`` would otherwise fail inside the store.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            await send_problem(send, 400, "Bad request",
                               "the URL must not contain NUL characters (%00)",
                               slug="bad-request", close=True)
            return
        await self.app(scope, receive, send)


def _has_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"\x00" in query or b"%00" in query


class AllowedMethods:
    """``OPTIONS`` answers 204 with an ``Allow`` naming every method the path takes, and
    a 405 names them all too.

    Starlette routes each method of a path separately (``GET`` and ``PATCH``
    ``/incidents/{id}`` are two routes), so on its own it answers OPTIONS with 405 and
    an ``Allow`` listing whichever single route matched first.
    """

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            allowed = self._allowed(scope)
            if allowed:
                await send({"type": "http.response.start", "status": 204,
                            "headers": [(b"allow", allowed)]})
                await send({"type": "http.response.body", "body": b""})
                return

        async def complete_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                headers = [(name, value) for name, value in message.get("headers", [])
                           if name.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", self._allowed(scope))]}
            await send(message)

        await self.app(scope, receive, complete_allow)

    def _allowed(self, scope: Scope) -> bytes:
        """Every method some route takes at this path, plus OPTIONS; empty when none
        does (then it is a 404). Asked of the routes one method at a time, as routing
        would, since included routers keep their routes to themselves."""
        methods = [method for method in _METHODS
                   if any(route.matches({**scope, "method": method})[0] is Match.FULL
                          for route in self.router.routes)]
        return ", ".join([*methods, "OPTIONS"]).encode() if methods else b""


class _Answered:
    """The app's ``send``, noting the status it answers with."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send, status: int) -> None:
        self.send = send
        self.status = status

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class HttpMetrics:
    """The request counters, made once per registry and shared by every entry point."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "interlock_http_requests", "HTTP requests answered",
            ["method", "route", "status"], registry=registry,
        )
        self.duration = Histogram(
            "interlock_http_request_duration_seconds", "Time to answer HTTP requests",
            ["method", "route"], registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.requests = metrics.requests
        self.duration = metrics.duration
        #: The labelled counter and histogram for each (method, route, status): looking
        #: them up through labels() on every request (a lock, label checks) was a few
        #: per cent of a single-alert ingest request's CPU. Routes are templates, so
        #: this stays small.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = _Answered(send, 500)
        try:
            await self.app(scope, receive, answered)
        finally:
            route = scope.get("route")
            # Label by route template, never by raw path: ids would explode cardinality.
            self.record(scope["method"], getattr(route, "path", None) or "unmatched",
                        answered.status, started)

    def record(self, method: str, template: str, status: int, started: float) -> None:
        """Count a request answered with ``status``, begun at ``started``
        (``time.perf_counter()``)."""
        key = (method, template, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(method, template, str(status)),
                self.duration.labels(method, template))
        children[0].inc()
        children[1].observe(time.perf_counter() - started)


_access = logging.getLogger("interlock.access")


class AccessLog:
    """A line per answered request, in the format of uvicorn's access log, which this
    replaces, with every query value masked (a source's token may travel as
    ``?token=``). By default only requests answered 4xx or 5xx: a sender with a wrong
    token or a broken body shows up, a storm's thousands of accepted alerts a second do
    not. uvicorn's line for each of them cost the API process 430 µs of CPU per
    single-alert ingest POST (354-461, 3 runs of wrk with 16 connections against the
    settings as shipped) against 308 µs (229-315) without, in turns on one machine; the
    counts are in ``/metrics`` anyway."""

    def __init__(self, app: ASGIApp, mode: AccessLogMode) -> None:
        self.app = app
        self.everything = mode == "all"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answered = _Answered(send, 0)
        try:
            await self.app(scope, receive, answered)
        except BaseException:
            answered.status = answered.status or 500  # uvicorn answers 500 for an app that raised
            raise
        finally:
            # No status: the client went away before an answer; nothing was answered.
            status = answered.status
            if status and (self.everything or status >= 400):
                log_request(scope, status)


def log_request(scope: Scope, status: int) -> None:
    """The access log's line for a request answered with ``status``."""
    client = scope.get("client")
    path = quote(scope.get("root_path", "") + scope["path"])  # no newline gets through
    query: bytes = scope.get("query_string", b"")
    if query:
        path += "?" + mask_query_values("?" + query.decode("latin-1"))[1:]
    _access.info('%s - "%s %s HTTP/%s" %d', f"{client[0]}:{client[1]}" if client else "-",
                 scope["method"], path, scope.get("http_version", "1.1"), status)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


async def _too_large(send: Send, limit: int) -> None:
    await send_problem(send, 413, "Payload too large",
                       f"the request body is larger than {limit} bytes",
                       slug="payload-too-large", close=True)
