"""The embedded worker as a child process of ``interlock serve``.

One Python process has one interpreter lock; serving requests and delivering webhooks
in the same process made each wait for the other (measured: ingest at a fifth of its
speed while alerts were processed). The child is ``interlock worker`` on the same
database, woken through a pipe whenever the server commits work, so it starts in well
under a millisecond without polling, on SQLite as on PostgreSQL. When the server stops
it closes the pipe; the child finishes what it has in flight and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys

from interlock.logs import get_logger

log = get_logger(__name__)
RESTART_DELAY = 1.0
STOP_TIMEOUT = 30.0


class WorkerProcess:
    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._process: subprocess.Popen[bytes] | None = None
        self._write_fd: int | None = None
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Wake the child; safe from any thread. A full pipe already holds a wakeup."""
        fd = self._write_fd
        if fd is None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(fd, b"!")

    async def start(self) -> None:
        self._spawn()
        self._supervisor = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        """Close the pipe (the child's signal to finish) and wait for it to exit."""
        self._stopping = True
        self._close_pipe()
        process = self._process
        if process is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), STOP_TIMEOUT)
            except TimeoutError:
                log.error("worker process did not stop; killing it", pid=process.pid)
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor

    def _spawn(self) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "interlock.cli.main", "worker", "--db",
             self._database_url, "--wakeup-fd", str(read_fd)],
            pass_fds=[read_fd],
        )
        os.close(read_fd)
        self._write_fd = write_fd
        log.info("worker process started", pid=self._process.pid)

    async def _supervise(self) -> None:
        """Start the child again if it dies while the server runs."""
        while not self._stopping:
            process = self._process
            assert process is not None
            code = await asyncio.to_thread(process.wait)
            if self._stopping:
                return
            log.error("worker process exited; starting another", code=code)
            self._close_pipe()
            await asyncio.sleep(RESTART_DELAY)
            if not self._stopping:
                self._spawn()

    def _close_pipe(self) -> None:
        fd, self._write_fd = self._write_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
