"""Source and maintenance-window rows."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from interlock.domain.maintenance import MaintenanceMode, MaintenanceWindow
from interlock.domain.sources import Source
from interlock.store.tables import maintenance_windows, sources

_COUNT_WINDOW = maintenance_windows.update().where(
    maintenance_windows.c.id == sa.bindparam("b_id")
).values(dropped=maintenance_windows.c.dropped + sa.bindparam("b_dropped"),
         suppressed=maintenance_windows.c.suppressed + sa.bindparam("b_suppressed"))


class SqlSources:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def insert(self, source: Source) -> None:
        self._connection.execute(sources.insert().values(**_source_row(source)))

    def get(self, source_id: str) -> Source | None:
        row = self._connection.execute(
            sa.select(sources).where(sources.c.id == source_id)
        ).mappings().first()
        return _source(row) if row else None

    def get_many(self, ids: Collection[str]) -> dict[str, Source]:
        query = sa.select(sources).where(sources.c.id.in_(sorted(ids)))
        return {row["id"]: _source(row) for row in self._connection.execute(query).mappings()}

    def save(self, source: Source) -> None:
        values = _source_row(source)
        del values["id"], values["created_at"]
        self._connection.execute(sources.update().where(sources.c.id == source.id)
                                 .values(**values))

    def delete(self, source_id: str) -> bool:
        return self._connection.execute(
            sources.delete().where(sources.c.id == source_id)).rowcount == 1

    def list(self, *, after: str | None, limit: int) -> list[Source]:
        query = sa.select(sources).order_by(sources.c.id).limit(limit)
        if after is not None:
            query = query.where(sources.c.id > after)
        return [_source(row) for row in self._connection.execute(query).mappings()]


class SqlMaintenance:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def insert(self, window: MaintenanceWindow) -> None:
        self._connection.execute(maintenance_windows.insert().values(
            **_window_row(window), dropped=0, suppressed=0))

    def get(self, window_id: str) -> MaintenanceWindow | None:
        row = self._connection.execute(
            sa.select(maintenance_windows).where(maintenance_windows.c.id == window_id)
        ).mappings().first()
        return _window(row) if row else None

    def save(self, window: MaintenanceWindow) -> None:
        values = _window_row(window)
        del values["id"], values["created_at"]
        self._connection.execute(maintenance_windows.update()
                                 .where(maintenance_windows.c.id == window.id).values(**values))

    def delete(self, window_id: str) -> bool:
        return self._connection.execute(maintenance_windows.delete().where(
            maintenance_windows.c.id == window_id)).rowcount == 1

    def every(self) -> list[MaintenanceWindow]:
        query = sa.select(maintenance_windows).order_by(maintenance_windows.c.starts_at.desc())
        return [_window(row) for row in self._connection.execute(query).mappings()]

    def active(self, at: datetime) -> list[MaintenanceWindow]:
        query = sa.select(maintenance_windows).where(
            maintenance_windows.c.ends_at > at, maintenance_windows.c.starts_at <= at)
        return [_window(row) for row in self._connection.execute(query).mappings()]

    def count(self, window_id: str, *, dropped: int = 0, suppressed: int = 0) -> None:
        table = maintenance_windows
        self._connection.execute(table.update().where(table.c.id == window_id).values(
            dropped=table.c.dropped + dropped, suppressed=table.c.suppressed + suppressed))

    def count_many(self, counts: Mapping[str, tuple[int, int]]) -> None:
        """Add (dropped, suppressed) to each window's counters, in one statement."""
        if counts:
            self._connection.execute(_COUNT_WINDOW, [
                {"b_id": window_id, "b_dropped": dropped, "b_suppressed": suppressed}
                for window_id, (dropped, suppressed) in counts.items()])

    def counts(self, window_id: str) -> tuple[int, int]:
        table = maintenance_windows
        row = self._connection.execute(
            sa.select(table.c.dropped, table.c.suppressed).where(table.c.id == window_id)
        ).first()
        return (row[0], row[1]) if row else (0, 0)


def _source_row(source: Source) -> dict[str, Any]:
    return {
        "id": source.id,
        "name": source.name,
        "kind": str(source.kind),
        "token_digest": source.token_digest,
        "signing_secret": source.signing_secret,
        "timestamp_header": source.timestamp_header,
        "options": dict(source.options),
        "grouping": source.grouping,
        "auto_resolve": source.auto_resolve,
        "reopen_window_seconds": source.reopen_window.total_seconds(),
        "rate_limit": source.rate_limit,
        "enabled": source.enabled,
        "created_at": source.created_at,
        "updated_at": source.updated_at,
    }


def _source(row: sa.RowMapping) -> Source:
    return Source(
        id=row["id"],
        name=row["name"],
        kind=str(row["kind"]),
        token_digest=row["token_digest"],
        signing_secret=row["signing_secret"],
        timestamp_header=row["timestamp_header"],
        options=row["options"] or {},
        grouping=row["grouping"],
        auto_resolve=row["auto_resolve"],
        reopen_window=timedelta(seconds=row["reopen_window_seconds"]),
        rate_limit=row["rate_limit"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _window_row(window: MaintenanceWindow) -> dict[str, Any]:
    return {
        "id": window.id,
        "name": window.name,
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "mode": window.mode.value,
        "matchers": dict(window.matchers),
        "source_id": window.source_id,
        "created_at": window.created_at,
    }


def _window(row: sa.RowMapping) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=row["id"],
        name=row["name"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        mode=MaintenanceMode(row["mode"]),
        matchers=row["matchers"] or {},
        source_id=row["source_id"],
        created_at=row["created_at"],
    )
