"""Worker rounds the database undoes (a deadlock between two workers on PostgreSQL) run
again at once instead of stopping the loop for its supervisor's growing pause; a round
undone over and over still reaches the supervisor."""

from __future__ import annotations

import asyncio
import time

import pytest

from interlock.domain.errors import ConcurrentUpdate
from interlock.worker import processing
from interlock.worker.loops import UNDONE_ROUNDS, run_rounds
from interlock.worker.processing import process_alerts
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


class _IdleProcessor:
    """Stands for AlertProcessor where nothing ever arrives: the alert loop waits."""

    behind = False

    def __init__(self) -> None:
        self.rounds = 0

    def process(self, _name: str) -> int:
        self.rounds += 1
        return 0

    def tell_some_due_digests(self, _limit: int, *, late_only: bool) -> tuple[int, bool]:
        return 0, False


@pytest.mark.parametrize("loop", ["rounds", "alerts"])
def test_a_loop_waiting_for_work_stops_at_once_when_told(loop: str) -> None:
    """Stopping must not wait out the poll interval (a minute here): the delivery and
    sync loops (run_rounds) and the alert loop (process_alerts) alike."""
    async def scenario() -> float:
        stop = asyncio.Event()
        rounds: list[float] = []
        idle = _IdleProcessor()

        async def step() -> bool:
            rounds.append(time.monotonic())
            return False  # nothing to do: the loop waits for work

        task = asyncio.create_task(
            run_rounds(step, Wakeup(), stop, poll_interval=60) if loop == "rounds" else
            process_alerts(idle, Wakeup(), stop, "worker", poll_interval=60))  # type: ignore[arg-type]
        while not rounds and not idle.rounds:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # well into its wait
        stop.set()
        asked = time.monotonic()
        await asyncio.wait_for(task, 5)
        return time.monotonic() - asked

    assert asyncio.run(scenario()) < 1.0


class _TrickleProcessor:
    """Stands for AlertProcessor while alerts trickle in: each batch takes 60 payloads,
    until ``rounds`` batches have been taken."""

    behind = False

    def __init__(self, rounds: int, stop: asyncio.Event) -> None:
        self.left = rounds
        self.stop = stop

    def process(self, _name: str) -> int:
        self.left -= 1
        if self.left <= 0:
            self.stop.set()
        return 60

    def tell_some_due_digests(self, _limit: int, *, late_only: bool) -> tuple[int, bool]:
        return 0, False


@pytest.mark.parametrize(("workers", "gathers"), [
    (1, []), (2, [processing.SHARED_GATHER_SECONDS] * 4)])
def test_a_worker_sharing_alerts_with_another_gathers_longer_between_batches(
        workers: int, gathers: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two PostgreSQL workers each took half of what arrived, in batches half the size at
    more CPU per alert: while another worker processes alerts too, a batch of 60 (a
    full one for a worker alone) is followed by a pause to let more gather."""
    slept: list[float] = []
    sleep = asyncio.sleep

    async def recorded(seconds: float) -> None:
        slept.append(seconds)
        await sleep(0)

    monkeypatch.setattr(processing.asyncio, "sleep", recorded)

    async def scenario() -> None:
        stop = asyncio.Event()
        trickle = _TrickleProcessor(4, stop)
        await asyncio.wait_for(process_alerts(
            trickle, Wakeup(), stop, "worker", poll_interval=60,  # type: ignore[arg-type]
            sharing=lambda: workers), 5)

    asyncio.run(scenario())
    assert slept == gathers
