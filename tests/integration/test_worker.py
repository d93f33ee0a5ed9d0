"""The delivery worker as it runs for real: woken by commits, isolating slow endpoints,
surviving kill -9, sharing the queue across processes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from interlock.domain.endpoints import Endpoint
from interlock.domain.incidents import Severity
from interlock.services.container import Container
from interlock.services.endpoints import EndpointSpec
from interlock.services.incidents import Declaration
from interlock.worker.engine import WorkerSettings
from tests.integration.test_concurrency import VIEWER
from tests.support.receiver import Receiver, hang, ok
from tests.support.worker import BackgroundWorker, start_worker_process


def endpoint_for(hub: Container, url: str, **fields: object) -> Endpoint:
    endpoint, _ = hub.endpoints.create(EndpointSpec(url=url, **fields))  # type: ignore[arg-type]
    return endpoint


def declare_many(hub: Container, count: int) -> list[str]:
    return [hub.incidents.declare(VIEWER, Declaration(f"Incident {n}", Severity.LOW)).id
            for n in range(count)]


def test_a_commit_wakes_the_worker_without_waiting_for_a_poll(
    hub: Container, manual_clock: object
) -> None:
    """With polling every 60 s, only the commit's wakeup can deliver within seconds."""
    with Receiver() as receiver, BackgroundWorker(hub, WorkerSettings(poll_interval=60)):
        endpoint_for(hub, receiver.url)
        time.sleep(0.2)  # the worker is idle, waiting
        declare_many(hub, 3)
        assert len(receiver.wait_for(3, timeout=10)) == 3


def test_a_hanging_endpoint_does_not_hold_up_the_others(
    database_url: str, tmp_path: Path
) -> None:
    from interlock import config
    from interlock.bootstrap import build

    container = build(config.load(
        {"database_url": database_url, "allowed_targets": "127.0.0.0/8"}, environ={}))
    try:
        with Receiver(hang(30)) as stuck, Receiver() as healthy, BackgroundWorker(
            container, WorkerSettings(per_endpoint=4, poll_interval=0.2, shutdown_grace=0.5)
        ):
            endpoint_for(container, stuck.url, timeout=20)
            endpoint_for(container, healthy.url)
            started = time.monotonic()
            declare_many(container, 40)
            healthy.wait_for(40, timeout=15)
            elapsed = time.monotonic() - started
            assert elapsed < 15
            # The stuck endpoint holds at most its own concurrency, nothing more.
            assert len(stuck.received) <= 4
    finally:
        container.close()


def test_deliveries_survive_a_killed_worker(
    hub: Container, database_url: str, tmp_path: Path
) -> None:
    with Receiver(hang(60)) as receiver:
        endpoint_for(hub, receiver.url)
        ids = declare_many(hub, 5)
        log = tmp_path / "worker.log"
        first = start_worker_process(database_url, log, worker_lease_seconds="2",
                                     worker_poll_seconds="0.2")
        try:
            receiver.wait_for(1, timeout=20)  # a delivery is in flight
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        receiver.behaviour = ok
        in_flight_when_killed = len(receiver.received)
        second = start_worker_process(database_url, log, worker_lease_seconds="2",
                                      worker_poll_seconds="0.2")
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                delivered = {json.loads(r.body)["data"]["incident"]["id"]
                             for r in receiver.received[in_flight_when_killed:]}
                if delivered >= set(ids):
                    break
                time.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0, log.read_text()
    assert delivered >= set(ids), log.read_text()
    message_ids: dict[str, set[str]] = {}
    for request in receiver.received:
        incident_id = json.loads(request.body)["data"]["incident"]["id"]
        message_ids.setdefault(incident_id, set()).add(request.headers["webhook-id"])
    assert all(len(found) == 1 for found in message_ids.values()), \
        "a redelivery carries the same webhook-id"
    page = hub.endpoints.messages(cursor=None, limit=50)
    assert {d.status.value for m in page.items for d in m.deliveries} == {"succeeded"}


@pytest.mark.parametrize("database_url", ["postgresql", "sqlite"], indirect=True)
def test_two_workers_share_the_queue_without_doubling_deliveries(
    hub: Container, database_url: str, tmp_path: Path
) -> None:
    """On PostgreSQL, and on SQLite too, where a second worker process takes the other
    core for a webhook backlog (README: Scaling out)."""
    with Receiver() as receiver:
        endpoint_for(hub, receiver.url)
        log = tmp_path / "workers.log"
        workers = [start_worker_process(database_url, log) for _ in range(2)]
        try:
            time.sleep(1.5)
            ids = declare_many(hub, 150)
            received = receiver.wait_for(150, timeout=60)
            time.sleep(0.5)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            assert [worker.wait(30) for worker in workers] == [0, 0], log.read_text()
    webhook_ids = [request.headers["webhook-id"] for request in receiver.received]
    assert len(webhook_ids) == len(set(webhook_ids)) == 150
    assert {json.loads(r.body)["data"]["incident"]["id"] for r in received} == set(ids)
    assert log.read_text().count("worker started") == 2


def test_an_endpoint_rate_limit_spaces_its_deliveries(hub: Container) -> None:
    with Receiver() as limited, Receiver() as unlimited, BackgroundWorker(
        hub, WorkerSettings(poll_interval=0.2)
    ):
        endpoint_for(hub, limited.url, rate_limit=5)
        endpoint_for(hub, unlimited.url)
        declare_many(hub, 11)
        fast = unlimited.wait_for(11, timeout=10)
        slow = limited.wait_for(11, timeout=20)
    # Ten gaps at five per second: at least two seconds from first to last.
    assert slow[-1].at - slow[0].at >= 1.9
    assert fast[-1].at - fast[0].at < slow[-1].at - slow[0].at
