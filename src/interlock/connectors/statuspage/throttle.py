"""Keeping to Statuspage's documented limit of one request per second per API key.

Every request first reserves the next free slot of its key, one interval after the
last one, and sleeps until it comes. The reservation is made without awaiting, so
concurrent pushes of one connector (the sync worker runs a few per connector) queue
in order instead of both going at once and meeting a 429. Keys are held by their
digest, never in plain. The limit is per process: a second worker process with the
same key has its own (a 429 then is retried by the sync queue, honouring Retry-After).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable

#: One request per second, plus a margin for the clock of the network between.
INTERVAL = 1.05


class Throttle:
    def __init__(self, interval: float = INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    async def wait(self, token: str) -> float:
        """Sleep until ``token`` may make its next request; the seconds slept."""
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(key, 0.0))
            self._next[key] = slot + self._interval
        delay = slot - now
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    def answered(self, token: str) -> None:
        """A request of ``token`` was answered: the next one is at least one interval
        from now, however late the request reached Statuspage."""
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            self._next[key] = max(self._next.get(key, 0.0), self._clock() + self._interval)
