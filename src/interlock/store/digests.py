"""Alert digests (domain/digests.py): per incident, the last incident.alert_attached and
the alerts waiting for the next.

Rows are written only by transactions that hold them (read FOR UPDATE on PostgreSQL, in
incident order; the write lock on SQLite), or insert them (a row another worker inserted
first fails the insert: ConcurrentUpdate, and the batch runs again). Two workers never
write one row at once, and an alert batch holds its incidents' digests, not the
incidents: people's changes to those incidents do not wait for it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import sqlalchemy as sa

from interlock.domain.digests import Digest
from interlock.domain.errors import ConcurrentUpdate
from interlock.store import bulk
from interlock.store.tables import alert_digests

_COLUMNS = ("last_event_at", "waiting", "alert_ids", "source_id", "due_at")
#: Written for every incident a batch touches (see store.bulk); rows in this order.
_SAVE = bulk.update(alert_digests, _COLUMNS, ["incident_id"])
_INSERT = bulk.insert(alert_digests, (*_COLUMNS, "incident_id"))


class SqlDigests:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def get_many(self, incident_ids: Collection[str], *, for_update: bool = False,
                 skip_locked: bool = False) -> dict[str, Digest]:
        """The digests of these incidents; locked in incident order on PostgreSQL when
        asked, leaving out those another transaction holds if ``skip_locked``."""
        if not incident_ids:
            return {}
        decode = bulk.decoders(self._connection.dialect)
        sql = (f"SELECT incident_id, last_event_at, waiting, alert_ids, source_id, due_at "
               f"FROM alert_digests WHERE incident_id{decode.in_list}")
        if for_update and decode.dialect == "postgresql":
            sql += " ORDER BY incident_id FOR NO KEY UPDATE"
            if skip_locked:
                sql += " SKIP LOCKED"
        time, moment, as_json = decode.time, decode.moment, decode.json
        # Read by the driver and decoded here (store.bulk.Decoders), as incidents are:
        # every alert batch reads the digest of every incident its alerts join.
        return {row[0]: Digest(incident_id=row[0], last_event_at=moment(row[1]),
                               waiting=row[2], alert_ids=tuple(as_json(row[3])),
                               source_id=row[4], due_at=time(row[5]))
                for row in self._connection.exec_driver_sql(
                    sql, (decode.any_of(sorted(incident_ids)),))}

    def put_many(self, digests: Sequence[Digest], *, existing: Collection[str]) -> None:
        """Update the rows of ``existing`` incidents, insert the others."""
        time = bulk.Prebuilt.time(self._connection.dialect)
        as_json = bulk.Prebuilt.json(self._connection.dialect)
        rows = [(time(digest.last_event_at), digest.waiting, as_json(list(digest.alert_ids)),
                 digest.source_id, time(digest.due_at), digest.incident_id)
                for digest in digests]
        _SAVE.executemany(self._connection,
                          [row for row in rows if row[-1] in existing])
        inserts = [row for row in rows if row[-1] not in existing]
        if inserts:
            try:
                _INSERT.executemany(self._connection, inserts)
            except sa.exc.IntegrityError as error:
                raise ConcurrentUpdate("a digest was stored by another worker") from error

    def due(self, now: datetime, limit: int) -> list[str]:
        """Incidents whose waiting alerts are due to be told, the longest due first."""
        query = (sa.select(alert_digests.c.incident_id)
                 .where(alert_digests.c.due_at <= now)
                 .order_by(alert_digests.c.due_at).limit(limit))
        return list(self._connection.execute(query).scalars())
