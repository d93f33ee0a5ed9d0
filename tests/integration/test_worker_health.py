"""No worker task dies silently: a part that fails is logged, restarted, and named by
``/readyz`` until it runs cleanly again; ``interlock serve`` restarts its worker
process when it dies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from interlock.services.container import Container
from interlock.services.processing import AlertProcessor
from interlock.worker import runner
from tests.support.ingest import am_alert, am_payload, basic, create_source
from tests.support.server import KEY_LINE, serving
from tests.support.waiting import eventually
from tests.support.worker import alert_worker


class BrokenProcessor:
    """Alert processing whose database work fails the first ``failures`` times."""

    def __init__(self, inner: AlertProcessor, failures: int) -> None:
        self._inner = inner
        self.failures = failures
        self.calls = 0

    def process(self, owner: str, limit: int | None = None) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("disk I/O error (injected)")
        return self._inner.process(owner, limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _run_worker(container: Container) -> tuple[threading.Thread, asyncio.Event,
                                               asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.run_worker(container, stop))

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread, stop, loop


def test_a_failing_worker_task_is_restarted_and_named_by_readyz(
        container: Container, client: TestClient, admin: dict[str, str],
        monkeypatch: Any) -> None:
    monkeypatch.setattr(runner, "BEAT_SECONDS", 0.2)
    broken = BrokenProcessor(container.alerts, failures=2)
    container.alerts = broken  # type: ignore[assignment]
    source = create_source(client, admin)
    thread, stop, loop = _run_worker(container)
    try:
        failing = eventually(lambda: (r := client.get("/readyz")).status_code == 503 and r,
                             "readyz naming the failing task", timeout=20)
        assert failing.headers["content-type"] == "application/problem+json"
        assert "alerts" in failing.json()["detail"]
        assert "disk I/O error" in failing.json()["detail"]
        # Restarted: alerts sent now are processed by the same worker.
        response = client.post(source["path"], headers=basic(source["token"]),
                               json=am_payload(am_alert("DiskFull")))
        assert response.status_code == 202
        eventually(lambda: client.get("/api/v1/incidents", headers=admin).json()["data"],
                   "the alert processed after the restart", timeout=20)
        assert broken.calls > broken.failures
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
    assert not thread.is_alive()


def test_readyz_lists_the_workers_and_their_tasks(
        container: Container, client: TestClient, monkeypatch: Any) -> None:
    monkeypatch.setattr(runner, "BEAT_SECONDS", 0.2)
    thread, stop, loop = _run_worker(container)
    try:
        ready = eventually(lambda: (r := client.get("/readyz")).status_code == 200
                           and r.json()["workers"] and r, "a worker in /readyz", timeout=20)
        (worker,) = ready.json()["workers"]
        assert set(worker["tasks"]) >= {"alerts", "deliveries", "sync", "listen"}
        assert set(worker["tasks"].values()) == {"ok"}
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
    # A worker that stopped signs off.
    assert client.get("/readyz").json()["workers"] == []


def test_serve_restarts_its_worker_process_when_it_dies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'interlock.db'}"
    with serving(url, tmp_path, "interlock", {"INTERLOCK_WORKER_POLL_SECONDS": "0.2"}
                 ) as server:
        (secret,) = KEY_LINE.findall(server.output())
        api = httpx.Client(base_url=server.base_url, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
        source = api.post("/api/v1/sources", json={"name": "am", "kind": "alertmanager"}
                          ).json()
        ingest = f"/ingest/{source['id']}"
        auth = basic(source["token"])

        first = eventually(lambda: alert_worker(api), "serve's alert worker reporting",
                           timeout=30)
        assert first != server.process.pid, "the worker runs in a process of its own"
        os.kill(first, signal.SIGKILL)
        eventually(lambda: alert_worker(api, other_than={first}), "a new worker process",
                   timeout=60)
        assert api.post(ingest, headers=auth,
                        content=json.dumps(am_payload(am_alert("CPUHot")))).status_code == 202
        eventually(lambda: api.get("/api/v1/incidents").json()["data"],
                   "the alert processed by the new worker", timeout=30)
