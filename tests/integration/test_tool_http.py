"""The connectors' HTTP client (worker/tool_http.py) against a loopback server that
sends its answer in pieces, as a TLS connection delivers a large Jira answer: the whole
body is read, not what happened to have arrived first."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from interlock.domain.errors import ToolFailed
from interlock.domain.targets import parse_allowed_networks
from interlock.worker import tool_http
from interlock.worker.tool_http import AiohttpToolHttp
from tests.support.loopback import LoopbackServer

PIECE = 16 * 1024


class Trickle(LoopbackServer):
    """Answers ``GET /big`` with ``self.body`` in 16 KB pieces, a pause between them."""

    name = "trickling server"

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/big", self._big)

    async def _big(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(self.body), PIECE):
            await response.write(self.body[start:start + PIECE])
            await asyncio.sleep(0.02)
        await response.write_eof()
        return response


def fetch(url: str) -> tool_http.ToolResponse:
    async def main() -> tool_http.ToolResponse:
        http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"),
                               timeout=10)
        try:
            return await asyncio.wait_for(http.request("GET", url), 20)
        finally:
            await http.close()
    return asyncio.run(main())


def big_issue() -> bytes:
    """A Jira-like issue answer of about 105 KB: many comments."""
    comments = [{"id": str(10000 + n), "body": "x" * 900} for n in range(114)]
    body = json.dumps({"key": "OPS-1", "fields": {"comment": {"comments": comments}}})
    return body.encode()


def test_a_body_sent_in_pieces_is_read_whole() -> None:
    body = big_issue()
    assert 100_000 < len(body) < 110_000
    with Trickle(body) as server:
        answer = fetch(f"http://127.0.0.1:{server.port}/big")
    assert answer.status == 200
    assert len(answer.body) == len(body)
    assert len(answer.json()["fields"]["comment"]["comments"]) == 114


def test_an_answer_over_the_limit_is_refused_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tool_http, "RESPONSE_LIMIT", 50_000)
    with Trickle(big_issue()) as server, pytest.raises(ToolFailed) as failure:
        fetch(f"http://127.0.0.1:{server.port}/big")
    assert "larger than" in failure.value.detail
    assert failure.value.retryable is False
