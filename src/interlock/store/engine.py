"""Engines for SQLite and PostgreSQL from one ``INTERLOCK_DATABASE_URL``."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from interlock.domain import json_codec

WRITE_OPTION = "interlock_write"
#: Connections kept open to a SQLite file (see _sqlite_engine).
SQLITE_POOL_SIZE = 32
#: A PostgreSQL connection idle this long is pinged before it is used (_ping_when_idle).
PING_AFTER_IDLE_SECONDS = 2.0


def normalise_url(url: str) -> str:
    """Accept the URLs people type (``postgresql://``, ``postgres://``) and pick the
    psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def is_in_memory(url: str) -> bool:
    """A SQLite database that exists only inside one process."""
    return url in ("sqlite://", "sqlite:///:memory:")


#: JSON columns written and read with orjson where it gives what ``json`` would.
_JSON_CODEC: dict[str, Any] = {"json_serializer": json_codec.dumps,
                               "json_deserializer": json_codec.loads}


def create_engine(url: str, *, sqlite_synchronous: str = "NORMAL") -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, sqlite_synchronous)
    engine = sa.create_engine(url, pool_size=10, max_overflow=20, **_JSON_CODEC)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use if it has been idle PING_AFTER_IDLE_SECONDS;
    one found dead is replaced (a server restarted, or idle connections cut), and the
    transaction goes ahead on a new one.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip before every
    transaction, and in a storm of single-alert POSTs on PostgreSQL one in five of the
    API's round trips, each a wake-up of a server process on a busy machine. A
    connection in steady use needs none. One that dies while in use fails its
    transaction either way (StoreUnavailable), and the pool then replaces them all."""

    @sa.event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # any failure: the pool connects afresh
            raise sa.exc.DisconnectionError(f"an idle connection was dead: {error}") from error


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    in_memory = is_in_memory(url)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if in_memory:
        # One shared connection, or each connection would see its own empty database.
        kwargs["poolclass"] = StaticPool
    else:
        # Enough kept-open connections for every thread that may hold one at once (the
        # API's threads, the worker's): past the pool's size SQLAlchemy opens a fresh
        # connection and closes it again after the transaction, and a fresh SQLite
        # connection pays for its pragmas and for reading the schema before its first
        # query. With the default 5, a read of one incident under 16 concurrent
        # requests cost the API process about twice the CPU. An idle connection costs
        # a file handle; its page cache fills only as it is used.
        kwargs.update(pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
    engine = sa.create_engine(url, **kwargs, **_JSON_CODEC)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A writer takes the write lock first; a reader upgrading later would fail with
        # SQLITE_BUSY instead of waiting its turn.
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")

    return engine

