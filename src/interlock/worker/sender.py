"""The Sender that delivers webhooks over HTTP, with aiohttp.

aiohttp was chosen for throughput (about 9,000 POSTs/s on the reference machine against
300-900 for httpx). One ClientSession is shared by every delivery so connections to a
receiver are kept alive between attempts; the per-host connection limit keeps one slow
or dead receiver from taking every connection, so it never slows the others.

Safety rules a caller can rely on:

* redirects are never followed (a 3xx is a failed attempt, FailureKind.REDIRECT);
* at most RESPONSE_BODY_LIMIT bytes of a response are read, then the connection is
  dropped, so a receiver answering with a huge body costs nothing;
* every address is checked against the target guard (domain.targets) *after* DNS, in
  the connector's resolver, so the address checked is the address connected to;
* no cookies are kept and no proxy settings are read from the environment, because a
  proxy would do the DNS lookup out of the guard's sight.
"""

from __future__ import annotations

import errno
import functools
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from interlock.domain.delivery import RESPONSE_BODY_LIMIT, FailureKind, OutboundRequest, SendResult
from interlock.domain.errors import InvalidInput
from interlock.domain.targets import Network, ip_literal, is_forbidden, parse_endpoint_url
from interlock.ports.clock import Clock

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


class AiohttpSender:
    """Implements ports.sender.Sender. Create it anywhere, but use it from one event
    loop only: the session is made on first send, inside that loop.

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
        self._session: aiohttp.ClientSession | None = None
        self._checked_urls: dict[str, URL] = {}

    async def send(self, request: OutboundRequest) -> SendResult:
        started = time.perf_counter()
        try:
            return await self._exchange(request, started)
        except Exception as error:  # failures are data (see Sender.send); cancellation is not
            failure, detail = classify(error, request.timeout)
            return SendResult(status=None, body="", duration=time.perf_counter() - started,
                              failure=failure, detail=_shorten(detail))

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _session_in_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host,
                keepalive_timeout=self._keepalive_timeout, resolver=GuardedResolver(self._allowed))
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT})
        return self._session

    async def _exchange(self, request: OutboundRequest, started: float) -> SendResult:
        url = self._guarded_url(request.url)
        session = self._session_in_loop()
        async with session.post(url, data=request.body, headers=request.headers,
                                allow_redirects=False,
                                timeout=_timeout(request.timeout)) as response:
            body = await _read_limited(response)
        status = response.status
        failure, detail = None, None
        if 300 <= status < 400:
            location = response.headers.get("Location", "(no Location header)")
            failure = FailureKind.REDIRECT
            detail = _shorten(f"redirected ({status}) to {location}; redirects are not followed")
        return SendResult(status=status, body=body, duration=time.perf_counter() - started,
                          failure=failure, detail=detail,
                          retry_after=parse_retry_after(response.headers.get("Retry-After"),
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

@functools.lru_cache(maxsize=64)
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    """Endpoints share a few timeouts; the (frozen) value is made once for each."""
    return aiohttp.ClientTimeout(total=seconds)


def checked_url(raw: str, allowed: tuple[Network, ...]) -> URL:
    """The URL as aiohttp will use it, if it is well-formed and an IP-literal host is
    one Interlock may call (a named host is checked after DNS, by GuardedResolver)."""
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


async def _read_limited(response: aiohttp.ClientResponse) -> str:
    """Read at most RESPONSE_BODY_LIMIT bytes; if more is coming, drop the connection
    rather than read the rest or hand a half-read connection back to the pool."""
    body = bytearray()
    while len(body) < RESPONSE_BODY_LIMIT:
        chunk = await response.content.read(RESPONSE_BODY_LIMIT - len(body))
        if not chunk:
            break
        body += chunk
    if not response.content.at_eof():
        response.close()
    return _decode(bytes(body), response.charset)


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
    """Map what aiohttp (or the guard) raised to a FailureKind and a short sentence a
    user can act on. Order matters: aiohttp's TLS errors are connector errors too."""
    cause = error.os_error if isinstance(error, aiohttp.ClientConnectorError) else error
    if isinstance(cause, BlockedTarget):
        return FailureKind.BLOCKED_TARGET, f"blocked: {cause}"
    if isinstance(error, InvalidInput):
        return FailureKind.INVALID_URL, error.detail
    if isinstance(error, aiohttp.InvalidURL):
        return FailureKind.INVALID_URL, f"invalid URL: {error}"
    if isinstance(error, TimeoutError):
        return FailureKind.TIMEOUT, f"no complete response within {timeout:g} s"
    if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
        return FailureKind.TLS, f"TLS failed: {_tls_reason(error)}"
    if isinstance(error, aiohttp.ClientConnectorError):
        return _connect_failure(error)
    if _is_reset(error):
        return FailureKind.CONNECTION_RESET, f"the receiver closed the connection: {error}"
    if isinstance(error, aiohttp.ClientResponseError):
        return FailureKind.OTHER, f"the receiver sent an invalid HTTP response: {error.message}"
    return FailureKind.OTHER, f"{type(error).__name__}: {error}"


def _connect_failure(error: aiohttp.ClientConnectorError) -> tuple[FailureKind, str]:
    where = f"{error.host}:{error.port}"
    cause = error.os_error
    if isinstance(cause, socket.gaierror):
        return FailureKind.DNS, f"could not resolve {error.host}: {cause.strerror or cause}"
    if isinstance(cause, ConnectionRefusedError):
        return FailureKind.CONNECTION_REFUSED, f"connection refused by {where}"
    if isinstance(cause, ConnectionResetError):
        return FailureKind.CONNECTION_RESET, f"connection reset by {where}"
    return FailureKind.OTHER, f"could not connect to {where}: {cause.strerror or cause}"


def _is_reset(error: Exception) -> bool:
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError
                  | ConnectionResetError | BrokenPipeError):
        return True
    return isinstance(error, OSError) and error.errno in (errno.ECONNRESET, errno.EPIPE)


def _tls_reason(error: Exception) -> str:
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return str(error.certificate_error)
    return str(error)


def _shorten(text: str) -> str:
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _utc_now() -> datetime:
    return datetime.now(UTC)
