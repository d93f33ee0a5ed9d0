"""The store's side of status page subscribers."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from interlock.domain.subscribers import Subscriber


class SubscriberRepository(Protocol):
    def insert(self, subscriber: Subscriber) -> None:
        """ConcurrentUpdate if the page already has a subscriber with this email."""
        ...

    def save(self, subscriber: Subscriber) -> None: ...

    def get(self, subscriber_id: str) -> Subscriber | None: ...

    def find_email(self, page_id: str, email: str) -> Subscriber | None:
        """By address, compared without regard to case."""
        ...

    def delete(self, subscriber_id: str) -> bool: ...

    def confirmed(self, page_ids: Collection[str]) -> list[Subscriber]:
        """Every confirmed subscriber of these pages."""
        ...

    def list(self, page_id: str, *, after: str | None, limit: int) -> list[Subscriber]:
        """Oldest first, by id."""
        ...
