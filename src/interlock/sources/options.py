"""The parsers behind the :class:`~interlock.ports.parser.PayloadParser` port: sources
store their options as plain JSON (``service_label``, ``severity_label``,
``fingerprint_fields``, ``mapping``); this turns them into :class:`ParseOptions`, checks
them when a source is saved, and dispatches a payload to its kind's parser."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from interlock.domain.alerts import ParseError, Signal, SourcePlugin
from interlock.domain.errors import InvalidInput
from interlock.sources import parse, parse_options, plugin, plugins


class SourceParsers:
    def __init__(self) -> None:
        # Loaded now, so a broken or doubly registered source kind stops the start
        # (PluginError) instead of failing the first payload.
        plugins()

    @property
    def kinds(self) -> dict[str, SourcePlugin]:
        return plugins()

    def plugin(self, kind: str) -> SourcePlugin:
        return plugin(kind)

    def __call__(self, kind: str, payload: Any, options: Any) -> list[Signal]:
        return self.reader(kind, options)(payload)

    def reader(self, kind: str, options: Any) -> Callable[[Any], list[Signal]]:
        try:
            parsed = parse_options(kind, options if isinstance(options, Mapping) else {})
        except InvalidInput as exc:
            problem = f"the source's options are invalid: {exc.detail}"

            def refuse(_payload: Any) -> list[Signal]:
                raise ParseError(problem)
            return refuse
        return lambda payload: parse(kind, payload, parsed)

    def check_options(self, kind: str, options: Any) -> dict[str, Any]:
        """The options as they are stored: InvalidInput naming ``options.<field>`` when
        one is wrong (e.g. ``options.mapping.status`` for bad JMESPath)."""
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise InvalidInput("options must be an object",
                               errors=[{"field": "options", "message": "expected an object"}])
        try:
            parsed = parse_options(kind, options)
        except InvalidInput as exc:
            errors = [{**error, "field": f"options.{error['field']}"}
                      for error in exc.errors or []]
            raise InvalidInput(f"options.{exc.detail}", errors=errors) from None
        stored: dict[str, Any] = {}
        if parsed.service_label != "service":
            stored["service_label"] = parsed.service_label
        if parsed.severity_label != "severity":
            stored["severity_label"] = parsed.severity_label
        if parsed.fingerprint_fields:
            stored["fingerprint_fields"] = list(parsed.fingerprint_fields)
        if parsed.mapping:
            stored["mapping"] = dict(parsed.mapping)
        stored.update(parsed.extra)
        return stored
