"""Several writers at once: nothing lost, nothing doubled, versions without gaps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from interlock.domain.events import Origin, OriginKind
from interlock.domain.incidents import Severity
from interlock.services.container import Container
from interlock.services.incidents import Declaration, Viewer
from interlock.store.tables import events

T = TypeVar("T")
VIEWER = Viewer(Origin(OriginKind.SYSTEM, name="test"), can_see_private=True)
WORKERS = 8


def at_once(count: int, task: Callable[[int], T]) -> list[T]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(task, range(count)))


def event_types(container: Container, incident_id: str) -> list[str]:
    engine = container.store.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(events.c.type, events.c.incident_version)
            .where(events.c.incident_id == incident_id).order_by(events.c.sequence)
        ).all()
    versions = [row[1] for row in rows]
    assert versions == list(range(1, len(versions) + 1)), "versions must rise by one"
    return [row[0] for row in rows]


def test_concurrent_declarations_get_distinct_references(container: Container) -> None:
    incidents = at_once(WORKERS, lambda n: container.incidents.declare(
        VIEWER, Declaration(title=f"Incident {n}", severity=Severity.LOW)))
    assert sorted(incident.number for incident in incidents) == list(range(1, WORKERS + 1))


def test_concurrent_acknowledgements_write_one_event(container: Container) -> None:
    incident = container.incidents.declare(VIEWER, Declaration("Disk full", Severity.HIGH))
    results = at_once(WORKERS, lambda _: container.incidents.acknowledge(VIEWER, incident.id))
    assert {result.version for result in results} == {2}
    assert event_types(container, incident.id) == ["incident.created", "incident.acknowledged"]


def test_concurrent_updates_are_all_applied_in_sequence(container: Container) -> None:
    incident = container.incidents.declare(VIEWER, Declaration("Slow search", Severity.LOW))
    at_once(WORKERS, lambda n: container.incidents.update(
        VIEWER, incident.id, {"labels": {f"worker{n}": "yes"}}))
    at_once(WORKERS, lambda n: container.incidents.comment(VIEWER, incident.id, f"note {n}"))
    final = container.incidents.get(VIEWER, incident.id)
    assert final.version == 1 + 2 * WORKERS
    types = event_types(container, incident.id)
    assert types.count("incident.updated") == WORKERS
    assert types.count("incident.comment_added") == WORKERS


def test_racing_requests_with_one_idempotency_key_create_one_incident(
    client: TestClient, writer: dict[str, str]
) -> None:
    headers = {**writer, "Idempotency-Key": "race"}

    def post(_: int) -> Any:
        return client.post("/api/v1/incidents", headers=headers, json={"title": "Race"})

    responses = at_once(WORKERS, post)
    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["id"] for response in responses}) == 1
    assert len(client.get("/api/v1/incidents", headers=writer).json()["data"]) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_note_on_an_incident_does_not_wait_for_a_batch_holding_it(
        container: Container) -> None:
    """An alert batch holds its incidents until it commits; a connector's note (a
    timeline line that changes nothing) on one of them must not wait for it. The sync
    records notes for many incidents in one transaction, in no particular order, so a
    wait here became a deadlock with the batch (PostgreSQL undid one, a second lost)."""
    incident = container.incidents.declare(VIEWER, Declaration("Disk full", Severity.HIGH))
    held, done = threading.Event(), threading.Event()

    def batch() -> None:
        with container.store.transaction(write=True) as tx:
            tx.incidents.get_many([incident.id], for_update=True)
            held.set()
            done.wait(30)

    holder = threading.Thread(target=batch)
    holder.start()
    try:
        assert held.wait(30)
        with container.store.transaction(write=True) as tx:
            tx.connection.exec_driver_sql("SET LOCAL lock_timeout = '3s'")
            container.incidents.note_in(tx, incident.id, VIEWER.origin, "linked OPS-1")
    finally:
        done.set()
        holder.join(30)
