"""When to try a failed webhook again, as a value object that returns a decision.

The schedule is DESIGN.md's: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
10 h after each failure (±20 % jitter), about 28 hours in all. A receiver's
``Retry-After`` replaces the scheduled wait, up to a day, when it asks for at least
MIN_RETRY_AFTER; a shorter one (``Retry-After: 0``) counts as not given, since honouring
it would spend every attempt in a moment and lose the message for good.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
#: An endpoint failing without one success for this long is disabled.
DISABLE_AFTER = timedelta(days=5)
RETRY_AFTER_CAP = timedelta(days=1)
#: A Retry-After shorter than this is ignored in favour of the schedule.
MIN_RETRY_AFTER = timedelta(seconds=5)


@dataclass(frozen=True)
class RetryDecision:
    """``next_attempt_at`` is None when the message has used up its attempts."""

    next_attempt_at: datetime | None

    @property
    def gives_up(self) -> bool:
        return self.next_attempt_at is None


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[timedelta, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.2

    @property
    def max_attempts(self) -> int:
        return len(self.schedule)

    def after_failure(
        self,
        attempts_made: int,
        now: datetime,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> RetryDecision:
        """Decide after the ``attempts_made``-th attempt failed."""
        if attempts_made >= self.max_attempts:
            return RetryDecision(None)
        if retry_after is not None and retry_after >= MIN_RETRY_AFTER.total_seconds():
            return RetryDecision(now + min(timedelta(seconds=retry_after), RETRY_AFTER_CAP))
        wait = self.schedule[attempts_made]
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return RetryDecision(now + wait * spread)
