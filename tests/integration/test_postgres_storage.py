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

pytestmark = pytest.mark.postgres

PAYLOADS = 300


def _alertmanager_body(number: int) -> bytes:
    """An Alertmanager webhook of one firing alert, about as large as a real one."""
    labels = {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical",
              "instance": f"web-{number}:9100", "job": "checkout", "namespace": "prod",
              "pod": f"checkout-7d9f8b6c5-{number:05d}", "cluster": "eu-west-1"}
    alert = {"status": "firing", "labels": labels,
             "annotations": {"summary": "5xx above 5% for 5 minutes",
                             "description": "The checkout service answers " + "x" * 300,
                             "runbook_url": "https://runbooks.example.com/checkout/5xx"},
             "startsAt": "2026-12-05T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": f"https://prometheus.example.com/graph?g0.expr={number}",
             "fingerprint": f"{number:016x}"}
    return json.dumps({"version": "4", "status": "firing", "receiver": "interlock",
                       "groupKey": f"{{}}:{{alertname=\"HighErrorRate\",n=\"{number}\"}}",
                       "groupLabels": {"alertname": "HighErrorRate"}, "commonLabels": labels,
                       "externalURL": "https://alertmanager.example.com",
                       "alerts": [alert]}).encode()


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
