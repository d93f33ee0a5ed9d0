"""Two workers on PostgreSQL take the rows of a queue (deliveries, connector jobs) in
one order, so that one's fan-out and the other's record wait for each other instead of
deadlocking (a deadlock costs both a second, PostgreSQL's deadlock_timeout, and one of
them its work). SQLite has one writer at a time, so this is PostgreSQL's alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from interlock.domain.connectors import JobKind, JobStatus, SyncJob
from interlock.domain.delivery import Attempt, DeliveryStatus, Trigger
from interlock.ports.store import JobOutcome, Outcome, Transaction
from interlock.services.container import Container
from interlock.store.tables import connectors, deliveries, sync_jobs
from tests.integration.test_worker import endpoint_for

OWNER = "worker-2"


@dataclass(frozen=True)
class _Queue:
    """One queue's rows for the test: incidents A and B each with one in flight (the
    first two) and one waiting behind it (the last two)."""

    table: sa.Table
    rows: list[dict[str, object]]
    fan_out: Callable[[Transaction], object]
    record: Callable[[Transaction, list[dict[str, object]]], object]


def _deliveries(hub: Container, now: datetime) -> _Queue:
    endpoint = endpoint_for(hub, "http://127.0.0.1:9/hook")

    def row(position: int, incident: str, *, waiting: bool) -> dict[str, object]:
        return {"position": position, "id": f"dlv_{position}", "event_id": f"evt_{position}",
                "event_sequence": position, "endpoint_id": endpoint.id,
                "incident_id": incident, "status": "pending", "attempts": 0,
                "trigger": "scheduled", "next_attempt_at": None if waiting else now,
                "lease_owner": None if waiting else OWNER,
                "lease_expires_at": None if waiting else now + timedelta(minutes=5),
                "created_at": now, "updated_at": now}

    def succeeded(row: dict[str, object]) -> Outcome:
        attempt = Attempt(id=f"atm_{row['position']}", delivery_id=str(row["id"]),
                          endpoint_id=endpoint.id, event_id=str(row["event_id"]),
                          event_type="incident.updated", number=1, trigger=Trigger.SCHEDULED,
                          at=now, duration_ms=1.0, status_code=204, response_body="")
        return Outcome(attempt, DeliveryStatus.SUCCEEDED, None, str(row["incident_id"]))

    return _Queue(
        deliveries,
        [row(1, "inc_a", waiting=False), row(2, "inc_b", waiting=False),
         row(3, "inc_a", waiting=True), row(4, "inc_b", waiting=True)],
        lambda tx: tx.deliveries.pending_pairs({"inc_a", "inc_b"}),
        lambda tx, sent: tx.deliveries.complete(OWNER, [succeeded(row) for row in sent], now))


def _connector_jobs(hub: Container, now: datetime) -> _Queue:
    engine: sa.Engine = hub.store.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(connectors.insert().values(
            id="con_1", name="tracker", kind="http", settings={}, credentials="",
            mapping={}, state={}, enabled=True, created_at=now, updated_at=now))

    def row(position: int, incident: str, *, waiting: bool) -> dict[str, object]:
        return {"position": position, "id": f"job_{position}", "connector_id": "con_1",
                "incident_id": incident, "kind": "push", "event_id": f"evt_{position}",
                "reason": f"evt_{position}", "status": "pending", "attempts": 0,
                "next_attempt_at": None if waiting else now,
                "lease_owner": None if waiting else OWNER,
                "lease_expires_at": None if waiting else now + timedelta(minutes=5),
                "created_at": now, "updated_at": now}

    def succeeded(row: dict[str, object]) -> JobOutcome:
        job = SyncJob(id=str(row["id"]), connector_id="con_1",
                      incident_id=str(row["incident_id"]), kind=JobKind.PUSH,
                      status=JobStatus.PENDING, attempts=0, next_attempt_at=now,
                      created_at=now, reason=str(row["reason"]))
        return JobOutcome(job, JobStatus.SUCCEEDED, None, None)

    return _Queue(
        sync_jobs,
        [row(1, "inc_a", waiting=False), row(2, "inc_b", waiting=False),
         row(3, "inc_a", waiting=True), row(4, "inc_b", waiting=True)],
        lambda tx: tx.sync_jobs.pending_pairs({"con_1"}, {"inc_a", "inc_b"}),
        lambda tx, sent: tx.sync_jobs.complete(OWNER, [succeeded(row) for row in sent], now))


def _waiting_on_locks(engine: sa.Engine, count: int, deadline: float) -> None:
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'")
    while True:
        with engine.connect() as connection:
            if connection.execute(query).scalar_one() >= count:
                return
        assert time.monotonic() < deadline, f"{count} transactions never waited on a lock"
        time.sleep(0.02)


def _in_thread(work: Callable[[], None], failures: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as error:  # reported by the test
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("held", ["inc_b", "inc_a"])
@pytest.mark.parametrize("queue", [_deliveries, _connector_jobs],
                         ids=["deliveries", "connector_jobs"])
def test_a_fan_out_and_a_record_of_two_incidents_wait_for_each_other_without_deadlock(
    hub: Container, held: str, queue: Callable[[Container, datetime], _Queue],
) -> None:
    """Incidents A and B each have a delivery (or connector job) in flight and one
    waiting behind it. One worker fans out new events of both (locking their pending
    rows), while the other records the two in flight, given in the order B, A, and a
    third transaction holds one incident's for a moment. Locking in different orders,
    one would hold A's and wait for B's while the other held B's and waited for A's:
    with B's held, if the record went in the order given; with A's held, if the
    fan-out took B's first."""
    engine: sa.Engine = hub.store.engine  # type: ignore[attr-defined]
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    made = queue(hub, hub.clock.now())
    a_sent, b_sent, a_next, b_next = made.rows
    with engine.begin() as connection:
        connection.execute(made.table.insert(), made.rows)

    deadline = time.monotonic() + 20
    failures: list[BaseException] = []
    with engine.connect() as holder:
        holder.begin()
        holder.execute(sa.text(f"SELECT 1 FROM {made.table.name} WHERE id = :id "
                               "FOR NO KEY UPDATE"),
                       {"id": (b_sent if held == "inc_b" else a_sent)["id"]})

        def fan_out() -> None:
            with hub.store.transaction(write=True) as tx:
                made.fan_out(tx)

        def record() -> None:
            with hub.store.transaction(write=True) as tx:
                made.record(tx, [b_sent, a_sent])

        fanning = _in_thread(fan_out, failures)
        _waiting_on_locks(engine, 1, deadline)
        recording = _in_thread(record, failures)
        _waiting_on_locks(engine, 2, deadline)
        holder.commit()
    for thread in (fanning, recording):
        thread.join(max(deadline - time.monotonic(), 0))
        assert not thread.is_alive(), "a transaction still waits"
    assert failures == []

    table = made.table
    with engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(
            sa.select(table.c.id, table.c.status, table.c.next_attempt_at))}
    assert rows[a_sent["id"]].status == rows[b_sent["id"]].status == "succeeded"
    # The next of each incident is due now: neither was left behind.
    assert rows[a_next["id"]].next_attempt_at is not None
    assert rows[b_next["id"]].next_attempt_at is not None
