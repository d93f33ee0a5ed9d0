"""Outgoing mail as use cases: queue messages inside the caller's transaction, lease
due ones, and record how each try went.

The queue is the outbox pattern again: a subscriber's confirmation, or the mails a
public update fans out to, are rows written in the transaction that decided them, so
a crash or a mail server that is down loses none. The async loop that sends lives in
``interlock.worker.mail``; the decision after a try (sent, try again when, give up) is
``domain.mail.outcome``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from interlock.domain.mail import (
    MAIL_RETRY,
    MailResult,
    MailStatus,
    OutgoingMail,
    outcome,
)
from interlock.domain.pagination import Page, check_limit, decode_cursor, encode_cursor
from interlock.domain.retry import RetryPolicy
from interlock.ports.clock import Clock
from interlock.ports.store import Store, Transaction

DEFAULT_LEASE = timedelta(seconds=120)
#: Messages claimed per round (sent over one SMTP connection).
CLAIM_BATCH = 100


class MailService:
    def __init__(self, store: Store, clock: Clock, *, policy: RetryPolicy = MAIL_RETRY,
                 lease: timedelta = DEFAULT_LEASE) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy
        self._lease = lease

    def now(self) -> datetime:
        return self._clock.now()

    def enqueue_in(self, tx: Transaction, mails: Sequence[OutgoingMail]) -> None:
        """Queue messages, due now, in the caller's transaction."""
        now = self._clock.now()
        tx.mail.insert_many([dataclasses.replace(mail, status=MailStatus.PENDING,
                                                 next_attempt_at=now) for mail in mails])

    def claim(self, owner: str, limit: int = CLAIM_BATCH) -> list[OutgoingMail]:
        now = self._clock.now()
        # A read first: an idle queue costs no write transaction (SQLite's one writer).
        with self._store.transaction() as tx:
            if not tx.mail.any_due(now):
                return []
        with self._store.transaction(write=True) as tx:
            return tx.mail.claim(owner, now, now + self._lease, limit)

    def record(self, owner: str, tries: Sequence[tuple[OutgoingMail, MailResult]]) -> None:
        if not tries:
            return
        now = self._clock.now()
        outcomes = [outcome(mail, result, now, self._policy) for mail, result in tries]
        with self._store.transaction(write=True) as tx:
            tx.mail.complete(owner, outcomes)

    def get(self, mail_id: str) -> OutgoingMail | None:
        with self._store.transaction() as tx:
            return tx.mail.get(mail_id)

    def list(self, *, cursor: str | None, limit: int, status: MailStatus | None = None,
             subscriber_id: str | None = None) -> Page[OutgoingMail]:
        """Newest first: what was sent, what waits for the mail server and why."""
        limit = check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        with self._store.transaction() as tx:
            rows = tx.mail.list(before=before, limit=limit + 1, status=status,
                                subscriber_id=subscriber_id)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([mail for _, mail in rows],
                    encode_cursor(rows[-1][0]) if more and rows else None)

    def counts(self) -> dict[str, int]:
        with self._store.transaction() as tx:
            return tx.mail.counts()
