"""Append-only rows: events and timeline entries."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from interlock.domain.events import Event, EventType, Origin
from interlock.domain.timeline import TimelineEntry
from interlock.store.tables import events, timeline_entries


class SqlEvents:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def append(self, event: Event) -> Event:
        result = self._connection.execute(
            events.insert()
            .values(
                id=event.id,
                type=event.type.value,
                occurred_at=event.occurred_at,
                origin=event.origin.to_dict(),
                incident_id=event.incident_id,
                incident_version=event.incident_version,
                data=event.data,
            )
            .returning(events.c.sequence)
        )
        return dataclasses.replace(event, sequence=result.scalar_one())

    def for_incident(self, incident_id: str) -> list[Event]:
        query = (
            sa.select(events)
            .where(events.c.incident_id == incident_id)
            .order_by(events.c.sequence)
        )
        return [_event(row) for row in self._connection.execute(query).mappings()]


class SqlTimeline:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def append(self, entry: TimelineEntry) -> None:
        self._connection.execute(
            timeline_entries.insert().values(
                id=entry.id,
                incident_id=entry.incident_id,
                at=entry.at,
                kind=entry.kind,
                origin=entry.origin.to_dict(),
                incident_version=entry.incident_version,
                message=entry.message,
                changes=entry.changes,
                body=entry.body,
            )
        )

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


def _event(row: sa.RowMapping) -> Event:
    return Event(
        id=row["id"],
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
