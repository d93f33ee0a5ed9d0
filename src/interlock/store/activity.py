"""Counts over time for the console's 24-hour chart.

Each series is one query that sums a CASE per bucket, so SQLite and PostgreSQL answer
it the same way with no date functions; the console caches the answer briefly, since
the attempts and alerts tables have no index on their time column.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.ports.store import Activity
from interlock.store.tables import alerts, attempts, incidents


class SqlActivity:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def counts(self, bounds: Sequence[datetime], *, include_private: bool) -> Activity:
        if len(bounds) < 2:
            return Activity([], [], [], [])
        new_alerts = self._per_bucket(alerts.c.first_seen_at, bounds)
        opened_where = [] if include_private else [incidents.c.visibility == "public"]
        opened = self._per_bucket(incidents.c.created_at, bounds, *opened_where)
        succeeded = sa.and_(attempts.c.failure.is_(None), attempts.c.status_code >= 200,
                            attempts.c.status_code < 300)
        delivered = self._per_bucket(attempts.c.at, bounds, succeeded)
        failed = self._per_bucket(attempts.c.at, bounds, sa.not_(succeeded))
        return Activity(new_alerts, opened, delivered, failed)

    def _per_bucket(self, column: sa.Column[Any], bounds: Sequence[datetime],
                    *where: sa.ColumnElement[bool]) -> list[int]:
        sums = [
            sa.func.sum(sa.case((sa.and_(column >= low, column < high), 1), else_=0))
            for low, high in itertools.pairwise(bounds)
        ]
        query = sa.select(*sums).where(column >= bounds[0], column < bounds[-1], *where)
        row = self._connection.execute(query).one()
        return [int(value or 0) for value in row]
