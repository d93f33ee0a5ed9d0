"""What the delivery queue and the sync job queue share: per-incident order.

Both queues keep one incident's work for one target (an endpoint, a connector) in
order: a row queued behind a pending one has no due time (``next_attempt_at`` NULL)
until that one finishes, and then the oldest such row is made due. This is the
statement that does it, in O(1) over the lane's index.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from interlock.store import bulk

#: PostgreSQL advisory lock keys, one per kind of transaction that takes turns: see
#: serialise_fan_out.
DELIVERIES_FAN_OUT = 0x696C_6401
SYNC_JOBS_FAN_OUT = 0x696C_6402
#: Claims of paced connectors' jobs (SqlSyncJobs.claim): two at once would each miss
#: the other's uncommitted lease and both start the lane.
SYNC_JOBS_CLAIM = 0x696C_6403


def serialise_fan_out(connection: sa.Connection, key: int, *, wait: bool = True) -> bool:
    """Make fan-outs to one queue take turns until commit (PostgreSQL; SQLite has one
    writer anyway). Workers fan out different events at once (the outbox is claimed
    with SKIP LOCKED), so without this each could miss the other's uncommitted pending
    row of the same incident and queue its later version as due now: with two workers
    v2 overtook v1 in 35 of 1,500 incidents. The wait is for the other's few inserts.
    The same turn, under its own key, keeps paced connectors' claims apart
    (SYNC_JOBS_CLAIM). With ``wait=False`` the turn is taken only if nobody holds it;
    returns whether this transaction has it."""
    if connection.dialect.name != "postgresql":
        return True
    if wait:
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        return True
    return bool(connection.execute(sa.select(sa.func.pg_try_advisory_xact_lock(key)))
                .scalar_one())


def promote_next(table: sa.Table, lane: str, order: str) -> sa.Update:
    """An UPDATE making due the oldest waiting row of ``table`` whose ``lane`` column is
    ``:p_lane`` and ``incident_id`` is ``:p_incident``, at ``:p_at``."""
    waiting = table.alias("waiting")
    oldest = (
        sa.select(waiting.c.id)
        .where(
            waiting.c[lane] == sa.bindparam("p_lane"),
            waiting.c.incident_id == sa.bindparam("p_incident"),
            waiting.c.status == "pending",
            waiting.c.next_attempt_at.is_(None),
        )
        .order_by(waiting.c[order])
        .limit(1)
        .scalar_subquery()
    )
    return table.update().where(table.c.id == oldest).values(
        next_attempt_at=sa.bindparam("p_at"))


def waiting_lanes(table: sa.Table, lane: str) -> sa.Select[Any]:
    """A SELECT of the (``lane``, incident) pairs of ``table`` with a row waiting, among
    the lanes ``:w_lanes`` and the incidents ``:w_incidents``: build it once, for
    :func:`lanes_with_waiting`."""
    return sa.select(table.c[lane], table.c.incident_id).where(
        bulk.one_of(table.c[lane], "w_lanes"),
        bulk.one_of(table.c.incident_id, "w_incidents"),
        table.c.status == "pending",
        table.c.next_attempt_at.is_(None),
    ).distinct()


def lanes_with_waiting(connection: sa.Connection, query: sa.Select[Any],
                       pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (lane, incident) pairs have a row waiting, in one statement
    (``query``, from :func:`waiting_lanes`).

    Usually none do, and running the promote_next UPDATE for every finished row cost as
    much as writing its attempt. Call this where the promotion would run (after the
    finished rows are updated), so it sees what that UPDATE would have seen."""
    if not pairs:
        return set()
    found = {(row[0], row[1]) for row in connection.execute(query, {
        "w_lanes": sorted({pair[0] for pair in pairs}),
        "w_incidents": sorted({pair[1] for pair in pairs}),
    })}
    return found & set(pairs)
