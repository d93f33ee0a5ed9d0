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

A commit that waits for no one and flushes nothing to disk (``synchronous`` NORMAL or
OFF: in WAL mode such a commit is a write into the page cache) costs less than handing
it to a thread and back, so the API's event loop makes it itself (:meth:`append_now`).
Only a batch of at most :data:`AT_ONCE_PAGES`; its connection never checkpoints (that
flushes to disk): once commits made so have written about as many pages to the log as
SQLite's automatic checkpoint waits for, the next commit is left to a thread, whose
connection checkpoints after it as SQLite does by default.
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
#: The most a commit made at once (append_now) writes, in pages (of 4 KiB).
AT_ONCE_PAGES = 128
#: Pages written to the log by commits made at once before one is left to a thread,
#: which checkpoints it (SQLite's automatic checkpoint, at 1,000 pages by default).
CHECKPOINT_PAGES = 1000
#: Pages a commit writes besides its bodies' (measured: a one-row commit of 3 KB wrote
#: 4 to the log).
_PAGES_A_COMMIT = 4
_PAGE = 4096
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
        #: The connection of append_now: it neither waits nor checkpoints.
        self._at_once: sqlite3.Connection | None = None
        #: Whether a commit flushes nothing to disk, so that append_now may make it.
        self._flushes_nothing = synchronous.upper() in ("NORMAL", "OFF")
        #: About how many pages commits made by append_now wrote since the last
        #: commit made by a thread.
        self._unflushed = 0

    def append(self, payloads: Sequence[ReceivedPayload]) -> None:
        """Commit ``payloads``: once this returns, they survive a crash."""
        with self._write() as connection:
            connection.executemany(_INSERT, _rows(payloads))
            # This connection checkpoints once the log holds CHECKPOINT_PAGES, SQLite's
            # default, whoever wrote them.
            self._unflushed = 0

    def append_now(self, payloads: Sequence[ReceivedPayload]) -> bool:
        """Commit ``payloads`` as :meth:`append` does if that needs no wait for another
        writer and no flush to disk; whether it did (if not, nothing was written)."""
        pages = _pages(payloads)
        if not self._flushes_nothing or self._unflushed + pages > CHECKPOINT_PAGES \
                or pages > AT_ONCE_PAGES:
            return False
        if not self._writing.acquire(blocking=False):
            return False
        try:
            if not self._file.take_if_free():
                return False
            try:
                done = self._commit_at_once(_rows(payloads))
            finally:
                self._file.__exit__()
            if done:
                self._unflushed += pages
            return done
        finally:
            self._writing.release()

    def _commit_at_once(self, rows: list[tuple[object, ...]]) -> bool:
        try:
            if self._at_once is None:
                self._at_once = self._open(wait=False)
            connection = self._at_once
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # busy (a writer that takes no flock), or
                return False  # worse: a thread will wait, or raise
            with _committed(connection):
                connection.executemany(_INSERT, rows)
        except sqlite3.Error as error:
            raise StoreUnavailable(f"the ingest spool {self.path} failed: {error}") from error
        return True

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
        self._at_once = None
        self._file.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._writing, self._connection() as connection:
            self._file.__enter__()
            try:
                connection.execute("BEGIN IMMEDIATE")
                with _committed(connection):
                    yield connection
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

    def _open(self, wait: bool = True) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self.path, timeout=30 if wait else 0,
                                         isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            if not wait:
                connection.execute("PRAGMA wal_autocheckpoint=0")
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


@contextlib.contextmanager
def _committed(connection: sqlite3.Connection) -> Iterator[None]:
    """Commit the transaction begun on ``connection`` once the block is done; roll it
    back if the block or the commit fails, so the connection never keeps the write lock."""
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _pages(payloads: Sequence[ReceivedPayload]) -> int:
    """About how many pages committing ``payloads`` writes to the log."""
    return sum(len(payload.body) for payload in payloads) // _PAGE + _PAGES_A_COMMIT


def _rows(payloads: Sequence[ReceivedPayload]) -> list[tuple[object, ...]]:
    return [(item.id, item.source_id, item.received_at.isoformat(), item.content_type,
             item.body, item.status.value, item.error,
             item.processed_at.isoformat() if item.processed_at else None)
            for item in payloads]


def _payload(row: tuple[object, ...]) -> ReceivedPayload:
    _, payload_id, source_id, received_at, content_type, body, status, error, processed = row
    return ReceivedPayload(
        id=str(payload_id), source_id=str(source_id),
        received_at=datetime.fromisoformat(str(received_at)),
        content_type=str(content_type), body=bytes(body),  # type: ignore[call-overload]
        status=PayloadStatus(str(status)), error=None if error is None else str(error),
        processed_at=datetime.fromisoformat(str(processed)) if processed else None)
