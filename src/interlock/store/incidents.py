"""Incident rows."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from interlock.domain.errors import ConcurrentUpdate
from interlock.domain.incidents import Incident, Severity, Status, Visibility
from interlock.ports.store import IncidentFilter
from interlock.store import bulk
from interlock.store.tables import incidents

_REFERENCE = re.compile(r"^INC-(\d{1,18})$", re.IGNORECASE)

# Statements built once: SQLAlchemy spends more time building a statement than SQLite
# spends running one of these, and they run on every incident change.
_INSERT = incidents.insert().returning(incidents.c.number)
_BY_ID = sa.select(incidents).where(incidents.c.id == sa.bindparam("key"))
_BY_NUMBER = sa.select(incidents).where(incidents.c.number == sa.bindparam("key"))
# Updates change no key: FOR NO KEY UPDATE, which rows referring to the incident (a
# timeline line, a link) do not wait for. With FOR UPDATE, a transaction adding lines
# to several incidents deadlocked with an alert batch holding them.
_LOOKUPS = {
    (False, False): _BY_ID, (False, True): _BY_ID.with_for_update(key_share=True),
    (True, False): _BY_NUMBER, (True, True): _BY_NUMBER.with_for_update(key_share=True),
}
#: An incident's columns as get_many decodes them, in its order.
_READ_COLUMNS = ("id, number, title, summary, status, severity, service, assignee, labels, "
                 "visibility, version, created_at, updated_at, acknowledged_at, resolved_at")
#: What a change writes: every column but the id, number and creation time.
_CHANGED = ("title", "summary", "status", "severity", "service", "assignee", "labels",
            "visibility", "version", "updated_at", "acknowledged_at", "resolved_at")
#: A new incident: every column but its number, which the database gives.
_INSERT_NEW = bulk.insert(incidents, (
    "id", "title", "summary", "status", "severity", "service", "assignee", "labels",
    "visibility", "version", "created_at", "updated_at", "acknowledged_at", "resolved_at"))
_SAVE = bulk.Prebuilt(
    incidents.update()
    .where(incidents.c.id == sa.bindparam("b_id"),
           incidents.c.version == sa.bindparam("b_expected"))
    .values({column: sa.bindparam(f"v_{column}") for column in _CHANGED}),
    [*(f"v_{column}" for column in _CHANGED), "b_id", "b_expected"])


class SqlIncidents:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def insert(self, incident: Incident) -> Incident:
        result = self._connection.execute(_INSERT, _to_row(incident))
        return _replace_number(incident, result.scalar_one())

    def insert_many(self, items: Sequence[Incident]) -> list[Incident]:
        """Insert new incidents (numbered by the database); they come back numbered, in
        order. Inserted by the driver, then their numbers read by id: a storm's first
        alert batches open hundreds of incidents each, and SQLAlchemy's insert of many
        rows returning their keys (its parameters processed row by row) was a fifth of
        processing an alert that opens one (py-spy, bench/processing.py)."""
        if not items:
            return []
        dialect = self._connection.dialect
        time, json = bulk.Prebuilt.time(dialect), bulk.Prebuilt.json(dialect)
        _INSERT_NEW.executemany(self._connection, [(
            incident.id, incident.title, incident.summary, incident.status.value,
            incident.severity.value, incident.service, incident.assignee,
            json(dict(incident.labels)), incident.visibility.value, incident.version,
            time(incident.created_at), time(incident.updated_at),
            time(incident.acknowledged_at), time(incident.resolved_at),
        ) for incident in items])
        decode = bulk.decoders(dialect)
        numbers: dict[str, int] = dict(self._connection.exec_driver_sql(
            f"SELECT id, number FROM incidents WHERE id{decode.in_list}",
            (decode.any_of([incident.id for incident in items]),)).all())
        return [_replace_number(incident, numbers[incident.id]) for incident in items]

    def get_many(self, ids: Collection[str], *, for_update: bool = False
                 ) -> dict[str, Incident]:
        """Incidents by id; locked in id order on PostgreSQL when asked."""
        if not ids:
            return {}
        decode = bulk.decoders(self._connection.dialect)
        sql = f"SELECT {_READ_COLUMNS} FROM incidents WHERE id{decode.in_list} ORDER BY id"
        if for_update and decode.dialect == "postgresql":
            sql += " FOR NO KEY UPDATE"
        time, moment, as_json = decode.time, decode.moment, decode.json
        # Read by the driver and decoded here (store.bulk.Decoders): an alert batch reads
        # every incident its alerts join, and SQLAlchemy's processing of the rows (a JSON
        # column, four times, a row mapping each) cost more than the read.
        return {row[0]: Incident(
            id=row[0], number=row[1], title=row[2], summary=row[3], status=Status(row[4]),
            severity=Severity(row[5]), service=row[6], assignee=row[7],
            labels=as_json(row[8]) or {}, visibility=Visibility(row[9]), version=row[10],
            created_at=moment(row[11]), updated_at=moment(row[12]),
            acknowledged_at=time(row[13]), resolved_at=time(row[14]))
            for row in self._connection.exec_driver_sql(sql, (decode.any_of(sorted(ids)),))}

    def save_many(self, items: Sequence[tuple[Incident, int]]) -> None:
        """Save (incident, expected version) pairs in one statement; ConcurrentUpdate if
        any of them changed meanwhile."""
        if not items:
            return
        dialect = self._connection.dialect
        time, json = bulk.Prebuilt.time(dialect), bulk.Prebuilt.json(dialect)
        saved = _SAVE.executemany(self._connection, [
            _changed_row(incident, expected, time, json) for incident, expected in items])
        if saved >= 0 and saved != len(items):
            raise ConcurrentUpdate("an incident changed while alerts were being attached")

    def get(self, key: str, *, for_update: bool = False) -> Incident | None:
        match = _REFERENCE.match(key)
        query = _LOOKUPS[(match is not None, for_update)]
        value: int | str = int(match.group(1)) if match else key
        row = self._connection.execute(query, {"key": value}).mappings().first()
        return _from_row(row) if row else None

    def save(self, incident: Incident, *, expected_version: int) -> None:
        dialect = self._connection.dialect
        result = _SAVE.execute(self._connection, _changed_row(
            incident, expected_version, bulk.Prebuilt.time(dialect),
            bulk.Prebuilt.json(dialect)))
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"{incident.reference} changed while it was being updated")

    def list(self, where: IncidentFilter, *, before: int | None, limit: int) -> list[Incident]:
        query = sa.select(incidents).order_by(incidents.c.number.desc()).limit(limit)
        for condition in _conditions(where):
            query = query.where(condition)
        if before is not None:
            query = query.where(incidents.c.number < before)
        return [_from_row(row) for row in self._connection.execute(query).mappings()]

    def private_among(self, incident_ids: Collection[str]) -> set[str]:
        if not incident_ids:
            return set()
        query = sa.select(incidents.c.id).where(
            incidents.c.id.in_(sorted(incident_ids)),
            incidents.c.visibility == Visibility.PRIVATE.value)
        return set(self._connection.execute(query).scalars())


def _conditions(where: IncidentFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if where.statuses:
        conditions.append(incidents.c.status.in_(sorted(s.value for s in where.statuses)))
    if where.severities:
        conditions.append(incidents.c.severity.in_(sorted(s.value for s in where.severities)))
    if where.service is not None:
        conditions.append(incidents.c.service == where.service)
    if where.created_after is not None:
        conditions.append(incidents.c.created_at >= where.created_after)
    if where.created_before is not None:
        conditions.append(incidents.c.created_at < where.created_before)
    if where.text:
        escaped = where.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(
            sa.func.lower(incidents.c.title).like(f"%{escaped.lower()}%", escape="\\")
        )
    if not where.include_private:
        conditions.append(incidents.c.visibility == Visibility.PUBLIC.value)
    return conditions


def _to_row(incident: Incident) -> dict[str, Any]:
    row = {
        "id": incident.id,
        "number": incident.number or None,
        "title": incident.title,
        "summary": incident.summary,
        "status": incident.status.value,
        "severity": incident.severity.value,
        "service": incident.service,
        "assignee": incident.assignee,
        "labels": dict(incident.labels),
        "visibility": incident.visibility.value,
        "version": incident.version,
        "created_at": incident.created_at,
        "updated_at": incident.updated_at,
        "acknowledged_at": incident.acknowledged_at,
        "resolved_at": incident.resolved_at,
    }
    if row["number"] is None:
        del row["number"]
    return row


def _changed_row(incident: Incident, expected_version: int, time: bulk.TimeParam,
                 json: bulk.JsonParam) -> tuple[Any, ...]:
    """In _SAVE's order."""
    return (incident.title, incident.summary, incident.status.value, incident.severity.value,
            incident.service, incident.assignee, json(dict(incident.labels)),
            incident.visibility.value, incident.version, time(incident.updated_at),
            time(incident.acknowledged_at), time(incident.resolved_at), incident.id,
            expected_version)


def _from_row(row: sa.RowMapping) -> Incident:
    return Incident(
        id=row["id"],
        number=row["number"],
        title=row["title"],
        summary=row["summary"],
        status=Status(row["status"]),
        severity=Severity(row["severity"]),
        service=row["service"],
        assignee=row["assignee"],
        labels=row["labels"] or {},
        visibility=Visibility(row["visibility"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        acknowledged_at=row["acknowledged_at"],
        resolved_at=row["resolved_at"],
    )


def _replace_number(incident: Incident, number: int) -> Incident:
    return dataclasses.replace(incident, number=number)
