"""Single alerts accepted by serve's HTTP protocol without the ASGI app
(cli.http_protocol.ServerProtocol, api.ingest.IngestApp.admitted), on a real uvicorn
server on loopback: senders get the answers the app gives, in order, and what was
accepted is stored, counted and processed."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from interlock.cli.http_protocol import AtOnce, ServerProtocol
from interlock.domain.errors import StoreUnavailable
from interlock.domain.keys import Scope
from interlock.services import ingest as intake_service
from interlock.services.container import Container
from tests.conftest import make_key
from tests.support.ingest import am_alert, am_payload, create_source, process_all
from tests.support.serving import PROMPT, ServingApp


class _Counting(ServerProtocol):
    """serve's protocol, counting the requests it answered itself."""

    answered_at_once = 0

    def _answer(self, cycle: Any, admitted: AtOnce, committed: asyncio.Future[None]) -> None:
        type(self).answered_at_once += 1
        super()._answer(cycle, admitted, committed)


@pytest.fixture
def admin_key(hub: Container) -> dict[str, str]:
    return make_key(hub, Scope.ADMIN, name="ops")


@pytest.fixture
def serving(hub: Container, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServingApp]:
    # Sources stay cached for the whole test, so which request is answered at once does
    # not depend on how fast the machine is.
    monkeypatch.setattr(intake_service, "SOURCE_CACHE_SECONDS", 600.0)
    _Counting.answered_at_once = 0
    with ServingApp(hub, _Counting) as server:
        yield server


@pytest.fixture
def source(hub_client: TestClient, admin_key: dict[str, str]) -> dict[str, Any]:
    return create_source(hub_client, admin_key)


def _post(path: str, token: str, body: bytes, *, version: str = "1.1",
          extra: str = "") -> bytes:
    return (f"POST {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def _alert(name: str) -> bytes:
    return json.dumps(am_payload(am_alert(name))).encode()


class _Answers:
    """Reads answers off one connection, one at a time, by their Content-Length."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._buffer = b""

    def next(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self._buffer:
            self._more()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines[1:])}
        length = int(headers["content-length"])
        while len(self._buffer) < length:
            self._more()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return int(lines[0].split(" ")[1]), headers, body

    def closed(self) -> bool:
        """Whether the server closed the connection (within the socket's timeout)."""
        return not self._buffer and self._connection.recv(1) == b""

    def _more(self) -> None:
        chunk = self._connection.recv(65536)  # the socket's timeout bounds the wait
        assert chunk, "the server closed the connection before answering"
        self._buffer += chunk


def test_accepted_alerts_get_the_apps_answer_and_are_stored_and_counted(
    serving: ServingApp, source: dict[str, Any], hub_client: TestClient, hub: Container,
) -> None:
    through_app = hub_client.post(source["path"], content=_alert("ThroughTheApp"),
                                  headers={"Authorization": f"Bearer {source['token']}"})
    with serving.connect() as connection:
        answers = _Answers(connection)
        seen = []
        for number in range(3):  # on one kept-alive connection
            connection.sendall(_post(source["path"], source["token"], _alert(f"A{number}")))
            seen.append(answers.next())
    assert _Counting.answered_at_once >= 2, "the protocol did not answer them itself"
    for status, headers, body in seen:
        assert status == 202
        assert headers["content-type"] == through_app.headers["content-type"]
        assert "date" in headers and "connection" not in headers
        answer = json.loads(body)
        assert answer["status"] == "accepted" and answer["id"].startswith("pl_")
        assert answer.keys() == through_app.json().keys()
    assert process_all(hub) == 4
    metrics = httpx.get(f"http://127.0.0.1:{serving.port}/metrics", timeout=PROMPT).text
    counted = [line for line in metrics.splitlines()
               if line.startswith("interlock_http_requests_total{")
               and 'route="/ingest/{source_id}"' in line and 'status="202"' in line]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) == 3.0


def test_pipelined_requests_are_answered_in_order_whichever_path_answers_them(
    serving: ServingApp, source: dict[str, Any], hub: Container,
) -> None:
    """An accepted alert, a read, a body that is not JSON and another alert, sent in one
    write: four answers, in the order asked."""
    with serving.connect() as connection:
        answers = _Answers(connection)
        connection.sendall(_post(source["path"], source["token"], _alert("Warm")))
        assert answers.next()[0] == 202  # the source is now known to the cache
        connection.sendall(
            _post(source["path"], source["token"], _alert("First"))
            + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            + _post(source["path"], source["token"], b"{not json")
            + _post(source["path"], source["token"], _alert("Last")))
        statuses = []
        for _ in range(4):
            status, headers, body = answers.next()
            statuses.append(status)
            if status == 400:
                assert headers["content-type"] == "application/problem+json"
                assert "kept as payload" in json.loads(body)["detail"]
    assert statuses == [202, 200, 400, 202]
    assert _Counting.answered_at_once == 1  # "First"; those queued behind it go to the app
    assert process_all(hub) == 3  # the failed one was stored as failed, not processed


def test_an_http_1_0_sender_is_answered_and_the_connection_closed(
    serving: ServingApp, source: dict[str, Any],
) -> None:
    for _ in range(2):  # the first one teaches the cache the source
        with serving.connect() as connection:
            answers = _Answers(connection)
            connection.sendall(_post(source["path"], source["token"], _alert("Old"),
                                     version="1.0"))
            status, headers, _ = answers.next()
            assert status == 202
            assert headers["connection"] == "close"
            assert answers.closed()
    assert _Counting.answered_at_once == 1


def test_a_sender_that_waits_for_100_continue_gets_it(
    serving: ServingApp, source: dict[str, Any],
) -> None:
    with serving.connect() as connection:
        answers = _Answers(connection)
        connection.sendall(_post(source["path"], source["token"], _alert("Warm")))
        assert answers.next()[0] == 202
        body = _alert("Careful")
        request = _post(source["path"], source["token"], body,
                        extra="Expect: 100-continue\r\n")
        connection.sendall(request[:-len(body)])
        interim = connection.recv(4096)  # within the socket's timeout
        assert interim.startswith(b"HTTP/1.1 100 ")
        connection.sendall(body)
        assert answers.next()[0] == 202


def test_a_store_that_fails_is_answered_503_with_retry_after(
    serving: ServingApp, source: dict[str, Any], hub: Container,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serving.connect() as connection:
        answers = _Answers(connection)
        connection.sendall(_post(source["path"], source["token"], _alert("Warm")))
        assert answers.next()[0] == 202

        def failing(*_: object, **__: object) -> None:
            raise StoreUnavailable("the database failed: disk I/O error")

        monkeypatch.setattr(hub.intake, "store", failing)
        connection.sendall(_post(source["path"], source["token"], _alert("Lost")))
        status, headers, body = answers.next()
        assert status == 503
        assert headers["retry-after"] == "5"
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["title"] == "Store unavailable"
        monkeypatch.setattr(hub.intake, "store", type(hub.intake).store.__get__(hub.intake))
        connection.sendall(_post(source["path"], source["token"], _alert("Again")))
        assert answers.next()[0] == 202  # the connection still serves
    assert _Counting.answered_at_once == 2  # "Lost" and "Again"
