"""Rows the worker writes with prebuilt statements (store.bulk) read back exactly like
rows written through SQLAlchemy, on SQLite and PostgreSQL: same stored text for times
on SQLite (so ordering by them still works), same values everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from interlock.services.container import Container
from interlock.store import bulk
from interlock.store.tables import attempts, deliveries
from tests.integration.test_worker import endpoint_for

COLUMNS = ("id", "delivery_id", "endpoint_id", "event_id", "event_type", "number",
           "trigger", "at", "duration_ms", "status_code", "response_body", "failure",
           "detail", "next_attempt_at")
PREBUILT = bulk.insert(attempts, COLUMNS)


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


def test_a_naive_time_is_refused_as_by_the_column_type(hub: Container) -> None:
    time = bulk.Prebuilt.time(hub.store.engine.dialect)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="naive"):
        time(datetime(2026, 3, 1, 12, 0))
