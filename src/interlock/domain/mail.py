"""Outgoing mail as data: a queue of messages that are sent, retried, or given up on.

A status page's subscribers hear of public updates by mail, and a mail server is one
more peer that can be down. So a message is a row first (written in the same
transaction as whatever caused it) and an SMTP conversation later: when the server
does not answer, the message waits and is tried again on :data:`MAIL_RETRY`'s
schedule, about three days in all, and every try is visible (``attempts``,
``last_error``, ``next_attempt_at``). A server that refuses a message for good (a 5xx
answer: no such mailbox) fails it at once; retrying would not change the answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from interlock.domain.errors import InvalidInput
from interlock.domain.retry import RetryPolicy

#: Longer than the webhook schedule at the start (a mail server restarting takes
#: minutes, not seconds) and as long at the end: ~3 days before a message is given up.
MAIL_RETRY = RetryPolicy(schedule=(
    timedelta(0), timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2),
    timedelta(minutes=10), timedelta(minutes=30), timedelta(hours=1), timedelta(hours=3),
    timedelta(hours=6), timedelta(hours=12), timedelta(hours=24), timedelta(hours=24),
))
#: RFC 5321: a path is at most 256 octets, so an address at most 254.
ADDRESS_MAX = 254
SUBJECT_MAX = 300

# Deliberately plain: a local part of RFC 5322 "atext" and dots, one @, and a domain of
# dot-separated ASCII labels with a letter-led top level. It refuses what is surely not
# an address (a typo, a name instead of an address, a newline smuggling in a header)
# and what a plain SMTP server could not take (non-ASCII, controls), and lets the mail
# server judge the rest. The API publishes the same pattern in its schema.
ADDRESS_PATTERN = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
_ADDRESS = re.compile(ADDRESS_PATTERN)


class MailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    #: Refused for good by the server, or out of attempts.
    FAILED = "failed"


class MailKind(StrEnum):
    #: "Please confirm your subscription" (double opt-in).
    CONFIRMATION = "confirmation"
    #: A public update of a status page.
    UPDATE = "update"


@dataclass(frozen=True)
class OutgoingMail:
    """One message to one recipient, plain text. ``headers`` are extra headers
    (``List-Unsubscribe``…); From, To, Date and Message-ID are set when it is sent."""

    id: str
    recipient: str
    subject: str
    body: str
    kind: MailKind
    created_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict)
    subscriber_id: str | None = None
    status: MailStatus = MailStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class MailResult:
    """How sending one message went. ``error`` None is success; ``retryable`` says
    whether another try could succeed (the server was down, or said 4xx)."""

    mail_id: str
    error: str | None = None
    retryable: bool = True

    @property
    def sent(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class MailOutcome:
    """What to write after a try: the message's next state."""

    mail: OutgoingMail
    status: MailStatus
    next_attempt_at: datetime | None
    error: str | None
    at: datetime


def outcome(mail: OutgoingMail, result: MailResult, now: datetime,
            policy: RetryPolicy = MAIL_RETRY) -> MailOutcome:
    """The decision after one try, as a value (procrastinate's shape)."""
    if result.sent:
        return MailOutcome(mail, MailStatus.SENT, None, None, now)
    next_at = (policy.after_failure(mail.attempts + 1, now).next_attempt_at
               if result.retryable else None)
    status = MailStatus.PENDING if next_at else MailStatus.FAILED
    return MailOutcome(mail, status, next_at, result.error, now)


def is_address(text: str) -> bool:
    return len(text) <= ADDRESS_MAX and _ADDRESS.match(text) is not None


def checked_address(text: str, field_name: str = "email") -> str:
    """The address, trimmed, or InvalidInput saying why it is not one."""
    address = text.strip() if isinstance(text, str) else ""
    if not is_address(address):
        raise InvalidInput("that is not an e-mail address", errors=[{
            "field": field_name,
            "message": "must be an e-mail address like name@example.com",
        }])
    return address


def one_line(text: str, limit: int = SUBJECT_MAX) -> str:
    """Text for a header: newlines (header injection) folded into spaces, trimmed."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
