"""Received payloads (the ingest queue), alerts and correlation rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.domain.alerts import Alert, AlertStatus, PayloadStatus, ReceivedPayload
from interlock.domain.errors import ConcurrentUpdate, LeaseLost
from interlock.domain.evolve import evolve
from interlock.domain.incidents import Severity
from interlock.ports.store import Work
from interlock.store import bulk
from interlock.store.claiming import claim_positions, oldest_free
from interlock.store.signals import notification
from interlock.store.tables import alerts, correlations, is_pending, payloads

# Built once: correlation runs these for every alert of every payload.
_FIND_ALERT = sa.select(alerts).where(alerts.c.source_id == sa.bindparam("b_source"),
                                      alerts.c.fingerprint == sa.bindparam("b_fingerprint"))
#: Statements run for every alert or payload (see store.bulk); rows in this order.
#: An alert's columns after its key (_alert_values).
_ALERT_STATE = (
    "status", "title", "severity", "name", "service", "summary", "labels", "annotations",
    "url", "starts_at", "ends_at", "first_seen_at", "last_seen_at", "count", "incident_id",
    "group_key", "suppressed_by", "payload_position")
_INSERT_ALERTS = bulk.insert(alerts, ("id", "source_id", "fingerprint", *_ALERT_STATE))
_SAVE_ALERTS = bulk.update(alerts, _ALERT_STATE, ["id"])
_OUTCOME = ("status", "error", "alerts", "dropped", "suppressed", "processed_at")
_OUTCOME_NAMES = [f"b_{column}" for column in _OUTCOME]
_FINISH_PAYLOAD = bulk.update(payloads, _OUTCOME, ["id", "lease_owner"],
                              nulls=["lease_owner", "lease_expires_at"])

#: Lease claimed payloads: one statement text for any number (bulk.one_of; an expanding
#: IN list was a new statement for each length, converted by psycopg and planned by
#: PostgreSQL afresh: 18-38 ms for a storm's batch of 200-370).
_CLAIM = (payloads.update().where(bulk.one_of(payloads.c.position, "positions"))
          .values(lease_owner=sa.bindparam("owner"), lease_expires_at=sa.bindparam("until"),
                  attempts=payloads.c.attempts + 1)
          .returning(*payloads.c))
_FINISH_UNLEASED = bulk.Prebuilt(payloads.update().where(
    payloads.c.id == sa.bindparam("b_id"), payloads.c.lease_owner.is_(None)
).values({column: sa.bindparam(f"b_{column}") for column in _OUTCOME}),
    [*_OUTCOME_NAMES, "b_id"])
#: Ingest stores every payload with it: prebuilt, so a row skips SQLAlchemy's per-row
#: parameter processing (store.bulk) on the path that answers senders.
_PAYLOAD_COLUMNS = ("id", "source_id", "received_at", "content_type", "body", "status",
                    "error", "alerts", "dropped", "suppressed", "attempts", "processed_at")
_INSERT_PAYLOADS = bulk.insert(payloads, _PAYLOAD_COLUMNS)
#: Moving payloads from the ingest spool (store.spool): one moved before is left as is.
_ADMIT_PAYLOADS = bulk.insert(payloads, _PAYLOAD_COLUMNS, sqlite_or_ignore=True)
#: A batch's alerts of one source, and alerts by id (a digest's), read by the driver:
#: one statement and one parameter for any number of keys (store.bulk.Decoders).
_READ_COLUMNS = ("id", "source_id", "fingerprint", "status", "title", "severity", "name",
                 "service", "summary", "labels", "annotations", "url", "starts_at",
                 "ends_at", "first_seen_at", "last_seen_at", "count", "incident_id",
                 "group_key", "suppressed_by", "payload_position")


@dataclasses.dataclass(frozen=True)
class _Reads:
    by_id: str
    #: Parameters: the fingerprints (Decoders.any_of), the source. Unlocked (SQLite
    #: has no row locks; on PostgreSQL a locked lookup is of_keys_locked).
    of_source: str
    #: PostgreSQL: parameters the sources and the fingerprints, one pair per alert; in
    #: key order, locked.
    of_keys_locked: str | None = None


_READS: dict[str, _Reads] = {}


def _locked_by_keys(table: str, key: str, columns: str) -> str:
    """PostgreSQL: ``columns`` of the rows of ``table`` with these (source id, ``key``)
    pairs, one probe of the table's key each, locked in key order. Parameters: the
    sources and the keys (:func:`_key_arrays`). OFFSET 0 keeps the planner from folding
    the probes back into one scan of each source's rows."""
    return (f"SELECT found.* FROM unnest(%s::text[], %s::text[]) AS wanted(source_id, {key}) "
            f"CROSS JOIN LATERAL (SELECT {columns} FROM {table} WHERE source_id = "
            f"wanted.source_id AND {key} = wanted.{key} OFFSET 0) AS found "
            f"ORDER BY found.source_id, found.{key} FOR UPDATE OF found")


def _key_arrays(keys: Collection[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The parameters of a :func:`_locked_by_keys` statement, in key order."""
    ordered = sorted(set(keys))
    return [source for source, _ in ordered], [key for _, key in ordered]


#: The first key of the two-key advisory locks on groups (SqlCorrelations._hold);
#: the payload claim's on sources are CLAIM_LOCK_CLASS.
_GROUPS_LOCK_CLASS = 0x696C_7303
#: A batch with more groups than this holds them in this many stripes (a group's lock
#: is the low bits of its key's hash): advisory locks share PostgreSQL's lock table
#: (max_locks_per_transaction x connections, 6,400 by default) with every other lock.
_GROUP_LOCKS_MAX = 1024
#: Takes the groups' locks in the order of their hashes, waiting for each in turn: two
#: transactions never wait for each other in a circle.
_HOLD_GROUPS = (
    "SELECT count(pg_advisory_xact_lock(%s, h)::text) FROM (SELECT DISTINCT "
    "hashtext(source_id || '/' || group_key) & %s AS h FROM unnest(%s::text[], %s::text[]) "
    "AS wanted(source_id, group_key) ORDER BY h) AS held")


def _reads(decode: bulk.Decoders) -> _Reads:
    reads = _READS.get(decode.dialect)
    if reads is None:
        columns = ", ".join(_READ_COLUMNS)
        select = f"SELECT {columns} FROM alerts WHERE "
        if decode.dialect == "postgresql":
            # One probe of the (source, fingerprint) key per fingerprint. Written as
            # "source_id = $1 AND fingerprint = ANY($2)", PostgreSQL's generic plan for
            # the prepared statement, made while the table was small (a storm's alerts
            # arrive faster than it is analysed), read every alert of the source and
            # compared each with every fingerprint: 12 ms a batch with 3,000 alerts a
            # source, growing with them (EXPLAIN, bench/storm.py). An equality on the
            # whole key is planned as a probe of it whatever the statistics say; OFFSET 0
            # keeps the planner from folding the probes back into one scan.
            of_source = (
                f"SELECT a.* FROM unnest({decode.param}::text[]) AS wanted(fingerprint) "
                f"CROSS JOIN LATERAL (SELECT {columns} FROM alerts WHERE source_id = "
                f"{decode.param} AND fingerprint = wanted.fingerprint OFFSET 0) AS a "
                "ORDER BY a.fingerprint")
            # The same for a batch's alerts of every source at once: a statement (a round
            # trip, milliseconds each on a busy machine) per source was one per source too
            # many in a storm from several.
            of_keys: str | None = _locked_by_keys("alerts", "fingerprint", columns)
        else:
            of_source = (f"{select}fingerprint{decode.in_list} AND source_id = "
                         f"{decode.param} ORDER BY fingerprint")
            of_keys = None
        reads = _READS[decode.dialect] = _Reads(
            by_id=f"{select}id{decode.in_list}", of_source=of_source, of_keys_locked=of_keys)
    return reads


#: A batch's groups of one source, looked up in one statement (unlocked: on PostgreSQL
#: a locked lookup is _GROUPS_LOCKED_PG). Built once: SQLAlchemy's building and
#: cache-key work for a fresh IN statement cost more than SQLite's running it (~3 ms a
#: batch).
_GROUPS_OF = (sa.select(correlations.c.group_key, correlations.c.incident_id).where(
    correlations.c.source_id == sa.bindparam("source"),
    correlations.c.group_key.in_(sa.bindparam("keys", expanding=True)))
    .order_by(correlations.c.group_key))
#: PostgreSQL: a batch's groups of every source, as the alerts' of_keys_locked.
_GROUPS_LOCKED_PG = _locked_by_keys("correlations", "group_key",
                                    "source_id, group_key, incident_id")
#: A batch's groups pointed at incidents: one statement on PostgreSQL (store.bulk); a
#: storm's first batches insert hundreds, which psycopg's executemany had the server
#: run one by one (30-40 ms a batch of 250, bench/storm.py). Rows: incident, time, key.
_INSERT_CORRELATIONS = bulk.insert(correlations,
                                   ("incident_id", "updated_at", "source_id", "group_key"))
_SAVE_CORRELATIONS = bulk.update(correlations, ("incident_id", "updated_at"),
                                 ("source_id", "group_key"))


class SqlPayloads:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"
        #: True once this transaction stored payloads; the store wakes workers on commit.
        self.inserted = False

    def insert_many(self, items: Sequence[ReceivedPayload], *, moved: bool = False,
                    wake: bool = True) -> None:
        """``moved``: from the ingest spool (SQLite), where a payload already moved is
        skipped. ``wake``: tell the workers at commit that there is work."""
        if not items:
            return
        self.inserted = self.inserted or wake
        time = bulk.Prebuilt.time(self._connection.dialect)
        (_ADMIT_PAYLOADS if moved else _INSERT_PAYLOADS).executemany(
            self._connection, [_payload_values(item, time) for item in items])

    def store_received(self, items: Sequence[ReceivedPayload]) -> None:
        """PostgreSQL, on a connection that commits each statement: store ``items`` and
        tell the workers at that commit, in one statement."""
        if not items:
            return
        dialect = self._connection.dialect
        time = bulk.Prebuilt.time(dialect)
        self._connection.exec_driver_sql(
            f"WITH stored AS ({_INSERT_PAYLOADS.by_arrays(dialect)}) "
            f"SELECT {notification(Work.PAYLOADS)}",
            bulk.arrays([_payload_values(item, time) for item in items]))

    def store_new(self, items: Sequence[ReceivedPayload]) -> list[ReceivedPayload]:
        """Store those of ``items`` not stored already, to be applied and finished in this
        transaction (no worker is woken for them); returns those, with their positions.
        A payload stored before (a move from the spool repeated after a crash) is left
        out: it is applied once."""
        if not items:
            return []
        stored = self._positions([item.id for item in items])
        fresh = [item for item in items if item.id not in stored]
        if not fresh:
            return []
        self.insert_many(fresh, wake=False)
        positions = self._positions([item.id for item in fresh])
        return [evolve(item, position=positions[item.id]) for item in fresh]

    def _positions(self, ids: list[str]) -> dict[str, int]:
        """The queue positions of those of ``ids`` stored, by id: one statement for any
        number (an expanding IN list is compiled anew for each length)."""
        decode = bulk.decoders(self._connection.dialect)
        return dict(self._connection.exec_driver_sql(
            f"SELECT id, position FROM payloads WHERE id{decode.in_list}",
            (decode.any_of(ids),)).all())

    def claim(self, owner: str, now: datetime, lease_until: datetime, limit: int
              ) -> list[ReceivedPayload]:
        """Lease up to ``limit`` of the oldest pending payloads.

        On PostgreSQL the rows are locked with SKIP LOCKED, so workers claiming at the
        same time take disjoint sets, and each takes the payloads of sources no other
        worker holds (see ``claim_positions``), so that workers rarely lock the same
        alerts, groups and incidents. Workers may still apply one source's payloads in
        any order; the alerts remember which payload last reported them
        (``payload_position``), so an older payload never overwrites what a newer one
        said. The lookups walk a partial index of pending payloads: their cost does not
        grow with the payloads processed.
        """
        if self._postgres:
            positions = claim_positions(self._connection, owner, now, limit)
        else:
            positions = list(self._connection.execute(
                oldest_free(now, limit)).scalars())
        if not positions:
            return []
        rows = self._connection.execute(_CLAIM, {
            "positions": positions, "owner": owner, "until": lease_until,
        }).mappings().all()
        return sorted((_payload(row) for row in rows), key=lambda payload: payload.position)

    def any_free(self, now: datetime) -> bool:
        """Whether a pending payload is free to claim (a read: no write lock)."""
        query = (sa.select(payloads.c.position)
                 .where(is_pending(payloads),
                        sa.or_(payloads.c.lease_expires_at.is_(None),
                               payloads.c.lease_expires_at <= now))
                 .limit(1))
        return self._connection.execute(query).first() is not None

    def finish(self, payload: ReceivedPayload, owner: str) -> None:
        self.finish_many([payload], owner)

    def finish_many(self, items: Sequence[ReceivedPayload], owner: str | None) -> None:
        """Record outcomes of payloads this owner still leases (one statement); owner
        None for payloads applied as they were stored, never leased. LeaseLost if the
        owner no longer leases them all (another worker took them over): the caller's
        transaction, which applied them, is then undone."""
        if not items:
            return
        time = bulk.Prebuilt.time(self._connection.dialect)
        rows = [(payload.status.value, payload.error, payload.alerts, payload.dropped,
                 payload.suppressed, time(payload.processed_at), payload.id)
                for payload in items]
        if owner is None:
            _FINISH_UNLEASED.executemany(self._connection, rows)
            return
        finished = _FINISH_PAYLOAD.executemany(self._connection,
                                               [(*row, owner) for row in rows])
        if 0 <= finished < len(rows):
            raise LeaseLost(f"{len(rows) - finished} of {len(rows)} payloads leased by "
                            f"{owner} were taken over by another worker")

    def position(self, payload_id: str) -> int | None:
        found: int | None = self._connection.execute(
            sa.select(payloads.c.position).where(payloads.c.id == payload_id)).scalar()
        return found

    def get(self, payload_id: str) -> ReceivedPayload | None:
        row = self._connection.execute(
            sa.select(payloads).where(payloads.c.id == payload_id)).mappings().first()
        return _payload(row) if row else None

    def list(self, source_id: str, *, before: int | None, limit: int,
             status: PayloadStatus | None = None) -> list[ReceivedPayload]:
        query = (sa.select(payloads).where(payloads.c.source_id == source_id)
                 .order_by(payloads.c.position.desc()).limit(limit))
        if before is not None:
            query = query.where(payloads.c.position < before)
        if status is not None:
            query = query.where(payloads.c.status == status.value)
        return [_payload(row) for row in self._connection.execute(query).mappings()]


class SqlAlerts:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._decode = bulk.decoders(connection.dialect)

    def find(self, source_id: str, fingerprint: str) -> Alert | None:
        row = self._connection.execute(
            _FIND_ALERT, {"b_source": source_id, "b_fingerprint": fingerprint}
        ).mappings().first()
        return _alert(row) if row else None

    def find_many(self, keys: Collection[tuple[str, str]], *, for_update: bool = False
                  ) -> dict[tuple[str, str], Alert]:
        """The alerts with these (source id, fingerprint) keys, one query per source
        (locked: one query on PostgreSQL). ``for_update`` locks them on PostgreSQL in
        key order, so concurrent workers wait for each other instead of deadlocking."""
        reads = _reads(self._decode)
        found: dict[tuple[str, str], Alert] = {}
        if for_update and reads.of_keys_locked is not None:
            for alert in self._read(reads.of_keys_locked, _key_arrays(keys)):
                found[(alert.source_id, alert.fingerprint)] = alert
            return found
        by_source: dict[str, list[str]] = {}
        for source_id, fingerprint in keys:
            by_source.setdefault(source_id, []).append(fingerprint)
        for source_id in sorted(by_source):
            for alert in self._read(reads.of_source,
                                    (self._decode.any_of(by_source[source_id]), source_id)):
                found[(alert.source_id, alert.fingerprint)] = alert
        return found

    def get_by_ids(self, ids: Collection[str]) -> dict[str, Alert]:
        return {alert.id: alert
                for alert in self._read(_reads(self._decode).by_id, (self._decode.any_of(ids),))}

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Alert]:
        """Alerts read by the driver and decoded here (store.bulk.Decoders)."""
        time, moment, as_json = self._decode.time, self._decode.moment, self._decode.json
        # In _READ_COLUMNS' order.
        return [Alert(
            id=id_, source_id=source_id, fingerprint=fingerprint,
            status=AlertStatus(status), title=title, severity=Severity(severity),
            name=name, service=service, summary=summary, labels=as_json(labels),
            annotations=as_json(annotations), url=url, starts_at=time(starts_at),
            ends_at=time(ends_at), first_seen_at=moment(first_seen_at),
            last_seen_at=moment(last_seen_at), count=count, incident_id=incident_id,
            group_key=group_key, suppressed_by=suppressed_by,
            payload_position=payload_position,
        ) for (id_, source_id, fingerprint, status, title, severity, name, service, summary,
               labels, annotations, url, starts_at, ends_at, first_seen_at, last_seen_at,
               count, incident_id, group_key, suppressed_by, payload_position)
            in self._connection.exec_driver_sql(sql, params)]

    def insert(self, alert: Alert) -> None:
        self.insert_many([alert])

    def insert_many(self, items: Sequence[Alert]) -> None:
        """Insert new alerts; another worker inserting one of them first is a
        ConcurrentUpdate (the caller retries and finds it)."""
        if not items:
            return
        time = bulk.Prebuilt.time(self._connection.dialect)
        as_json = bulk.Prebuilt.json(self._connection.dialect)
        try:
            _INSERT_ALERTS.executemany(self._connection, [
                (alert.id, alert.source_id, alert.fingerprint,
                 *_alert_values(alert, time, as_json)) for alert in items])
        except sa.exc.IntegrityError as error:
            raise ConcurrentUpdate("an alert was stored by another worker") from error

    def save(self, alert: Alert) -> None:
        self.save_many([alert])

    def save_many(self, items: Sequence[Alert]) -> None:
        if not items:
            return
        time = bulk.Prebuilt.time(self._connection.dialect)
        as_json = bulk.Prebuilt.json(self._connection.dialect)
        _SAVE_ALERTS.executemany(self._connection, [
            (*_alert_values(alert, time, as_json), alert.id) for alert in items])

    def firing_counts(self, incident_ids: Collection[str]) -> dict[str, tuple[int, int]]:
        """Per incident: (alerts firing, alerts in all), in one query per chunk."""
        counts: dict[str, tuple[int, int]] = {}
        firing = sa.func.sum(sa.case((alerts.c.status == AlertStatus.FIRING.value, 1),
                                     else_=0))
        for chunk in bulk.chunks(sorted(incident_ids)):
            query = (sa.select(alerts.c.incident_id, firing, sa.func.count())
                     .where(alerts.c.incident_id.in_(chunk))
                     .group_by(alerts.c.incident_id))
            for incident_id, firing_count, total in self._connection.execute(query):
                counts[incident_id] = (int(firing_count or 0), int(total))
        return counts

    def for_incident(self, incident_id: str) -> list[Alert]:
        query = (sa.select(alerts).where(alerts.c.incident_id == incident_id)
                 .order_by(alerts.c.position))
        return [_alert(row) for row in self._connection.execute(query).mappings()]

    def firing_for_incident(self, incident_id: str) -> int:
        return self._connection.execute(
            sa.select(sa.func.count()).select_from(alerts).where(
                alerts.c.incident_id == incident_id,
                alerts.c.status == AlertStatus.FIRING.value)
        ).scalar_one()

    def list(self, *, before: int | None, limit: int, source_id: str | None = None,
             suppressed: bool | None = None) -> list[tuple[int, Alert]]:
        query = sa.select(alerts).order_by(alerts.c.position.desc()).limit(limit)
        if before is not None:
            query = query.where(alerts.c.position < before)
        if source_id is not None:
            query = query.where(alerts.c.source_id == source_id)
        if suppressed is True:
            query = query.where(alerts.c.suppressed_by.is_not(None))
        elif suppressed is False:
            query = query.where(alerts.c.suppressed_by.is_(None))
        return [(row["position"], _alert(row))
                for row in self._connection.execute(query).mappings()]


class SqlCorrelations:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"

    def get_many(self, keys: Collection[tuple[str, str]], *, for_update: bool = False
                 ) -> dict[tuple[str, str], str]:
        """Incident ids by (source id, group key); locked in key order when asked, and
        on PostgreSQL the groups held first (:meth:`_hold`), found or not."""
        found: dict[tuple[str, str], str] = {}
        if for_update and self._postgres:
            arrays = _key_arrays(keys)
            self._hold(*arrays)
            for source_id, group_key, incident_id in self._connection.exec_driver_sql(
                    _GROUPS_LOCKED_PG, arrays):
                found[(source_id, group_key)] = incident_id
            return found
        for params in _each_source(keys):
            for group_key, incident_id in self._connection.execute(_GROUPS_OF, params):
                found[(params["source"], group_key)] = incident_id
        return found

    def _hold(self, sources: list[str], names: list[str]) -> None:
        """PostgreSQL: hold these groups until commit, whether they exist yet or not, so
        that a lookup after this sees every group another transaction made of them, and
        none is made meanwhile. A row lock holds only a row that exists: two workers
        whose batches both brought a new group's first alerts each decided to open its
        incident; the second's insert waited for the first's commit, failed on the key,
        and the second ran its whole batch again, to meet the first worker's next batch
        the same way. In a storm with two workers one batch of 252 payloads ran six
        times and was then applied one payload at a time: 6 s (bench/storm.py).
        ``sources`` and ``names``: the groups' keys, as _key_arrays gives them."""
        if not names:
            return
        bits = -1 if len(names) <= _GROUP_LOCKS_MAX else _GROUP_LOCKS_MAX - 1
        self._connection.exec_driver_sql(
            _HOLD_GROUPS, (_GROUPS_LOCK_CLASS, bits, sources, names)).scalar_one()

    def put_many(self, items: Sequence[tuple[str, str, str]], at: datetime, *,
                 existing: Collection[tuple[str, str]]) -> None:
        """Point groups at incidents: rows in ``existing`` are updated, the rest
        inserted. A group another worker inserted meanwhile is a ConcurrentUpdate."""
        time = bulk.Prebuilt.time(self._connection.dialect)
        rows = [(incident_id, time(at), source_id, key) for source_id, key, incident_id in items]
        updates = [row for row in rows if (row[2], row[3]) in existing]
        inserts = [row for row in rows if (row[2], row[3]) not in existing]
        if updates:
            _SAVE_CORRELATIONS.executemany(self._connection, updates)
        if inserts:
            try:
                _INSERT_CORRELATIONS.executemany(self._connection, inserts)
            except sa.exc.IntegrityError as error:
                raise ConcurrentUpdate("a group was correlated by another worker") from error


def _payload(row: sa.RowMapping) -> ReceivedPayload:
    return ReceivedPayload(
        id=row["id"],
        source_id=row["source_id"],
        received_at=row["received_at"],
        content_type=row["content_type"],
        body=bytes(row["body"]),
        status=PayloadStatus(row["status"]),
        error=row["error"],
        alerts=row["alerts"],
        dropped=row["dropped"],
        suppressed=row["suppressed"],
        processed_at=row["processed_at"],
        attempts=row["attempts"],
        position=row["position"],
    )


#: Looked up once: dataclasses.fields() per row was a noticeable share of reading alerts.
_ALERT_FIELDS = tuple(field.name for field in dataclasses.fields(Alert))


def _alert_values(alert: Alert, time: bulk.TimeParam, as_json: bulk.JsonParam
                  ) -> tuple[Any, ...]:
    """An alert's values in _ALERT_STATE's order, as the driver takes them."""
    return (alert.status.value, alert.title, alert.severity.value, alert.name, alert.service,
            alert.summary, as_json(dict(alert.labels)), as_json(dict(alert.annotations)),
            alert.url, time(alert.starts_at), time(alert.ends_at), time(alert.first_seen_at),
            time(alert.last_seen_at), alert.count, alert.incident_id, alert.group_key,
            alert.suppressed_by, alert.payload_position)


def _alert(row: sa.RowMapping) -> Alert:
    values = {name: row[name] for name in _ALERT_FIELDS}
    values.update(status=AlertStatus(row["status"]), severity=Severity(row["severity"]))
    return Alert(**values)


def _each_source(keys: Collection[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    """The parameters of _GROUPS_OF for (source id, key) pairs: each
    source's keys in turn, sorted (the order they are locked in), in chunks."""
    by_source: dict[str, set[str]] = {}
    for source_id, key in keys:
        by_source.setdefault(source_id, set()).add(key)
    for source_id in sorted(by_source):
        for chunk in bulk.chunks(sorted(by_source[source_id])):
            yield {"source": source_id, "keys": chunk}


def _payload_values(item: ReceivedPayload, time: bulk.TimeParam) -> tuple[Any, ...]:
    """A payload's values in _PAYLOAD_COLUMNS' order, its times passed through ``time``."""
    return (item.id, item.source_id, time(item.received_at), item.content_type, item.body,
            item.status.value, item.error, item.alerts, item.dropped, item.suppressed,
            item.attempts, time(item.processed_at))
