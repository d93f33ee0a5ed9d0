"""The workers that ``interlock serve`` runs beside the API, in processes of their own
(and ``interlock worker --split``, without the API).

Separate processes use both cores: the API answers people while one worker processes
alerts and another delivers and syncs, and none waits for another's interpreter lock.
On SQLite they take turns at the write lock, people's writes first (see
``store.locks``), and wake each other through a socket (``store.signals``). A child is
restarted if it dies or stops being heard from (frozen: see ``Heard``), and stopped with
the server: SIGTERM, then up to a minute to finish what it has in flight. What a worker
that died had leased (deliveries it was sending, payloads it was applying) is handed back
as soon as serve sees it die, for the next worker to take at once, rather than when the
leases lapse (two minutes by default) or when another worker notices its silence (30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from interlock.logs import get_logger
from interlock.services.workers import worker_name
from interlock.waits import wait_a_while

log = get_logger(__name__)

#: How long a stopping worker may take to record what it has in flight.
STOP_GRACE = 60.0
RESTART_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)
#: Seconds a worker process may take to start before serve's watchdog gives up on it,
#: if the watchdog's own time is shorter.
STARTING_SECONDS = 60.0


#: The worker processes ``serve`` starts: alert processing apart from delivery and sync,
#: so a processing transaction (on SQLite, holding the one write lock) never waits for
#: the interpreter lock while an event loop sends webhooks.
CHILDREN = ("alerts", "deliveries,sync")


#: Hands back what the named workers lease (WorkerRegistry.take_over).
TakeOver = Callable[[Sequence[str]], Mapping[str, int]]


def children_for(tasks: Sequence[str]) -> tuple[str, ...]:
    """How ``interlock worker --split --tasks TASKS`` divides its tasks into processes,
    as serve does: alert processing in one of its own when there is anything beside it,
    otherwise everything in one (an empty answer)."""
    rest = [task for task in tasks if task != "alerts"]
    if len(rest) == len(tasks) or not rest:
        return ()
    return ("alerts", ",".join(rest))


async def run_child_workers(database_url: str, stop: asyncio.Event, *,
                            children: Sequence[str] = CHILDREN, watchdog: float = 0.0,
                            take_over: TakeOver | None = None) -> None:
    """Keep a worker process running for each task list of ``children`` (serve's by
    default) until ``stop`` is set; with ``watchdog``, a worker not heard from for that
    many seconds is killed and started again; with ``take_over``, what a worker that
    died had leased is handed back at once."""
    await asyncio.gather(*(run_child_worker(database_url, stop, tasks, watchdog=watchdog,
                                            take_over=take_over)
                           for tasks in children))


async def run_child_worker(database_url: str, stop: asyncio.Event, tasks: str, *,
                           watchdog: float = 0.0, take_over: TakeOver | None = None
                           ) -> None:
    """Keep an ``interlock worker --tasks TASKS`` process running until ``stop`` is set."""
    env = {**os.environ, "INTERLOCK_DATABASE_URL": database_url,
           "INTERLOCK_AUTO_MIGRATE": "false"}
    failures = 0
    while not stop.is_set():
        heard = Heard() if watchdog else None
        tag = uuid.uuid4().hex[:6]
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "interlock", "worker", "--quiet",
                "--parent", str(os.getpid()), "--tasks", tasks, "--tag", tag,
                *(("--alive-fd", str(heard.write_fd)) if heard else ()),
                env=env, stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(heard.write_fd,) if heard else ())
            stopping = asyncio.ensure_future(stop.wait())
            exited = asyncio.ensure_future(process.wait())
            waits: set[asyncio.Future[Any]] = {stopping, exited}
            if heard is not None:
                heard.listen()
                waits.add(asyncio.ensure_future(heard.silence(watchdog)))
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits - {exited}:
                waiting.cancel()
            if not exited.done() and not stop.is_set():
                log.error("worker process not heard from; killing it to start another "
                          "(frozen, or its event loop stuck)", tasks=tasks, pid=process.pid,
                          seconds=watchdog)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await exited
        finally:
            if heard is not None:
                heard.close()
        if exited.done() and not stop.is_set():
            failures = 0 if loop.time() - started > 60 else failures + 1
            pause = RESTART_PAUSES[min(failures, len(RESTART_PAUSES) - 1)]
            log.error("worker process exited; restarting", code=process.returncode,
                      pause=pause)
            if take_over is not None:
                await _hand_back(take_over, worker_name(tag, process.pid))
            await wait_a_while(stop, pause)
            continue
        if not exited.done():
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


async def _hand_back(take_over: TakeOver, name: str) -> None:
    """Free what the worker ``name``, which died, had leased; if the database is away,
    its leases lapse in their time instead."""
    try:
        taken = await asyncio.to_thread(take_over, [name])
    except Exception as error:  # the work waits for its leases to lapse
        log.warning("could not hand back the work of a worker process that died",
                    worker=name, error=repr(error)[:300])
        return
    if any(taken.values()):
        log.warning("handed back the work of a worker process that died", worker=name,
                    **taken)


class Heard:
    """When serve last heard from a worker process: the worker writes a byte to a pipe
    every second from its event loop (``interlock worker --alive-fd``). A process
    frozen whole (SIGSTOP, a stopped container) keeps its locks: on SQLite the turn
    at alert processing, and the write lock if it froze inside a transaction. Its
    heartbeats in the database stop too, and /readyz says so, but nothing else would
    end it; a process that still runs but is silent has its event loop stuck."""

    def __init__(self) -> None:
        self._read_fd, self.write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._write_end_here = True
        self._heard = False

    def listen(self) -> None:
        """Once the worker has its end: this process closes it, and reads."""
        os.close(self.write_fd)
        self._write_end_here = False
        self._loop.add_reader(self._read_fd, self._read)

    def _read(self) -> None:
        try:
            heard = os.read(self._read_fd, 4096)
        except BlockingIOError:
            return
        if heard:
            self._last = self._loop.time()
            self._heard = True
        else:  # the worker's end closed: it exited, and its exit is handled as such
            self._loop.remove_reader(self._read_fd)

    async def silence(self, seconds: float) -> None:
        """Return once nothing was heard for ``seconds``; before the worker's first
        word, for STARTING_SECONDS if that is longer (a worker importing and connecting
        on a busy machine)."""
        while True:
            allowed = seconds if self._heard else max(seconds, STARTING_SECONDS)
            quiet = self._loop.time() - self._last
            if quiet >= allowed:
                return
            await asyncio.sleep(min(allowed - quiet, 1.0) + 0.01)

    def close(self) -> None:
        self._loop.remove_reader(self._read_fd)  # if still reading: nothing otherwise
        if self._write_end_here:  # the worker never started
            os.close(self.write_fd)
            self._write_end_here = False
        os.close(self._read_fd)
