"""Delivery at its edges: receivers that ask for odd things, operators who change or
delete what is in flight, and the levers that bring messages forward."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.domain.endpoints import Endpoint
from interlock.domain.incidents import Severity
from interlock.services.container import Container
from interlock.services.endpoints import EndpointService, EndpointSpec
from interlock.services.incidents import Declaration
from tests.integration.test_concurrency import VIEWER
from tests.integration.test_webhook_delivery import add_endpoint, attempts, declare, manager
from tests.support.delivery import deliver_round
from tests.support.receiver import Receiver, status

Headers = dict[str, str]
__all__ = ["manager"]  # a fixture the tests here take, from test_webhook_delivery


def test_retry_after_zero_waits_for_the_schedule_instead_of_burning_every_attempt(
    hub_client: TestClient, manager: Headers, hub: Container, manual_clock: ManualClock
) -> None:
    with Receiver(status(503, b"busy", {"Retry-After": "0"})) as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        declare(hub_client, manager)
        made = sum(deliver_round(hub) for _ in range(10))
        assert made == 1, "Retry-After: 0 must not make the next attempt due at once"
        log = attempts(hub_client, manager, endpoint["id"])
        assert len(log) == 1 and log[0]["next_attempt_at"] is not None
        manual_clock.advance(timedelta(seconds=7))
        receiver.behaviour = status(200)
        assert deliver_round(hub) == 1
    message = hub_client.get("/api/v1/messages", headers=manager).json()["data"][0]
    assert message["deliveries"][0]["status"] == "succeeded"


def test_recover_sends_messages_waiting_for_a_retry_now(
    hub_client: TestClient, manager: Headers, hub: Container, manual_clock: ManualClock
) -> None:
    started = manual_clock.now()
    with Receiver(status(500)) as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        declare(hub_client, manager)
        deliver_round(hub)
        manual_clock.advance(timedelta(seconds=7))
        deliver_round(hub)  # the second attempt fails too: the next is ~5 min away
        assert deliver_round(hub) == 0
        receiver.behaviour = status(200)
        recovered = hub_client.post(f"/api/v1/endpoints/{endpoint['id']}/recover",
                                    headers=manager, json={"since": started.isoformat()})
        assert recovered.status_code == 202
        assert recovered.json() == {"rescheduled": 1}
        assert deliver_round(hub) == 1
        receiver.wait_for(3)
    final = attempts(hub_client, manager, endpoint["id"])[-1]
    assert (final["attempt"], final["trigger"], final["status_code"]) == (3, "manual", 200)


@pytest.mark.parametrize("rate", [5e-324, 0.001, 0.0, -1.0, 20_000.0])
def test_an_endpoint_rate_limit_outside_sensible_bounds_is_refused(
    hub_client: TestClient, manager: Headers, rate: float
) -> None:
    with Receiver() as receiver:
        created = hub_client.post("/api/v1/endpoints", headers=manager,
                                  json={"url": receiver.url, "rate_limit": rate})
        assert created.status_code in (400, 422), created.text
        assert created.headers["content-type"].startswith("application/problem+json")
        endpoint = add_endpoint(hub_client, manager, receiver.url, rate_limit=0.01)
        changed = hub_client.patch(f"/api/v1/endpoints/{endpoint['id']}", headers=manager,
                                   json={"rate_limit": rate})
        assert changed.status_code in (400, 422), changed.text


@pytest.mark.parametrize("rate", [5e-324, 0.001])
def test_a_tiny_source_rate_limit_is_refused(
    hub_client: TestClient, manager: Headers, rate: float
) -> None:
    created = hub_client.post("/api/v1/sources", headers=manager,
                              json={"name": "am", "kind": "alertmanager", "rate_limit": rate})
    assert created.status_code in (400, 422), created.text
    assert created.headers["content-type"].startswith("application/problem+json")


class _SlowGuard:
    """A target check that takes as long as the test says (a slow DNS lookup)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    calls = 0

    def check(self, url: str) -> None:
        self.calls += 1
        self.entered.set()
        self.release.wait(10)


def test_a_slow_check_on_endpoint_update_holds_up_no_other_write(
    hub: Container, manual_clock: ManualClock
) -> None:
    guard = _SlowGuard()
    service = EndpointService(hub.store, manual_clock, guard)
    guard.release.set()
    endpoint, _ = service.create(EndpointSpec(url="http://127.0.0.1:9/a"))
    guard.release.clear()
    updating = threading.Thread(
        target=service.update, args=(endpoint.id, {"url": "http://127.0.0.1:9/b"}))
    updating.start()
    try:
        assert guard.entered.wait(5)
        started = time.monotonic()
        hub.incidents.declare(VIEWER, Declaration("Meanwhile", Severity.LOW))
        took = time.monotonic() - started
    finally:
        guard.release.set()
        updating.join(10)
    assert took < 2, f"a write waited {took:.1f} s for an endpoint's URL check"
    assert service.get(endpoint.id).url == "http://127.0.0.1:9/b"


def test_an_update_that_raced_another_is_checked_again(
    hub: Container, manual_clock: ManualClock
) -> None:
    guard = _SlowGuard()
    guard.release.set()
    service = EndpointService(hub.store, manual_clock, guard)
    endpoint, _ = service.create(EndpointSpec(url="http://127.0.0.1:9/a"))
    guard.release.clear()
    guard.entered.clear()
    guard.calls = 0
    updating = threading.Thread(target=service.update,
                                args=(endpoint.id, {"url": "http://127.0.0.1:9/b"}))
    updating.start()
    assert guard.entered.wait(5)
    with hub.store.transaction(write=True) as tx:  # someone else changes it meanwhile
        tx.endpoints.save(dataclasses.replace(endpoint, timeout=7.0))
    guard.release.set()
    updating.join(10)
    saved = service.get(endpoint.id)
    assert (saved.url, saved.timeout) == ("http://127.0.0.1:9/b", 7.0)
    assert guard.calls == 2, "the changed endpoint was checked again"


def test_a_template_bomb_fails_its_delivery_with_a_reason_not_the_worker(
    hub_client: TestClient, manager: Headers, hub: Container
) -> None:
    bomb = ('{% if data.incident.title is defined and data.incident.title != "Checkout down" %}'
            '{% set s = "x" * 262144 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}'
            '{% endif %}{"ok": true}')
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url, template=bomb)
        declare(hub_client, manager, title="Payments down")
        started = time.monotonic()
        assert deliver_round(hub) == 1
        assert time.monotonic() - started < 10
        assert receiver.received == []
    [attempt] = attempts(hub_client, manager, endpoint["id"])
    assert attempt["failure"] == "template"
    assert "loop iterations" in attempt["detail"]


def test_a_worker_that_keeps_up_holds_what_it_fans_out_and_no_other_worker_takes_it(
    hub_client: TestClient, hub: Container, manager: dict[str, str],
) -> None:
    """The deliveries a fan-out makes go to the worker that fanned out; a second
    worker looking at the same moment finds nothing to send twice."""
    for name in ("a", "b"):
        add_endpoint(hub_client, manager, f"http://127.0.0.1:9/{name}")
    incident = declare(hub_client, manager)

    fanned, mine = hub.deliveries.dispatch_and_claim("worker-1", 50)
    assert fanned == 1
    assert sorted(claim.endpoint.url for claim in mine) == [
        "http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
    assert {claim.event.incident_id for claim in mine} == {incident["id"]}
    assert hub.deliveries.dispatch_and_claim("worker-2", 50) == (0, [])


def test_each_claim_sends_with_the_endpoint_as_it_is_now(
    hub_client: TestClient, hub: Container, manager: dict[str, str],
) -> None:
    """Claims reuse the endpoints they decoded before while their columns are the same
    (store.endpoints.read_many): the endpoint's health as recorded since, and a changed
    URL or a rotated secret, are in the very next claim, within one tick of the clock."""
    endpoint = add_endpoint(hub_client, manager, "http://127.0.0.1:9/old")

    def claimed(title: str) -> Endpoint:
        declare(hub_client, manager, title=title)
        _, [claim] = hub.deliveries.dispatch_and_claim("worker-1", 50)
        return claim.endpoint

    first = claimed("First")
    assert (first.url, first.last_success_at) == ("http://127.0.0.1:9/old", None)
    with hub.store.transaction(write=True) as tx:
        tx.endpoints.mark_succeeded([endpoint["id"]], hub.clock.now())
    assert claimed("Second").last_success_at == hub.clock.now()

    changed = hub_client.patch(f"/api/v1/endpoints/{endpoint['id']}", headers=manager,
                               json={"url": "http://127.0.0.1:9/new"})
    assert changed.status_code == 200
    rotated = hub_client.post(f"/api/v1/endpoints/{endpoint['id']}/rotate-secret",
                              headers=manager)
    assert rotated.status_code == 200
    third = claimed("Third")
    assert third.url == "http://127.0.0.1:9/new"
    assert third.secrets[0].value == rotated.json()["secret"]
    assert third.secrets != first.secrets


def test_a_transaction_fans_out_its_own_events_as_they_are_read_back(
    hub: Container, manual_clock: ManualClock,
) -> None:
    """A transaction that appends events and fans them out (alert processing on SQLite,
    DeliveryService.hand_off) takes them from what it wrote instead of reading them
    back: each must be the event the database holds, in the same order, with events
    of other transactions read between them."""
    incidents = hub.incidents
    with hub.store.transaction(write=True) as tx:
        [earlier] = incidents.declare_many_in(
            tx, [(VIEWER, Declaration("Earlier", Severity.MEDIUM))])
    manual_clock.advance(timedelta(milliseconds=1))
    with hub.store.transaction(write=True) as tx:
        opened = incidents.declare_many_in(tx, [
            (VIEWER, Declaration(
                "Checkout down", Severity.CRITICAL, summary="p99 > 2 s", service="checkout",
                labels={"team": "payments", "région": "eu"},
                alerts=[{"id": "alt_1", "fingerprint": "a1", "title": "Down",
                         "severity": "critical", "labels": {"alertname": "Down"},
                         "starts_at": manual_clock.now().isoformat(),
                         "ends_at": None, "value": 1.5, "count": 2}],
                alert_count=3)),
            (VIEWER, Declaration("Disk full", Severity.LOW))])
        incidents.change_status_in(tx, VIEWER, earlier.id, "acknowledge")
        incidents.comment_in(tx, VIEWER, opened[1].id, "looking ✓")
        in_hand = tx.events.undispatched(500)
    with hub.store.transaction() as tx:
        read_back = tx.events.undispatched(500)
    assert [event.type.value for event in read_back] == [
        "incident.created", "incident.created", "incident.created",
        "incident.acknowledged", "incident.comment_added"]
    assert in_hand == read_back


def test_a_worker_without_room_for_a_fan_out_takes_the_oldest_first(
    hub_client: TestClient, hub: Container, manager: dict[str, str],
) -> None:
    """A worker takes due deliveries oldest first, so what keeps arriving never
    overtakes a backlog."""
    add_endpoint(hub_client, manager, "http://127.0.0.1:9/hook")
    older = [declare(hub_client, manager, title=f"older {i}")["id"] for i in range(3)]
    assert hub.deliveries.dispatch() == 3  # queued, nobody has room yet
    newer = [declare(hub_client, manager, title=f"newer {i}")["id"] for i in range(2)]

    _, first = hub.deliveries.dispatch_and_claim("worker-1", 2)
    _, second = hub.deliveries.dispatch_and_claim("worker-1", 10)
    assert [claim.event.incident_id for claim in first] == older[:2]
    assert [claim.event.incident_id for claim in second] == [older[2], *newer]


def test_deliveries_of_an_endpoint_deleted_after_their_lease_are_left_out(
    hub_client: TestClient, hub: Container, manager: dict[str, str],
) -> None:
    """A claim reads its events and endpoints after the transaction that leased the
    deliveries (so it holds SQLite's write lock for less): an endpoint deleted in
    between takes its deliveries with it, and the others still go out."""
    add_endpoint(hub_client, manager, "http://127.0.0.1:9/kept")
    gone = add_endpoint(hub_client, manager, "http://127.0.0.1:9/gone")
    declare(hub_client, manager)
    assert hub.deliveries.dispatch() == 1
    now = hub.clock.now()
    with hub.store.transaction(write=True) as tx:
        leased = tx.deliveries.claim("worker-1", now, now + timedelta(minutes=2), 50)
    assert len(leased) == 2
    deleted = hub_client.delete(f"/api/v1/endpoints/{gone['id']}", headers=manager)
    assert deleted.status_code == 204
    with hub.store.transaction() as tx:
        claims = tx.deliveries.claims(leased)
    assert [claim.endpoint.url for claim in claims] == ["http://127.0.0.1:9/kept"]


def test_a_round_claims_the_longest_due_first_within_its_room_and_not_for_full_lanes(
    hub_client: TestClient, manager: Headers, hub: Container, manual_clock: ManualClock
) -> None:
    """A round that fans out new events claims what has been due longest first (here a
    retry), then what its fan-out made due, within the room it has and never for a lane
    it said is full; whatever it did not take, another round can."""
    with Receiver(status(500)) as failing, Receiver() as healthy:
        retried = add_endpoint(hub_client, manager, failing.url)
        declare(hub_client, manager)
        assert deliver_round(hub) == 1
        manual_clock.advance(timedelta(seconds=7))  # its retry is due now
        full = add_endpoint(hub_client, manager, healthy.url)
        for _ in range(3):
            declare(hub_client, manager)
        _, claims = hub.deliveries.dispatch_and_claim("round-1", 3, [full["id"]])
        assert [(claim.delivery.endpoint_id, claim.delivery.attempts) for claim in claims] \
            == [(retried["id"], 1), (retried["id"], 0), (retried["id"], 0)]
        rest = hub.deliveries.claim("round-2", 100)
    assert sorted(claim.delivery.endpoint_id == full["id"] for claim in rest) \
        == [False, True, True, True]
    assert not {claim.delivery.id for claim in claims} & {claim.delivery.id for claim in rest}


def test_an_endpoint_changed_between_two_fan_outs_is_routed_as_it_is_now(
    hub_client: TestClient, manager: Headers, hub: Container
) -> None:
    """Fan-outs keep the endpoints they route to until one of them changes: a change of
    its event types, its filter or its state applies to the very next event."""
    with Receiver() as receiver:
        endpoint = add_endpoint(hub_client, manager, receiver.url)
        other = add_endpoint(hub_client, manager, receiver.url)
        declare(hub_client, manager)
        assert hub.deliveries.dispatch() == 1
        changes: list[dict[str, object]] = [
            {"event_types": ["incident.resolved"]},
            {"event_types": [], "filter": {"severity": ["low"]}},
            {"filter": None, "enabled": False},
        ]
        for change in changes:
            patched = hub_client.patch(f"/api/v1/endpoints/{endpoint['id']}",
                                       headers=manager, json=change)
            assert patched.status_code == 200, patched.text
            declare(hub_client, manager, severity="high")
            assert hub.deliveries.dispatch() == 1
            newest = hub_client.get("/api/v1/messages", headers=manager).json()["data"][0]
            assert [item["endpoint_id"] for item in newest["deliveries"]] == [other["id"]], \
                change
