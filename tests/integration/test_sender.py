"""WebhookSender against real HTTP servers on loopback: every outcome a receiver can
produce becomes a SendResult a user can read, and nothing a receiver does stalls the
sender or reaches a forbidden address.

Each test drives its own event loop with asyncio.run, so no pytest plugin is needed.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiohttp import web

from interlock.domain.delivery import RESPONSE_BODY_LIMIT, FailureKind, OutboundRequest, SendResult
from interlock.domain.errors import InvalidInput
from interlock.domain.targets import parse_allowed_networks
from interlock.worker.sender import (
    MAX_RETRY_AFTER,
    GuardedResolver,
    WebhookSender,
    parse_retry_after,
)
from interlock.worker.targets import check_target

LOCAL = parse_allowed_networks("127.0.0.0/8,::1/128")
TIMEOUT = 0.5
BIG_BODY = 50 * 1024 * 1024


@dataclass
class Receiver:
    """An aiohttp.web server on 127.0.0.1 that records every request it is sent."""

    port: int = 0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    peers: list[Any] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    big_written: int = 0
    big_done: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers), await request.read()))
        self.peers.append(request.transport.get_extra_info("peername") if request.transport
                          else None)
        respond = getattr(self, "route_" + request.path.strip("/").replace("-", "_"))
        response: web.StreamResponse = await respond(request)
        return response

    async def route_ok(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="accepted")

    async def route_fail(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, text="boom")

    async def route_busy(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, text="slow down", headers={"Retry-After": "7"})

    async def route_gone(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=410, text="endpoint removed")

    async def route_hang(self, request: web.Request) -> web.StreamResponse:
        await self.release.wait()
        return web.Response(text="too late")

    async def route_moved(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(self.url("/target"))

    async def route_target(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="should never be reached")

    async def route_big(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(BIG_BODY)})
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            while self.big_written < BIG_BODY:
                await response.write(chunk)
                self.big_written += len(chunk)
        except ConnectionError:
            pass   # the sender hung up, as it should
        finally:
            self.big_done.set()
        return response

    async def route_stall_body(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"partial")
        await self.release.wait()
        return response


@asynccontextmanager
async def receiving(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    assert runner.addresses
    receiver.port = runner.addresses[0][1]
    try:
        yield receiver
    finally:
        receiver.release.set()
        await runner.cleanup()


@asynccontextmanager
async def sending(**options: Any) -> AsyncIterator[WebhookSender]:
    options.setdefault("allowed_networks", LOCAL)
    sender = WebhookSender(**options)
    try:
        yield sender
    finally:
        await sender.close()


def post(url: str, body: bytes = b'{"type": "incident.created"}',
         timeout: float = TIMEOUT, **headers: str) -> OutboundRequest:
    return OutboundRequest(url=url, body=body, timeout=timeout,
                           headers={"Content-Type": "application/json", **headers})


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """On asyncio's own loop and on uvloop's, which the worker runs on where it is
    installed (their transports differ: uvloop's are not asyncio.Transport subclasses)."""
    asyncio.run(scenario())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def send_to(path: str, **request: Any) -> tuple[SendResult, Receiver]:
    async with receiving() as receiver, sending() as sender:
        result = await sender.send(post(receiver.url(path), **request))
    return result, receiver


def test_a_2xx_delivers_the_body_and_headers_intact() -> None:
    body = '{"type": "incident.created", "data": {"title": "Ünïcode ✓"}}'.encode()

    async def scenario() -> None:
        result, receiver = await send_to("/ok", body=body, **{
            "webhook-id": "msg_1", "webhook-signature": "v1,abc="})
        assert result.succeeded and result.status == 200 and result.body == "accepted"
        assert result.failure is None and result.retry_after is None
        assert 0 < result.duration < TIMEOUT
        [(path, headers, received)] = receiver.requests
        assert (path, received) == ("/ok", body)
        assert headers["webhook-id"] == "msg_1"
        assert headers["webhook-signature"] == "v1,abc="
        assert headers["Content-Type"] == "application/json"
        assert "Cookie" not in headers

    run(scenario)


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/fail", 500, "boom"), ("/gone", 410, "endpoint removed")])
def test_an_error_status_is_a_response_not_a_failure_kind(
        path: str, status: int, text: str) -> None:
    async def scenario() -> None:
        result, _ = await send_to(path)
        assert (result.status, result.body, result.failure) == (status, text, None)
        assert not result.succeeded

    run(scenario)


def test_retry_after_is_reported() -> None:
    async def scenario() -> None:
        result, _ = await send_to("/busy")
        assert (result.status, result.retry_after, result.body) == (429, 7.0, "slow down")
        assert not result.succeeded

    run(scenario)


def test_a_hanging_receiver_times_out_on_time() -> None:
    async def scenario() -> None:
        for path in ("/hang", "/stall-body"):
            result, _ = await send_to(path)
            assert (result.status, result.failure) == (None, FailureKind.TIMEOUT), path
            # uvloop's timers run on libuv's millisecond clock, read once per loop turn:
            # one may fire up to a millisecond before perf_counter says it is due.
            assert TIMEOUT - 0.005 <= result.duration < TIMEOUT + 0.3
            assert result.detail and "0.5 s" in result.detail

    run(scenario)


def test_a_reset_connection() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def scenario() -> None:
        server = await asyncio.start_server(reset, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, sending() as sender:
            result = await sender.send(post(f"http://127.0.0.1:{port}/"))
        assert (result.status, result.failure) == (None, FailureKind.CONNECTION_RESET)
        assert result.detail

    run(scenario)


def test_a_huge_body_is_cut_and_does_not_stall_the_sender() -> None:
    async def scenario() -> None:
        async with receiving() as receiver, sending() as sender:
            started = time.perf_counter()
            result = await sender.send(post(receiver.url("/big"), timeout=5))
            assert time.perf_counter() - started < 1.0
            assert result.status == 200 and result.succeeded
            assert result.body == "x" * RESPONSE_BODY_LIMIT
            await asyncio.wait_for(receiver.big_done.wait(), 2)
            assert receiver.big_written < BIG_BODY / 2   # the connection was dropped
            assert (await sender.send(post(receiver.url("/ok")))).succeeded

    run(scenario)


def test_redirects_are_not_followed() -> None:
    async def scenario() -> None:
        result, receiver = await send_to("/moved")
        assert (result.status, result.failure) == (302, FailureKind.REDIRECT)
        assert result.detail and receiver.url("/target") in result.detail
        assert receiver.paths == ["/moved"]

    run(scenario)


def test_a_closed_port_is_connection_refused() -> None:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> None:
        async with sending() as sender:
            result = await sender.send(post(f"http://127.0.0.1:{port}/"))
        assert (result.status, result.failure) == (None, FailureKind.CONNECTION_REFUSED)
        assert result.detail == f"connection refused by 127.0.0.1:{port}"

    run(scenario)


def test_an_unresolvable_name_is_a_dns_failure() -> None:
    async def scenario() -> None:
        async with sending() as sender:
            result = await sender.send(post("http://nonexistent.invalid/hook"))
        assert (result.status, result.failure) == (None, FailureKind.DNS)
        assert result.detail and "nonexistent.invalid" in result.detail

    run(scenario)


def test_a_malformed_url_is_an_invalid_url() -> None:
    async def scenario() -> None:
        async with sending() as sender:
            for url in ("ftp://example.com/", "http://user:pw@example.com/", "http://127.1/"):
                result = await sender.send(post(url))
                assert result.failure == FailureKind.INVALID_URL, url

    run(scenario)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_a_forbidden_target_is_blocked_before_any_byte_is_sent(host: str) -> None:
    async def scenario() -> None:
        async with receiving() as receiver, sending(allowed_networks=()) as sender:
            result = await sender.send(post(f"http://{host}:{receiver.port}/ok"))
        assert (result.status, result.failure) == (None, FailureKind.BLOCKED_TARGET)
        assert result.detail and "loopback" in result.detail
        assert receiver.requests == []

    run(scenario)


def test_an_allowed_name_is_reached_through_the_guarded_resolver() -> None:
    async def scenario() -> None:
        async with receiving() as receiver, sending() as sender:
            result = await sender.send(post(f"http://localhost:{receiver.port}/ok"))
        assert result.succeeded

    run(scenario)


def test_the_resolver_drops_only_the_forbidden_addresses() -> None:
    def answer(address: str) -> dict[str, Any]:
        return {"hostname": "mixed.example", "host": address, "port": 443,
                "family": socket.AF_INET, "proto": 6, "flags": 0}

    class Inner:
        async def resolve(self, host: str, port: int, family: int) -> list[dict[str, Any]]:
            return [answer("10.0.0.7"), answer("93.184.215.14"), answer("169.254.169.254")]

    async def scenario() -> None:
        resolver = GuardedResolver()
        resolver._inner = Inner()  # type: ignore[assignment]
        kept = await resolver.resolve("mixed.example", 443)
        assert [result["host"] for result in kept] == ["93.184.215.14"]

    run(scenario)


def test_connections_are_kept_alive() -> None:
    async def scenario() -> None:
        async with receiving() as receiver, sending() as sender:
            for _ in range(3):
                assert (await sender.send(post(receiver.url("/ok")))).succeeded
        assert len(receiver.peers) == 3 and len(set(receiver.peers)) == 1

    run(scenario)


def test_a_hanging_endpoint_does_not_slow_a_healthy_one() -> None:
    async def timed(sender: WebhookSender, url: str, started: float,
                    timeout: float) -> tuple[SendResult, float]:
        result = await sender.send(post(url, timeout=timeout))
        return result, time.perf_counter() - started

    async def scenario() -> None:
        async with receiving() as dead, receiving() as healthy, sending() as sender:
            started = time.perf_counter()
            hanging = [asyncio.create_task(timed(sender, dead.url("/hang"), started, 3.0))
                       for _ in range(80)]   # more than the per-host connection limit
            await asyncio.sleep(0.05)
            fine = await asyncio.gather(*(timed(sender, healthy.url("/ok"), started, 1.0)
                                          for _ in range(20)))
            assert all(result.succeeded for result, _ in fine)
            # queued behind the hanging ones, they would wait out their 3 s timeout;
            # half of it leaves room for a busy CI machine (tens of ms when idle)
            assert max(elapsed for _, elapsed in fine) < 1.5
            stuck = await asyncio.gather(*hanging)
            assert {result.failure for result, _ in stuck} == {FailureKind.TIMEOUT}
            assert min(elapsed for _, elapsed in stuck) >= 3.0 - 0.005  # libuv's ms clock

    run(scenario)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_an_untrusted_certificate_is_a_tls_failure(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def scenario() -> None:
        async with receiving(context) as receiver, sending() as sender:
            result = await sender.send(post(f"https://127.0.0.1:{receiver.port}/ok"))
        assert (result.status, result.failure) == (None, FailureKind.TLS)
        assert result.detail and "certificate" in result.detail
        assert receiver.requests == []

    run(scenario)


def test_check_target_resolves_and_refuses_forbidden_hosts() -> None:
    async def scenario() -> None:
        await check_target("http://localhost:8080/hook", LOCAL)
        await check_target("https://[::1]/hook", LOCAL)
        await check_target("https://93.184.215.14/hook")
        for url, words in [("http://localhost/", "resolves to a forbidden address: 127.0.0.1"),
                           ("http://169.254.169.254/", "metadata"),
                           ("http://nonexistent.invalid/", "could not be resolved"),
                           ("gopher://example.com/", "scheme")]:
            with pytest.raises(InvalidInput, match=words):
                await check_target(url)
        with pytest.raises(InvalidInput, match="metadata"):
            await check_target("http://169.254.169.254/", parse_allowed_networks("0.0.0.0/0"))

    run(scenario)


NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), (" 120 ", 120.0), ("0", 0.0), ("1.5", 1.5),
    ("99999999999", MAX_RETRY_AFTER),
    (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
    (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
    (None, None), ("soon", None), ("-5", None), ("", None),
])
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


@pytest.mark.parametrize(("limit_per_host", "connections"), [(2, 2), (0, 6)])
def test_connections_per_host_are_capped_and_zero_means_no_cap(
        limit_per_host: int, connections: int) -> None:
    async def scenario() -> None:
        async with receiving() as receiver, sending(limit_per_host=limit_per_host) as sender:
            sends = [asyncio.create_task(sender.send(post(receiver.url("/hang"), timeout=3)))
                     for _ in range(6)]
            await asyncio.sleep(0.3)
            receiver.release.set()
            results = await asyncio.gather(*sends)
        assert all(result.succeeded for result in results)
        assert len(set(receiver.peers)) == connections

    run(scenario)


async def raw_server(answer: bytes, *, close: bool) -> asyncio.Server:
    """A server that reads one request head and writes ``answer`` as it is (then closes,
    with ``close``), for answers aiohttp's server would not send."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()
            if close:
                break
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


@pytest.mark.parametrize(("answer", "close", "status", "body"), [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwell\r\n5\r\n done\r\n0\r\n\r\n",
     False, 200, "well done"),
    (b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\nread to the end", True, 202,
     "read to the end"),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=latin-1\r\n"
     b"Content-Length: 4\r\n\r\nd\xe9j\xe0", False, 400, "déjà"),
])
def test_answers_are_read_however_they_are_framed(answer: bytes, close: bool, status: int,
                                                  body: str) -> None:
    async def scenario() -> None:
        server = await raw_server(answer, close=close)
        port = server.sockets[0].getsockname()[1]
        async with server, sending() as sender:
            for _ in range(2):  # the second after a kept-alive answer, or a closed one
                result = await sender.send(post(f"http://127.0.0.1:{port}/"))
                assert (result.status, result.body, result.failure) == (status, body, None)

    run(scenario)


def test_an_answer_that_is_not_http_is_reported() -> None:
    async def scenario() -> None:
        server = await raw_server(b"SSH-2.0-OpenSSH_9.6\r\n", close=True)
        port = server.sockets[0].getsockname()[1]
        async with server, sending() as sender:
            result = await sender.send(post(f"http://127.0.0.1:{port}/"))
        assert (result.status, result.failure) == (None, FailureKind.OTHER)
        assert result.detail and "invalid HTTP response" in result.detail

    run(scenario)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_trusted_certificate_delivers_over_https(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the sender's CAs: this one only

    async def scenario() -> None:
        async with receiving(context) as receiver, sending() as sender:
            named = await sender.send(post(f"https://localhost:{receiver.port}/ok"))
            # The name checked is the URL's: by address, the certificate does not match.
            by_address = await sender.send(post(f"https://127.0.0.1:{receiver.port}/ok"))
        assert (named.status, named.body) == (200, "accepted")
        assert by_address.failure == FailureKind.TLS
        assert receiver.paths == ["/ok"]

    run(scenario)


def test_connections_given_up_free_their_slots() -> None:
    """Timed-out exchanges, refused connects and cut answers each give back their
    connection's slot: with two per host, the next sends still go out."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    async def scenario() -> None:
        async with receiving() as receiver, sending(limit_per_host=2, limit=2) as sender:
            stuck = await asyncio.gather(*(sender.send(post(receiver.url("/hang"), timeout=0.2))
                                           for _ in range(4)))
            refused = await asyncio.gather(*(sender.send(post(f"http://127.0.0.1:{closed_port}/"))
                                             for _ in range(4)))
            cut = await sender.send(post(receiver.url("/big"), timeout=5))
            after = await asyncio.gather(*(sender.send(post(receiver.url("/ok")))
                                           for _ in range(4)))
        assert {result.failure for result in stuck} == {FailureKind.TIMEOUT}
        assert {result.failure for result in refused} == {FailureKind.CONNECTION_REFUSED}
        assert cut.succeeded and all(result.succeeded for result in after)

    run(scenario)
