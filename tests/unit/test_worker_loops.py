"""Worker rounds the database undoes (a deadlock between two workers on PostgreSQL) run
again at once instead of stopping the loop for its supervisor's growing pause; a round
undone over and over still reaches the supervisor."""

from __future__ import annotations

import asyncio
import time

import pytest

from interlock.domain.errors import ConcurrentUpdate
from interlock.worker.loops import UNDONE_ROUNDS, run_rounds
from interlock.worker.wakeup import Wakeup


def test_a_round_undone_by_the_database_runs_again_at_once() -> None:
    async def scenario() -> list[str]:
        stop = asyncio.Event()
        seen: list[str] = []

        async def step() -> bool:
            seen.append("round")
            if len(seen) <= 2:
                raise ConcurrentUpdate("deadlock detected")
            stop.set()
            return True  # "more may wait": the loop looks at stop before waiting

        # A poll interval far longer than the deadline: only an immediate rerun passes.
        await asyncio.wait_for(run_rounds(step, Wakeup(), stop, poll_interval=60), 5)
        return seen

    assert asyncio.run(scenario()) == ["round"] * 3


def test_a_round_undone_every_time_reaches_the_supervisor() -> None:
    async def scenario() -> None:
        async def step() -> bool:
            raise ConcurrentUpdate("always")

        await asyncio.wait_for(run_rounds(step, Wakeup(), asyncio.Event(), 60), 10)

    with pytest.raises(ConcurrentUpdate):
        asyncio.run(scenario())
    assert UNDONE_ROUNDS >= 3


def test_a_loop_waiting_for_work_stops_at_once_when_told() -> None:
    """Stopping must not wait out the poll interval (a minute here)."""
    async def scenario() -> float:
        stop = asyncio.Event()
        rounds: list[float] = []

        async def step() -> bool:
            rounds.append(time.monotonic())
            return False  # nothing to do: the loop waits for work

        loop = asyncio.create_task(run_rounds(step, Wakeup(), stop, poll_interval=60))
        while not rounds:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # well into its wait
        stop.set()
        asked = time.monotonic()
        await asyncio.wait_for(loop, 5)
        return time.monotonic() - asked

    assert asyncio.run(scenario()) < 1.0
