"""Worker heartbeats: which worker processes run, and how each of their parts is doing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.ports.store import WorkerBeat
from interlock.store.tables import workers

_UPDATE = workers.update().where(workers.c.name == sa.bindparam("b_name"))


class SqlWorkers:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def beat(self, name: str, started_at: datetime, at: datetime,
             tasks: Mapping[str, Any]) -> None:
        if not self._connection.execute(_UPDATE, {"b_name": name, "beat_at": at,
                                                  "tasks": dict(tasks)}).rowcount:
            self._connection.execute(workers.insert(), {
                "name": name, "started_at": started_at, "beat_at": at, "tasks": dict(tasks)})

    def leave(self, name: str) -> None:
        self._connection.execute(workers.delete().where(workers.c.name == name))

    def seen_since(self, since: datetime) -> list[WorkerBeat]:
        query = sa.select(workers).where(workers.c.beat_at >= since).order_by(workers.c.name)
        return [WorkerBeat(row["name"], row["started_at"], row["beat_at"], row["tasks"])
                for row in self._connection.execute(query).mappings()]

    def purge(self, older_than: datetime) -> int:
        return self._connection.execute(
            workers.delete().where(workers.c.beat_at < older_than)).rowcount
