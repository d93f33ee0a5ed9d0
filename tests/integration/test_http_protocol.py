"""serve's HTTP protocol (cli.http_protocol.ServerProtocol) on a real uvicorn server on
loopback: a response's head and body leave together, and nothing that HTTP/1.1 clients
rely on waits for that: a stream's headers, pipelined requests, ``100 Continue``."""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from interlock.cli.http_protocol import ServerProtocol
from tests.support.server import free_port

#: How long any answer may take on loopback.
PROMPT = 5.0
#: Offset of ``tcpi_data_segs_in`` in Linux's ``struct tcp_info`` (include/uapi/linux/tcp.h).
_TCPI_DATA_SEGS_IN = 152


class _App:
    """``/plain`` answers JSON; ``/stream`` sends its head, then a chunk once the test
    releases it; ``/echo`` answers the request's body."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b"data: one\n\n"})
            return
        answer = body if scope["path"] == "/echo" else b'{"path": "%s"}' % scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]})
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def server() -> Iterator[tuple[int, _App]]:
    app = _App()
    port = free_port()
    serving = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=ServerProtocol,
                                            log_level="warning"))
    thread = threading.Thread(target=serving.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not serving.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port, app
    finally:
        app.release.set()
        serving.should_exit = True
        thread.join(10)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=PROMPT)


def _read_until(connection: socket.socket, marker: bytes, received: bytes = b"") -> bytes:
    while marker not in received:
        chunk = connection.recv(65536)
        assert chunk, f"connection closed; had {received!r}"
        received += chunk
    return received


def _data_segments_received(connection: socket.socket) -> int:
    """``tcpi_data_segs_in`` of Linux's ``struct tcp_info`` (since 4.6): the TCP
    segments with data this socket has received."""
    info = connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, _TCPI_DATA_SEGS_IN)[0])


@pytest.mark.skipif(sys.platform != "linux", reason="reads Linux's struct tcp_info")
def test_a_plain_answer_is_one_send(server: tuple[int, _App]) -> None:
    """Head and body in one TCP segment: one send by the server (uvicorn alone makes
    two, and this counts 2 per answer)."""
    port, _ = server
    with _connect(port) as connection:
        for n in range(1, 4):
            connection.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = _read_until(connection, b'{"path": "/plain"}')
            assert answer.startswith(b"HTTP/1.1 200 OK")
            time.sleep(0.05)  # a second segment, were there one, has arrived by now
            assert _data_segments_received(connection) == n


def test_a_stream_shows_its_headers_before_its_first_chunk(server: tuple[int, _App]) -> None:
    port, app = server
    with _connect(port) as connection:
        connection.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head = _read_until(connection, b"\r\n\r\n")  # within PROMPT, or socket.timeout
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert b"text/event-stream" in head
        assert b"data: one" not in head
        app.release.set()
        assert b"data: one" in _read_until(connection, b"data: one", head)


def test_pipelined_requests_are_answered_in_order(server: tuple[int, _App]) -> None:
    port, _ = server
    with _connect(port) as connection:
        connection.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        received = _read_until(connection, b'{"path": "/second"}')
    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert received.index(b'{"path": "/first"}') < received.index(b'{"path": "/second"}')


def test_expect_100_continue_is_answered_before_the_body_is_sent(
    server: tuple[int, _App]
) -> None:
    port, _ = server
    with _connect(port) as connection:
        connection.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                           b"Content-Length: 5\r\n\r\n")
        interim = _read_until(connection, b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        connection.sendall(b"hello")
        answer = _read_until(connection, b"hello", interim.partition(b"\r\n\r\n")[2])
    assert b"HTTP/1.1 200 OK" in answer
