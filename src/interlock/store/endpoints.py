"""Webhook endpoint rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.domain.endpoints import Endpoint, SigningSecret
from interlock.domain.events import EventType
from interlock.store import bulk
from interlock.store.tables import endpoints

#: Read by every fan-out (see store.records): built once.
_ENABLED = sa.select(endpoints).where(endpoints.c.enabled.is_(True))
#: Run by every record of attempts.
_SUCCEEDED = (endpoints.update()
              .where(bulk.one_of(endpoints.c.id, "s_ids"))
              .values(failing_since=None, last_success_at=sa.bindparam("s_at")))
_ROUTING = (sa.select(endpoints.c.id, endpoints.c.event_types, endpoints.c.filter)
            .where(endpoints.c.enabled.is_(True)).order_by(endpoints.c.id))


class SqlEndpoints:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def insert(self, endpoint: Endpoint) -> None:
        self._connection.execute(endpoints.insert().values(**to_row(endpoint)))

    def get(self, endpoint_id: str) -> Endpoint | None:
        row = self._connection.execute(
            sa.select(endpoints).where(endpoints.c.id == endpoint_id)
        ).mappings().first()
        return from_row(row) if row else None

    def save(self, endpoint: Endpoint) -> None:
        values = to_row(endpoint)
        del values["id"], values["created_at"]
        self._connection.execute(
            endpoints.update().where(endpoints.c.id == endpoint.id).values(**values)
        )

    def delete(self, endpoint_id: str) -> bool:
        result = self._connection.execute(
            endpoints.delete().where(endpoints.c.id == endpoint_id)
        )
        return result.rowcount == 1

    def enabled(self) -> list[Endpoint]:
        return [from_row(row) for row in self._connection.execute(_ENABLED).mappings()]

    def enabled_routing(self) -> tuple[tuple[Any, ...], ...]:
        return tuple(tuple(row) for row in self._connection.execute(_ROUTING))

    def mark_succeeded(self, endpoint_ids: Sequence[str], at: datetime) -> None:
        if endpoint_ids:
            self._connection.execute(_SUCCEEDED, {"s_ids": list(endpoint_ids), "s_at": at})

    def list(self, *, after: str | None, limit: int) -> list[Endpoint]:
        query = sa.select(endpoints).order_by(endpoints.c.id).limit(limit)
        if after is not None:
            query = query.where(endpoints.c.id > after)
        return [from_row(row) for row in self._connection.execute(query).mappings()]


def to_row(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": sorted(event_type.value for event_type in endpoint.event_types),
        "filter": dict(endpoint.filter),
        "headers": dict(endpoint.headers),
        "template": endpoint.template,
        "timeout": endpoint.timeout,
        "rate_limit": endpoint.rate_limit,
        "secrets": [
            {"value": secret.value, "expires_at": _iso(secret.expires_at)}
            for secret in endpoint.secrets
        ],
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": endpoint.disabled_at,
        "failing_since": endpoint.failing_since,
        "last_success_at": endpoint.last_success_at,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


#: What read_many reads: the columns an endpoint is decoded from, then its health
#: columns, which the worker rewrites as it records attempts.
_HEALTH = ("failing_since", "last_success_at")
_DECODED_COLUMNS = tuple(column.name for column in endpoints.c if column.name not in _HEALTH)
_READ_MANY = (f"SELECT {', '.join(_DECODED_COLUMNS + _HEALTH)} FROM endpoints WHERE id")
_JSON_COLUMNS = frozenset({"event_types", "filter", "headers", "secrets"})
_TIME_COLUMNS = frozenset({"disabled_at", "created_at", "updated_at"})
#: Endpoints as read_many last decoded them, by id, with the columns they came from.
_DECODED: dict[str, tuple[tuple[Any, ...], Endpoint]] = {}
_DECODED_MAX = 1000


def read_many(connection: sa.Connection, ids: Collection[str]) -> dict[str, Endpoint]:
    """These endpoints by id (those that exist), read by the driver. One decoded before
    from the same columns is reused, with its health as read now: every claim of
    deliveries reads its endpoints, and decoding them (four JSON columns, the signing
    secrets) cost more than reading them."""
    decode = bulk.decoders(connection.dialect)
    found: dict[str, Endpoint] = {}
    width = len(_DECODED_COLUMNS)
    for row in connection.exec_driver_sql(f"{_READ_MANY}{decode.in_list}",
                                          (decode.any_of(sorted(ids)),)):
        columns = tuple(row[:width])
        failing_since, last_success_at = decode.time(row[width]), decode.time(row[width + 1])
        cached = _DECODED.get(columns[0])
        if cached is not None and cached[0] == columns:
            endpoint = cached[1]
            if (endpoint.failing_since, endpoint.last_success_at) != (
                    failing_since, last_success_at):
                endpoint = dataclasses.replace(endpoint, failing_since=failing_since,
                                               last_success_at=last_success_at)
        else:
            endpoint = from_row({
                **{name: _decoded(name, value, decode)
                   for name, value in zip(_DECODED_COLUMNS, columns, strict=True)},
                "failing_since": failing_since, "last_success_at": last_success_at})
            if len(_DECODED) >= _DECODED_MAX:
                _DECODED.clear()
        _DECODED[endpoint.id] = (columns, endpoint)
        found[endpoint.id] = endpoint
    return found


def _decoded(name: str, value: Any, decode: bulk.Decoders) -> Any:
    """A column's value as SQLAlchemy's column types would give it to from_row."""
    if value is None:
        return None
    if name in _JSON_COLUMNS:
        return decode.json(value)
    if name in _TIME_COLUMNS:
        return decode.time(value)
    if name == "enabled":
        return bool(value)
    return value


def from_row(row: sa.RowMapping | dict[str, Any]) -> Endpoint:
    return Endpoint(
        id=row["id"],
        url=row["url"],
        description=row["description"],
        event_types=frozenset(EventType(value) for value in row["event_types"]),
        filter=row["filter"] or {},
        headers=row["headers"] or {},
        template=row["template"],
        timeout=row["timeout"],
        rate_limit=row["rate_limit"],
        secrets=tuple(
            SigningSecret(item["value"], _parse(item["expires_at"])) for item in row["secrets"]
        ),
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        disabled_at=row["disabled_at"],
        failing_since=row["failing_since"],
        last_success_at=row["last_success_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
