"""Alert digests (domain/digests.py): per incident, the last incident.alert_attached and
the alerts waiting for the next.

Rows are written only by transactions that hold the incident (locked FOR UPDATE on
PostgreSQL, the write lock on SQLite), so two workers never write one row at once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.domain.digests import Digest
from interlock.domain.errors import ConcurrentUpdate
from interlock.store.tables import alert_digests

_SAVE = alert_digests.update().where(alert_digests.c.incident_id == sa.bindparam("b_id"))
#: Ids per IN list: well under both databases' limits on bound parameters.
_CHUNK = 500


class SqlDigests:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def get_many(self, incident_ids: Collection[str]) -> dict[str, Digest]:
        ordered = sorted(incident_ids)
        found: dict[str, Digest] = {}
        for start in range(0, len(ordered), _CHUNK):
            query = sa.select(alert_digests).where(
                alert_digests.c.incident_id.in_(ordered[start:start + _CHUNK]))
            for row in self._connection.execute(query).mappings():
                found[row["incident_id"]] = _digest(row)
        return found

    def put_many(self, digests: Sequence[Digest], *, existing: Collection[str]) -> None:
        """Update the rows of ``existing`` incidents, insert the others."""
        updates = [{"b_id": digest.incident_id, **_values(digest)}
                   for digest in digests if digest.incident_id in existing]
        inserts = [{"incident_id": digest.incident_id, **_values(digest)}
                   for digest in digests if digest.incident_id not in existing]
        if updates:
            self._connection.execute(_SAVE, updates)
        if inserts:
            try:
                self._connection.execute(alert_digests.insert(), inserts)
            except sa.exc.IntegrityError as error:
                raise ConcurrentUpdate("a digest was stored by another worker") from error

    def due(self, now: datetime, limit: int) -> list[str]:
        """Incidents whose waiting alerts are due to be told, the longest due first."""
        query = (sa.select(alert_digests.c.incident_id)
                 .where(alert_digests.c.due_at <= now)
                 .order_by(alert_digests.c.due_at).limit(limit))
        return list(self._connection.execute(query).scalars())


def _values(digest: Digest) -> dict[str, Any]:
    return {"last_event_at": digest.last_event_at, "waiting": digest.waiting,
            "alert_ids": list(digest.alert_ids),
            "source_id": digest.source_id, "due_at": digest.due_at}


def _digest(row: sa.RowMapping) -> Digest:
    return Digest(incident_id=row["incident_id"], last_event_at=row["last_event_at"],
                  waiting=row["waiting"], alert_ids=tuple(row["alert_ids"]),
                  source_id=row["source_id"], due_at=row["due_at"])
