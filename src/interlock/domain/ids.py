"""Identifiers: a type prefix and a time-ordered, random 26-character body (ULID layout).

Sortable by creation time, unguessable, and readable in logs: ``inc_01JD3K...``.
"""

from __future__ import annotations

import os
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Two characters for each 10-bit value: the 130 bits of a body in 13 look-ups. Every
#: delivery makes two ids, and a character at a time cost as much as signing it.
_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
_SHIFTS = tuple(range(120, -1, -10))


def new_id(prefix: str, at: datetime) -> str:
    millis = int(at.timestamp() * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    return prefix + "_" + "".join([_PAIRS[value >> shift & 1023] for shift in _SHIFTS])


def has_prefix(identifier: str, prefix: str) -> bool:
    return identifier.startswith(prefix + "_") and len(identifier) == len(prefix) + 27
