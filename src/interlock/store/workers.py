"""Worker heartbeats: which worker processes run, and how each of their parts is doing;
and the work a worker gone silent had leased, handed back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.ports.store import WorkerBeat
from interlock.store.deliveries import handed_to
from interlock.store.tables import deliveries, outgoing_mail, payloads, sync_jobs, workers

#: What a worker leases, each by kind: a lease held is never anything but pending.
_LEASED = {"payloads": payloads, "deliveries": deliveries, "sync_jobs": sync_jobs,
           "mail": outgoing_mail}

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

    def seen_since(self, since: datetime) -> list[WorkerBeat]:
        query = sa.select(workers).where(workers.c.beat_at >= since).order_by(workers.c.name)
        return [WorkerBeat(row["name"], row["started_at"], row["beat_at"], row["tasks"])
                for row in self._connection.execute(query).mappings()]

    def silent(self, before: datetime) -> list[str]:
        """The workers last heard from before ``before``."""
        return list(self._connection.execute(
            sa.select(workers.c.name).where(workers.c.beat_at < before)
            .order_by(workers.c.name)).scalars())

    def take_over(self, names: Sequence[str]) -> dict[str, int]:
        """Hand back what these workers lease (payloads, deliveries, sync jobs, mail):
        free to claim at once, rather than when the leases lapse. Their reports go;
        one that was only frozen reports again when it wakes. Returns how many of
        each kind were handed back. The lookups walk each queue's index of pending
        rows: the cost is the backlog's, never the history's."""
        owners = sorted({*names, *(handed_to(name) for name in names)})
        taken = {}
        for kind, table in _LEASED.items():
            taken[kind] = self._connection.execute(
                table.update().where(table.c.status == "pending",
                                     table.c.lease_owner.in_(owners))
                .values(lease_owner=None, lease_expires_at=None)).rowcount
        self._connection.execute(workers.delete().where(workers.c.name.in_(list(names))))
        return taken
