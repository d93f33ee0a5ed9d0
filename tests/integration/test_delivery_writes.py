"""What delivery writes, on SQLite and PostgreSQL: on SQLite every write transaction is a
turn at the one write lock that API requests wait for too, so the worker writes each
row as few times as it can, and never leases work it will not send."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from interlock.clock import ManualClock
from interlock.services.container import Container
from interlock.store.tables import deliveries
from tests.integration.test_worker import declare_many, endpoint_for


@contextmanager
def rows_written(container: Container) -> Iterator[list[int]]:
    """Rows each transaction wrote meanwhile, as SQLite counts them at its commit
    (``total_changes``: rows inserted, updated or deleted). Empty on PostgreSQL."""
    engine = container.store.engine  # type: ignore[attr-defined]
    counts: list[int] = []
    before: dict[int, int] = {}

    def changes(connection: Any) -> int:
        return int(getattr(connection.connection.dbapi_connection, "total_changes", 0))

    def begun(connection: Any) -> None:
        before[id(connection)] = changes(connection)

    def committing(connection: Any) -> None:
        if engine.dialect.name == "sqlite":
            counts.append(changes(connection) - before.pop(id(connection)))

    sa.event.listen(engine, "begin", begun)
    sa.event.listen(engine, "commit", committing)
    try:
        yield counts
    finally:
        sa.event.remove(engine, "begin", begun)
        sa.event.remove(engine, "commit", committing)


def leases(container: Container) -> dict[str, str | None]:
    engine = container.store.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return dict(connection.execute(  # type: ignore[arg-type]
            sa.select(deliveries.c.id, deliveries.c.lease_owner)).all())


def test_the_worker_that_fans_out_an_event_leases_its_deliveries_as_it_makes_them(
    hub: Container
) -> None:
    for n in range(3):
        endpoint_for(hub, f"http://127.0.0.1:9/hook/{n}")
    declare_many(hub, 2)
    with rows_written(hub) as written:
        dispatched, claims = hub.deliveries.dispatch_and_claim("worker-a", 100)
    assert (dispatched, len(claims)) == (2, 6)
    assert {claim.delivery.id for claim in claims} == set(leases(hub))
    assert set(leases(hub).values()) == {"worker-a"}
    # Inserted leased: each delivery row written once (and each event marked as
    # fanned out), no second write of each to claim it.
    if hub.store.dialect == "sqlite":
        assert written == [len(claims) + dispatched]
    # Every claim carries what sending needs, as a claim read back would.
    for claim in claims:
        assert claim.event.id == claim.delivery.event_id
        assert claim.endpoint.id == claim.delivery.endpoint_id
        assert claim.endpoint.secrets


def test_a_fan_out_leases_no_more_than_the_worker_has_room_for(hub: Container) -> None:
    """Full lanes and a full worker leave the rest unleased, for any worker to claim;
    a delivery queued behind another of its incident is not due, so not leased."""
    busy = endpoint_for(hub, "http://127.0.0.1:9/busy")
    free = endpoint_for(hub, "http://127.0.0.1:9/free")
    declare_many(hub, 3)
    _, claims = hub.deliveries.dispatch_and_claim("worker-a", 2, [busy.id])
    assert [claim.delivery.endpoint_id for claim in claims] == [free.id, free.id]
    unleased = [delivery for delivery, owner in leases(hub).items() if owner is None]
    assert len(unleased) == 4
    later = hub.deliveries.claim("worker-b", 100)
    assert sorted(claim.delivery.id for claim in later) == sorted(unleased)


def test_what_a_fan_out_leased_and_never_sent_goes_out_after_the_lease_lapses(
    hub: Container, manual_clock: ManualClock
) -> None:
    endpoint_for(hub, "http://127.0.0.1:9/hook")
    declare_many(hub, 2)
    _, taken = hub.deliveries.dispatch_and_claim("crashed-worker", 100)
    assert len(taken) == 2
    assert hub.deliveries.claim("worker-b", 100) == []  # held by its lease
    manual_clock.advance(hub.deliveries.lease + timedelta(seconds=1))
    again = hub.deliveries.claim("worker-b", 100)
    assert sorted(c.delivery.id for c in again) == sorted(c.delivery.id for c in taken)
