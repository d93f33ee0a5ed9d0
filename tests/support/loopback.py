"""An aiohttp server on 127.0.0.1 in a background thread, for the test peers that stand
in for tools (a webhook receiver, Jira, Slack): ``with Peer() as peer:`` starts it on a
free port, ``peer.port`` tells which."""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from aiohttp import web


class LoopbackServer:
    #: Named in the error when the server does not start.
    name = "loopback server"
    #: Largest request body accepted.
    client_max_size = 1024 * 1024

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def routes(self, app: web.Application) -> None:
        """Add the routes this peer answers."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.name} did not start")
        return self

    def __exit__(self, *_: object) -> None:
        loop = self._loop
        if loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        app = web.Application(client_max_size=self.client_max_size)
        self.routes(app)
        # Tests end while handlers may still be hanging on purpose: do not wait for them.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        loop.run_forever()
        loop.close()
