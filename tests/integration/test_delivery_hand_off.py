"""On SQLite, alert processing fans out its own events and leases the new deliveries to
a running delivery worker in the same transaction; the worker reads and sends them
without waiting for the write lock. What must hold: each is sent once, none is lost
when there is no such worker or it dies, and a worker never takes more than it has room
for."""

from __future__ import annotations

import json
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.domain.alerts import SourceKind
from interlock.domain.sources import Source
from interlock.services.container import Container
from interlock.services.deliveries import DEFAULT_LEASE
from interlock.services.sources import SourceSpec
from interlock.services.workers import TaskStates
from interlock.store.deliveries import handed_to
from interlock.store.tables import deliveries
from interlock.worker.engine import WorkerSettings
from tests.integration.test_webhook_delivery import add_endpoint, attempts, manager
from tests.integration.test_worker import declare_many
from tests.support.delivery import deliver_round
from tests.support.ingest import am_alert, am_payload
from tests.support.receiver import Receiver, hang
from tests.support.worker import BackgroundWorker

Headers = dict[str, str]
__all__ = ["manager"]  # a fixture the tests here take, from test_webhook_delivery


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: on PostgreSQL workers claim without a global write lock."""
    path = tmp_path / "interlock.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def _source(hub: Container, name: str = "prometheus") -> Source:
    return hub.sources.create(SourceSpec(name=name, kind=SourceKind.ALERTMANAGER))[0]


def _fire(hub: Container, source: Source, groups: int) -> None:
    """Alerts of ``groups`` different alert names (a new incident each), processed."""
    bodies = [am_payload(am_alert(f"Down{index}")) for index in range(groups)]
    hub.intake.store([hub.intake.received(source, json.dumps(body).encode(),
                                          "application/json") for body in bodies])
    while hub.alerts.process("alerts-worker"):
        pass


def _leases(hub: Container) -> list[str | None]:
    with hub.store.transaction() as tx:
        return list(tx.connection.execute(
            sa.select(deliveries.c.lease_owner).order_by(deliveries.c.position)).scalars())


def _beat(hub: Container, name: str, state: str = "ok") -> None:
    hub.workers.beat(name, hub.clock.now(), TaskStates({"deliveries": state}))


def test_processing_hands_new_deliveries_to_the_delivery_worker_which_reads_them(
        hub: Container, hub_client: TestClient, manager: Headers) -> None:
    with Receiver() as receiver:
        add_endpoint(hub_client, manager, receiver.url)
        _beat(hub, "delivery-worker")
        start = hub.deliveries.start_handed("delivery-worker")
        _fire(hub, _source(hub), groups=3)
        # A worker that reported in before it first read still finds what it was handed.
        assert hub.deliveries.start_handed("delivery-worker") == start

        assert _leases(hub) == [handed_to("delivery-worker")] * 3
        assert hub.deliveries.claim("someone-else", 100) == [], "handed means leased"
        handed = hub.deliveries.handed("delivery-worker", start, 100)
        assert [claim.event.type.value for claim in handed.claims] == ["incident.created"] * 3
        assert hub.deliveries.handed("delivery-worker", handed.through, 100).claims == []
        assert hub.deliveries.dispatch() == 0, "processing fanned its events out itself"


@pytest.mark.parametrize("worker", ["none", "silent", "failing"])
def test_without_a_running_delivery_worker_the_deliveries_wait_to_be_claimed(
        hub: Container, hub_client: TestClient, manager: Headers, manual_clock: ManualClock,
        worker: str) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        if worker == "silent":
            _beat(hub, "delivery-worker")
            manual_clock.advance(timedelta(seconds=30))
        elif worker == "failing":
            _beat(hub, "delivery-worker", "failing: boom")
        _fire(hub, _source(hub), groups=2)

        assert _leases(hub) == [None, None]
        assert deliver_round(hub) == 2
        receiver.wait_for(2)
    assert [row["status_code"] for row in attempts(hub_client, manager, endpoint["id"])] \
        == [200, 200]


def test_what_was_handed_to_a_worker_that_died_is_sent_once_its_lease_lapses(
        hub: Container, hub_client: TestClient, manager: Headers,
        manual_clock: ManualClock) -> None:
    with Receiver() as receiver:
        add_endpoint(hub_client, manager, receiver.url)
        _beat(hub, "gone-worker")
        _fire(hub, _source(hub), groups=2)
        assert deliver_round(hub) == 0, "leased to the worker that was running"
        manual_clock.advance(DEFAULT_LEASE + timedelta(seconds=1))
        assert deliver_round(hub) == 2
        assert len(receiver.wait_for(2)) == 2


def test_the_worker_sends_each_delivery_once_taking_only_what_it_has_room_for(
        hub: Container, hub_client: TestClient, manager: Headers) -> None:
    # One runner per lane holds four deliveries at most; the receiver is slow, so ten
    # handed at once overflow the lane and six are released, then claimed as it drains.
    # Meanwhile people's changes are fanned out and claimed by the worker itself, beside
    # its reads of what was handed to it: neither may send what the other took.
    with Receiver(hang(0.05)) as receiver, BackgroundWorker(
            hub, WorkerSettings(per_endpoint=1, poll_interval=0.05)) as background:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        assert background.worker is not None
        _beat(hub, background.worker.name)
        _fire(hub, _source(hub), groups=10)
        declare_many(hub, 5)
        _fire(hub, _source(hub, "grafana-like"), groups=5)
        declare_many(hub, 5)

        received = receiver.wait_for(25, timeout=30)
        time.sleep(0.3)  # anything sent twice would have arrived by now
        ids = [request.headers["webhook-id"] for request in receiver.received]
        assert len(ids) == len(set(ids)) == 25, f"{len(received)} received"
    log = attempts(hub_client, manager, endpoint["id"])
    assert len(log) == 25 and {row["status_code"] for row in log} == {200}
