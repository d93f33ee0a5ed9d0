"""On PostgreSQL a worker's claim of received payloads rewrites each on its own page.

A claim sets a payload's lease, columns no index holds. PostgreSQL then writes the new
row version beside the old one without touching the table's five indexes (a *HOT*
update), but only if the page has room for it. The payloads' pages are filled half at
insert (migration 0014), so every claimed version fits; on full pages most claims went
to another page and added an entry to every index, which in a storm cost the database
about a tenth more CPU per alert (bench/storm.py, docs/performance.md). The server
counts both kinds of update per transaction (``pg_stat_xact_user_tables``)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from interlock.domain.alerts import SourceKind
from interlock.services.container import Container
from interlock.services.sources import SourceSpec
from tests.support.ingest import am_alert, am_payload

pytestmark = pytest.mark.postgres

PAYLOADS = 300


def _alertmanager_body(number: int) -> bytes:
    """An Alertmanager webhook of one firing alert, with as many labels as one from a
    Kubernetes cluster carries: over a kilobyte, as real ones are."""
    return json.dumps(am_payload(am_alert(
        "HighErrorRate", instance=f"web-{number}:9100", job="checkout", namespace="prod",
        pod=f"checkout-7d9f8b6c5-{number:05d}", container="checkout", endpoint="http-metrics",
        node=f"ip-10-0-3-{number}.eu-west-1.compute.internal", cluster="eu-west-1",
        team="payments", prometheus="monitoring/k8s", region="eu-west-1",
        availability_zone="eu-west-1b", deployment="checkout", replicaset="checkout-7d9f8b6c5",
        runbook_url="https://runbooks.example.com/checkout/5xx"))).encode()


def test_a_claim_rewrites_each_payload_on_its_own_page(postgres_hub: Container) -> None:
    source = postgres_hub.sources.create(SourceSpec(name="am", kind=SourceKind.ALERTMANAGER))[0]
    received = [postgres_hub.intake.received(source, _alertmanager_body(number), "application/json")
                for number in range(PAYLOADS)]
    assert all(len(payload.body) > 1_000 for payload in received)
    postgres_hub.intake.store(received)

    now = postgres_hub.clock.now()
    with postgres_hub.store.transaction(write=True) as tx:
        claimed = tx.payloads.claim("worker-1", now, now + timedelta(minutes=2), PAYLOADS)
        updated, on_their_page = tx.connection.execute(sa.text(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'payloads'")).one()

    assert len(claimed) == PAYLOADS
    assert updated == PAYLOADS
    assert on_their_page == PAYLOADS
