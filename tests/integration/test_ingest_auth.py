"""Ingest authentication against abuse: signatures must be fresh, and nobody makes the
server read (and hold) a large body before proving who they are."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from interlock.api.ingest import PRE_AUTH_READS
from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.conftest import make_key
from tests.support.ingest import create_source
from tests.support.serving import ServingApp

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sources"
TIMESTAMP_HEADER = "X-Grafana-Alerting-Signature-Timestamp"


@pytest.fixture
def admin_key(hub: Container) -> dict[str, str]:
    return make_key(hub, Scope.ADMIN, name="ops")


def _grafana_headers(secret: str, body: bytes, timestamp: str | None) -> dict[str, str]:
    signed = body if timestamp is None else timestamp.encode() + b":" + body
    headers = {"X-Grafana-Alerting-Signature":
               hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}
    if timestamp is not None:
        headers[TIMESTAMP_HEADER] = timestamp
    return headers


def test_grafana_signatures_must_carry_a_timestamp_within_five_minutes(
    hub_client: TestClient, admin_key: dict[str, str], manual_clock: ManualClock
) -> None:
    grafana = create_source(hub_client, admin_key, kind="grafana", signed=True,
                            timestamp_header=TIMESTAMP_HEADER)
    secret = grafana["signing_secret"]
    body = (FIXTURES / "grafana-docs-firing.json").read_bytes()
    now = int(manual_clock.now().timestamp())

    def answer(timestamp: str | None, *, signed_as: str | None = None) -> int:
        headers = _grafana_headers(secret, body, signed_as or timestamp)
        if signed_as is not None:
            headers[TIMESTAMP_HEADER] = timestamp or ""
        if timestamp is None:
            headers.pop(TIMESTAMP_HEADER, None)
        return hub_client.post(grafana["path"], content=body, headers=headers).status_code

    assert answer(str(now)) == 202
    assert answer(str(now - 290)) == 202
    assert answer("1000000000") == 401  # a signature made in 2001
    assert answer(str(now - 301)) == 401
    assert answer(str(now + 301)) == 401
    assert answer(None) == 401  # body-only HMAC although a timestamp header is configured
    assert answer("soon") == 401
    assert answer(f"{now}.5") == 401
    fresh = _grafana_headers(secret, body, str(now))
    manual_clock.advance(timedelta(minutes=6))  # the hub's clock: the same headers, later
    assert hub_client.post(grafana["path"], content=body, headers=fresh).status_code == 401


def _headers_only(serving: ServingApp, path: str, headers: dict[str, str]) -> socket.socket:
    """Send a request's headers announcing 8 MB, and no body."""
    connection = serving.connect()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Length: 8000000",
             "Content-Type: application/json",
             *(f"{name}: {value}" for name, value in headers.items())]
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return connection


@pytest.fixture
def serving(hub: Container) -> Iterator[ServingApp]:
    with ServingApp(hub) as server:
        yield server


def _status(connection: socket.socket) -> tuple[int, str]:
    """The answer's status and head, within PROMPT seconds (socket.timeout otherwise)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    head = received.split(b"\r\n\r\n")[0].decode("latin-1")
    return int(head.split(" ")[1]), head.lower()


def test_unknown_sources_and_wrong_tokens_are_refused_before_the_body_is_read(
    hub_client: TestClient, admin_key: dict[str, str], serving: ServingApp
) -> None:
    """64 such connections used to hold 8 MB each: the body was read before the token
    was checked. Now the answer comes without waiting for a body."""
    source = create_source(hub_client, admin_key)
    disabled = create_source(hub_client, admin_key, name="old")
    hub_client.patch(f"/api/v1/sources/{disabled['id']}", headers=admin_key,
                     json={"enabled": False})
    attempts: list[tuple[str, dict[str, str]]] = [
        ("/ingest/src_unknown", {"Authorization": f"Bearer {source['token']}"}),
        (disabled["path"], {"Authorization": f"Bearer {disabled['token']}"}),
        (source["path"], {"Authorization": "Bearer ilt_wrong"}),
        (source["path"] + "?token=ilt_wrong", {}),
        (source["path"], {}),
    ]
    for path, headers in attempts:
        with _headers_only(serving, path, headers) as connection:
            status, _ = _status(connection)
        assert status == 401, path


def test_signed_sources_read_few_bodies_at_once_before_authenticating(
    hub_client: TestClient, admin_key: dict[str, str], serving: ServingApp
) -> None:
    """A signature can only be checked over the body, so those bodies are read first;
    how many at once is bounded, and past that the answer is 503 with Retry-After."""
    grafana = create_source(hub_client, admin_key, kind="grafana", signed=True)
    signed: dict[str, Any] = {"X-Grafana-Alerting-Signature": "0" * 64}
    waiting = [_headers_only(serving, grafana["path"], signed) for _ in range(PRE_AUTH_READS)]
    try:
        time.sleep(0.5)  # let the server start reading each of them
        with _headers_only(serving, grafana["path"], signed) as one_more:
            status, head = _status(one_more)
        assert status == 503
        assert "retry-after:" in head
    finally:
        for connection in waiting:
            connection.close()
    body = (FIXTURES / "grafana-docs-firing.json").read_bytes()
    assert hub_client.post(grafana["path"], content=body, headers=_grafana_headers(
        grafana["signing_secret"], body, None)).status_code == 202
