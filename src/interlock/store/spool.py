"""The ingest spool: where, on SQLite, received payloads wait for the alert worker.

SQLite has one writer at a time, and the ingest group commit took turns at it with the
worker processes: in a storm every sender's ``202`` waited for the alert worker's
transaction under way (bench/ingest.py, one alert per POST: p50 10 ms, p99 140-530 ms),
and the storm's senders, holding at most so many requests open, sent less.

So where worker processes share the database file, ingest commits to a file of its own
beside it, ``<database>-ingest`` (SQLite too, WAL, the same ``synchronous``: a payload
is as durable when the ``202`` goes out as before). Nothing but ingest writes to it, so
a commit waits only for another ingest commit. The alert worker takes what waits there
oldest first, and stores and applies a batch in one transaction of the database
(``services.processing``; a payload stored before, by a batch repeated after a crash,
is left out, and since every batch is a prefix of the spool in order, a payload never
lands ahead of an earlier one of its source). A batch that fails is moved into the
payloads table as pending instead (``INSERT OR IGNORE`` by id), to be taken one payload
at a time. Either way the spool forgets the batch once that has committed; until then
the payload is listed as pending from the spool.

Writers across processes take turns by ``flock`` on the spool file, as the database's
writers do (store.locks), never by SQLite's sleeping busy handler.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime

from interlock.domain.alerts import PayloadStatus, ReceivedPayload
from interlock.domain.errors import StoreUnavailable
from interlock.store.locks import FileLock

#: Version of the spool's schema (``PRAGMA user_version``); a spool of another version is
#: refused rather than misread.
VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    processed_at TEXT
)"""
_COLUMNS = "id, source_id, received_at, content_type, body, status, error, processed_at"
_INSERT = f"INSERT INTO received ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_OLDEST = f"SELECT seq, {_COLUMNS} FROM received ORDER BY seq LIMIT ?"
_NEWEST_OF = (f"SELECT seq, {_COLUMNS} FROM received WHERE source_id = ? "
              "ORDER BY seq DESC LIMIT ?")


def spool_path(database_file: str) -> str:
    return f"{database_file}-ingest"


class IngestSpool:
    def __init__(self, database_file: str, synchronous: str = "NORMAL") -> None:
        self.path = spool_path(database_file)
        self._synchronous = synchronous
        self._file = FileLock(self.path)
        self._writing = threading.Lock()
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._create()

    def append(self, payloads: Sequence[ReceivedPayload]) -> None:
        """Commit ``payloads``: once this returns, they survive a crash."""
        rows = [(item.id, item.source_id, item.received_at.isoformat(), item.content_type,
                 item.body, item.status.value, item.error,
                 item.processed_at.isoformat() if item.processed_at else None)
                for item in payloads]
        with self._write() as connection:
            connection.executemany(_INSERT, rows)

    def oldest(self, limit: int) -> list[tuple[int, ReceivedPayload]]:
        """Up to ``limit`` waiting payloads, oldest first, each with its place in the
        spool (for :meth:`remove`)."""
        with self._connection() as connection:
            rows = connection.execute(_OLDEST, (limit,)).fetchall()
        return [(row[0], _payload(row)) for row in rows]

    def newest(self, source_id: str, limit: int) -> list[ReceivedPayload]:
        """Up to ``limit`` of a source's waiting payloads, newest first."""
        with self._connection() as connection:
            rows = connection.execute(_NEWEST_OF, (source_id, limit)).fetchall()
        return [_payload(row) for row in rows]

    def remove(self, through: int) -> None:
        """Forget the payloads up to and including place ``through`` (they are moved)."""
        with self._write() as connection:
            connection.execute("DELETE FROM received WHERE seq <= ?", (through,))

    def close(self) -> None:
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._file.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._writing, self._connection() as connection:
            self._file.__enter__()
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            finally:
                self._file.__exit__()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = self._open()
        try:
            yield connection
        except sqlite3.Error as error:
            raise StoreUnavailable(f"the ingest spool {self.path} failed: {error}") from error
        finally:
            self._idle.put(connection)

    def _open(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                         check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
        except sqlite3.Error as error:
            raise StoreUnavailable(f"cannot open the ingest spool {self.path}: {error}"
                                   ) from error
        self._all.append(connection)
        return connection

    def _create(self) -> None:
        with self._write() as connection:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, VERSION):
                raise StoreUnavailable(
                    f"the ingest spool {self.path} is of version {version}, this release "
                    f"reads {VERSION}; move it away once it is empty")
            connection.execute(_SCHEMA)
            connection.execute(f"PRAGMA user_version={VERSION}")


def _payload(row: tuple[object, ...]) -> ReceivedPayload:
    _, payload_id, source_id, received_at, content_type, body, status, error, processed = row
    return ReceivedPayload(
        id=str(payload_id), source_id=str(source_id),
        received_at=datetime.fromisoformat(str(received_at)),
        content_type=str(content_type), body=bytes(body),  # type: ignore[call-overload]
        status=PayloadStatus(str(status)), error=None if error is None else str(error),
        processed_at=datetime.fromisoformat(str(processed)) if processed else None)
