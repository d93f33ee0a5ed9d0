"""A webhook receiver on loopback that records what arrives and answers as told."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web


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


class Receiver:
    """Start with ``with Receiver() as receiver:``; ``receiver.url`` takes POSTs on
    any path; set ``receiver.behaviour`` to change the answer."""

    def __init__(self, behaviour: Behaviour = ok) -> None:
        self.behaviour = behaviour
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Receiver:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("receiver did not start")
        return self

    def __exit__(self, *_: object) -> None:
        loop = self._loop
        if loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self._lock:
            raise AssertionError(f"expected {count} requests, got {len(self.received)}")

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Tests end while handlers may still be hanging on purpose: do not wait for them.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(request.path, dict(request.headers), await request.read(),
                            time.monotonic())
        with self._lock:
            self.received.append(received)
        code, body, headers = await self.behaviour(received)
        return web.Response(status=code, body=body, headers=headers)
