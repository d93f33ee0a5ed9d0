"""Sending one HTTP request out (webhook deliveries, later connector calls)."""

from __future__ import annotations

from typing import Protocol

from interlock.domain.delivery import OutboundRequest, SendResult


class Sender(Protocol):
    async def send(self, request: OutboundRequest) -> SendResult:
        """Never raises for anything the network or the receiver does: every outcome is
        a SendResult, because failures are data shown in the attempt log."""
        ...

    async def close(self) -> None: ...


class TargetGuard(Protocol):
    def check(self, url: str) -> None:
        """Raise InvalidInput unless ``url`` is well-formed and every address its host
        resolves to is one Interlock may call (not loopback, private, link-local or
        metadata, unless allowed by INTERLOCK_ALLOWED_TARGETS)."""
        ...
