"""Generic JSON: any tool's webhook, read through a mapping of JMESPath expressions.

The source's ``mapping`` says where each field is (https://jmespath.org/)::

    {"alerts": "events",                 # optional: where the list of alerts is
     "title": "check.name",              # required
     "status": "state",                  # firing/resolved words; absent → firing
     "severity": "priority",
     "fingerprint": "id",
     "service": "tags.service",
     "summary": "output",
     "name": "check.id",
     "labels": "tags",                   # an object of strings
     "annotations": "{runbook: runbook_url}",
     "url": "links.self",
     "starts_at": "started", "ends_at": "ended"}

Without ``alerts`` the payload itself is one alert; with it, every expression is
evaluated against each element of that list.

- status: a word of :data:`ACTION_WORDS` (firing, alerting, triggered, open, problem;
  resolved, ok, recovered, closed; acknowledged…); no status expression, or one that
  matches nothing, means firing. An expression can compute the word:
  ``resolved && 'resolved' || 'firing'``.
- severity: a word of :data:`SEVERITY_WORDS`; absent or unknown means medium.
- fingerprint: the value found (strings, or numbers as text); else a SHA-256 of the
  ``fingerprint_fields`` labels, or of all labels, or when there are no labels of the
  title, name and service.
- labels/annotations: objects; numbers and booleans become text, nulls are dropped.
- starts_at/ends_at: RFC 3339, or Unix seconds or milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from interlock.domain.alerts import (
    ParseError,
    ParseOptions,
    Signal,
    SignalAction,
    action_from,
    severity_from,
)
from interlock.domain.errors import InvalidInput
from interlock.sources.reading import (
    MAX_ID,
    MAX_LINE,
    MAX_TEXT,
    epoch_or_iso,
    fingerprint_of,
    kind_of,
    scalar_text,
    string_map,
    title_line,
)

#: Every key a mapping may have, with what its expression must find.
MAPPING_FIELDS: dict[str, str] = {
    "alerts": "an array of alert objects",
    "title": "a string (required)",
    "status": "a word such as firing or resolved",
    "severity": "a word such as critical, high, warning or info",
    "fingerprint": "a string or number identifying the alert",
    "service": "a string",
    "summary": "a string",
    "name": "a string",
    "labels": "an object of strings",
    "annotations": "an object of strings",
    "url": "a string",
    "starts_at": "an RFC 3339 time or Unix seconds/milliseconds",
    "ends_at": "an RFC 3339 time or Unix seconds/milliseconds",
}
MAX_EXPRESSION = 1000
_SEARCH_ERRORS = (JMESPathError, RecursionError, TypeError, ValueError, OverflowError)


def check_mapping(mapping: object) -> None:
    """Validate a generic source's mapping when it is saved, so that parsing never
    meets a bad one: unknown keys, expressions that are not JMESPath, a missing title.
    Raises :class:`InvalidInput` naming each bad field as ``mapping.<key>``."""
    if not isinstance(mapping, Mapping):
        raise InvalidInput("mapping must be an object of field → JMESPath expression",
                           errors=[{"field": "mapping", "message": "expected an object"}])
    errors: list[dict[str, Any]] = []
    for key, expression in mapping.items():
        message = _expression_problem(key, expression)
        if message is not None:
            errors.append({"field": f"mapping.{key}", "message": message})
    if "title" not in mapping:
        errors.append({"field": "mapping.title", "message": "required: where the title is"})
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidInput(f"{first['field']}: {first['message']}{more}", errors=errors)


def _expression_problem(key: object, expression: object) -> str | None:
    if not isinstance(key, str) or key not in MAPPING_FIELDS:
        return f"unknown field; the fields are {', '.join(MAPPING_FIELDS)}"
    if not isinstance(expression, str) or not expression.strip():
        return "expected a JMESPath expression (a non-empty string)"
    if len(expression) > MAX_EXPRESSION:
        return f"longer than {MAX_EXPRESSION} characters"
    try:
        _compile(expression)
    except (JMESPathError, RecursionError) as exc:
        return f"not a valid JMESPath expression: {str(exc).splitlines()[0][:200]}"
    return None


@lru_cache(maxsize=1024)
def _compile(expression: str) -> Any:
    return jmespath.compile(expression)


def parse_generic(payload: Any, options: ParseOptions) -> list[Signal]:
    mapping = options.mapping
    try:
        check_mapping(mapping)
    except InvalidInput as exc:
        raise ParseError(f"the source's mapping is invalid: {exc.detail}") from None
    if "alerts" in mapping:
        found = _search(mapping, "alerts", payload)
        if not isinstance(found, list):
            raise ParseError(f"alerts (mapping {mapping['alerts']!r}): expected an array, "
                             f"got {kind_of(found)}")
        return [_signal(mapping, item, f"alerts[{index}]", options)
                for index, item in enumerate(found)]
    return [_signal(mapping, payload, "", options)]


def _search(mapping: Mapping[str, str], key: str, data: Any) -> Any:
    if key not in mapping:
        return None
    try:
        return _compile(mapping[key]).search(data)
    except _SEARCH_ERRORS as exc:
        raise ParseError(f"{key} (mapping {mapping[key]!r}): {str(exc)[:200]}") from None


def _signal(mapping: Mapping[str, str], alert: Any, where: str, options: ParseOptions) -> Signal:
    def field(key: str, limit: int = MAX_LINE) -> str | None:
        value = scalar_text(_search(mapping, key, alert), _named(where, key, mapping), limit)
        return value if value is not None and value.strip() else None

    title = field("title", MAX_TEXT)
    if title is None:
        raise ParseError(f"{_named(where, 'title', mapping)}: matched nothing")
    status = field("status", MAX_ID)
    action = SignalAction.FIRING if status is None else action_from(status)
    if action is None:
        raise ParseError(f"{_named(where, 'status', mapping)}: {str(status)[:100]!r} is "
                         f"neither a firing nor a resolved word")
    labels = string_map(_search(mapping, "labels", alert), _named(where, "labels", mapping),
                        value_limit=MAX_LINE, lenient=True)
    name = field("name", MAX_ID) or ""
    service = field("service", MAX_ID)
    fingerprint = field("fingerprint", MAX_ID)
    if fingerprint is None:
        fields = {"title": title, "name": name, "service": service or ""}
        identity = {**fields, **labels} if options.fingerprint_fields else labels or fields
        fingerprint = fingerprint_of(identity, options.fingerprint_fields,
                                     _named(where, "labels", mapping))
    severity = field("severity", MAX_ID)
    labelled = labels.get(options.severity_label)
    return Signal(
        fingerprint=fingerprint,
        action=action,
        title=title_line(title),
        severity=severity_from(severity if severity is not None else labelled),
        name=name,
        service=service or labels.get(options.service_label) or None,
        summary=(field("summary", MAX_TEXT) or "").strip(),
        labels=labels,
        annotations=string_map(_search(mapping, "annotations", alert),
                               _named(where, "annotations", mapping),
                               value_limit=MAX_TEXT, lenient=True),
        starts_at=_time(mapping, "starts_at", alert, where),
        ends_at=_time(mapping, "ends_at", alert, where),
        url=field("url"),
    )


def _named(where: str, key: str, mapping: Mapping[str, str]) -> str:
    expression = mapping.get(key, "")
    shown = f"{key} (mapping {expression[:100]!r})" if expression else key
    return f"{where}: {shown}" if where else shown


def _time(mapping: Mapping[str, str], key: str, alert: Any, where: str) -> datetime | None:
    value = _search(mapping, key, alert)
    if value is None or value == "":
        return None
    found = epoch_or_iso(value)
    if found is None:
        shown = repr(value[:100]) if isinstance(value, str) else kind_of(value)
        raise ParseError(f"{_named(where, key, mapping)}: not a time: {shown}")
    return found
