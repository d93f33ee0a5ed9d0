"""interlock.threads: the API's and the console's hand-over to threads."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from interlock import threads

_field: contextvars.ContextVar[str] = contextvars.ContextVar("_field", default="unset")


@pytest.fixture(autouse=True)
def _pool_of_default_size() -> None:
    threads.size(threads.DEFAULT_THREADS)


def test_work_runs_off_the_event_loop_with_the_callers_context() -> None:
    async def main() -> tuple[str, str, bool]:
        _field.set("request 7")
        name, seen = await threads.run_sync(
            lambda: (threading.current_thread().name, _field.get()))
        return name, seen, name != threading.current_thread().name

    name, seen, elsewhere = asyncio.run(main())
    assert elsewhere and name.startswith("interlock-api")
    assert seen == "request 7"


def test_an_exception_reaches_the_caller() -> None:
    def fails(value: int, *, by: int) -> int:
        raise ValueError(f"{value} by {by}")

    with pytest.raises(ValueError, match="3 by 4"):
        asyncio.run(threads.run_sync(fails, 3, by=4))


def test_size_bounds_how_many_run_at_once() -> None:
    threads.size(2)
    running = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(threads.run_sync(work) for _ in range(6))), 10)

    asyncio.run(main())
    assert most == 2


def test_a_cancelled_caller_stops_waiting_and_the_work_still_finishes() -> None:
    finished = threading.Event()

    def slow() -> None:
        time.sleep(1.0)
        finished.set()

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(threads.run_sync(slow), 0.02)
        return time.monotonic() - started

    assert asyncio.run(main()) < 0.5  # the work takes 1 s; the caller waits 20 ms
    assert finished.wait(5)
