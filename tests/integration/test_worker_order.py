"""Per-incident order with several workers on PostgreSQL: each (endpoint, incident)
receives its versions in order, however the workers share fan-out and claims."""

from __future__ import annotations

import json
import threading
from collections import defaultdict

import pytest

from interlock.domain.incidents import Severity
from interlock.services.container import Container
from interlock.services.endpoints import EndpointSpec
from interlock.services.incidents import Declaration
from interlock.worker.engine import WorkerSettings
from tests.integration.test_concurrency import VIEWER
from tests.support.receiver import Receiver
from tests.support.worker import BackgroundWorker

INCIDENTS = 150


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
