"""A webhook receiver on loopback that records what arrives and answers as told."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from tests.support.loopback import LoopbackServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


Answer = tuple[int, bytes, dict[str, str]]
Behaviour = Callable[[Received], Awaitable[Answer]]


async def ok(_: Received) -> Answer:
    return 200, b"ok", {}


def status(code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    async def answer(_: Received) -> Answer:
        return code, body, headers or {}
    return answer


def hang(seconds: float) -> Behaviour:
    async def answer(_: Received) -> Answer:
        await asyncio.sleep(seconds)
        return 200, b"late", {}
    return answer


class Receiver(LoopbackServer):
    """Start with ``with Receiver() as receiver:``; ``receiver.url`` takes POSTs on
    any path; set ``receiver.behaviour`` to change the answer."""

    name = "receiver"
    client_max_size = 64 * 1024 * 1024

    def __init__(self, behaviour: Behaviour = ok) -> None:
        super().__init__()
        self.behaviour = behaviour
        self.received: list[Received] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self._lock:
            raise AssertionError(f"expected {count} requests, got {len(self.received)}")

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(request.path, dict(request.headers), await request.read(),
                            time.monotonic())
        with self._lock:
            self.received.append(received)
        code, body, headers = await self.behaviour(received)
        return web.Response(status=code, body=body, headers=headers)
