"""Which pending payloads a worker claims, on PostgreSQL: source by source.

Alerts, groups, correlations and incidents all belong to one source. Two workers whose
batches hold payloads of the same sources lock the same rows (``FOR UPDATE``) and wait
for each other, deadlock, or both insert the same new alert or group and redo the whole
batch; in a storm that made two workers slower than one. So a worker claims the
payloads of sources that no other worker holds: a source is *held* while another
worker leases one of its pending payloads, and a transaction-level advisory lock per
source makes two workers claiming at the same moment pick different ones. The batch is
the oldest free payloads of the free source whose oldest payload waited longest, topped
up from the next free sources when that one has fewer than the batch.

When every source with work is held (fewer sources than workers, or one worker has
everything in flight) a worker takes the oldest free payloads of any source, as before:
it helps rather than idles, and what keeps that correct (locks in key order, unique
constraints with a retry, ``payload_position``) holds whatever a worker claims. Holding
is a matter of speed, never of correctness.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.store.tables import is_pending, payloads

#: The first key of the two-key advisory locks on sources being claimed. The one-key
#: locks (migrations, fan-outs) are another key space: they cannot collide.
CLAIM_LOCK_CLASS = 0x696C_7301


def _free(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(payloads.c.lease_expires_at.is_(None), payloads.c.lease_expires_at <= now)


def _held_by_others(owner: str, now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(payloads.c.lease_expires_at > now, payloads.c.lease_owner != owner)


def oldest_free(now: datetime, limit: int, source_id: str | None = None
                ) -> sa.Select[Any]:
    """The positions of the oldest free pending payloads (of one source, if given)."""
    query = (sa.select(payloads.c.position)
             .where(is_pending(payloads), _free(now))
             .order_by(payloads.c.position).limit(limit))
    if source_id is not None:
        query = query.where(payloads.c.source_id == source_id)
    return query


def claim_positions(connection: sa.Connection, owner: str, now: datetime, limit: int
                    ) -> list[int]:
    """Positions of payloads for ``owner`` to lease, locked until commit (PostgreSQL)."""
    heads = connection.execute(
        sa.select(payloads.c.source_id,
                  sa.func.min(payloads.c.position).filter(_free(now)).label("head"),
                  sa.func.bool_or(_held_by_others(owner, now)).label("held"))
        .where(is_pending(payloads))
        .group_by(payloads.c.source_id)).all()
    waiting = sorted((head, source_id) for source_id, head, held in heads
                     if head is not None and not held)
    # Whether another worker is claiming at all: while none held a source a moment
    # ago, looking again for each source (a scan of the pending payloads that finds
    # nothing) only guards against one that has just started. Two workers then share a
    # source for a batch, which costs speed, not correctness (see above); the looks
    # cost the server 0.4-2 ms each in a storm (pg_stat_statements, bench/storm.py).
    others = any(held for _, _, held in heads)
    positions: list[int] = []
    for _, source_id in waiting:
        if not _hold(connection, source_id, owner, now, look=others):
            continue
        positions += connection.execute(
            oldest_free(now, limit - len(positions), source_id)
            .with_for_update(skip_locked=True)).scalars()
        if len(positions) >= limit:
            return positions
    if positions or not any(head is not None for _, head, _ in heads):
        return positions
    return list(connection.execute(
        oldest_free(now, limit).with_for_update(skip_locked=True)).scalars())


def _hold(connection: sa.Connection, source_id: str, owner: str, now: datetime, *,
          look: bool = True) -> bool:
    """Take the source for this claim, unless another worker is claiming it now or
    (``look``) has claimed it since the caller looked (a new statement sees what
    committed since)."""
    locked = connection.execute(sa.select(sa.func.pg_try_advisory_xact_lock(
        CLAIM_LOCK_CLASS, sa.func.hashtext(source_id)))).scalar_one()
    if not locked or not look:
        return bool(locked)
    taken = connection.execute(
        sa.select(payloads.c.position)
        .where(is_pending(payloads), payloads.c.source_id == source_id,
               _held_by_others(owner, now))
        .limit(1)).first()
    return taken is None
