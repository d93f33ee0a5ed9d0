"""A SQLite file's connections are kept open for every thread that may hold one.

Past the pool's size SQLAlchemy opened a fresh connection for a transaction and closed
it afterwards; a fresh SQLite connection runs its pragmas and reads the schema before
its first query, which doubled the API's CPU for reading an incident under 16
concurrent requests. Here as many threads as the API runs by default, plus a worker's
few, hold transactions at once, again and again: the database is opened once per
thread, not once per transaction.
"""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from interlock.config import Settings
from interlock.store.engine import SQLITE_POOL_SIZE, create_engine
from interlock.store.sql import SqlStore


def test_concurrent_transactions_reuse_their_connections(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    opened: list[object] = []
    sa.event.listen(engine, "connect", lambda connection, _record: opened.append(connection))
    store = SqlStore(engine)
    holders = Settings().api_threads + 4  # the API's threads and a worker's
    assert holders <= SQLITE_POOL_SIZE
    everyone_in = threading.Barrier(holders, timeout=30)

    def hold() -> None:
        for _ in range(5):
            with store.transaction() as tx:
                tx.connection.execute(sa.text("SELECT 1"))
                everyone_in.wait()  # all of them hold a connection at this moment
            everyone_in.wait()

    threads = [threading.Thread(target=hold) for _ in range(holders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    store.close()
    assert not any(thread.is_alive() for thread in threads)
    assert len(opened) == holders
