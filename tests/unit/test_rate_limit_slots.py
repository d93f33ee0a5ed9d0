"""An endpoint's rate limit counts from when sends went out, not only from when they
were planned: a worker whose event loop stalls (a long garbage collection, a busy
machine) must not make up for the stall with a burst the endpoint asked never to get."""

from __future__ import annotations

import asyncio
import itertools
import time

from interlock.worker.engine import _Lane


async def _sends_of(lane: _Lane, runners: int, stall_after_first: float) -> list[float]:
    """When each of ``runners`` runners' sends went out; the event loop is blocked for
    ``stall_after_first`` seconds once the first has gone."""
    started: list[float] = []

    async def runner() -> None:
        await lane.take_slot()
        started.append(time.monotonic())

    first = asyncio.create_task(runner())
    rest = [asyncio.create_task(runner()) for _ in range(runners - 1)]
    await first
    time.sleep(stall_after_first)  # blocks the loop as a long GC pass would
    await asyncio.gather(*rest)
    return started


def test_sends_that_fell_due_during_a_stall_go_out_one_slot_apart() -> None:
    async def scenario() -> list[float]:
        async with asyncio.timeout(10):
            return await _sends_of(_Lane(concurrency=8, rate_limit=5), 6, 0.5)

    started = asyncio.run(scenario())
    gaps = [later - earlier for earlier, later in itertools.pairwise(started)]
    # 5 a second: every send at least 0.2 s after the one before (a little slack for
    # the clock's reading after a timer fires), the stall included.
    assert min(gaps) >= 0.19, gaps
    assert started[-1] - started[0] >= 0.5 + 4 * 0.19


def test_without_a_stall_sends_keep_their_planned_slots() -> None:
    async def scenario() -> list[float]:
        async with asyncio.timeout(10):
            return await _sends_of(_Lane(concurrency=8, rate_limit=10), 6, 0.0)

    started = asyncio.run(scenario())
    gaps = [later - earlier for earlier, later in itertools.pairwise(started)]
    assert min(gaps) >= 0.09, gaps
    # Not pushed back beyond the plan: five gaps of 0.1 s, with room for a busy machine.
    assert started[-1] - started[0] < 0.5 + 0.3, gaps
