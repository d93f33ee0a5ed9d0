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


def _gaps(rate: float, runners: int, stall_after_first: float) -> tuple[list[float], float]:
    """The gaps between sends, and the first to the last, of ``runners`` runners."""
    async def scenario() -> list[float]:
        async with asyncio.timeout(10):
            return await _sends_of(_Lane(concurrency=8, rate_limit=rate), runners,
                                   stall_after_first)

    started = asyncio.run(scenario())
    return [later - earlier for earlier, later in itertools.pairwise(started)], \
        started[-1] - started[0]


def test_sends_that_fell_due_during_a_stall_go_out_one_slot_apart() -> None:
    gaps, span = _gaps(5, 6, stall_after_first=0.5)
    # 5 a second: every send at least 0.2 s after the one before (a little slack for
    # the clock's reading after a timer fires), the stall included.
    assert min(gaps) >= 0.19, gaps
    assert span >= 0.5 + 4 * 0.19, gaps


def test_without_a_stall_sends_keep_their_planned_slots() -> None:
    gaps, span = _gaps(10, 6, stall_after_first=0.0)
    assert min(gaps) >= 0.09, gaps
    # Not pushed back beyond the plan: five gaps of 0.1 s, with room for a busy machine.
    assert span < 0.5 + 0.3, gaps
