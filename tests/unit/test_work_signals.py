"""Waking worker processes on SQLite: a datagram per commit to every slot someone
listens on. A slot found empty is skipped for a while, and a worker that starts
listening there afterwards is woken again once that while is over."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from interlock.ports.store import Work
from interlock.store import signals
from interlock.store.signals import WorkSignals


def test_a_worker_listening_where_nobody_was_hears_signals_again_after_the_pause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signals, "VACANT_SECONDS", 0.3)
    database = str(tmp_path / "interlock.db")
    sender = WorkSignals(database)
    sender.send(Work.PAYLOADS)  # nobody listens anywhere: every slot is found vacant

    async def listen() -> tuple[list[Work], float]:
        heard: list[Work] = []
        stop = asyncio.Event()
        listener = asyncio.create_task(WorkSignals(database).receive(heard.append, stop))
        await asyncio.sleep(0.05)  # bound to the first slot
        started = time.monotonic()
        deadline = started + 5.0
        while not heard and time.monotonic() < deadline:
            sender.send(Work.EVENTS)
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(listener, 5.0)
        return heard, time.monotonic() - started

    heard, waited = asyncio.run(listen())
    assert heard and heard[0] == Work.EVENTS
    assert waited < 1.0, "the slot is tried again once the pause is over"


def test_every_listening_worker_is_woken_by_one_send(tmp_path: Path) -> None:
    database = str(tmp_path / "interlock.db")

    async def two_listeners() -> list[list[Work]]:
        heard: list[list[Work]] = [[], []]
        stop = asyncio.Event()
        listeners = [asyncio.create_task(WorkSignals(database).receive(each.append, stop))
                     for each in heard]
        await asyncio.sleep(0.05)
        WorkSignals(database).send(Work.PAYLOADS | Work.SYNC)
        deadline = time.monotonic() + 5.0
        while not all(heard) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*listeners), 5.0)
        return heard

    assert asyncio.run(two_listeners()) == [[Work.PAYLOADS | Work.SYNC]] * 2
