"""Careful reading of untrusted JSON, shared by the parsers.

Every helper takes ``where``, the path of the value in the payload (``alerts[3].labels``),
and raises :class:`ParseError` naming that path when the value is not what the format
says: the message is what the user sees next to the payload they sent.

Length limits keep one absurd payload from filling the database or a page; they are far
above anything a monitoring tool sends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from interlock.domain.alerts import ParseError

#: Identities: fingerprints, names, services, label names, status words.
MAX_ID = 1024
#: One line a person reads: titles, label values, URLs.
MAX_LINE = 8192
#: Free text: summaries, descriptions, annotations.
MAX_TEXT = 65536
#: Titles are cut, not refused, at this length (they often come from a long annotation).
TITLE_LENGTH = 500


def kind_of(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def as_object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{where or 'payload'}: expected an object, got {kind_of(value)}")
    return value


def as_list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{where}: expected an array, got {kind_of(value)}")
    return value


def checked(value: str, where: str, limit: int) -> str:
    """``value`` itself, once it is known to fit ``limit`` and to be storable text (no
    NUL, no lone surrogate: JSON allows both, PostgreSQL and UTF-8 do not)."""
    if len(value) > limit:
        raise ParseError(f"{where}: {len(value)} characters, more than the {limit} allowed")
    if value.isascii():
        if "\x00" in value:
            raise ParseError(f"{where}: contains a NUL character")
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError(f"{where}: not valid Unicode (a lone surrogate)") from None
    return value


def text(obj: Mapping[str, Any], key: str, where: str, limit: int = MAX_LINE) -> str | None:
    """The string at ``obj[key]``, or None when absent or null; any other type is an
    error. Empty and blank strings read as None: tools send "" for "not set"."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParseError(f"{at(where, key)}: expected a string, got {kind_of(value)}")
    if len(value) > limit or not value.isascii() or "\x00" in value:
        checked(value, at(where, key), limit)
    return value if value.strip() else None


def required_text(
    obj: Mapping[str, Any], key: str, where: str, limit: int = MAX_LINE
) -> str:
    value = text(obj, key, where, limit)
    if value is None:
        raise ParseError(f"{at(where, key)}: missing")
    return value


def scalar_text(value: object, where: str, limit: int) -> str | None:
    """Strings as they are, numbers and booleans as JSON writes them, null as None;
    objects and arrays are errors. For formats where users write their own JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return checked(value, where, limit)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return checked(str(value), where, limit)
    if isinstance(value, float):
        return json.dumps(value)
    raise ParseError(f"{where}: expected a string, got {kind_of(value)}")


def string_map(
    value: object, where: str, *, value_limit: int, lenient: bool = False
) -> dict[str, str]:
    """A labels or annotations object: string keys to string values. ``lenient`` also
    takes numbers and booleans (as text) and skips nulls, for user-written JSON."""
    if value is None:
        return {}
    obj = as_object(value, where)
    result: dict[str, str] = {}
    for key, item in obj.items():
        if (isinstance(item, str) and len(item) <= value_limit and len(key) <= MAX_ID
                and item.isascii() and key.isascii() and "\x00" not in item
                and "\x00" not in key):
            result[key] = item  # the common case, checked without building messages
            continue
        checked(key, f"{where}: a name", MAX_ID)
        path = at(where, key)
        if isinstance(item, str):
            result[key] = checked(item, path, value_limit)
        elif lenient:
            converted = scalar_text(item, path, value_limit)
            if converted is not None:
                result[key] = converted
        else:
            raise ParseError(f"{path}: expected a string, got {kind_of(item)}")
    return result


def details_text(value: object, where: str) -> str:
    """Any JSON value as text for an annotation: strings as they are, the rest as
    compact JSON (PagerDuty custom_details, Datadog extras)."""
    if isinstance(value, str):
        return checked(value, where, MAX_TEXT)
    try:
        rendered = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (RecursionError, ValueError, TypeError):
        raise ParseError(f"{where}: cannot be written as text") from None
    return checked(rendered, where, MAX_TEXT)


def timestamp(value: object, where: str) -> datetime | None:
    """An RFC 3339 time as an aware UTC datetime. None for absent, empty, and the Go
    zero time ``0001-01-01T00:00:00Z`` Alertmanager and Grafana send for "not set".
    A time without an offset is taken as UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError(f"{where}: expected an RFC 3339 time, got {kind_of(value)}")
    if len(value) > 64:
        raise ParseError(f"{where}: not an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError(f"{where}: not an RFC 3339 time: {value!r}") from None
    if parsed.year <= 1:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ParseError(f"{where}: out of range: {value!r}") from None


def epoch_or_iso(value: object) -> datetime | None:
    """A time written as Unix seconds or milliseconds (Datadog's ``$DATE``) or RFC 3339;
    None when it is neither. Lenient on purpose: for tools whose JSON users write."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 15:
        value = int(value.strip())
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10_000_000_000 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        return timestamp(value, "")
    except ParseError:
        return None


def fingerprint_of(
    values: Mapping[str, str], fields: Iterable[str], where: str
) -> str:
    """A stable fingerprint for alerts that carry none: hex SHA-256 of the named
    ``fields``' values (a missing one counts as null), or of all ``values`` sorted by
    name when no fields are named. It fails when none of the named fields is present,
    rather than give every alert the same identity."""
    names = tuple(fields)
    if names:
        picked: list[tuple[str, str | None]] = [(name, values.get(name)) for name in names]
        if all(value is None for _, value in picked):
            raise ParseError(
                f"{where}: none of the fingerprint fields ({', '.join(names)}) is present"
            )
    else:
        picked = sorted(values.items())
    canonical = json.dumps(picked, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def title_line(value: str) -> str:
    """The first non-blank line of ``value``, cut to :data:`TITLE_LENGTH`."""
    line = next((part.strip() for part in value.splitlines() if part.strip()), "")
    if len(line) > TITLE_LENGTH:
        return line[: TITLE_LENGTH - 1] + "…"
    return line
