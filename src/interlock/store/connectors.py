"""Connector rows: configuration, incident links, the sync job queue, the activity log
and inbound delivery receipts.

The job queue is leased like the delivery queue (one UPDATE … RETURNING over a partial
index; SKIP LOCKED on PostgreSQL), and keeps the same per-incident order: a job queued
behind a pending one of the same connector and incident has no due time until that
one finishes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.domain.connectors import (
    Activity,
    Call,
    Connector,
    Direction,
    FieldMapping,
    JobKind,
    JobStatus,
    Link,
    Outcome,
    Owner,
    SyncJob,
)
from interlock.ports.store import JobOutcome, StoredConnector
from interlock.store import bulk
from interlock.store.queues import (
    SYNC_JOBS_CLAIM,
    SYNC_JOBS_FAN_OUT,
    promote_next,
    serialise_fan_out,
)
from interlock.store.tables import (
    connector_activity,
    connectors,
    hook_receipts,
    incident_links,
    incidents,
    is_pending,
    sync_jobs,
)

_PENDING = JobStatus.PENDING.value
#: Written for every event a connector shares (store.bulk); rows in this order.
_INSERT_JOBS = bulk.insert(sync_jobs, (
    "id", "connector_id", "incident_id", "kind", "event_id", "reason", "status",
    "attempts", "next_attempt_at", "last_error", "created_at", "updated_at"))
#: Make due the oldest job waiting behind one that just finished.
_PROMOTE = promote_next(sync_jobs, "connector_id", "position")


#: Read by every fan-out of events to connectors (see store.records): built once.
_ENABLED = sa.select(connectors).where(connectors.c.enabled.is_(True))


def _has_job(*conditions: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """Whether the connector of the outer query has a pending job meeting ``conditions``:
    one probe per connector, the connector's id the first key of the index it walks. It
    is a subquery that returns one row at most, not EXISTS: PostgreSQL may turn an
    EXISTS into a join, and planning for tables it believes small (in a storm, jobs come
    faster than it analyses them) walked every due job of every connector instead, 1,912
    of them for 0.5-1.1 ms, on every look (EXPLAIN ANALYZE after bench/storm.py)."""
    first = (sa.select(sa.literal(1))
             .where(sync_jobs.c.connector_id == connectors.c.id, is_pending(sync_jobs),
                    *conditions)
             .limit(1).scalar_subquery())
    return first.is_not(None)


#: Whether an enabled connector not left out (its lane is full) has a job due: one
#: probe of ix_sync_jobs_connector_due per such connector, past its lane's leased jobs
#: at most. Walking the due jobs in time order instead stepped over every job of the
#: full lanes, a storm's thousands (1.4 ms for 2,000), on every commit of an event.
_ANY_DUE = sa.select(sa.literal(1)).where(
    connectors.c.enabled.is_(True),
    connectors.c.id.not_in(sa.bindparam("excluded", expanding=True)),
    _has_job(sync_jobs.c.next_attempt_at <= sa.bindparam("now"),
             sa.or_(sync_jobs.c.lease_expires_at.is_(None),
                    sync_jobs.c.lease_expires_at <= sa.bindparam("now")))).limit(1)


class SqlConnectors:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def insert(self, connector: Connector, sealed_credentials: str) -> None:
        self._connection.execute(connectors.insert().values(
            **_connector_row(connector), credentials=sealed_credentials))

    def get(self, connector_id: str) -> StoredConnector | None:
        row = self._connection.execute(
            sa.select(connectors).where(connectors.c.id == connector_id)).mappings().first()
        return _stored(row) if row else None

    def enabled(self) -> list[StoredConnector]:
        return [_stored(row) for row in self._connection.execute(_ENABLED).mappings()]

    def save(self, connector: Connector, sealed_credentials: str | None = None) -> None:
        values = _connector_row(connector)
        del values["id"], values["created_at"]
        if sealed_credentials is not None:
            values["credentials"] = sealed_credentials
        self._connection.execute(
            connectors.update().where(connectors.c.id == connector.id).values(**values))

    def delete(self, connector_id: str) -> bool:
        return self._connection.execute(
            connectors.delete().where(connectors.c.id == connector_id)).rowcount == 1

    def hold(self, connector_id: str) -> bool:
        query = sa.select(connectors.c.id).where(connectors.c.id == connector_id)
        if self._connection.dialect.name == "postgresql":
            query = query.with_for_update(key_share=True)
        return self._connection.execute(query).first() is not None

    def record_health(self, connector_id: str, *, at: datetime, error: str | None,
                      learned: Mapping[str, Any] | None = None) -> None:
        values: dict[str, Any]
        if error is None:
            values = {"last_success_at": at, "failing_since": None}
        else:
            values = {"last_error": error[:2000], "last_error_at": at,
                      "failing_since": sa.func.coalesce(connectors.c.failing_since, at)}
        if learned:
            current = self._connection.execute(
                sa.select(connectors.c.state).where(connectors.c.id == connector_id)
            ).scalar()
            values["state"] = {**(current or {}), **learned}
        self._connection.execute(
            connectors.update().where(connectors.c.id == connector_id).values(**values))

    def list(self, *, after: str | None, limit: int) -> list[StoredConnector]:
        query = sa.select(connectors).order_by(connectors.c.id).limit(limit)
        if after is not None:
            query = query.where(connectors.c.id > after)
        return [_stored(row) for row in self._connection.execute(query).mappings()]


def _connector_row(connector: Connector) -> dict[str, Any]:
    return {
        "id": connector.id,
        "name": connector.name,
        "kind": connector.kind,
        "settings": dict(connector.settings),
        "mapping": connector.mapping.to_json(),
        "filter": connector.filter,
        "state": dict(connector.state),
        "enabled": connector.enabled,
        "last_success_at": connector.last_success_at,
        "last_error": connector.last_error,
        "last_error_at": connector.last_error_at,
        "failing_since": connector.failing_since,
        "created_at": connector.created_at,
        "updated_at": connector.updated_at,
    }


def _stored(row: sa.RowMapping) -> StoredConnector:
    mapping = row["mapping"]
    connector = Connector(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        settings=row["settings"],
        credentials={},
        mapping=FieldMapping(
            owners={name: Owner(value) for name, value in mapping["owners"].items()},
            status_out=mapping["status_out"],
            status_in=mapping["status_in"],
            severity_out=mapping["severity_out"],
        ),
        filter=row["filter"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        state=row["state"],
        last_success_at=row["last_success_at"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        failing_since=row["failing_since"],
    )
    return StoredConnector(connector, row["credentials"])


class SqlLinks:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def get(self, connector_id: str, incident_id: str) -> Link | None:
        return self._first(incident_links.c.connector_id == connector_id,
                           incident_links.c.incident_id == incident_id)

    def find(self, connector_id: str, external_id: str) -> Link | None:
        return self._first(incident_links.c.connector_id == connector_id,
                           incident_links.c.external_id == external_id)

    def find_by_state(self, connector_id: str, key: str, value: str) -> Link | None:
        return self._first(incident_links.c.connector_id == connector_id,
                           incident_links.c.state[key].as_string() == value)

    def _first(self, *where: sa.ColumnElement[bool]) -> Link | None:
        row = self._connection.execute(
            sa.select(incident_links).where(*where)).mappings().first()
        return _link(row) if row else None

    def for_incident(self, incident_id: str) -> list[Link]:
        query = (sa.select(incident_links).where(incident_links.c.incident_id == incident_id)
                 .order_by(incident_links.c.created_at))
        return [_link(row) for row in self._connection.execute(query).mappings()]

    def for_incidents(self, incident_ids: Collection[str]) -> list[Link]:
        ordered = sorted(incident_ids)
        found: list[Link] = []
        for start in range(0, len(ordered), 500):
            query = sa.select(incident_links).where(
                incident_links.c.incident_id.in_(ordered[start:start + 500]))
            found.extend(_link(row) for row in self._connection.execute(query).mappings())
        return found

    def for_connector(self, connector_id: str, *, limit: int) -> list[Link]:
        query = (sa.select(incident_links)
                 .where(incident_links.c.connector_id == connector_id)
                 .order_by(incident_links.c.created_at.desc()).limit(limit))
        return [_link(row) for row in self._connection.execute(query).mappings()]

    def put(self, link: Link) -> None:
        values = {
            "kind": link.kind, "external_id": link.external_id, "url": link.url,
            "state": dict(link.state), "updated_at": link.updated_at,
            "reconciled_at": link.reconciled_at,
        }
        updated = self._connection.execute(incident_links.update().where(
            incident_links.c.connector_id == link.connector_id,
            incident_links.c.incident_id == link.incident_id,
        ).values(**values)).rowcount
        if not updated:
            self._connection.execute(incident_links.insert().values(
                id=link.id, connector_id=link.connector_id, incident_id=link.incident_id,
                created_at=link.created_at, **values))

    def due_for_reconcile(self, connector_ids: Sequence[str], before: datetime,
                          resolved_after: datetime, limit: int) -> list[Link]:
        if not connector_ids:
            return []
        query = (
            sa.select(incident_links)
            .join(incidents, incidents.c.id == incident_links.c.incident_id)
            .where(
                incident_links.c.connector_id.in_(list(connector_ids)),
                sa.or_(incident_links.c.reconciled_at.is_(None),
                       incident_links.c.reconciled_at < before),
                sa.or_(incidents.c.resolved_at.is_(None),
                       incidents.c.resolved_at > resolved_after),
            )
            .order_by(incident_links.c.reconciled_at.is_not(None),
                      incident_links.c.reconciled_at)
            .limit(limit)
        )
        return [_link(row) for row in self._connection.execute(query).mappings()]

    def mark_reconciled(self, link_ids: Sequence[str], at: datetime) -> None:
        if link_ids:
            self._connection.execute(incident_links.update().where(
                incident_links.c.id.in_(list(link_ids))).values(reconciled_at=at))


def _link(row: sa.RowMapping) -> Link:
    return Link(
        id=row["id"], connector_id=row["connector_id"], incident_id=row["incident_id"],
        kind=row["kind"], external_id=row["external_id"], url=row["url"],
        state=row["state"], created_at=row["created_at"], updated_at=row["updated_at"],
        reconciled_at=row["reconciled_at"],
    )


class SqlSyncJobs:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"
        #: True once this transaction queued jobs; the store wakes workers on commit.
        self.inserted = False

    def insert_many(self, jobs: Sequence[SyncJob]) -> None:
        if jobs:
            self.inserted = True
            time = bulk.Prebuilt.time(self._connection.dialect)
            _INSERT_JOBS.executemany(self._connection, [
                (job.id, job.connector_id, job.incident_id, job.kind.value, job.event_id,
                 job.reason, job.status.value, job.attempts, time(job.next_attempt_at),
                 job.last_error, time(job.created_at), time(job.created_at))
                for job in jobs])

    def pending_pairs(self, connector_ids: Collection[str], incident_ids: Collection[str]
                      ) -> set[tuple[str, str]]:
        if not incident_ids or not connector_ids:
            return set()
        serialise_fan_out(self._connection, SYNC_JOBS_FAN_OUT)
        # Both keys: the (connector, incident, ...) index is searched, not read whole.
        query = sa.select(sync_jobs.c.connector_id, sync_jobs.c.incident_id).where(
            bulk.one_of(sync_jobs.c.connector_id, "connectors", sorted(connector_ids)),
            bulk.one_of(sync_jobs.c.incident_id, "incidents", sorted(incident_ids)),
            sync_jobs.c.status == _PENDING,
        )
        if self._postgres:
            query = query.with_for_update()
        return {(row[0], row[1]) for row in self._connection.execute(query)}

    def unstarted_pairs(self, connector_ids: Collection[str], incident_ids: Collection[str],
                        kind: JobKind) -> set[tuple[str, str]]:
        """(connector, incident) pairs with a job of ``kind`` not yet started."""
        if not incident_ids or not connector_ids:
            return set()
        query = sa.select(sync_jobs.c.connector_id, sync_jobs.c.incident_id).where(
            sync_jobs.c.connector_id.in_(sorted(connector_ids)),
            sync_jobs.c.incident_id.in_(sorted(incident_ids)),
            sync_jobs.c.status == _PENDING, sync_jobs.c.kind == kind.value,
            sync_jobs.c.attempts == 0, sync_jobs.c.lease_owner.is_(None))
        return {(row[0], row[1]) for row in self._connection.execute(query)}

    def waiting(self, connector_id: str, incident_id: str, kind: JobKind) -> bool:
        query = sa.select(sync_jobs.c.id).where(
            sync_jobs.c.connector_id == connector_id,
            sync_jobs.c.incident_id == incident_id,
            sync_jobs.c.status == _PENDING,
            sync_jobs.c.kind == kind.value,
            sync_jobs.c.attempts == 0,
            sync_jobs.c.lease_owner.is_(None),
        ).limit(1)
        return self._connection.execute(query).first() is not None

    def claim(self, owner: str, now: datetime, lease_until: datetime, limit: int,
              exclude_connectors: Sequence[str] = (), paced_kinds: Collection[str] = ()
              ) -> list[SyncJob]:
        due = (
            sa.select(sync_jobs.c.position)
            .where(
                is_pending(sync_jobs),
                sync_jobs.c.next_attempt_at <= now,
                sa.or_(sync_jobs.c.lease_expires_at.is_(None),
                       sync_jobs.c.lease_expires_at <= now),
            )
            .order_by(sync_jobs.c.next_attempt_at, sync_jobs.c.position)
            .limit(limit)
        )
        disabled = self._connection.execute(
            sa.select(connectors.c.id).where(connectors.c.enabled.is_(False))).scalars().all()
        held: list[str] = []
        if paced_kinds:
            serialise_fan_out(self._connection, SYNC_JOBS_CLAIM)
            held = self.held_elsewhere(owner, now, paced_kinds)
        skipped = sorted({*exclude_connectors, *disabled, *held})
        if skipped:
            due = due.where(sync_jobs.c.connector_id.not_in(skipped))
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        rows = self._connection.execute(
            sync_jobs.update().where(sync_jobs.c.position.in_(due))
            .values(lease_owner=owner, lease_expires_at=lease_until)
            .returning(*sync_jobs.c)
        ).mappings().all()
        return sorted((_job(row) for row in rows), key=lambda job: job.created_at)

    def held_elsewhere(self, owner: str, now: datetime, kinds: Collection[str]) -> list[str]:
        # Each connector's probe walks the jobs leased until after now
        # (ix_sync_jobs_leased): the lanes' few, not the thousands due behind them in a
        # storm, which a walk of its due jobs stepped over whenever no other worker held
        # one (always, with one worker). A job is leased only when due, so whether it is
        # due is not asked: asked, it led the planner to walk the due jobs again.
        leased = _has_job(sync_jobs.c.lease_expires_at > now,
                          sync_jobs.c.lease_owner != owner)
        return list(self._connection.execute(
            sa.select(connectors.c.id).where(connectors.c.enabled.is_(True),
                                             connectors.c.kind.in_(sorted(kinds)), leased)
        ).scalars())

    def any_due(self, now: datetime, exclude_connectors: Sequence[str] = ()) -> bool:
        # Jobs leased and waiting in a paced lane are due too: without the lease test,
        # every look in a storm found "something" and opened a write that claimed nothing.
        return self._connection.execute(_ANY_DUE, {
            "now": now, "excluded": sorted(exclude_connectors)}).first() is not None

    def complete(self, owner: str, outcomes: Sequence[JobOutcome], at: datetime) -> None:
        if not outcomes:
            return
        self._connection.execute(
            sync_jobs.update()
            .where(sync_jobs.c.id == sa.bindparam("b_id"),
                   sync_jobs.c.lease_owner == sa.bindparam("b_owner"))
            .values(status=sa.bindparam("b_status"), attempts=sa.bindparam("b_attempts"),
                    next_attempt_at=sa.bindparam("b_next"), last_error=sa.bindparam("b_error"),
                    lease_owner=None, lease_expires_at=None, updated_at=at),
            [{"b_id": outcome.job.id, "b_owner": owner, "b_status": outcome.status.value,
              "b_attempts": outcome.job.attempts + 1, "b_next": outcome.next_attempt_at,
              "b_error": outcome.error} for outcome in outcomes],
        )
        finished = [
            {"p_lane": outcome.job.connector_id, "p_incident": outcome.job.incident_id,
             "p_at": at}
            for outcome in outcomes if outcome.status is not JobStatus.PENDING
        ]
        if finished:
            self._connection.execute(_PROMOTE, finished)

    def get(self, job_id: str) -> SyncJob | None:
        row = self._connection.execute(
            sa.select(sync_jobs).where(sync_jobs.c.id == job_id)).mappings().first()
        return _job(row) if row else None

    def counts(self, connector_id: str) -> dict[str, int]:
        rows = self._connection.execute(
            sa.select(sync_jobs.c.status, sa.func.count())
            .where(sync_jobs.c.connector_id == connector_id)
            .group_by(sync_jobs.c.status)
        ).all()
        counts = {status.value: 0 for status in JobStatus}
        counts.update({row[0]: row[1] for row in rows})
        return counts


def _job(row: sa.RowMapping) -> SyncJob:
    return SyncJob(
        id=row["id"], connector_id=row["connector_id"], incident_id=row["incident_id"],
        kind=JobKind(row["kind"]), status=JobStatus(row["status"]), attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"], created_at=row["created_at"],
        reason=row["reason"], event_id=row["event_id"], last_error=row["last_error"],
    )


class SqlConnectorActivity:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def append(self, items: Sequence[Activity]) -> None:
        if items:
            self._connection.execute(connector_activity.insert(), [
                {"id": item.id, "connector_id": item.connector_id, "at": item.at,
                 "direction": item.direction.value, "action": item.action,
                 "outcome": item.outcome.value, "summary": item.summary[:4000],
                 "incident_id": item.incident_id, "job_id": item.job_id,
                 "attempt": item.attempt, "calls": [call.to_dict() for call in item.calls],
                 "error": item.error, "next_attempt_at": item.next_attempt_at}
                for item in items
            ])

    def list(self, connector_id: str, *, before: int | None, limit: int,
             incident_id: str | None = None) -> list[tuple[int, Activity]]:
        query = (sa.select(connector_activity)
                 .where(connector_activity.c.connector_id == connector_id)
                 .order_by(connector_activity.c.position.desc()).limit(limit))
        if before is not None:
            query = query.where(connector_activity.c.position < before)
        if incident_id is not None:
            query = query.where(connector_activity.c.incident_id == incident_id)
        return [(row["position"], _activity(row))
                for row in self._connection.execute(query).mappings()]


def _activity(row: sa.RowMapping) -> Activity:
    return Activity(
        id=row["id"], connector_id=row["connector_id"], at=row["at"],
        direction=Direction(row["direction"]), action=row["action"],
        outcome=Outcome(row["outcome"]), summary=row["summary"],
        incident_id=row["incident_id"], job_id=row["job_id"], attempt=row["attempt"],
        calls=tuple(Call(**call) for call in row["calls"]), error=row["error"],
        next_attempt_at=row["next_attempt_at"],
    )


class SqlHookReceipts:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def add(self, connector_id: str, delivery_id: str, at: datetime) -> bool:
        try:
            with self._connection.begin_nested():
                self._connection.execute(hook_receipts.insert().values(
                    connector_id=connector_id, delivery_id=delivery_id[:200], received_at=at))
        except sa.exc.IntegrityError:
            return False
        return True

    def purge(self, older_than: datetime) -> int:
        return self._connection.execute(
            hook_receipts.delete().where(hook_receipts.c.received_at < older_than)).rowcount
