"""Append-only rows: events and timeline entries."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.domain.events import Event, EventType, Origin
from interlock.domain.timeline import TimelineEntry
from interlock.store import bulk
from interlock.store.queues import DELIVERIES_FAN_OUT, serialise_fan_out
from interlock.store.tables import events, timeline_entries

# Prebuilt (store.bulk): every change of an incident writes an event and a timeline
# line, and SQLAlchemy's own execution of such a row cost more than SQLite's.
_EVENT_COLUMNS = ("id", "type", "occurred_at", "origin", "incident_id", "incident_version",
                  "data")
_INSERT_EVENTS = bulk.insert(events, _EVENT_COLUMNS)
_INSERT_EVENT = bulk.insert(events, _EVENT_COLUMNS, returning=events.c.sequence)
_INSERT_LINES = bulk.insert(timeline_entries, (
    "id", "incident_id", "at", "kind", "origin", "incident_version", "message", "changes",
    "body"))


#: The fan-out's mark, built once: building a statement cost several times what running
#: it did (the fan-out's SELECT of the oldest events, when it was SQLAlchemy's: ~240 µs
#: built each time, ~55 µs prebuilt), and while changes trickle in, a fan-out runs every
#: few milliseconds for an event or two.
_MARK_DISPATCHED = (events.update()
                    .where(bulk.one_of(events.c.sequence, "m_sequences"))
                    .values(dispatched_at=sa.bindparam("m_at")))


#: Whether any event waits to be fanned out: one probe of ix_events_undispatched.
_ANY_UNDISPATCHED = "SELECT 1 FROM events WHERE dispatched_at IS NULL LIMIT 1"
#: The columns :func:`read_events` decodes, in its order.
_READ_COLUMNS = "sequence, id, type, occurred_at, origin, incident_id, incident_version, data"


def read_events(connection: sa.Connection, where: str, params: Sequence[Any]) -> list[Event]:
    """The events ``WHERE where`` (placeholders in the driver's style,
    :attr:`store.bulk.Decoders.param`), read by the driver and decoded here, as alerts
    are (store.alerts): the fan-out reads every event it routes and a claim the events
    of the deliveries it leased, and SQLAlchemy's processing of each row (two JSON
    columns, a time, a row mapping) cost more than the read itself."""
    decode = bulk.decoders(connection.dialect)
    moment, as_json = decode.moment, decode.json
    return [Event(id=row[1], type=EventType(row[2]), occurred_at=moment(row[3]),
                  origin=Origin.from_dict(as_json(row[4])), incident_id=row[5],
                  incident_version=row[6], data=as_json(row[7]), sequence=row[0])
            for row in connection.exec_driver_sql(
                f"SELECT {_READ_COLUMNS} FROM events WHERE {where}", tuple(params))]


class SqlEvents:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        #: True once this transaction wrote an event; the store wakes workers on commit.
        self.appended = False
        #: True when this transaction fanned out every event it wrote, so no delivery
        #: loop needs waking for them (DeliveryService.hand_off).
        self.settled = False
        #: The events this transaction appended, by id (their sequences not yet known):
        #: its own fan-out (hand_off) takes them from here rather than reading them back.
        self._written: dict[str, Event] = {}

    def fanned_out(self) -> None:
        self.settled = True

    def append(self, event: Event) -> Event:
        self.appended = True
        dialect = self._connection.dialect
        result = _INSERT_EVENT.execute(self._connection, _event_row(
            event, bulk.Prebuilt.time(dialect), bulk.Prebuilt.json(dialect)))
        self._written[event.id] = event
        return dataclasses.replace(event, sequence=result.scalar_one())

    def append_many(self, items: Sequence[Event]) -> None:
        """Append events in one statement, in order (their sequences follow it)."""
        if items:
            self.appended = True
            dialect = self._connection.dialect
            time, json = bulk.Prebuilt.time(dialect), bulk.Prebuilt.json(dialect)
            _INSERT_EVENTS.executemany(self._connection,
                                       [_event_row(event, time, json) for event in items])
            self._written.update((event.id, event) for event in items)

    def for_incident(self, incident_id: str) -> list[Event]:
        query = (
            sa.select(events)
            .where(events.c.incident_id == incident_id)
            .order_by(events.c.sequence)
        )
        return [event_from_row(row) for row in self._connection.execute(query).mappings()]

    def get(self, event_id: str) -> Event | None:
        row = self._connection.execute(
            sa.select(events).where(events.c.id == event_id)
        ).mappings().first()
        return event_from_row(row) if row else None

    def get_many(self, event_ids: Collection[str]) -> dict[str, Event]:
        ordered = sorted(event_ids)
        found: dict[str, Event] = {}
        for start in range(0, len(ordered), 500):
            query = sa.select(events).where(events.c.id.in_(ordered[start:start + 500]))
            for row in self._connection.execute(query).mappings():
                found[row["id"]] = event_from_row(row)
        return found

    def undispatched(self, limit: int, *, wait: bool = True) -> list[Event]:
        """The oldest events not yet fanned out. On PostgreSQL the fan-out turn is taken
        first, until commit: two workers reading at once took different events of one
        incident, and the one holding the later version could fan it out first and
        queue it ahead of the earlier one (a test saw it in about 1 run of 6).

        A delivery round (``wait=False``) looks first whether any event waits, and
        takes the turn only if it is free: in a storm two workers' rounds waited for
        each other's turn, to its durable commit, 1,150-1,270 times in 20 s (3.8-4.4 s
        in all, pg_stat_statements), mostly to find nothing left. Nothing is missed so: every
        worker is woken by each commit of events, and a round goes again after a
        wake-up that came while it ran; the round holding the turn, or one that takes
        it after that commit, reads them."""
        decode = bulk.decoders(self._connection.dialect)
        where = f"dispatched_at IS NULL ORDER BY sequence LIMIT {decode.param}"
        if decode.dialect == "postgresql":
            if wait or self._written:
                serialise_fan_out(self._connection, DELIVERIES_FAN_OUT)
            elif self._connection.exec_driver_sql(_ANY_UNDISPATCHED).first() is None \
                    or not serialise_fan_out(self._connection, DELIVERIES_FAN_OUT,
                                             wait=False):
                return []
            where += " FOR UPDATE SKIP LOCKED"
        if not self._written:
            return read_events(self._connection, where, (limit,))
        # Those this transaction appended are in hand: only their sequences are read
        # (an alert batch opening hundreds of incidents read back and decoded every
        # event it had just written, a tenth of its work).
        keys = self._connection.exec_driver_sql(
            f"SELECT sequence, id FROM events WHERE {where}", (limit,)).all()
        unread = [sequence for sequence, event_id in keys if event_id not in self._written]
        read = {event.sequence: event for event in read_events(
            self._connection, f"sequence{decode.in_list}", (decode.any_of(unread),))
        } if unread else {}
        return [read[sequence] if sequence in read
                else dataclasses.replace(self._written[event_id], sequence=sequence)
                for sequence, event_id in keys
                if sequence in read or event_id in self._written]

    def mark_dispatched(self, sequences: Sequence[int], at: datetime) -> None:
        if sequences:
            self._connection.execute(_MARK_DISPATCHED,
                                     {"m_sequences": list(sequences), "m_at": at})

    def list(self, *, before: int | None, limit: int, event_type: str | None = None
             ) -> list[Event]:
        query = sa.select(events).order_by(events.c.sequence.desc()).limit(limit)
        if before is not None:
            query = query.where(events.c.sequence < before)
        if event_type is not None:
            query = query.where(events.c.type == event_type)
        return [event_from_row(row) for row in self._connection.execute(query).mappings()]


class SqlTimeline:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def append(self, entry: TimelineEntry) -> None:
        self.append_many([entry])

    def append_many(self, items: Sequence[TimelineEntry]) -> None:
        if items:
            dialect = self._connection.dialect
            time, json = bulk.Prebuilt.time(dialect), bulk.Prebuilt.json(dialect)
            _INSERT_LINES.executemany(self._connection, [
                (entry.id, entry.incident_id, time(entry.at), entry.kind,
                 json(entry.origin.to_dict()), entry.incident_version, entry.message,
                 json(entry.changes), entry.body)
                for entry in items])

    def list(
        self, incident_id: str, *, after: int | None, limit: int
    ) -> list[tuple[int, TimelineEntry]]:
        query = (
            sa.select(timeline_entries)
            .where(timeline_entries.c.incident_id == incident_id)
            .order_by(timeline_entries.c.position)
            .limit(limit)
        )
        if after is not None:
            query = query.where(timeline_entries.c.position > after)
        return [
            (row["position"], _entry(row)) for row in self._connection.execute(query).mappings()
        ]


def _event_row(event: Event, time: bulk.TimeParam, json: bulk.JsonParam) -> tuple[Any, ...]:
    """In _EVENT_COLUMNS' order."""
    return (event.id, event.type.value, time(event.occurred_at), json(event.origin.to_dict()),
            event.incident_id, event.incident_version, json(event.data))


def event_from_row(row: sa.RowMapping) -> Event:
    """From an events row, or a join that carries its columns (``event_id`` for the id)."""
    return Event(
        id=row["event_id"] if "event_id" in row else row["id"],
        type=EventType(row["type"]),
        occurred_at=row["occurred_at"],
        origin=Origin.from_dict(row["origin"]),
        incident_id=row["incident_id"],
        incident_version=row["incident_version"],
        data=row["data"],
        sequence=row["sequence"],
    )


def _entry(row: sa.RowMapping) -> TimelineEntry:
    changes: dict[str, Any] = row["changes"] or {}
    return TimelineEntry(
        id=row["id"],
        incident_id=row["incident_id"],
        at=row["at"],
        kind=row["kind"],
        origin=Origin.from_dict(row["origin"]),
        incident_version=row["incident_version"],
        message=row["message"],
        changes=changes,
        body=row["body"],
    )
