"""A worker that falls silent leaves what it leased to the others at their next report,
not when its leases lapse; one that was only frozen undoes what it applies late."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.domain.alerts import PayloadStatus, ReceivedPayload, SourceKind
from interlock.domain.sources import Source
from interlock.services.container import Container
from interlock.services.sources import SourceSpec
from interlock.services.workers import SILENT_AFTER, TaskStates
from tests.integration.test_webhook_delivery import add_endpoint, declare, manager
from tests.support.ingest import am_alert, am_payload

Headers = dict[str, str]
__all__ = ["manager"]  # a fixture the tests here take, from test_webhook_delivery


def _source(hub: Container) -> Source:
    return hub.sources.create(SourceSpec(name="prometheus", kind=SourceKind.ALERTMANAGER))[0]


def _store(hub: Container, source: Source, *bodies: dict[str, Any]) -> None:
    hub.intake.store([hub.intake.received(source, json.dumps(body).encode(),
                                          "application/json") for body in bodies])


def _claim(hub: Container, owner: str, limit: int) -> list[ReceivedPayload]:
    now = hub.clock.now()
    with hub.store.transaction(write=True) as tx:
        return tx.payloads.claim(owner, now, now + timedelta(minutes=2), limit)


def _beat(hub: Container, name: str) -> None:
    hub.workers.beat(name, hub.clock.now(), TaskStates())


def test_what_a_silent_worker_leased_is_claimed_at_the_next_report_of_another(
        hub_client: TestClient, hub: Container, manager: Headers,
        manual_clock: ManualClock) -> None:
    source = _source(hub)
    _store(hub, source, am_payload(am_alert("CPUHot", fingerprint="fp1")))
    add_endpoint(hub_client, manager, "http://127.0.0.1:9/hook")
    declare(hub_client, manager)
    _beat(hub, "dead")
    claimed = _claim(hub, "dead", 10)
    _, deliveries = hub.deliveries.dispatch_and_claim("dead", 50)
    assert len(claimed) == 1 and len(deliveries) == 1

    manual_clock.advance(SILENT_AFTER - timedelta(seconds=1))
    _beat(hub, "alive")
    assert hub.alerts.process("alive") == 0, "a worker heard from keeps what it leased"
    assert hub.deliveries.dispatch_and_claim("alive", 50) == (0, [])

    manual_clock.advance(timedelta(seconds=2))
    _beat(hub, "alive")
    _, taken = hub.deliveries.dispatch_and_claim("alive", 50)
    assert [claim.delivery.id for claim in taken] == [deliveries[0].delivery.id]
    assert hub.alerts.process("alive") == 1, "the silent worker's payload, at once"
    assert [beat.name for beat in hub.workers.readiness().workers] == ["alive"]

    # The silent one was only frozen: it wakes and applies what it had claimed. Its
    # transaction is undone; the report is counted once.
    hub.alerts.process_claimed(claimed, "dead")
    with hub.store.transaction() as tx:
        alert = tx.alerts.find(source.id, "fp1")
        payload = tx.payloads.get(claimed[0].id)
    assert alert is not None and alert.count == 1
    assert payload is not None and payload.status is PayloadStatus.PROCESSED


def test_a_report_overtaken_by_a_later_one_is_counted_and_the_later_one_stands(
        hub: Container, manual_clock: ManualClock) -> None:
    """The worker holding the first report of an alert dies; another applies the second
    (resolved), then, once it takes over, the first (firing): the alert stays resolved
    and counts both reports."""
    source = _source(hub)
    _store(hub, source, am_payload(am_alert("CPUHot", fingerprint="fp1")),
           am_payload(am_alert("CPUHot", fingerprint="fp1", status="resolved")))
    _beat(hub, "dead")
    [first] = _claim(hub, "dead", 1)
    assert hub.alerts.process("alive") == 1
    manual_clock.advance(SILENT_AFTER + timedelta(seconds=1))
    _beat(hub, "alive")
    assert hub.alerts.process("alive") == 1
    with hub.store.transaction() as tx:
        alert = tx.alerts.find(source.id, "fp1")
        payload = tx.payloads.get(first.id)
    assert alert is not None and alert.status.value == "resolved"
    assert alert.count == 2
    assert payload is not None and payload.status is PayloadStatus.PROCESSED


def test_a_worker_that_stops_hands_back_what_it_did_not_send(
        hub_client: TestClient, hub: Container, manager: Headers) -> None:
    """A stop (a deploy's SIGTERM) that leaves deliveries unsent: the next worker sends
    them now, not two minutes later."""
    add_endpoint(hub_client, manager, "http://127.0.0.1:9/hook")
    declare(hub_client, manager)
    _beat(hub, "stopping")
    _, held = hub.deliveries.dispatch_and_claim("stopping", 50)
    assert len(held) == 1
    assert hub.deliveries.dispatch_and_claim("next", 50) == (0, [])
    hub.workers.leave("stopping")
    _, taken = hub.deliveries.dispatch_and_claim("next", 50)
    assert [claim.delivery.id for claim in taken] == [held[0].delivery.id]
    assert hub.workers.readiness().workers == []
