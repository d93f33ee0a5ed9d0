"""Rows the worker writes with prebuilt statements (store.bulk) read back exactly like
rows written through SQLAlchemy, on SQLite and PostgreSQL: same stored text for times
on SQLite (so ordering by them still works), same values everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from interlock.domain.alerts import SourceKind
from interlock.domain.digests import Digest
from interlock.services.container import Container
from interlock.services.sources import SourceSpec
from interlock.store import bulk
from interlock.store.alerts import _alert
from interlock.store.deliveries import delivery_from_row
from interlock.store.incidents import _from_row as incident_from_row
from interlock.store.records import event_from_row
from interlock.store.tables import alert_digests, alerts, attempts, deliveries, events, incidents
from tests.integration.test_worker import endpoint_for

COLUMNS = ("id", "delivery_id", "endpoint_id", "event_id", "event_type", "number",
           "trigger", "at", "duration_ms", "status_code", "response_body", "failure",
           "detail", "next_attempt_at")
PREBUILT = bulk.insert(attempts, COLUMNS)
_EVENTS = bulk.insert(events, ("id", "type", "occurred_at", "origin", "incident_id",
                               "incident_version", "data"))


def test_prebuilt_rows_read_back_as_sqlalchemy_rows_do(hub: Container) -> None:
    endpoint = endpoint_for(hub, "http://127.0.0.1:9/hook")
    east = timezone(timedelta(hours=5))
    moments = [datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),  # no microseconds
               datetime(2026, 3, 1, 17, 0, 0, 123456, tzinfo=east)]  # not UTC
    engine = hub.store.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(deliveries.insert(), [{
            "id": "dlv_1", "event_id": "evt_1", "event_sequence": 1,
            "endpoint_id": endpoint.id, "status": "pending", "attempts": 0,
            "trigger": "scheduled", "created_at": moments[0], "updated_at": moments[0]}])
        for number, moment in enumerate(moments, start=1):
            values = {"id": f"atm_{number}", "delivery_id": "dlv_1",
                      "endpoint_id": endpoint.id, "event_id": "evt_1",
                      "event_type": "incident.created", "number": number,
                      "trigger": "scheduled", "at": moment, "duration_ms": 1.5,
                      "status_code": 204, "response_body": "Zürich ✓", "failure": None,
                      "detail": None, "next_attempt_at": None if number == 1 else moment}
            connection.execute(attempts.insert(), [{**values, "id": f"sa_{number}"}])
            time = bulk.Prebuilt.time(connection.dialect)
            PREBUILT.executemany(connection, [tuple(
                time(values[c]) if c in ("at", "next_attempt_at") else values[c]
                for c in COLUMNS)])
        rows = {row["id"]: row for row in connection.execute(
            sa.select(attempts).order_by(attempts.c.id)).mappings()}
        for number, moment in enumerate(moments, start=1):
            ours, theirs = rows[f"atm_{number}"], rows[f"sa_{number}"]
            for column in COLUMNS[1:]:
                assert ours[column] == theirs[column], column
            assert ours["at"] == moment
        if connection.dialect.name == "sqlite":
            raw = dict(connection.exec_driver_sql("SELECT id, at FROM attempts").all())
            assert raw["atm_1"] == raw["sa_1"] == "2026-03-01 12:00:00.000000"
            assert raw["atm_2"] == raw["sa_2"] == "2026-03-01 12:00:00.123456"


def test_rows_inserted_together_read_back_in_order_with_their_values(hub: Container) -> None:
    """Several rows at once (on PostgreSQL one statement over one array per column):
    each as written, nulls, non-ASCII and nested JSON too, their sequences in the rows'
    order; on PostgreSQL a value too long for its column is refused, never cut to fit."""
    plain = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    east = timezone(timedelta(hours=5))
    rows = [(f"evt_{n}", "incident.updated", [plain, datetime(2026, 3, 1, 17, 0, 1, 5,
                                                               tzinfo=east)][n % 2],
             {"kind": "system"} if n % 2 else {"kind": "api_key", "name": "Ünïcode"},
             None if n % 3 == 0 else f"inc_{n}", None if n % 3 == 0 else n,
             {"incident": {"title": "Zürich ✓", "tags": [], "n": 2**40}} if n % 2 else {})
            for n in range(7)]
    engine = hub.store.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        time = bulk.Prebuilt.time(connection.dialect)
        as_json = bulk.Prebuilt.json(connection.dialect)
        written = _EVENTS.executemany(connection, [
            (id_, kind, time(at), as_json(origin), incident, version, as_json(data))
            for id_, kind, at, origin, incident, version, data in rows])
        assert written == len(rows)
        read = connection.execute(sa.select(
            events.c.id, events.c.type, events.c.occurred_at, events.c.origin,
            events.c.incident_id, events.c.incident_version, events.c.data,
        ).order_by(events.c.sequence)).all()
    assert [tuple(row) for row in read] == rows
    if engine.dialect.name == "sqlite":
        return  # SQLite keeps text of any length
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as connection:
        _EVENTS.executemany(connection, [
            (f"evt_long_{n}", "x" * 100, time(plain), as_json({}), None, None, as_json({}))
            for n in range(3)])


def test_a_naive_time_is_refused_as_by_the_column_type(hub: Container) -> None:
    time = bulk.Prebuilt.time(hub.store.engine.dialect)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="naive"):
        time(datetime(2026, 3, 1, 12, 0))


def test_alerts_read_by_the_driver_equal_those_read_through_sqlalchemy(hub: Container) -> None:
    """SqlAlerts.get_by_ids and find_many decode rows themselves (store.bulk.Decoders):
    the same alerts as SQLAlchemy's column types give, empty and unusual values too."""
    source = hub.sources.create(SourceSpec(name="prom", kind=SourceKind.ALERTMANAGER))[0]
    plain = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    rows = [{"id": "alr_1", "source_id": source.id, "fingerprint": "f1", "status": "firing",
             "title": "Disk ✓ full", "severity": "critical", "name": "DiskFull",
             "service": None, "summary": "", "labels": {"zone": "Zürich", "n": "1" * 30},
             "annotations": {}, "url": None, "starts_at": None, "ends_at": None,
             "first_seen_at": plain, "last_seen_at": plain, "count": 1,
             "incident_id": None, "group_key": None, "suppressed_by": None,
             "payload_position": 0},
            {"id": "alr_2", "source_id": source.id, "fingerprint": "f2", "status": "resolved",
             "title": "t", "severity": "info", "name": "n", "service": "api",
             "summary": "s", "labels": {"a": "b"}, "annotations": {"x": "y"},
             "url": "http://example.invalid/", "count": 7,
             "starts_at": plain - timedelta(minutes=5),
             "ends_at": datetime(2026, 3, 1, 17, 0, 1, 123456,
                                 tzinfo=timezone(timedelta(hours=5))),
             "first_seen_at": plain, "last_seen_at": plain + timedelta(microseconds=1),
             "incident_id": "inc_1", "group_key": "api/n", "suppressed_by": "mnt_1",
             "payload_position": 2**40}]
    engine = hub.store.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(alerts.insert(), rows)
        expected = {row["id"]: _alert(row) for row in connection.execute(
            sa.select(alerts)).mappings()}
    with hub.store.transaction() as tx:
        assert tx.alerts.get_by_ids(["alr_1", "alr_2", "alr_missing"]) == expected
        assert tx.alerts.get_by_ids([]) == {}
        found = tx.alerts.find_many([(source.id, "f1"), (source.id, "f2"),
                                     (source.id, "nope"), ("src_other", "f1")])
    assert found == {(source.id, "f1"): expected["alr_1"], (source.id, "f2"): expected["alr_2"]}
    assert found[(source.id, "f2")].ends_at == datetime(2026, 3, 1, 12, 0, 1, 123456, tzinfo=UTC)
    assert found[(source.id, "f2")].ends_at.tzinfo is UTC


def test_claims_and_events_read_by_the_driver_equal_those_read_through_sqlalchemy(
    hub: Container,
) -> None:
    """The claim, its events and the fan-out's events are read by the driver and decoded
    here (store.bulk.Decoders): the same deliveries and events as SQLAlchemy's column
    types give, with times not in UTC or without microseconds, nulls, non-ASCII and
    nested JSON, and sequences beyond 32 bits."""
    kept = endpoint_for(hub, "http://127.0.0.1:9/kept")
    skipped = endpoint_for(hub, "http://127.0.0.1:9/skipped")
    east = timezone(timedelta(hours=5))
    plain = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    data = {"incident": {"id": "inc_1", "title": "Zürich ✓", "labels": {"n": "1" * 30},
                         "tags": [], "owner": None, "count": 2**40}}
    event_rows = [
        {"sequence": 2**33 + n, "id": f"evt_{n}", "type": "incident.updated",
         "occurred_at": [plain, datetime(2026, 3, 1, 17, 0, 1, 5, tzinfo=east)][n],
         "origin": [{"kind": "api_key", "id": "key_1", "name": "Ünïcode", "actor": None},
                    {"kind": "system"}][n],
         "incident_id": ["inc_1", None][n], "incident_version": [3, None][n],
         "data": [data, {}][n]} for n in range(2)]
    delivery_rows = [
        {"id": f"dlv_{n}_{endpoint.id}", "event_id": f"evt_{n}",
         "event_sequence": 2**33 + n, "endpoint_id": endpoint.id,
         "incident_id": ["inc_1", None][n], "status": "pending", "attempts": n,
         "next_attempt_at": plain - timedelta(seconds=n), "trigger": ["scheduled", "manual"][n],
         "last_status_code": [None, 503][n], "last_failure": [None, "status"][n],
         "created_at": datetime(2026, 3, 1, 17, 0, 0, 250, tzinfo=east),
         "updated_at": plain} for n in range(2) for endpoint in (kept, skipped)]
    engine = hub.store.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(events.insert(), event_rows)
        connection.execute(deliveries.insert(), delivery_rows)
    with hub.store.transaction(write=True) as tx:
        leased = tx.deliveries.claim("worker-1", plain, plain + timedelta(minutes=2), 10,
                                     exclude_endpoints=[skipped.id])
    with hub.store.transaction() as tx:
        claims = tx.deliveries.claims(leased)
        undispatched = tx.events.undispatched(10)
    with engine.begin() as connection:
        expected_events = {row["sequence"]: event_from_row(row) for row in connection.execute(
            sa.select(events)).mappings()}
        expected = {row["id"]: delivery_from_row(row) for row in connection.execute(
            sa.select(deliveries).where(deliveries.c.lease_owner == "worker-1")).mappings()}
    assert sorted(delivery.id for delivery in leased) == sorted(
        f"dlv_{n}_{kept.id}" for n in range(2))
    assert {delivery.id: delivery for delivery in leased} == expected
    assert [(claim.delivery, claim.event) for claim in claims] == [
        (expected[f"dlv_{n}_{kept.id}"], expected_events[2**33 + n]) for n in range(2)]
    assert undispatched == list(expected_events.values())
    assert undispatched[1].occurred_at == datetime(2026, 3, 1, 12, 0, 1, 5, tzinfo=UTC)
    assert undispatched[1].occurred_at.tzinfo is UTC


def test_incidents_and_digests_read_by_the_driver_equal_those_read_through_sqlalchemy(
    hub: Container,
) -> None:
    """An alert batch reads its incidents and their digests by the driver (store.bulk.
    Decoders): the same as SQLAlchemy's column types give, nulls and unusual values too,
    and nothing for ids that are not there."""
    east = timezone(timedelta(hours=5))
    plain = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    odd = datetime(2026, 3, 1, 17, 0, 1, 7, tzinfo=east)
    incident_rows = [
        {"id": "inc_1", "title": "Zürich ✓", "summary": "", "status": "triggered",
         "severity": "critical", "service": None, "assignee": None, "labels": {},
         "visibility": "public", "version": 1, "created_at": plain, "updated_at": odd,
         "acknowledged_at": None, "resolved_at": None},
        {"id": "inc_2", "title": "t", "summary": "s" * 300, "status": "resolved",
         "severity": "low", "service": "api", "assignee": "ann@example.com",
         "labels": {"team": "Zürich", "n": "1" * 30, "nested": "x"},
         "visibility": "private", "version": 2**31 - 1, "created_at": odd,
         "updated_at": plain, "acknowledged_at": plain, "resolved_at": odd}]
    digest_rows = [
        {"incident_id": "inc_1", "last_event_at": odd, "waiting": 0, "alert_ids": [],
         "source_id": None, "due_at": None},
        {"incident_id": "inc_2", "last_event_at": plain, "waiting": 3,
         "alert_ids": ["alr_1", "alr_2"], "source_id": "src_1", "due_at": odd}]
    engine = hub.store.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(incidents.insert(), incident_rows)
        connection.execute(alert_digests.insert(), digest_rows)
        expected = {row["id"]: incident_from_row(row) for row in connection.execute(
            sa.select(incidents)).mappings()}
        expected_digests = {row["incident_id"]: Digest(
            incident_id=row["incident_id"], last_event_at=row["last_event_at"],
            waiting=row["waiting"], alert_ids=tuple(row["alert_ids"]),
            source_id=row["source_id"], due_at=row["due_at"])
            for row in connection.execute(sa.select(alert_digests)).mappings()}
    ids = ["inc_2", "inc_1", "inc_missing"]
    with hub.store.transaction(write=True) as tx:
        for for_update in (False, True):
            assert tx.incidents.get_many(ids, for_update=for_update) == expected
            assert tx.digests.get_many(ids, for_update=for_update) == expected_digests
        assert tx.incidents.get_many([]) == {} and tx.digests.get_many([]) == {}
    assert expected["inc_1"].updated_at == datetime(2026, 3, 1, 12, 0, 1, 7, tzinfo=UTC)
    assert expected_digests["inc_2"].alert_ids == ("alr_1", "alr_2")
