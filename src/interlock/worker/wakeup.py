"""Waking the worker the moment there is work, from any thread or process.

In one process the store calls :meth:`Wakeup.notify` after committing events; across
processes, the store's ``listen_for_work`` (``NOTIFY`` on PostgreSQL, a datagram socket
on SQLite) turns other processes' commits into the same call. Polling
remains as a safety net, never as the way work is found.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from interlock.logs import get_logger
from interlock.waits import wait_a_while

log = get_logger(__name__)


class Wakeup:
    def __init__(self, taken: Callable[[], None] | None = None) -> None:
        """``taken``: called each time a wait ends, before the loop looks for work (the
        store's work_taken, for a listener that asked to be told once per look)."""
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._taken = taken

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self) -> None:
        """Safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._event.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop closing
                loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> None:
        await wait_a_while(self._event, timeout)
        self._event.clear()
        if self._taken is not None:
            self._taken()

    @contextlib.contextmanager
    def waiting_until(self, stop: asyncio.Event) -> Iterator[None]:
        """For a loop that waits here for work until ``stop``: bound to the running event
        loop, and woken when ``stop`` is set, so that it stops at once instead of
        sleeping out its poll interval (seconds, or a minute for a loop set to poll that
        rarely)."""
        loop = asyncio.get_running_loop()
        self.bind(loop)

        async def watch() -> None:
            await stop.wait()
            self.notify()

        watching = loop.create_task(watch())
        try:
            yield
        finally:
            watching.cancel()
