"""Per-incident order with several workers on PostgreSQL: each (endpoint, incident)
receives its versions in order, however the workers share fan-out and claims; and a
worker's round does not wait for another's fan-out."""

from __future__ import annotations

import concurrent.futures
import json
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import TypeVar

import pytest
import sqlalchemy as sa

from interlock.domain.incidents import Severity
from interlock.services.container import Container
from interlock.services.endpoints import EndpointSpec
from interlock.services.incidents import Declaration
from interlock.store.queues import DELIVERIES_FAN_OUT
from interlock.worker.engine import WorkerSettings
from tests.integration.test_concurrency import VIEWER
from tests.support.receiver import Receiver
from tests.support.worker import BackgroundWorker

INCIDENTS = 150
T = TypeVar("T")


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_keep_each_incidents_versions_in_order(hub: Container) -> None:
    with Receiver() as receiver:
        for lane in ("a", "b"):
            hub.endpoints.create(EndpointSpec(url=f"{receiver.url}/{lane}"))
        settings = WorkerSettings(poll_interval=0.05, batch=20)
        with BackgroundWorker(hub, settings), BackgroundWorker(hub, settings):

            def changes(start: int) -> None:
                for n in range(start, INCIDENTS, 3):
                    incident = hub.incidents.declare(
                        VIEWER, Declaration(f"Incident {n}", Severity.LOW))
                    hub.incidents.acknowledge(VIEWER, incident.id)

            writers = [threading.Thread(target=changes, args=(n,)) for n in range(3)]
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join(60)
            received = receiver.wait_for(2 * 2 * INCIDENTS, timeout=60)
    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for request in received:
        incident = json.loads(request.body)["data"]["incident"]
        versions[(request.path, incident["id"])].append(
            incident["version"])
    out_of_order = [pair for pair, seen in versions.items() if seen != sorted(seen)]
    assert not out_of_order, f"{len(out_of_order)} (endpoint, incident) pairs out of order"


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_round_goes_on_while_another_worker_fans_out_and_the_next_round_fans_out(
        hub: Container) -> None:
    """A worker's round does not wait while another holds the fan-out's turn: in a
    storm two workers' rounds waited for each other's turn, to its commit, a thousand
    times in 20 s, mostly to find nothing left. What it left is fanned out by the next
    round. An explicit dispatch still waits for the turn."""
    with Receiver() as receiver:
        hub.endpoints.create(EndpointSpec(url=receiver.url))
        hub.incidents.declare(VIEWER, Declaration("Checkout down", Severity.HIGH))
        with hub.store.engine.connect() as other, other.begin():
            other.execute(sa.select(sa.func.pg_advisory_xact_lock(DELIVERIES_FAN_OUT)))
            round_ = _in_thread(lambda: hub.deliveries.dispatch_and_claim("w1", 10))
            assert round_.result(timeout=10) == (0, []), "the round fanned out nothing"
            dispatch = _in_thread(hub.deliveries.dispatch)
            with pytest.raises(concurrent.futures.TimeoutError):
                dispatch.result(timeout=0.5)  # an explicit dispatch waits for the turn
            other.rollback()
        assert dispatch.result(timeout=10) == 1
        fanned, claims = hub.deliveries.dispatch_and_claim("w1", 10)
        assert (fanned, len(claims)) == (0, 1), "the delivery made is claimed"


def _in_thread(call: Callable[[], T]) -> concurrent.futures.Future[T]:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(call)
    pool.shutdown(wait=False)
    return future
