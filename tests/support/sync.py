"""Driving connector sync one round at a time, so tests control the clock between rounds."""

from __future__ import annotations

import asyncio

from interlock.domain.targets import parse_allowed_networks
from interlock.services.container import Container
from interlock.services.sync import JobDone
from interlock.worker.tool_http import AiohttpToolHttp

LOOPBACK = "127.0.0.0/8"


def sync_round(container: Container, owner: str = "test-sync") -> int:
    """Fan out events, claim every due job, run them, record them. Returns jobs run."""
    while container.deliveries.dispatch():
        pass
    work = container.sync.claim(owner, 1000)
    if not work:
        return 0

    async def run_all() -> list[JobDone]:
        http = AiohttpToolHttp(allowed_networks=parse_allowed_networks(LOOPBACK), timeout=5)
        try:
            return list(await asyncio.gather(*(container.sync.run(item, http)
                                               for item in work)))
        finally:
            await http.close()

    for done in asyncio.run(run_all()):
        container.sync.record(owner, done)
    return len(work)


def sync_all(container: Container, rounds: int = 30) -> int:
    """Rounds until nothing is due; returns jobs run."""
    total = 0
    for _ in range(rounds):
        made = sync_round(container)
        if made == 0:
            return total
        total += made
    raise AssertionError(f"sync jobs still due after {rounds} rounds")
