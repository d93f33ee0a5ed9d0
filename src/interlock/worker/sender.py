"""The Sender that delivers webhooks over HTTP.

Requests go out through worker.http11, a lean HTTP/1.1 client (aiohttp's request
machinery was most of the delivery worker's event-loop CPU; see that module). One
client is shared by every delivery so connections to a receiver are kept alive between
attempts; the per-host connection limit keeps one slow or dead receiver from taking
every connection, so it never slows the others.

Safety rules a caller can rely on:

* redirects are never followed (a 3xx is a failed attempt, FailureKind.REDIRECT);
* at most RESPONSE_BODY_LIMIT bytes of a response are read, then the connection is
  dropped, so a receiver answering with a huge body costs nothing;
* every address is checked against the target guard (domain.targets) *after* DNS, by
  GuardedResolver, and the socket is connected to the addresses it kept, so the address
  checked is the address connected to;
* no cookies are kept and no proxy settings are read from the environment, because a
  proxy would do the DNS lookup out of the guard's sight.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohappyeyeballs
import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from interlock.domain.delivery import RESPONSE_BODY_LIMIT, FailureKind, OutboundRequest, SendResult
from interlock.domain.errors import InvalidInput
from interlock.domain.targets import Network, ip_literal, is_forbidden, parse_endpoint_url
from interlock.ports.clock import Clock
from interlock.worker.http11 import (
    ConnectFailed,
    Http11Client,
    Response,
    ResponseBroken,
    default_tls,
)

#: Longest Retry-After honoured; a receiver asking for more is retried after a day anyway.
MAX_RETRY_AFTER = 86_400.0
USER_AGENT = "Interlock-Webhooks/1"
_DETAIL_LIMIT = 300
_CHECKED_URLS_LIMIT = 10_000
_DELTA_SECONDS = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")


class BlockedTarget(OSError):
    """The target guard refused every address of a host. An OSError so that aiohttp
    passes it through its connector as the cause of a ClientConnectorError."""


class GuardedResolver(AbstractResolver):
    """Resolves with aiohttp's ThreadedResolver (the system resolver, honouring
    /etc/hosts), then drops every address the target guard forbids."""

    def __init__(self, allowed: Iterable[Network] = ()) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allowed = tuple(allowed)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not results:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} has no addresses")
        kept = [result for result in results if _reason(result["host"], self._allowed) is None]
        if not kept:
            reason = _reason(results[0]["host"], self._allowed)
            raise BlockedTarget(f"{host} resolves to a forbidden address: {reason}")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def _reason(address: str, allowed: tuple[Network, ...]) -> str | None:
    try:
        return is_forbidden(address, allowed)
    except ValueError:
        return f"{address!r} is not an IP address"


class WebhookSender:
    """Implements ports.sender.Sender. Create it anywhere, but use it from one event
    loop only: the client is made on first send, inside that loop.

    ``limit`` caps open connections in all; ``limit_per_host`` caps them per receiver
    (host, port and scheme), so receivers that hang hold at most that many each and the
    rest stay free for healthy ones. ``allowed_networks`` is INTERLOCK_ALLOWED_TARGETS:
    the otherwise forbidden networks this installation may call.
    """

    def __init__(self, *, allowed_networks: Iterable[Network] = (), limit: int = 512,
                 limit_per_host: int = 64, keepalive_timeout: float = 30.0,
                 clock: Clock | None = None) -> None:
        self._allowed = tuple(allowed_networks)
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._keepalive_timeout = keepalive_timeout
        self._now: Callable[[], datetime] = clock.now if clock else _utc_now
        self._client: Http11Client | None = None
        self._resolver: GuardedResolver | None = None
        self._tls = default_tls()
        self._checked_urls: dict[str, URL] = {}

    async def send(self, request: OutboundRequest) -> SendResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(request.timeout):
                response = await self._client_in_loop().post(
                    self._guarded_url(request.url), request.headers, request.body,
                    RESPONSE_BODY_LIMIT)
        except Exception as error:  # failures are data (see Sender.send); cancellation is not
            failure, detail = classify(error, request.timeout)
            return SendResult(status=None, body="", duration=time.perf_counter() - started,
                              failure=failure, detail=_shorten(detail))
        return self._result(response, started)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    def _client_in_loop(self) -> Http11Client:
        if self._client is None:
            self._resolver = GuardedResolver(self._allowed)
            self._client = Http11Client(
                self._connect, user_agent=USER_AGENT, limit=self._limit,
                limit_per_host=self._limit_per_host, keepalive_timeout=self._keepalive_timeout)
        return self._client

    async def _connect(self, scheme: str, host: str, port: int,
                       protocol: Callable[[], asyncio.Protocol]) -> None:
        """Connect to the guard's addresses for ``host`` (an IP literal was checked with
        the URL), trying them as aiohttp does (Happy Eyeballs, 250 ms apart)."""
        found: list[tuple[int, int, str]]
        try:
            if ip_literal(host) is not None:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                found = [(family, socket.IPPROTO_TCP, host)]
            else:
                assert self._resolver is not None
                found = [(result["family"], result["proto"] or socket.IPPROTO_TCP,
                          result["host"])
                         for result in await self._resolver.resolve(host, port,
                                                                    socket.AF_UNSPEC)]
            sock = await aiohappyeyeballs.start_connection(
                [(family, socket.SOCK_STREAM, proto, "",
                  (address, port, 0, 0) if family == socket.AF_INET6 else (address, port))
                 for family, proto, address in found],
                happy_eyeballs_delay=0.25)
            tls = scheme == "https"
            try:
                await asyncio.get_running_loop().create_connection(
                    protocol, sock=sock, ssl=self._tls if tls else None,
                    server_hostname=host if tls else None)
            except BaseException:
                sock.close()
                raise
        except (OSError, RuntimeError) as error:  # uvloop raises RuntimeError for some
            raise ConnectFailed(host, port, error) from error

    def _result(self, response: Response, started: float) -> SendResult:
        status, headers = response.status, response.headers
        failure, detail = None, None
        if 300 <= status < 400:
            location = headers.get("location", "(no Location header)")
            failure = FailureKind.REDIRECT
            detail = _shorten(f"redirected ({status}) to {location}; redirects are not followed")
        return SendResult(status=status, body=_decode(response.body, _charset(headers)),
                          duration=time.perf_counter() - started, failure=failure,
                          detail=detail,
                          retry_after=parse_retry_after(headers.get("retry-after"),
                                                        self._now()))

    def _guarded_url(self, raw: str) -> URL:
        """Validate the URL and check an IP-literal host, which aiohttp connects to
        without asking the resolver. The check runs on the URL as aiohttp parses it, so a
        difference between two URL parsers cannot smuggle a host past it. Accepted URLs
        are remembered: the same few endpoints are sent to again and again, and the
        check (about 30 µs) is a noticeable share of a request's CPU time."""
        url = self._checked_urls.get(raw)
        if url is None:
            url = checked_url(raw, self._allowed)
            if len(self._checked_urls) >= _CHECKED_URLS_LIMIT:
                self._checked_urls.clear()
            self._checked_urls[raw] = url
        return url

def checked_url(raw: str, allowed: tuple[Network, ...]) -> URL:
    """The URL as the HTTP clients (http11, aiohttp) will use it, if it is well-formed
    and an IP-literal host is one Interlock may call (a named host is checked after DNS,
    by GuardedResolver)."""
    parse_endpoint_url(raw)
    url = URL(raw)
    host = url.raw_host or ""
    address = ip_literal(host)
    if address is not None:
        reason = is_forbidden(address, allowed)
        if reason is not None:
            raise BlockedTarget(reason)
    elif ":" in host or host.replace(".", "").isdigit():
        raise InvalidInput(f"URL host {host!r} is not a canonical IP address")
    return url


def _charset(headers: dict[str, str]) -> str | None:
    """The charset parameter of the answer's Content-Type, if any."""
    for parameter in headers.get("content-type", "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP-date),
    clamped to 0..MAX_RETRY_AFTER; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.match(value):
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def classify(error: Exception, timeout: float) -> tuple[FailureKind, str]:
    """Map what the HTTP client (http11 for webhooks, aiohttp for connectors' tools) or
    the guard raised to a FailureKind and a short sentence a user can act on. Order
    matters: aiohttp's TLS errors are connector errors too."""
    if isinstance(error, ConnectFailed):
        cause: BaseException = error.cause
    elif isinstance(error, aiohttp.ClientConnectorError):
        cause = error.os_error
    else:
        cause = error
    if isinstance(cause, BlockedTarget):
        return FailureKind.BLOCKED_TARGET, f"blocked: {cause}"
    if isinstance(error, InvalidInput):
        return FailureKind.INVALID_URL, error.detail
    if isinstance(error, aiohttp.InvalidURL):
        return FailureKind.INVALID_URL, f"invalid URL: {error}"
    if isinstance(error, TimeoutError):
        return FailureKind.TIMEOUT, f"no complete response within {timeout:g} s"
    tls = error if isinstance(error, aiohttp.ClientSSLError) else cause
    if isinstance(tls, aiohttp.ClientSSLError | ssl.SSLError):
        return FailureKind.TLS, f"TLS failed: {_tls_reason(tls)}"
    if isinstance(error, ConnectFailed | aiohttp.ClientConnectorError):
        return _unreachable(error.host, error.port, cause)
    if isinstance(error, ResponseBroken) and not error.reset:
        return FailureKind.OTHER, f"the receiver sent an invalid HTTP response: {error}"
    if isinstance(error, ResponseBroken) or _is_reset(error):
        return FailureKind.CONNECTION_RESET, f"the receiver closed the connection: {error}"
    if isinstance(error, aiohttp.ClientResponseError):
        return FailureKind.OTHER, f"the receiver sent an invalid HTTP response: {error.message}"
    return FailureKind.OTHER, f"{type(error).__name__}: {error}"


def _unreachable(host: str, port: int | None, cause: BaseException
                 ) -> tuple[FailureKind, str]:
    """A connection that could not be made (the guard's refusal and TLS are classified
    before this)."""
    where = f"{host}:{port}"
    if isinstance(cause, socket.gaierror):
        return FailureKind.DNS, f"could not resolve {host}: {cause.strerror or cause}"
    if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED):
        return FailureKind.CONNECTION_REFUSED, f"connection refused by {where}"
    if isinstance(cause, ConnectionResetError):
        return FailureKind.CONNECTION_RESET, f"connection reset by {where}"
    reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else cause
    return FailureKind.OTHER, f"could not connect to {where}: {reason}"


def _is_reset(error: Exception) -> bool:
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError
                  | ConnectionResetError | BrokenPipeError):
        return True
    return isinstance(error, OSError) and error.errno in (errno.ECONNRESET, errno.EPIPE)


def _tls_reason(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return str(error.certificate_error)
    return str(error)


def _shorten(text: str) -> str:
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _utc_now() -> datetime:
    return datetime.now(UTC)
