"""Mail out: the queue's repository and the transport that speaks SMTP.

The service decides (what to send, when to try again); the transport only sends. It
never raises for what the server does: each message comes back as a
:class:`~interlock.domain.mail.MailResult`, retryable or not, like ``Sender``'s results
for webhooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from interlock.domain.mail import MailOutcome, MailResult, MailStatus, OutgoingMail


class MailTransport(Protocol):
    @property
    def configured(self) -> bool:
        """Whether a mail server is configured at all (else nothing is claimed)."""
        ...

    async def send(self, messages: Sequence[OutgoingMail]) -> list[MailResult]:
        """Send each message (in one conversation where possible); one result per
        message, in order. Never raises for the server's answers or its absence."""
        ...


class MailRepository(Protocol):
    def insert_many(self, items: Sequence[OutgoingMail]) -> None: ...

    def claim(self, owner: str, now: datetime, lease_until: datetime, limit: int
              ) -> list[OutgoingMail]:
        """Lease due pending messages, oldest due first; concurrent claims take
        disjoint sets."""
        ...

    def any_due(self, now: datetime) -> bool:
        """Whether a message may be claimable now (a read)."""
        ...

    def complete(self, owner: str, outcomes: Sequence[MailOutcome]) -> None:
        """Write each message's new state and release its lease (only where ``owner``
        still holds it)."""
        ...

    def get(self, mail_id: str) -> OutgoingMail | None: ...

    def list(self, *, before: int | None, limit: int, status: MailStatus | None = None,
             subscriber_id: str | None = None) -> list[tuple[int, OutgoingMail]]:
        """Newest first, each with its position for the next cursor."""
        ...

    def counts(self) -> dict[str, int]:
        """Messages per status."""
        ...
