"""Identifiers: a type prefix and a time-ordered, random 26-character body (ULID layout).

Sortable by creation time, unguessable, and readable in logs: ``inc_01JD3K...``.
"""

from __future__ import annotations

import os
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str, at: datetime) -> str:
    millis = int(at.timestamp() * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def has_prefix(identifier: str, prefix: str) -> bool:
    return identifier.startswith(prefix + "_") and len(identifier) == len(prefix) + 27
