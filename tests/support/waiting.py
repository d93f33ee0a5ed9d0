"""Waiting, in tests, for something another process or thread will do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str = "condition", *,
               timeout: float = 20.0, interval: float = 0.1,
               explain: Callable[[], str] | None = None) -> T:
    """Call ``probe`` until it returns something truthy, and return that; fail after
    ``timeout`` seconds saying ``what`` was not reached (and ``explain()``, a log say)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            detail = f"\n{explain()}" if explain else ""
            raise AssertionError(f"{what}: not reached within {timeout} s{detail}")
        time.sleep(interval)
