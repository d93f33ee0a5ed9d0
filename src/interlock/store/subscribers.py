"""Status page subscriber rows."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from interlock.domain.errors import ConcurrentUpdate
from interlock.domain.subscribers import Subscriber, SubscriberKind, SubscriberStatus
from interlock.store.tables import status_subscribers

_COLUMNS = status_subscribers.c


class SqlSubscribers:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def insert(self, subscriber: Subscriber) -> None:
        try:
            with self._connection.begin_nested():
                self._connection.execute(status_subscribers.insert(), _row(subscriber))
        except sa.exc.IntegrityError as error:
            raise ConcurrentUpdate("this address subscribed at the same moment") from error

    def save(self, subscriber: Subscriber) -> None:
        self._connection.execute(status_subscribers.update()
                                 .where(_COLUMNS.id == subscriber.id).values(_row(subscriber)))

    def get(self, subscriber_id: str) -> Subscriber | None:
        row = self._connection.execute(
            sa.select(status_subscribers).where(_COLUMNS.id == subscriber_id)
        ).mappings().first()
        return _subscriber(row) if row else None

    def find_email(self, page_id: str, email: str) -> Subscriber | None:
        row = self._connection.execute(
            sa.select(status_subscribers).where(
                _COLUMNS.page_id == page_id,
                sa.func.lower(_COLUMNS.email) == email.lower())
        ).mappings().first()
        return _subscriber(row) if row else None

    def delete(self, subscriber_id: str) -> bool:
        return bool(self._connection.execute(
            status_subscribers.delete().where(_COLUMNS.id == subscriber_id)).rowcount)

    def confirmed(self, page_ids: Collection[str]) -> list[Subscriber]:
        if not page_ids:
            return []
        query = (sa.select(status_subscribers)
                 .where(_COLUMNS.page_id.in_(sorted(page_ids)),
                        _COLUMNS.status == SubscriberStatus.CONFIRMED.value)
                 .order_by(_COLUMNS.id))
        return [_subscriber(row) for row in self._connection.execute(query).mappings()]

    def list(self, page_id: str, *, after: str | None, limit: int) -> list[Subscriber]:
        query = (sa.select(status_subscribers).where(_COLUMNS.page_id == page_id)
                 .order_by(_COLUMNS.id).limit(limit))
        if after is not None:
            query = query.where(_COLUMNS.id > after)
        return [_subscriber(row) for row in self._connection.execute(query).mappings()]


def _row(subscriber: Subscriber) -> dict[str, object]:
    return {
        "id": subscriber.id, "page_id": subscriber.page_id, "kind": subscriber.kind.value,
        "status": subscriber.status.value, "email": subscriber.email,
        "endpoint_id": subscriber.endpoint_id, "url": subscriber.url,
        "components": list(subscriber.components), "nonce": subscriber.nonce,
        "created_at": subscriber.created_at, "updated_at": subscriber.updated_at,
        "requested_at": subscriber.requested_at, "confirmed_at": subscriber.confirmed_at,
        "unsubscribed_at": subscriber.unsubscribed_at,
    }


def _subscriber(row: sa.RowMapping) -> Subscriber:
    return Subscriber(
        id=row["id"], page_id=row["page_id"], kind=SubscriberKind(row["kind"]),
        status=SubscriberStatus(row["status"]),
        components=tuple(str(item) for item in row["components"] or ()),
        nonce=row["nonce"], created_at=row["created_at"], updated_at=row["updated_at"],
        email=row["email"], endpoint_id=row["endpoint_id"], url=row["url"],
        requested_at=row["requested_at"], confirmed_at=row["confirmed_at"],
        unsubscribed_at=row["unsubscribed_at"],
    )
