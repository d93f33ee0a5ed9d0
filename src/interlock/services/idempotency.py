"""Idempotent creation: the same ``Idempotency-Key`` twice gives one resource and the
same answer.

The record of the answer is written in the same transaction as the resource, so a
crash can never leave one without the other. Two requests racing with the same key
both try; the loser's transaction rolls back whole and it answers with the winner's
stored response.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from interlock.domain.errors import ConcurrentUpdate, InvalidInput
from interlock.ports.clock import Clock
from interlock.ports.store import Store, StoredResponse, Transaction

#: How long a key is remembered. Clients retry within minutes, not days.
RETENTION = timedelta(hours=24)
KEY_MAX = 255

Operation = Callable[[Transaction], tuple[int, dict[str, Any]]]


class Idempotency:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def run(
        self, owner: str, key: str, fingerprint: str, operation: Operation
    ) -> tuple[int, dict[str, Any], bool]:
        """Run ``operation`` once per (owner, key); returns (status, body, replayed)."""
        if not key or len(key) > KEY_MAX or not key.isprintable():
            # Control characters (NUL above all) cannot be stored in PostgreSQL text.
            raise InvalidInput(
                f"Idempotency-Key must be 1 to {KEY_MAX} printable characters"
            )
        for _ in range(3):
            try:
                return self._attempt(owner, key, fingerprint, operation)
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate("the same Idempotency-Key is being used concurrently")

    def _attempt(
        self, owner: str, key: str, fingerprint: str, operation: Operation
    ) -> tuple[int, dict[str, Any], bool]:
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            stored = tx.idempotency.get(owner, key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise InvalidInput(
                        "this Idempotency-Key was already used with a different request"
                    )
                return stored.status_code, stored.body, True
            status, body = operation(tx)
            tx.idempotency.put(owner, key, StoredResponse(fingerprint, status, body), now)
            tx.idempotency.purge(now - RETENTION)
        return status, body, False
