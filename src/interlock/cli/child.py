"""The workers that ``interlock serve`` runs beside the API, in processes of their own.

Separate processes use both cores: the API answers people while one worker processes
alerts and another delivers and syncs, and none waits for another's interpreter lock.
On SQLite they take turns at the write lock, people's writes first (see
``store.locks``), and wake each other through a socket (``store.signals``). A child is
restarted if it dies, and stopped with the server: SIGTERM, then up to a minute to
finish what it has in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from interlock.logs import get_logger
from interlock.waits import wait_a_while

log = get_logger(__name__)

#: How long a stopping worker may take to record what it has in flight.
STOP_GRACE = 60.0
RESTART_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)


#: The worker processes ``serve`` starts: alert processing apart from delivery and sync,
#: so a processing transaction (on SQLite, holding the one write lock) never waits for
#: the interpreter lock while an event loop sends webhooks.
CHILDREN = ("alerts", "deliveries,sync")


async def run_child_workers(database_url: str, stop: asyncio.Event) -> None:
    """Keep serve's worker processes running until ``stop`` is set."""
    await asyncio.gather(*(run_child_worker(database_url, stop, tasks)
                           for tasks in CHILDREN))


async def run_child_worker(database_url: str, stop: asyncio.Event, tasks: str) -> None:
    """Keep an ``interlock worker --tasks TASKS`` process running until ``stop`` is set."""
    env = {**os.environ, "INTERLOCK_DATABASE_URL": database_url,
           "INTERLOCK_AUTO_MIGRATE": "false"}
    failures = 0
    while not stop.is_set():
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "interlock", "worker", "--quiet",
            "--parent", str(os.getpid()), "--tasks", tasks, env=env,
            stdin=asyncio.subprocess.DEVNULL)
        stopping = asyncio.ensure_future(stop.wait())
        exited = asyncio.ensure_future(process.wait())
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait({stopping, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            stopping.cancel()
            if stop.is_set():
                break
            failures = 0 if loop.time() - started > 60 else failures + 1
            pause = RESTART_PAUSES[min(failures, len(RESTART_PAUSES) - 1)]
            log.error("worker process exited; restarting", code=process.returncode,
                      pause=pause)
            await wait_a_while(stop, pause)
            continue
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(exited, STOP_GRACE)
        except TimeoutError:
            log.error("worker process did not stop in time; killing it")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await exited
        break
