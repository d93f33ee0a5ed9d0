"""Domain objects to JSON-ready dicts, and HTTP conditional-request helpers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, overload

from interlock.domain.errors import BadRequest, InvalidInput
from interlock.domain.keys import ApiKey
from interlock.domain.timeline import TimelineEntry
from interlock.domain.timestamps import rfc3339

#: ``"3"`` as issued, ``W/"3"`` from caches, and a bare ``3`` from hand-written calls.
_ETAG = re.compile(r'^(?:W/)?(?:"(\d{1,18})"|(\d{1,18}))$')
#: What ``If-Match`` may hold, for the OpenAPI document: an ETag as above, or ``*``.
IF_MATCH_PATTERN = r'^\s*(\*|(W/)?("[0-9]{1,18}"|[0-9]{1,18}))\s*$'


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` header demands, or None when it demands none (absent
    or ``*``)."""
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value.strip())
    if not match:
        raise BadRequest('If-Match must be an ETag this API issued, like "3"')
    return int(match.group(1) or match.group(2))


@overload
def as_utc(value: datetime, field: str) -> datetime: ...


@overload
def as_utc(value: None, field: str) -> None: ...


def as_utc(value: datetime | None, field: str) -> datetime | None:
    """A request's datetime in UTC (naive ones are taken as UTC). An offset that pushes
    the instant past year 1 or 9999 is refused: Python cannot represent it."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as error:
        raise InvalidInput(
            f"{field.rpartition('.')[2]} is out of range once converted to UTC",
            errors=[{"field": field, "message": "out of range in UTC"}],
        ) from error


def timeline_entry(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": rfc3339(entry.at),
        "kind": entry.kind,
        "message": entry.message,
        "actor": entry.actor,
        "origin": entry.origin.to_dict(),
        "incident_version": entry.incident_version,
        "changes": entry.changes,
        "body": entry.body,
    }


def api_key(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": sorted(scope.value for scope in key.scopes),
        "prefix": key.prefix,
        "created_at": rfc3339(key.created_at),
        "revoked_at": rfc3339(key.revoked_at),
    }
