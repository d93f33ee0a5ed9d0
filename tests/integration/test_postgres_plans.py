"""On PostgreSQL the worker's lookups read the rows they are after, not the history of
the queue or of the source, whatever plan the server settles on.

psycopg prepares a statement once it has run five times, and PostgreSQL then plans it
once for any parameters (its *generic plan*) when that looks no dearer, which it does
while a table's statistics are those of a smaller table: in a storm, alerts and payloads
arrive faster than the server analyses them. Two lookups read every row of a source
under such a plan: the payloads' claim (a bound ``status = $1`` matches no partial
index of pending payloads, so it walked every payload the source had ever sent) and a
batch's alerts (every alert of the source compared with every fingerprint: 12 ms a batch
in bench/storm.py, growing with the alerts). Here every statement is prepared at once
and planned generically, and the rows the server read in the transaction are counted
(``pg_stat_xact_user_tables``): a few per row wanted, not thousands.

The sync loop's looks, on every commit of an event, are the same kind of lookup: a
storm leaves a thousand or more jobs waiting behind each paced connector (Slack, one
message a second), and a look that walked them cost 0.5-1.1 ms, dozens of times a
second."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from interlock.clock import SystemClock
from interlock.domain.alerts import Alert, AlertStatus, PayloadStatus, ReceivedPayload, SourceKind
from interlock.domain.connectors import Connector, FieldMapping, JobKind, JobStatus, SyncJob
from interlock.domain.ids import new_id
from interlock.domain.incidents import Severity
from interlock.domain.sources import Source
from interlock.ports.store import Transaction
from interlock.services.container import Container
from interlock.services.sources import SourceSpec
from interlock.store.engine import create_engine
from interlock.store.sql import SqlStore
from interlock.store.tables import sync_jobs

pytestmark = pytest.mark.postgres

#: Rows of history (processed payloads, a source's other alerts) beside those wanted.
HISTORY = 3_000


@pytest.fixture
def generic(postgres_database: str) -> Iterator[SqlStore]:
    """A store on the same database whose every statement is prepared at once and
    planned for any parameters: the plans a busy worker ends up with."""
    engine = create_engine(postgres_database)

    @sa.event.listens_for(engine, "connect")
    def _generic_plans(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.prepare_threshold = 0
        dbapi_connection.execute("SET plan_cache_mode = force_generic_plan")
        dbapi_connection.commit()

    yield SqlStore(engine)
    engine.dispose()


@pytest.fixture
def source(postgres_hub: Container) -> Source:
    return postgres_hub.sources.create(
        SourceSpec(name="prometheus", kind=SourceKind.ALERTMANAGER))[0]


def _rows_read(tx: Transaction, table: str) -> int:
    """Rows of ``table`` the server has read in this transaction, by any scan."""
    return int(tx.connection.exec_driver_sql(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
        "FROM pg_stat_xact_user_tables WHERE relname = %s", (table,)).scalar_one())


def test_claiming_reads_the_pending_payloads_not_every_one_processed_before(
        postgres_hub: Container, generic: SqlStore, source: Source) -> None:
    now = SystemClock().now()

    def payload(status: PayloadStatus) -> ReceivedPayload:
        return ReceivedPayload(id=new_id("pay", now), source_id=source.id, received_at=now,
                               content_type="application/json", body=b"{}", status=status,
                               processed_at=now if status is PayloadStatus.PROCESSED else None)

    pending = [payload(PayloadStatus.PENDING) for _ in range(3)]
    with postgres_hub.store.transaction(write=True) as tx:
        tx.payloads.insert_many([payload(PayloadStatus.PROCESSED) for _ in range(HISTORY)])
        tx.payloads.insert_many(pending)

    for attempt in range(3):  # the same statements again: the plan is the cached one
        with generic.transaction(write=True) as tx:
            assert tx.payloads.any_free(now)
            claimed = tx.payloads.claim("worker-1", now, now + timedelta(minutes=2), 10)
            assert [each.id for each in claimed] == [each.id for each in pending]
            assert _rows_read(tx, "payloads") < 50, attempt
            tx.connection.rollback()


def test_a_batch_looks_up_its_alerts_without_reading_the_sources_others(
        postgres_hub: Container, generic: SqlStore, source: Source) -> None:
    now = SystemClock().now()

    def alert(fingerprint: str) -> Alert:
        return Alert(id=new_id("alr", now), source_id=source.id, fingerprint=fingerprint,
                     status=AlertStatus.FIRING, title=fingerprint, severity=Severity.HIGH,
                     name="HighLatency", service=None, summary="", labels={},
                     annotations={}, url=None, starts_at=None, ends_at=None,
                     first_seen_at=now, last_seen_at=now)

    with postgres_hub.store.transaction(write=True) as tx:
        tx.alerts.insert_many([alert(f"old-{number}") for number in range(HISTORY)])
    stored = [f"old-{number}" for number in range(0, HISTORY, 150)]
    unknown = [f"new-{number}" for number in range(20)]

    for locked in (True, False, True):
        with generic.transaction(write=True) as tx:
            found = tx.alerts.find_many([(source.id, each) for each in stored + unknown],
                                        for_update=locked)
            assert sorted(fingerprint for _, fingerprint in found) == sorted(stored)
            assert _rows_read(tx, "alerts") < 100, locked


def test_the_sync_loops_looks_read_the_lanes_not_every_job_waiting(
        postgres_hub: Container, generic: SqlStore) -> None:
    now = SystemClock().now()
    with postgres_hub.store.transaction(write=True) as tx:
        for name in ("slack", "jira"):
            tx.connectors.insert(Connector(
                id=f"con_{name}", name=name, kind=name, settings={}, credentials={},
                mapping=FieldMapping(owners={}), filter=None, enabled=True, created_at=now,
                updated_at=now), sealed_credentials="sealed")
        tx.sync_jobs.insert_many([
            SyncJob(id=new_id("job", now), connector_id=f"con_{name}",
                    incident_id=f"inc_{number}", kind=JobKind.PUSH, status=JobStatus.PENDING,
                    attempts=0, next_attempt_at=now - timedelta(seconds=1), created_at=now,
                    reason="evt")
            for name in ("slack", "jira") for number in range(HISTORY // 2)])
        # Slack's lane, run by worker-2: its three oldest jobs, leased.
        oldest = (sa.select(sync_jobs.c.position).where(sync_jobs.c.connector_id == "con_slack")
                  .order_by(sync_jobs.c.position).limit(3).scalar_subquery())
        tx.connection.execute(sync_jobs.update().where(sync_jobs.c.position.in_(oldest))
                              .values(lease_owner="worker-2",
                                      lease_expires_at=now + timedelta(minutes=2)))

    looks = {
        "held, by another": (lambda tx: tx.sync_jobs.held_elsewhere(
            "worker-1", now, ["slack", "jira"]), ["con_slack"]),
        "held, by itself": (lambda tx: tx.sync_jobs.held_elsewhere(
            "worker-2", now, ["slack", "jira"]), []),
        "any due": (lambda tx: tx.sync_jobs.any_due(now), True),
        "any due, lanes full": (lambda tx: tx.sync_jobs.any_due(
            now, ["con_slack", "con_jira"]), False),
    }
    for attempt in range(3):  # the same statements again: the plan is the cached one
        for what, (look, expected) in looks.items():
            with generic.transaction() as tx:
                before = _rows_read(tx, "sync_jobs")
                assert look(tx) == expected, what
                assert _rows_read(tx, "sync_jobs") - before < 50, (what, attempt)
