"""Waking the worker the moment there is work, from any thread or process.

In one process the store calls :meth:`Wakeup.notify` after committing events; across
processes on PostgreSQL, :func:`listen` turns ``NOTIFY`` into the same call. Polling
remains as a safety net, never as the way work is found.
"""

from __future__ import annotations

import asyncio
import contextlib

from interlock.logs import get_logger

log = get_logger(__name__)


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()


async def listen(database_url: str, channel: str, wakeups: list[Wakeup],
                 stop: asyncio.Event) -> None:
    """Forward PostgreSQL notifications on ``channel`` to ``wakeups`` until ``stop``;
    reconnect after failures, since polling covers the gap."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {channel}")
                for wakeup in wakeups:  # anything committed while we were not listening
                    wakeup.notify()
                async for _ in conn.notifies():
                    for wakeup in wakeups:
                        wakeup.notify()
                    if stop.is_set():
                        break
        except (psycopg.Error, OSError) as error:
            log.warning("event listener reconnecting", error=str(error).splitlines()[0])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)
