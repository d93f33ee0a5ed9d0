"""Inbound formats: one pure parser per monitoring tool, from its decoded JSON payload to
:class:`~interlock.domain.alerts.Signal` values.

A parser never does I/O and never raises anything but
:class:`~interlock.domain.alerts.ParseError`, whose message names the field at fault.
Sources import only :mod:`interlock.domain` (an import-linter contract holds it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib.metadata import EntryPoint
from typing import Any

from pydantic import ValidationError

from interlock.domain.alerts import ParseError, ParseOptions, Signal, SourceKind, SourcePlugin
from interlock.domain.errors import InvalidInput
from interlock.plugins import load_group
from interlock.sources.generic import MAPPING_FIELDS, check_mapping

Parser = Callable[[Any, ParseOptions], list[Signal]]
SOURCE_GROUP = "interlock.sources"

__all__ = [
    "MAPPING_FIELDS",
    "ParseError",
    "ParseOptions",
    "Parser",
    "SourceKind",
    "check_mapping",
    "parse",
    "parse_options",
    "plugin",
    "plugins",
]


def plugins(found: Iterable[EntryPoint] | None = None) -> dict[str, SourcePlugin]:
    """Every installed source kind, by kind (entry point group ``interlock.sources``).
    ``found`` replaces the installed entry points (for tests)."""
    return load_group(SOURCE_GROUP, SourcePlugin, found) if found is not None else _installed()


@cache
def _installed() -> dict[str, SourcePlugin]:
    # Installed metadata does not change while a process runs.
    return load_group(SOURCE_GROUP, SourcePlugin)


def plugin(kind: str) -> SourcePlugin:
    """The kind's plugin; InvalidInput naming ``kind`` if none is installed."""
    found = _installed().get(kind)
    if found is None:
        raise InvalidInput(f"unknown source kind {kind!r}", errors=[
            {"field": "kind", "message": f"one of {', '.join(_installed())}"}])
    return found


def parse(kind: str, payload: Any, options: ParseOptions | None = None) -> list[Signal]:
    """The signals in one decoded payload of ``kind``'s format (possibly none: a Grafana
    notification of pending alerts only). A value nested too deeply to walk is a
    ParseError like any other malformed payload, never a crash of the worker."""
    found = _installed().get(kind)
    if found is None:
        raise ParseError(f"no parser is installed for source kind {kind!r}")
    try:
        return found.parse(payload, options or ParseOptions())
    except RecursionError:
        raise ParseError("the payload is nested too deeply to read") from None


def parse_options(kind: str, raw: Mapping[str, Any]) -> ParseOptions:
    """A source's stored options (``service_label``, ``severity_label``,
    ``fingerprint_fields``, ``mapping``) as :class:`ParseOptions`, checked as a user
    saves them: :class:`InvalidInput` names each bad field. A generic source needs a
    mapping; other kinds must not have one. Options a kind's own model adds (a plugin's)
    are checked by that model and handed to its parser as ``ParseOptions.extra``."""
    found = plugin(kind)
    known = {"service_label", "severity_label", "fingerprint_fields", "mapping"}
    own = set(found.options.model_fields) - known
    errors = [{"field": key, "message": "unknown option"} for key in raw
              if key not in known | own]
    extra = _own_options(found, own, raw, errors)
    for key in ("service_label", "severity_label"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 200):
            errors.append({"field": key, "message": "a label name of 1 to 200 characters"})
    fields = raw.get("fingerprint_fields", ())
    if not isinstance(fields, list | tuple) or len(fields) > 50 or not all(
            isinstance(name, str) and 0 < len(name) <= 200 for name in fields):
        errors.append({"field": "fingerprint_fields",
                       "message": "a list of at most 50 label or field names"})
        fields = ()
    mapping = raw.get("mapping")
    takes_mapping = found.takes_mapping
    if takes_mapping:
        if mapping is None:
            errors.append({"field": "mapping.title", "message": "a generic source needs a "
                                                                 "mapping with a title"})
        else:
            try:
                check_mapping(mapping)
            except InvalidInput as exc:
                errors.extend(exc.errors or [])
    elif mapping:
        errors.append({"field": "mapping", "message": "only generic sources have a mapping"})
    if errors:
        first = errors[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", errors=errors)
    return ParseOptions(
        service_label=raw.get("service_label") or "service",
        severity_label=raw.get("severity_label") or "severity",
        fingerprint_fields=tuple(fields),
        mapping=dict(mapping) if takes_mapping and mapping else {},
        extra=extra,
    )


def _own_options(found: SourcePlugin, own: set[str], raw: Mapping[str, Any],
                 errors: list[dict[str, str]]) -> dict[str, Any]:
    """The options only this kind's model knows, validated by it (defaults filled in)."""
    if not own:
        return {}
    try:
        checked = found.options.model_validate(
            {name: value for name, value in raw.items() if name in own}).model_dump(mode="json")
    except ValidationError as error:
        for item in error.errors(include_input=False, include_url=False):
            name = ".".join(str(part) for part in item["loc"])
            if name.split(".")[0] in own:
                errors.append({"field": name, "message": str(item["msg"])})
        return {}
    return {name: checked[name] for name in sorted(own)}
