"""Background tasks that never die silently.

Each long-running part of a worker (alert processing, delivery, sync, the wake-up
listeners) runs under :func:`supervise`: if it raises, the error is logged with its
traceback, the task is reported as failing (see :mod:`interlock.services.workers`) and
it is started again after a growing pause, until it runs cleanly again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from interlock.logs import get_logger
from interlock.services.workers import TaskStates
from interlock.waits import wait_a_while

log = get_logger(__name__)

#: Pauses before restarting a task that failed: 1 s, doubling, at most a minute.
FIRST_PAUSE = 1.0
LONGEST_PAUSE = 60.0
#: A task that ran this long without failing counts as healthy again.
HEALTHY_AFTER = 30.0


async def supervise(name: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event,
                    states: TaskStates) -> None:
    """Run ``run()`` until ``stop`` is set, restarting it whenever it fails."""
    loop = asyncio.get_running_loop()
    pause = FIRST_PAUSE
    states.ok(name)
    generation = 0

    def healthy_again(expected: int) -> None:
        if generation == expected and name in states.failing():
            log.info("worker task healthy again", task=name)
            states.ok(name)

    while not stop.is_set():
        started = loop.time()
        generation += 1
        recovery = loop.call_later(HEALTHY_AFTER, healthy_again, generation)
        try:
            await run()
        except asyncio.CancelledError:
            recovery.cancel()
            raise
        except Exception as error:  # logged, reported and restarted: never silent
            recovery.cancel()
            log.exception("worker task failed; restarting", task=name, pause=pause)
            states.failed(name, repr(error)[:300])
            if loop.time() - started > HEALTHY_AFTER:
                pause = FIRST_PAUSE
            await wait_a_while(stop, pause)
            pause = min(pause * 2, LONGEST_PAUSE)
            continue
        recovery.cancel()
        if not stop.is_set():
            log.error("worker task returned before the worker stopped; restarting",
                      task=name)
            states.failed(name, "returned unexpectedly")
            await wait_a_while(stop, pause)
            continue


async def heartbeat(beat: Callable[[], None], stop: asyncio.Event, every: float) -> None:
    """Call ``beat`` (in a thread) every ``every`` seconds until ``stop``; a database
    that does not answer is logged and tried again at the next beat."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(beat)
        except Exception as error:  # the store is away; the next beat tries again
            log.warning("worker heartbeat not written", error=repr(error)[:300])
        await wait_a_while(stop, every)
