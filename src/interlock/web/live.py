"""Live updates for open pages, as server-sent events.

One :class:`ChangeFeed` per process looks at the event log (at most once a second, and
at once when this process commits a change) while anybody is watching, and hands what
changed to every open stream; a page that hears of a change it cares about fetches
itself again. So ten open tabs cost one query a second, and none costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from interlock.ports.store import Store, Work
from interlock.services.console import Change, ConsoleService
from interlock.threads import run_sync
from interlock.waits import wait_a_while

POLL_SECONDS = 1.0
#: A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0
#: How often a stream checks that its API key still exists.
RECHECK_SECONDS = 30.0


class ChangeFeed:
    def __init__(self, console: ConsoleService, store: Store) -> None:
        self._console = console
        self._store = store
        self._watchers: set[asyncio.Queue[list[Change]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closing = False

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[asyncio.Queue[list[Change]]]:
        queue: asyncio.Queue[list[Change]] = asyncio.Queue(maxsize=100)
        self._start()
        self._watchers.add(queue)
        try:
            yield queue
        finally:
            self._watchers.discard(queue)

    def close(self) -> None:
        """Server shutting down: end every stream now, so it need not wait for them."""
        self.closing = True
        for queue in list(self._watchers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait([])

    def _start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._store.on_work_committed(self._committed, Work.EVENTS | Work.HANDED)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll())

    def _committed(self) -> None:
        """From any thread, after this process commits events: look now."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    async def _poll(self) -> None:
        assert self._wake is not None
        last, _ = await run_sync(self._console.changes, None)
        while self._watchers and not self.closing:
            await wait_a_while(self._wake, POLL_SECONDS)
            self._wake.clear()
            try:
                last, changes = await run_sync(self._console.changes, last)
            except Exception:  # the database is away: keep the streams, try again
                await asyncio.sleep(POLL_SECONDS)
                continue
            if changes:
                self._console.forget()  # the chart is stale now too
                for queue in list(self._watchers):
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(changes)


def message(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def stream(
    next_messages: Callable[[], Awaitable[list[str] | None]],
    still_allowed: Callable[[], Awaitable[bool]],
    feed: ChangeFeed,
) -> AsyncIterator[str]:
    """An SSE body: ``next_messages`` waits for what to send (None: nothing yet) and
    is called again and again; the key is re-checked now and then, and a revoked one
    ends the stream with a ``signed-out`` event the page turns into the sign-in page."""
    yield "retry: 2000\n\n"
    loop = asyncio.get_running_loop()
    checked = quiet_since = loop.time()
    while not feed.closing:
        messages = await next_messages()
        now = loop.time()
        if now - checked > RECHECK_SECONDS:
            checked = now
            if not await still_allowed():
                yield message("signed-out", {})
                return
        if messages:
            quiet_since = now
            for item in messages:
                yield item
        elif now - quiet_since > KEEPALIVE_SECONDS:
            quiet_since = now
            yield ": keep-alive\n\n"


async def next_from(queue: asyncio.Queue[list[Change]], timeout: float = 5.0
                    ) -> list[Change] | None:
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except TimeoutError:
        return None
