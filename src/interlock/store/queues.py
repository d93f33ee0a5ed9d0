"""What the delivery queue and the sync job queue share: per-incident order.

Both queues keep one incident's work for one target (an endpoint, a connector) in
order: a row queued behind a pending one has no due time (``next_attempt_at`` NULL)
until that one finishes, and then the oldest such row is made due. This is the
statement that does it, in O(1) over the lane's index.
"""

from __future__ import annotations

import sqlalchemy as sa


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
