"""The TargetGuard port for synchronous callers (services run in API threads)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from interlock.domain.targets import Network
from interlock.worker.targets import check_target


class ResolvingGuard:
    def __init__(self, allowed: Iterable[Network] = ()) -> None:
        self.allowed = tuple(allowed)

    def check(self, url: str) -> None:
        """Resolve and check ``url``; call from a thread without a running event loop."""
        asyncio.run(check_target(url, self.allowed))
