"""Received payloads (the ingest queue), alerts and correlation rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.domain.alerts import Alert, AlertStatus, PayloadStatus, ReceivedPayload
from interlock.domain.incidents import Severity
from interlock.store.records import EVENTS_CHANNEL
from interlock.store.tables import alerts, correlations, payloads, sources

_PENDING = PayloadStatus.PENDING.value
# Built once: correlation runs these for every alert of every payload.
_FIND_ALERT = sa.select(alerts).where(alerts.c.source_id == sa.bindparam("b_source"),
                                      alerts.c.fingerprint == sa.bindparam("b_fingerprint"))
_SAVE_ALERT = alerts.update().where(alerts.c.id == sa.bindparam("b_id"))
_FIND_CORRELATION = sa.select(correlations.c.incident_id).where(
    correlations.c.source_id == sa.bindparam("b_source"),
    correlations.c.group_key == sa.bindparam("b_key"))
_SAVE_CORRELATION = correlations.update().where(
    correlations.c.source_id == sa.bindparam("b_source"),
    correlations.c.group_key == sa.bindparam("b_key"))


class SqlPayloads:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"
        #: True once this transaction stored payloads; the store wakes workers on commit.
        self.inserted = False

    def insert_many(self, items: Sequence[ReceivedPayload]) -> None:
        if not items:
            return
        if self._postgres and not self.inserted:
            self._connection.exec_driver_sql(f"NOTIFY {EVENTS_CHANNEL}")
        self.inserted = True
        self._connection.execute(payloads.insert(), [_payload_row(item) for item in items])

    def claim(self, owner: str, now: datetime, lease_until: datetime, limit: int
              ) -> list[ReceivedPayload]:
        """Lease the oldest pending payloads of sources no other worker is busy with.

        A source is ready when it has pending payloads and none of them is leased; on
        PostgreSQL its row is locked (SKIP LOCKED) for the claim, so two workers never
        lease payloads of one source at once and each source's payloads are applied in
        the order they arrived. Every lookup is an index probe on pending payloads: the
        cost does not grow with the payloads already processed.
        """
        pending = sa.exists().where(payloads.c.source_id == sources.c.id,
                                    payloads.c.status == _PENDING)
        leased = sa.exists().where(payloads.c.source_id == sources.c.id,
                                   payloads.c.status == _PENDING,
                                   payloads.c.lease_expires_at > now)
        ready = sa.select(sources.c.id).where(pending, ~leased)
        if self._postgres:
            ready = ready.with_for_update(skip_locked=True)
        source_ids = list(self._connection.execute(ready).scalars())
        if not source_ids:
            return []
        oldest = (sa.select(payloads.c.position)
                  .where(payloads.c.status == _PENDING, payloads.c.source_id.in_(source_ids))
                  .order_by(payloads.c.position).limit(limit))
        rows = self._connection.execute(
            payloads.update().where(payloads.c.position.in_(oldest))
            .values(lease_owner=owner, lease_expires_at=lease_until,
                    attempts=payloads.c.attempts + 1)
            .returning(*payloads.c)
        ).mappings().all()
        return sorted((_payload(row) for row in rows), key=lambda payload: payload.position)

    def finish(self, payload: ReceivedPayload, owner: str) -> None:
        self._connection.execute(
            payloads.update()
            .where(payloads.c.id == payload.id, payloads.c.lease_owner == owner)
            .values(status=payload.status.value, error=payload.error, alerts=payload.alerts,
                    dropped=payload.dropped, suppressed=payload.suppressed,
                    processed_at=payload.processed_at, lease_owner=None,
                    lease_expires_at=None)
        )

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

    def find(self, source_id: str, fingerprint: str) -> Alert | None:
        row = self._connection.execute(
            _FIND_ALERT, {"b_source": source_id, "b_fingerprint": fingerprint}
        ).mappings().first()
        return _alert(row) if row else None

    def insert(self, alert: Alert) -> None:
        self._connection.execute(alerts.insert(), _alert_row(alert))

    def save(self, alert: Alert) -> None:
        values = _alert_row(alert)
        del values["source_id"], values["fingerprint"]
        values["b_id"] = values.pop("id")
        self._connection.execute(_SAVE_ALERT, values)

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

    def get(self, source_id: str, group_key: str) -> str | None:
        found: str | None = self._connection.execute(
            _FIND_CORRELATION, {"b_source": source_id, "b_key": group_key}
        ).scalar()
        return found

    def put(self, source_id: str, group_key: str, incident_id: str, at: datetime) -> None:
        updated = self._connection.execute(_SAVE_CORRELATION, {
            "b_source": source_id, "b_key": group_key, "incident_id": incident_id,
            "updated_at": at}).rowcount
        if not updated:
            self._connection.execute(correlations.insert(), {
                "source_id": source_id, "group_key": group_key, "incident_id": incident_id,
                "updated_at": at})


def _payload_row(payload: ReceivedPayload) -> dict[str, Any]:
    return {
        "id": payload.id,
        "source_id": payload.source_id,
        "received_at": payload.received_at,
        "content_type": payload.content_type,
        "body": payload.body,
        "status": payload.status.value,
        "error": payload.error,
        "alerts": payload.alerts,
        "dropped": payload.dropped,
        "suppressed": payload.suppressed,
        "attempts": payload.attempts,
        "processed_at": payload.processed_at,
    }


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


def _alert_row(alert: Alert) -> dict[str, Any]:
    row = {field.name: getattr(alert, field.name) for field in dataclasses.fields(alert)}
    row.update(status=alert.status.value, severity=alert.severity.value,
               labels=dict(alert.labels), annotations=dict(alert.annotations))
    return row


def _alert(row: sa.RowMapping) -> Alert:
    values = {field.name: row[field.name] for field in dataclasses.fields(Alert)}
    values.update(status=AlertStatus(row["status"]), severity=Severity(row["severity"]))
    return Alert(**values)
