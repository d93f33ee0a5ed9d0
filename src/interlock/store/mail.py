"""The outgoing mail queue: leased like the delivery queue (one UPDATE … RETURNING over
a partial index of pending rows; SKIP LOCKED on PostgreSQL), without per-incident
order (each message stands alone)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from interlock.domain.mail import MailKind, MailOutcome, MailStatus, OutgoingMail
from interlock.store.tables import is_pending, outgoing_mail

_COMPLETE = (
    outgoing_mail.update()
    .where(outgoing_mail.c.id == sa.bindparam("b_id"),
           outgoing_mail.c.lease_owner == sa.bindparam("b_owner"))
    .values(status=sa.bindparam("b_status"), attempts=outgoing_mail.c.attempts + 1,
            next_attempt_at=sa.bindparam("b_next"), last_error=sa.bindparam("b_error"),
            sent_at=sa.bindparam("b_sent"), updated_at=sa.bindparam("b_at"),
            lease_owner=None, lease_expires_at=None)
)


class SqlMail:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"
        #: True once this transaction queued mail; the store wakes workers on commit.
        self.inserted = False

    def insert_many(self, items: Sequence[OutgoingMail]) -> None:
        if not items:
            return
        self.inserted = True
        self._connection.execute(outgoing_mail.insert(), [
            {"id": mail.id, "recipient": mail.recipient, "subject": mail.subject,
             "body": mail.body, "headers": dict(mail.headers), "kind": mail.kind.value,
             "subscriber_id": mail.subscriber_id, "status": mail.status.value,
             "attempts": mail.attempts, "next_attempt_at": mail.next_attempt_at,
             "last_error": mail.last_error, "created_at": mail.created_at,
             "updated_at": mail.created_at, "sent_at": mail.sent_at}
            for mail in items
        ])

    def claim(self, owner: str, now: datetime, lease_until: datetime, limit: int
              ) -> list[OutgoingMail]:
        due = (
            sa.select(outgoing_mail.c.position)
            .where(is_pending(outgoing_mail),
                   outgoing_mail.c.next_attempt_at <= now,
                   sa.or_(outgoing_mail.c.lease_expires_at.is_(None),
                          outgoing_mail.c.lease_expires_at <= now))
            .order_by(outgoing_mail.c.next_attempt_at, outgoing_mail.c.position)
            .limit(limit)
        )
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        rows = self._connection.execute(
            outgoing_mail.update().where(outgoing_mail.c.position.in_(due))
            .values(lease_owner=owner, lease_expires_at=lease_until)
            .returning(*outgoing_mail.c)
        ).mappings().all()
        return [_mail(row) for row in sorted(rows, key=lambda row: row["position"])]

    def any_due(self, now: datetime) -> bool:
        query = sa.select(outgoing_mail.c.position).where(
            is_pending(outgoing_mail), outgoing_mail.c.next_attempt_at <= now
        ).limit(1)
        return self._connection.execute(query).first() is not None

    def complete(self, owner: str, outcomes: Sequence[MailOutcome]) -> None:
        if outcomes:
            self._connection.execute(_COMPLETE, [
                {"b_id": item.mail.id, "b_owner": owner, "b_status": item.status.value,
                 "b_next": item.next_attempt_at, "b_error": item.error,
                 "b_sent": item.at if item.status is MailStatus.SENT else None,
                 "b_at": item.at}
                for item in outcomes
            ])

    def get(self, mail_id: str) -> OutgoingMail | None:
        row = self._connection.execute(
            sa.select(outgoing_mail).where(outgoing_mail.c.id == mail_id)).mappings().first()
        return _mail(row) if row else None

    def list(self, *, before: int | None, limit: int, status: MailStatus | None = None,
             subscriber_id: str | None = None) -> list[tuple[int, OutgoingMail]]:
        query = sa.select(outgoing_mail).order_by(outgoing_mail.c.position.desc()).limit(limit)
        if before is not None:
            query = query.where(outgoing_mail.c.position < before)
        if status is not None:
            query = query.where(outgoing_mail.c.status == status.value)
        if subscriber_id is not None:
            query = query.where(outgoing_mail.c.subscriber_id == subscriber_id)
        return [(row["position"], _mail(row))
                for row in self._connection.execute(query).mappings()]

    def counts(self) -> dict[str, int]:
        rows = self._connection.execute(
            sa.select(outgoing_mail.c.status, sa.func.count())
            .group_by(outgoing_mail.c.status)).all()
        counts = {status.value: 0 for status in MailStatus}
        counts.update({row[0]: row[1] for row in rows})
        return counts


def _mail(row: sa.RowMapping) -> OutgoingMail:
    return OutgoingMail(
        id=row["id"], recipient=row["recipient"], subject=row["subject"], body=row["body"],
        kind=MailKind(row["kind"]), created_at=row["created_at"],
        headers=dict(row["headers"] or {}), subscriber_id=row["subscriber_id"],
        status=MailStatus(row["status"]), attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"], last_error=row["last_error"],
        sent_at=row["sent_at"],
    )
