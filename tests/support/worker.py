"""Running the real delivery worker: in a background thread, or as `interlock worker`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Collection
from pathlib import Path

import httpx

from interlock.domain.targets import parse_allowed_networks
from interlock.ports.store import Work
from interlock.services.container import Container
from interlock.services.deliveries import DeliveryService
from interlock.worker.engine import DeliveryWorker, WorkerSettings
from interlock.worker.loops import Health
from interlock.worker.sender import WebhookSender
from interlock.worker.wakeup import Wakeup


class BackgroundWorker:
    """The worker loop on its own event loop thread, woken by the container's commits."""

    def __init__(self, container: Container, settings: WorkerSettings | None = None, *,
                 deliveries: DeliveryService | None = None) -> None:
        self._container = container
        self._deliveries = deliveries or container.deliveries
        self._settings = settings or WorkerSettings()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.worker: DeliveryWorker | None = None

    @property
    def health(self) -> Health:
        assert self.worker is not None, "not started"
        return self.worker.health

    def __enter__(self) -> BackgroundWorker:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, failure: type[BaseException] | None, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        # A stop waits at most for the sends in flight (shutdown_grace, 10 s by default);
        # a worker still running after that would go on into the next test.
        self._thread.join(self._settings.shutdown_grace + 10)
        assert failure is not None or not self._thread.is_alive(), "the worker did not stop"

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        wakeup, handed = Wakeup(), Wakeup()
        self._container.store.on_work_committed(wakeup.notify)
        self._container.store.on_work_committed(handed.notify, Work.HANDED)
        sender = WebhookSender(allowed_networks=parse_allowed_networks("127.0.0.0/8"),
                               limit_per_host=0)
        worker = self.worker = DeliveryWorker(self._deliveries, sender, wakeup,
                                              self._settings, handed=handed)
        self._started.set()
        try:
            await worker.run(self._stop)
        finally:
            await sender.close()


def start_worker_process(database_url: str, log: Path, **settings: str) -> subprocess.Popen[bytes]:
    """`interlock worker` as a separate process, its output in ``log``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTERLOCK_")}
    env.update({
        "INTERLOCK_DATABASE_URL": database_url,
        "INTERLOCK_ALLOWED_TARGETS": "127.0.0.0/8",
        "INTERLOCK_CONFIG": "/nonexistent",
        "PYTHONUNBUFFERED": "1",
        **{f"INTERLOCK_{name.upper()}": value for name, value in settings.items()},
    })
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "interlock.cli.main", "worker"],
            stdout=output, stderr=subprocess.STDOUT, env=env,
        )


def alert_worker(api: httpx.Client, other_than: Collection[int] = ()) -> int | None:
    """The process of a worker that /readyz says is processing alerts, other than those
    given (a killed worker stays listed until its last report is 30 s old)."""
    workers = api.get("/readyz").json().get("workers", [])
    pids = [int(worker["name"].split(":")[1]) for worker in workers
            if worker["tasks"].get("alerts") == "ok"]
    return next((pid for pid in pids if pid not in other_than), None)
