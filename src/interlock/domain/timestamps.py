"""How Interlock writes times for people and programs: RFC 3339 in UTC, with ``Z``."""

from __future__ import annotations

from datetime import datetime
from typing import overload


@overload
def rfc3339(value: datetime) -> str: ...


@overload
def rfc3339(value: None) -> None: ...


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")
