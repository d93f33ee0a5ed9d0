"""Webhook deliveries from a fake tool, one at a time and in order, from the fake's own
event loop: what PagerDuty (ordered per incident) and a ServiceNow Business Rule's
outbound REST message do. Each outcome (HTTP status, or the error's name) is kept."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True)
class Delivery:
    label: str
    headers: dict[str, str]
    body: bytes


class HookSender:
    def __init__(self, timeout: float = 5.0) -> None:
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[Delivery, str]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        #: (label, HTTP status or error name) of each delivery, in order.
        self.outcomes: list[tuple[str, int | str]] = []

    async def start(self) -> None:
        """Call in the fake's loop (its on_startup)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._task = self._loop.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def send(self, delivery: Delivery, url: str) -> None:
        """Queue a delivery; callable from any thread."""
        if self._loop is not None and self._queue is not None:
            queue = self._queue
            self._loop.call_soon_threadsafe(queue.put_nowait, (delivery, url))

    def clear(self) -> None:
        with self._lock:
            self.outcomes.clear()

    def snapshot(self) -> list[tuple[str, int | str]]:
        with self._lock:
            return list(self.outcomes)

    async def _run(self) -> None:
        assert self._queue is not None
        async with aiohttp.ClientSession() as session:
            while True:
                delivery, url = await self._queue.get()
                try:
                    async with session.post(
                            url, data=delivery.body, headers=delivery.headers,
                            timeout=aiohttp.ClientTimeout(total=self._timeout)) as answer:
                        outcome: int | str = answer.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    outcome = type(error).__name__
                with self._lock:
                    self.outcomes.append((delivery.label, outcome))
