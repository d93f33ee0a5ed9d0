"""Opaque cursors for keyset pagination.

A cursor names the last row a page held by its position in a strictly increasing
column, so rows inserted while a client pages never shift or repeat what it sees.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Generic, TypeVar

from interlock.domain.errors import BadRequest

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: Positions are 64-bit row numbers; a larger one was never issued and no database
#: column could compare with it.
_MAX_POSITION = 2**63 - 1


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(position: int) -> str:
    raw = json.dumps({"p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        position = data["p"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError) as error:
        raise BadRequest("cursor is not one this API issued") from error
    if (not isinstance(position, int) or isinstance(position, bool)
            or not 0 <= position <= _MAX_POSITION):
        raise BadRequest("cursor is not one this API issued")
    return position


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit
