"""The delivery worker when things change under it: slow lanes at shutdown, rows that
vanish mid-flight, receivers slower than a lease."""

from __future__ import annotations

import time

from interlock.domain.endpoints import Endpoint
from interlock.domain.incidents import Severity
from interlock.services.container import Container
from interlock.services.endpoints import EndpointSpec
from interlock.services.incidents import Declaration
from interlock.worker.engine import WorkerSettings
from tests.integration.test_concurrency import VIEWER
from tests.support.receiver import Receiver
from tests.support.worker import BackgroundWorker


def endpoint_for(hub: Container, url: str, **fields: object) -> Endpoint:
    endpoint, _ = hub.endpoints.create(EndpointSpec(url=url, **fields))  # type: ignore[arg-type]
    return endpoint


def declare_many(hub: Container, count: int) -> list[str]:
    return [hub.incidents.declare(VIEWER, Declaration(f"Incident {n}", Severity.LOW)).id
            for n in range(count)]


def test_stopping_ends_even_while_a_lane_waits_for_its_rate_limit(hub: Container) -> None:
    with Receiver() as receiver:
        endpoint_for(hub, receiver.url, rate_limit=0.01)  # one per 100 s
        worker = BackgroundWorker(hub, WorkerSettings(poll_interval=0.2, shutdown_grace=1.0))
        with worker:
            declare_many(hub, 3)
            receiver.wait_for(1, timeout=10)
            time.sleep(0.3)  # the others are claimed and waiting in the lane
            stopping = time.monotonic()
        stopped_in = time.monotonic() - stopping
        assert stopped_in < 10, f"the worker took {stopped_in:.0f} s to stop"
        assert len(receiver.received) == 1
