"""Driving delivery one round at a time, so tests control the clock between rounds."""

from __future__ import annotations

import asyncio

from interlock.domain.targets import parse_allowed_networks
from interlock.services.container import Container
from interlock.services.deliveries import Finished
from interlock.worker.sender import WebhookSender

LOOPBACK = "127.0.0.0/8"


def deliver_round(container: Container, owner: str = "test-worker") -> int:
    """Fan out, claim everything due, send it all, record it. Returns attempts made."""
    service = container.deliveries
    while service.dispatch():
        pass
    claims = service.claim(owner, 1000)
    if not claims:
        return 0
    prepared = service.prepare(claims)

    async def send_all() -> list[Finished]:
        sender = WebhookSender(allowed_networks=parse_allowed_networks(LOOPBACK))
        try:
            started = service.now()

            async def one(index: int) -> Finished:
                item = prepared[index]
                result = item.failure if item.failure is not None else await sender.send(
                    item.signed(service.now()))
                assert result is not None
                return Finished(claims[index], result, started)

            return list(await asyncio.gather(*(one(i) for i in range(len(claims)))))
        finally:
            await sender.close()

    service.record(owner, asyncio.run(send_all()))
    return len(claims)


def deliver_all(container: Container, rounds: int = 20) -> int:
    """Rounds until nothing is due; returns attempts made."""
    total = 0
    for _ in range(rounds):
        made = deliver_round(container)
        if made == 0:
            return total
        total += made
    return total
