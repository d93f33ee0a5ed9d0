"""Waiting for an event, for a while at most."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_a_while(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` have passed; whether it is set. The
    loops of the workers and the CLI pause with it, so that a stop cuts the pause short."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()
