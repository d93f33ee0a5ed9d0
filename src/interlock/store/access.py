"""API keys, idempotency records, one-time flags and counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from interlock.domain.errors import ConcurrentUpdate
from interlock.domain.keys import ApiKey, Scope
from interlock.ports.store import StoredResponse
from interlock.store.tables import api_keys, flags, idempotency_keys

_BY_DIGEST = sa.select(api_keys).where(api_keys.c.digest == sa.bindparam("digest"))


class SqlKeys:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def insert(self, key: ApiKey, digest: str) -> None:
        self._connection.execute(
            api_keys.insert().values(
                id=key.id,
                name=key.name,
                digest=digest,
                prefix=key.prefix,
                scopes=sorted(scope.value for scope in key.scopes),
                created_at=key.created_at,
                revoked_at=key.revoked_at,
            )
        )

    def find_by_digest(self, digest: str) -> ApiKey | None:
        row = self._connection.execute(_BY_DIGEST, {"digest": digest}).mappings().first()
        return _key(row) if row else None

    def get(self, key_id: str) -> ApiKey | None:
        row = self._connection.execute(
            sa.select(api_keys).where(api_keys.c.id == key_id)
        ).mappings().first()
        return _key(row) if row else None

    def lock_active(self) -> list[ApiKey]:
        rows = self._connection.execute(
            sa.select(api_keys).where(api_keys.c.revoked_at.is_(None))
            .order_by(api_keys.c.id).with_for_update()
        )
        return [_key(row) for row in rows.mappings()]

    def list(self) -> list[ApiKey]:
        rows = self._connection.execute(sa.select(api_keys).order_by(api_keys.c.created_at))
        return [_key(row) for row in rows.mappings()]

    def revoke(self, key_id: str, at: datetime) -> None:
        self._connection.execute(
            api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=at)
        )


class SqlIdempotency:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def get(self, owner: str, key: str) -> StoredResponse | None:
        row = self._connection.execute(
            sa.select(idempotency_keys).where(
                idempotency_keys.c.owner == owner, idempotency_keys.c.key == key
            )
        ).mappings().first()
        if row is None:
            return None
        return StoredResponse(row["fingerprint"], row["status_code"], row["body"])

    def put(self, owner: str, key: str, response: StoredResponse, at: datetime) -> None:
        try:
            self._connection.execute(
                idempotency_keys.insert().values(
                    owner=owner,
                    key=key,
                    fingerprint=response.fingerprint,
                    status_code=response.status_code,
                    body=response.body,
                    created_at=at,
                )
            )
        except sa.exc.IntegrityError as error:
            raise ConcurrentUpdate("the Idempotency-Key was stored by another request") from error

    def purge(self, older_than: datetime) -> int:
        result = self._connection.execute(
            idempotency_keys.delete().where(idempotency_keys.c.created_at < older_than)
        )
        return result.rowcount


_COUNTER = sa.select(flags.c.value).where(flags.c.name == sa.bindparam("name"))


class SqlFlags:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def counter(self, name: str) -> int:
        value = self._connection.execute(_COUNTER, {"name": name}).scalar()
        return int(value) if value is not None else 0

    def increment(self, name: str) -> None:
        self._connection.execute(
            _INCREMENT[self._connection.dialect.name], {"name": name})

    def claim(self, name: str, value: str) -> bool:
        try:
            with self._connection.begin_nested():
                self._connection.execute(flags.insert().values(name=name, value=value))
        except sa.exc.IntegrityError:
            return False
        return True


def _key(row: sa.RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scopes=frozenset(Scope(scope) for scope in row["scopes"]),
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def _increment(insert: Any) -> Any:
    statement = insert(flags).values(name=sa.bindparam("name"), value="1")
    return statement.on_conflict_do_update(
        index_elements=[flags.c.name],
        set_={"value": sa.cast(sa.cast(flags.c.value, sa.BigInteger) + 1, sa.Text)})


#: One statement per dialect: the counter's row made at 1, or its value plus one.
_INCREMENT = {"sqlite": _increment(sqlite_insert), "postgresql": _increment(postgresql_insert)}
