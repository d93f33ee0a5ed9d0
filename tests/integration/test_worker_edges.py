"""The delivery worker when things change under it: slow lanes at shutdown, rows that
vanish mid-flight, receivers slower than a lease."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from interlock.clock import SystemClock
from interlock.domain.keys import Scope
from interlock.domain.targets import parse_allowed_networks
from interlock.services.container import Container
from interlock.services.deliveries import DeliveryService
from interlock.services.endpoints import EndpointSpec
from interlock.services.sync import JobDone
from interlock.worker.engine import WorkerSettings
from interlock.worker.tool_http import AiohttpToolHttp
from tests.conftest import make_key
from tests.integration.test_concurrency import VIEWER
from tests.integration.test_worker import declare_many, endpoint_for
from tests.support.fake_jira import FakeJira
from tests.support.receiver import Receiver, hang
from tests.support.waiting import eventually
from tests.support.worker import BackgroundWorker


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


def test_deleting_an_endpoint_mid_flight_leaves_the_worker_delivering(hub: Container) -> None:
    with Receiver(hang(1.0)) as slow, Receiver() as healthy:
        doomed = endpoint_for(hub, slow.url)
        kept = endpoint_for(hub, healthy.url)
        worker = BackgroundWorker(hub, WorkerSettings(poll_interval=0.2))
        with worker:
            declare_many(hub, 1)
            slow.wait_for(1, timeout=10)
            hub.endpoints.delete(doomed.id)  # while its delivery is in flight
            time.sleep(1.5)  # its answer arrives and is recorded (or not)
            declare_many(hub, 3)
            healthy.wait_for(4, timeout=10)
            eventually(lambda: hub.endpoints.counts(kept.id)["succeeded"] == 4, timeout=10)
            time.sleep(0.5)
        assert worker.health.last_error is None
    assert len(healthy.received) == 4, "nothing was sent twice"


def test_a_sync_job_of_a_connector_deleted_mid_flight_is_dropped(
    hub: Container, hub_client: TestClient
) -> None:
    admin = make_key(hub, Scope.ADMIN, name="admin")
    with FakeJira() as jira:
        created = hub_client.post("/api/v1/connectors", headers=admin, json={
            "name": "jira", "kind": "jira",
            "settings": {"base_url": jira.url, "project_key": "OPS"},
            "credentials": {"email": jira.email, "api_token": jira.api_token,
                            "webhook_secret": jira.webhook_secret}})
        assert created.status_code == 201, created.text
        declare_many(hub, 1)
        while hub.deliveries.dispatch():
            pass
        [work] = hub.sync.claim("test-sync", 10)

        async def run() -> JobDone:
            http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"),
                                   timeout=5)
            try:
                return await hub.sync.run(work, http)
            finally:
                await http.close()

        done = asyncio.run(run())
        assert jira.issues, "the job reached the tool"
        assert hub_client.delete(f"/api/v1/connectors/{created.json()['id']}",
                                 headers=admin).status_code == 204
        hub.sync.record("test-sync", done)  # must neither raise nor record anything
    assert hub.sync.claim("test-sync", 10) == []


def test_a_slow_receiver_gets_each_message_once_and_freshly_signed(hub: Container) -> None:
    """Deliveries wait in the lane longer than a lease; their leases are kept alive,
    and each is signed when it is sent, not when it was claimed."""
    deliveries = DeliveryService(hub.store, SystemClock(), lease=timedelta(seconds=2))
    with Receiver(hang(0.8)) as receiver:
        _, secret = hub.endpoints.create(EndpointSpec(url=receiver.url))
        with BackgroundWorker(hub, WorkerSettings(poll_interval=0.2, per_endpoint=1),
                              deliveries=deliveries):
            declare_many(hub, 6)
            receiver.wait_for(6, timeout=20)
            time.sleep(1.5)  # room for a duplicate to show
    ids = [request.headers["webhook-id"] for request in receiver.received]
    assert len(ids) == len(set(ids)) == 6, "no message was sent twice"
    for request in receiver.received:
        # The reference verifier refuses a timestamp five minutes off; be stricter.
        Webhook(secret).verify(request.body, dict(request.headers))
        age = request.at - time.monotonic() + time.time() - int(
            request.headers["webhook-timestamp"])
        assert age < 2, f"signed {age:.1f} s before it was sent"


def test_deliveries_left_behind_by_a_full_lane_go_as_it_empties(hub: Container) -> None:
    """A claim skips an endpoint whose lane is full; as its sends finish, the worker
    claims again for what it left behind, without waiting for a poll (a minute here).
    Recording a send no longer always starts a claim round (most found nothing)."""
    with Receiver(hang(0.1)) as receiver:
        hub.endpoints.create(EndpointSpec(url=receiver.url))
        with BackgroundWorker(hub, WorkerSettings(poll_interval=60, per_endpoint=1,
                                                  gather=0.0)):
            declare_many(hub, 4)  # the lane's capacity: four times its one connection
            time.sleep(0.05)  # claimed, and the lane full
            declare_many(hub, 12)  # each wakes a round, which skips the full lane
            assert len(receiver.wait_for(16, timeout=15)) == 16


def test_an_incidents_next_message_goes_once_the_one_before_is_recorded(
        hub: Container) -> None:
    """One incident's messages to an endpoint go one after another: each waits until
    the one before is recorded, and then goes at once, without waiting for a poll (a
    minute here)."""
    types = _one_incidents_messages(hub, WorkerSettings(poll_interval=60, gather=0.0),
                                    receiver_delay=0.05, timeout=15)
    assert types == ["incident.created", *["incident.comment_added"] * 4]


def _one_incidents_messages(hub: Container, settings: WorkerSettings,
                            receiver_delay: float, timeout: float) -> list[str]:
    """Declare an incident and comment on it four times, with one endpoint; the types
    of the five messages it received within ``timeout``, in order."""
    with Receiver(hang(receiver_delay)) as receiver:
        hub.endpoints.create(EndpointSpec(url=receiver.url))
        with BackgroundWorker(hub, settings):
            (incident_id,) = declare_many(hub, 1)
            for n in range(4):
                hub.incidents.comment(VIEWER, incident_id, f"update {n}")
            received = receiver.wait_for(5, timeout=timeout)
    return [json.loads(request.body)["type"] for request in received]


def test_attempts_that_finish_close_together_are_written_together(hub: Container) -> None:
    """Finished attempts wait up to ``record_every`` to be written in one transaction:
    three incidents' webhooks arrive well within it, and the log shows none of them
    until it shows all three."""
    with Receiver() as receiver:
        endpoint = endpoint_for(hub, receiver.url)
        with BackgroundWorker(hub, WorkerSettings(poll_interval=60, gather=0.0,
                                                  record_every=2.0)):
            for _ in range(3):
                declare_many(hub, 1)
                time.sleep(0.1)
            receiver.wait_for(3, timeout=10)
            assert hub.endpoints.counts(endpoint.id)["succeeded"] == 0
            eventually(lambda: hub.endpoints.counts(endpoint.id)["succeeded"] == 3,
                       timeout=10)


def test_an_incidents_run_of_messages_is_not_held_back_by_writes_made_together(
        hub: Container) -> None:
    """Each of one incident's messages waits for the write of the one before. After a
    write that left the next one due, the worker writes the next results at once, not
    ``record_every`` later: five messages here would take 8 s at 2 s a write."""
    types = _one_incidents_messages(
        hub, WorkerSettings(poll_interval=60, gather=0.0, record_every=2.0),
        receiver_delay=0.0, timeout=6)
    assert types == ["incident.created", *["incident.comment_added"] * 4]
