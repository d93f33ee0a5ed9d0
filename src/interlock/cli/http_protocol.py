"""uvicorn's HTTP/1.1 protocol, with two savings for the hot paths.

**A response's head and body in one system call.** uvicorn writes the status line and
headers (``http.response.start``) and then the body as two writes to the socket; the
event loop sends each at once. On these virtual machines a send costs as much as a good
part of the request: in a py-spy profile of ``serve`` taking single-alert POSTs, the two
writes were a fifth of the event loop's samples. Here the head waits for the body when
the body follows in the same step of the event loop (every plain response: a JSON
answer, a 202, a problem), and goes out on its own at the next step otherwise (a stream
that has nothing to send yet still shows its headers at once).

**Single alerts accepted without the ASGI app.** Taking single-alert POSTs, the API
process spent a good part of its CPU on the way to and from the ingest app rather than
in it: a task per request, the ASGI messages, the middleware, the awaits for the body
(answering them here took a fifth off its CPU per POST: 263 against 325 µs, 5 pairs of
runs of ``bench/ingest.py --shapes 1x16 --no-worker``). When the application offers
``at_once`` (``interlock.api.app.Interlock``) and a request's head shows that it will be
accepted if its body is JSON (a known source's token, no rate limit, a Content-Length
within :data:`AT_ONCE_BODY_MAX`, no ``Expect: 100-continue``; see
``IngestApp.admitted``), this protocol gathers the body itself, hands the payload to
the ingest group commit and writes the answer when the commit is done, counted and
logged as the app would. Anything else, and an admitted request whose body is not
JSON, goes to the ASGI app as before, which answers it with the same code it always
has. Pipelined requests keep their order: one that arrives while an admitted request
waits for its commit is queued by uvicorn and started once that one is answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol, cast

import uvicorn
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

#: The largest body an admitted request may announce: uvicorn stops reading from a
#: connection whose unread body passes HIGH_WATER_LIMIT until the app reads it, and no
#: app reads an admitted request's body.
AT_ONCE_BODY_MAX = HIGH_WATER_LIMIT
_log = logging.getLogger("uvicorn.error")
#: uvicorn's answer for an app that raised (RequestResponseCycle.send_500_response).
_INTERNAL_ERROR = ((b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21"),
                   (b"connection", b"close"))


def server_config(app: Any, host: str, port: int, log_level: str) -> uvicorn.Config:
    """How ``serve`` runs ``app`` on uvicorn: with this protocol, and with nothing of
    uvicorn's around the app (no proxy headers middleware, which would also hide the
    app's ``at_once``; no access log, which the app writes itself)."""
    return uvicorn.Config(app, host=host, port=port, http=ServerProtocol, log_level=log_level,
                          proxy_headers=False, server_header=False, access_log=False)


class AtOnce(Protocol):
    """A request the server answers itself (``interlock.api.app.AtOnce``)."""

    def accept(self, body: bytes) -> asyncio.Future[None] | None: ...

    def response(self, committed: asyncio.Future[None]
                 ) -> tuple[int, tuple[Sequence[tuple[bytes, bytes]], bytes]]: ...


class ServerProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The application's ``at_once``, when it offers one (not when uvicorn wraps it).
        self._at_once = getattr(self.app, "at_once", None)
        self._reading_head = False
        #: The request admitted on its head whose body is still arriving.
        self._admitted: tuple[RequestResponseCycle, AtOnce] | None = None

    def on_headers_complete(self) -> None:
        self._reading_head = True
        try:
            super().on_headers_complete()
        finally:
            self._reading_head = False

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # Called on a request's head when nothing is in flight on the connection (and
        # later for pipelined requests, which go to the app).
        if (self._reading_head and self._at_once is not None and app is self.app
                and not cycle.waiting_for_100_continue):
            try:
                admitted = self._at_once(cycle.scope, AT_ONCE_BODY_MAX)
            except Exception:  # the app answers it, and tells what went wrong
                _log.exception("Could not decide whether to accept a request at once")
                admitted = None
            if admitted is not None:
                self._admitted = (cycle, admitted)
                return
        self._to_app(cycle, app)

    def _to_app(self, cycle: RequestResponseCycle, app: Any) -> None:
        """Start the app on ``cycle``, writing through a transport that joins its head
        and body."""
        cycle.transport = cast(asyncio.Transport, _JoinedWrites(self.transport, self.loop))
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        pending, self._admitted = self._admitted, None
        if pending is None:
            return
        cycle, admitted = pending
        try:
            committed = admitted.accept(bytes(cycle.body))
        except Exception:  # the app answers it, and tells what went wrong
            _log.exception("Could not accept a request at once")
            committed = None
        if committed is None:  # not JSON (or the above): the app says so
            self._to_app(cycle, self.app)
            return
        cycle.body = bytearray()
        committed.add_done_callback(
            lambda done: self._answer(cycle, admitted, done))

    def _answer(self, cycle: RequestResponseCycle, admitted: AtOnce,
                committed: asyncio.Future[None]) -> None:
        """Write the answer of an admitted request, as RequestResponseCycle.send would."""
        try:
            status, (headers, body) = admitted.response(committed)
        except BaseException as error:
            _log.error("Exception in ASGI application\n", exc_info=error)
            status, headers, body = 500, _INTERNAL_ERROR, b"Internal Server Error"
        parts = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            if name == b"connection" and b"close" in value.lower():
                cycle.keep_alive = False
            parts.append(name + b": " + value + b"\r\n")
        if not cycle.keep_alive and not any(name == b"connection" for name, _ in headers):
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        parts.append(body)
        cycle.response_started = cycle.response_complete = True
        if cycle.disconnected:
            return
        self.transport.write(b"".join(parts))
        if not cycle.keep_alive:
            self.transport.close()
        cycle.on_response()


class _JoinedWrites:
    """The connection's transport for one request: its first write (the head) is held
    until the next write or the end of the event loop's step, whichever comes first."""

    __slots__ = ("_first", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._first = True

    def write(self, data: bytes) -> None:
        if self._first:
            self._first = False
            self._held = data
            self._loop.call_soon(self._flush)
            return
        held, self._held = self._held, None
        self._transport.write(data if held is None else held + data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
