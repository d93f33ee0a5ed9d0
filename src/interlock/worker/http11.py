"""A lean HTTP/1.1 client for webhook POSTs: one request per kept-alive connection at a
time, the response parsed by llhttp (httptools, which uvicorn already brings).

Why not aiohttp here: in a py-spy profile of the delivery worker sending a backlog to
ten endpoints, aiohttp's request machinery (timeouts, tracing, header multidicts,
payload registry, a task per write) was about three quarters of the event loop's CPU,
some 200 µs a delivery. A webhook is always the same exchange: a small POST whose
answer is read up to a limit and then mostly thrown away. This client does that and
nothing else; connectors' calls to their tools still go through aiohttp (tool_http).

What a caller can rely on:

* the caller bounds the whole exchange (``asyncio.timeout``); an exchange that does
  not end normally closes its connection, so a half-read answer is never reused;
* addresses come from ``connect``, the caller's guarded resolution, and the socket is
  connected to exactly those addresses (Happy Eyeballs across them, as aiohttp does);
* at most ``body_limit`` bytes of an answer are kept; when more is coming the
  connection is closed rather than read to the end;
* never a redirect, a cookie, a proxy or a compressed answer (no Accept-Encoding).
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import cast

import httptools
from yarl import URL

#: Response headers kept: the ones the sender reads.
_KEPT_HEADERS = frozenset({b"retry-after", b"location", b"content-type"})
_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")


class ConnectFailed(OSError):
    """No connection could be made to ``host``:``port``; ``cause`` says why (refused,
    DNS, TLS, a guard's refusal, ...)."""

    def __init__(self, host: str, port: int, cause: BaseException) -> None:
        super().__init__(f"could not connect to {host}:{port}: {cause}")
        self.host = host
        self.port = port
        self.cause = cause


class ResponseBroken(Exception):
    """A connection ended or sent what is not HTTP before a whole response arrived.
    ``reset``: it closed (or was reset); otherwise the bytes were not valid HTTP."""

    def __init__(self, message: str, *, reset: bool) -> None:
        super().__init__(message)
        self.reset = reset


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    #: Lower-cased names; only Retry-After, Location and Content-Type are kept.
    headers: dict[str, str]
    #: At most the caller's body limit.
    body: bytes


#: Connects a protocol to (scheme, host, port), TLS for https, or raises ConnectFailed.
Connect = Callable[[str, str, int, Callable[[], asyncio.Protocol]], Awaitable[None]]


class _Connection(asyncio.Protocol):
    """One connection, one exchange at a time. The parser calls back into it."""

    def __init__(self, key: tuple[str, str, int], on_lost: Callable[[_Connection], None]
                 ) -> None:
        self.key = key
        self._on_lost = on_lost
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: Its slot in the pool was given back (exactly once: see Http11Client._lost).
        self.slot_freed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Response] | None = None
        self._limit = 0
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self._headers_done = False
        self._framed = False
        self._reusable = False

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish_with(ResponseBroken("the receiver switched protocols", reset=False))
        except httptools.HttpParserError as error:
            self._finish_with(ResponseBroken(f"invalid HTTP response: {error}", reset=False))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._headers_done and not self._framed:
                waiter.set_result(self._response())  # an answer delimited by the close
            else:
                waiter.set_exception(ResponseBroken(
                    "the receiver closed the connection before a whole response"
                    + (f" ({exc})" if exc else ""), reset=True))
        self._on_lost(self)

    # -- httptools callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered in _KEPT_HEADERS:
            self._headers[lowered.decode("ascii")] = value.decode("latin-1")
        elif lowered in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self._limit - len(self._body)
        if room < 0:
            return  # already answered; the connection is closing
        self._body += body[:room]
        if len(body) > room:
            # More than the caller keeps: answer with what was kept, drop the rest.
            self._finish_with(None)
            self._limit = -1

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer: the real one follows
            self._begin(self._limit)
            return
        self._reusable = self._parser.should_keep_alive()
        self._finish_with(None)

    # -- exchanges ----------------------------------------------------------------------

    def _begin(self, limit: int) -> None:
        self._limit = limit
        self._status = 0
        self._headers = {}
        self._body = bytearray()
        self._headers_done = self._framed = self._reusable = False

    def exchange(self, request: bytes, limit: int) -> asyncio.Future[Response]:
        assert self.transport is not None and (self._waiter is None or self._waiter.done())
        self._begin(limit)
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return waiter

    def _finish_with(self, error: ResponseBroken | None) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if error is None:
            waiter.set_result(self._response())
        else:
            waiter.set_exception(error)
        if not self._reusable:
            self.close()

    def _response(self) -> Response:
        return Response(self._status, self._headers, bytes(self._body))

    @property
    def reusable(self) -> bool:
        return (self._reusable and not self.closed and self.transport is not None
                and not self.transport.is_closing())

    def close(self) -> None:
        self._reusable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class _Host:
    """The connections to one (scheme, host, port): idle ones, newest last, and the
    exchanges waiting for one. Kept for the client's life (a few hundred bytes per
    receiver host), so that nothing can hold one the pool has forgotten."""

    __slots__ = ("idle", "open", "waiters")

    def __init__(self) -> None:
        self.idle: deque[_Connection] = deque()
        self.open = 0
        self.waiters: deque[asyncio.Future[None]] = deque()


class Http11Client:
    """POSTs over pooled HTTP/1.1 connections. Use from one event loop only.

    ``limit`` caps open connections in all, ``limit_per_host`` per (scheme, host,
    port): one slow receiver holds at most that many; 0 means no cap (as in aiohttp).
    Idle connections are closed after ``keepalive_timeout`` seconds."""

    def __init__(self, connect: Connect, *,
                 user_agent: str, limit: int = 512, limit_per_host: int = 64,
                 keepalive_timeout: float = 30.0) -> None:
        self._connect = connect
        self._user_agent = user_agent
        self._limit = limit or sys.maxsize
        self._limit_per_host = limit_per_host or sys.maxsize
        self._keepalive = keepalive_timeout
        self._hosts: dict[tuple[str, str, int], _Host] = {}
        self._open = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def post(self, url: URL, headers: Mapping[str, str], body: bytes,
                   body_limit: int) -> Response:
        """Send ``body`` to ``url`` and read the answer, keeping at most ``body_limit``
        bytes of it. Raises ConnectFailed, ResponseBroken, or whatever the caller's
        timeout raises; a connection is reused only after a whole, kept-alive answer."""
        request = self._request(url, headers, body)
        key = (url.scheme, url.raw_host or "", url.port or 0)
        connection = await self._acquire(key)
        finished = False
        try:
            response = await connection.exchange(request, body_limit)
            finished = True
            return response
        finally:
            self._release(connection, reuse=finished)

    def _request(self, url: URL, headers: Mapping[str, str], body: bytes) -> bytes:
        lines = [f"POST {url.raw_path_qs or '/'} HTTP/1.1",
                 f"Host: {url.host_port_subcomponent}",
                 f"User-Agent: {self._user_agent}",
                 f"Content-Length: {len(body)}"]
        for name, value in headers.items():
            if any(bad in name or bad in value for bad in _FORBIDDEN_IN_HEADERS):
                raise ValueError(f"header {name!r} has a line break or NUL")
            lowered = name.lower()
            if lowered in ("host", "content-length", "user-agent", "transfer-encoding",
                           "connection"):
                continue  # set here, once
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    # -- the pool -----------------------------------------------------------------------

    async def _acquire(self, key: tuple[str, str, int]) -> _Connection:
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host()
        while True:
            while host.idle:
                connection = host.idle.pop()
                if connection.reusable:
                    return connection
                connection.close()
            if self._closed:
                raise ResponseBroken("the client is closed", reset=True)
            if host.open < self._limit_per_host and self._open < self._limit:
                return await self._new_connection(key, host)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            host.waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
                if waiter in host.waiters:
                    host.waiters.remove(waiter)

    async def _new_connection(self, key: tuple[str, str, int], host: _Host) -> _Connection:
        host.open += 1
        self._open += 1
        connection = _Connection(key, self._lost)
        try:
            await self._connect(key[0], key[1], key[2], lambda: connection)
        except BaseException:
            if connection.transport is not None:
                connection.close()  # connection_lost gives back the slot
            else:  # never connected: connection_lost will not come
                connection.closed = True
                self._lost(connection)
            raise
        return connection

    def _release(self, connection: _Connection, *, reuse: bool) -> None:
        if not (reuse and connection.reusable) or self._closed:
            connection.close()  # connection_lost gives back its slot
            return
        host = self._hosts[connection.key]
        connection.idle_since = time.monotonic()
        host.idle.append(connection)
        self._wake(host)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self._keepalive / 2,
                                                                  self._sweep)

    def _lost(self, connection: _Connection) -> None:
        host = self._hosts.get(connection.key)
        if host is None or connection.slot_freed:
            return
        connection.slot_freed = True
        host.open -= 1
        self._open -= 1
        if connection in host.idle:
            host.idle.remove(connection)
        self._wake(host)
        if self._open < self._limit:  # a slot freed in all: any host may use it
            for other in self._hosts.values():
                if other is not host and other.waiters:
                    self._wake(other)
                    break

    @staticmethod
    def _wake(host: _Host) -> None:
        while host.waiters:
            waiter = host.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self) -> None:
        """Close connections idle for longer than the keep-alive timeout."""
        self._sweeper = None
        oldest = time.monotonic() - self._keepalive
        left = False
        for host in self._hosts.values():
            for connection in [c for c in host.idle if c.idle_since <= oldest]:
                host.idle.remove(connection)
                connection.close()
            left = left or bool(host.idle)
        if left and not self._closed:
            self._sweeper = asyncio.get_running_loop().call_later(self._keepalive / 2,
                                                                  self._sweep)

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for host in self._hosts.values():
            while host.idle:
                host.idle.pop().close()
            for waiter in host.waiters:
                if not waiter.done():
                    waiter.set_result(None)
        await asyncio.sleep(0)  # let the transports' closes run


def default_tls() -> ssl.SSLContext:
    """Certificates checked against the system's CAs and the host name, as aiohttp's
    default (ssl.create_default_context)."""
    return ssl.create_default_context()
