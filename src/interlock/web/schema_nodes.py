"""JSON Schema read into form nodes: for each property of a kind's settings,
credentials or options schema (pydantic's ``model_json_schema()``), which input it
needs, its label and help, and how its text becomes a value (web.schema_form).

pydantic writes ``$ref`` into ``$defs`` for nested models and enums, ``anyOf`` with
``null`` for optional fields, ``anyOf`` of integer and number for ``int | float``,
``writeOnly``/``format: password`` for secrets, ``format: uri`` for URLs. Hand-written
schemas' ``definitions``, ``allOf`` around a ``$ref`` and ``type`` lists read the same.
Whatever has no input of its own (unions, maps, lists of objects) is edited as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

#: Strings with one of these formats (``Field(json_schema_extra={"format":
#: "template"})``) or a ``contentMediaType`` are written in a text area.
MULTILINE_FORMATS = frozenset({"textarea", "template", "multiline"})
URL_FORMATS = frozenset({"uri", "url", "iri"})
NUMBERS = ("integer", "number")
#: Nesting deeper than this (or a schema that refers to itself) is edited as JSON.
MAX_DEPTH = 6


class Widget(StrEnum):
    TEXT = "text"
    URL = "url"
    TEXTAREA = "textarea"
    SECRET = "secret"
    NUMBER = "number"
    CHECKBOX = "checkbox"
    SELECT = "select"
    CHOICES = "choices"  # an array of enum values: one checkbox each
    LINES = "lines"  # an array of strings or numbers: one per line
    JSON = "json"  # free-form objects, lists of objects, unions
    GROUP = "group"  # a nested object: a fieldset


_NO_DEFAULT = object()


@dataclass(frozen=True)
class Node:
    """One property of a schema, read once: what input it needs and how to read it."""

    name: str
    label: str
    help: str
    widget: Widget
    required: bool = False
    nullable: bool = False
    default: Any = _NO_DEFAULT
    choices: tuple[Any, ...] = ()
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    expect: str | None = None  # JSON: "object" or "array" when the schema says
    #: Never shown back; empty when editing keeps the stored value. A password input,
    #: or a JSON or list field with a secret somewhere inside.
    secret: bool = False
    placeholder: str = ""
    children: tuple[Node, ...] = ()

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT


def as_text(value: Any) -> str:
    """A value as an input shows it (JSON for what is not a string)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def read_nodes(schema: Mapping[str, Any], prefix: str) -> tuple[Node, ...]:
    """The nodes of an object schema's properties, named ``prefix.property`` (or just
    ``property`` with an empty prefix), nested objects' nodes under theirs."""
    defs = _defs(schema, {})
    return _children(_resolved(schema, defs)[0], prefix, defs, 0)


def walk(nodes: Sequence[Node]) -> list[Node]:
    """Every node, nested ones after their group."""
    found: list[Node] = []
    for node in nodes:
        found.append(node)
        found.extend(walk(node.children))
    return found


def _defs(schema: Mapping[str, Any], outer: Mapping[str, Any]) -> dict[str, Any]:
    inner = schema.get("$defs") or schema.get("definitions") or {}
    return {**outer, **inner} if inner else dict(outer)


def _resolved(schema: Mapping[str, Any], defs: Mapping[str, Any]
              ) -> tuple[dict[str, Any], bool]:
    """The schema with ``$ref`` and single ``allOf`` followed (its own keys winning) and
    ``anyOf``/``type`` lists without null; and whether null was allowed."""
    current = dict(schema)
    nullable = False
    for _ in range(MAX_DEPTH * 2):
        if "$ref" in current:
            name = str(current.pop("$ref")).rsplit("/", 1)[-1]
            if name not in defs:
                raise ValueError(f"the schema refers to an unknown definition {name!r}")
            current = {**defs[name], **current}
        elif len(current.get("allOf") or ()) == 1:
            current = {**current.pop("allOf")[0], **current}
        elif "anyOf" in current or "oneOf" in current:
            key = "anyOf" if "anyOf" in current else "oneOf"
            options = [option for option in current[key] if option.get("type") != "null"]
            nullable = nullable or len(options) < len(current[key])
            del current[key]
            if len(options) == 1:
                current = {**options[0], **current}
            elif options and all(_resolved(option, defs)[0].get("type") in NUMBERS
                                 for option in options):
                current = {**_numbers([_resolved(option, defs)[0] for option in options]),
                           **current}
            else:
                current[key] = options
                break
        elif isinstance(current.get("type"), list):
            types = [kind for kind in current["type"] if kind != "null"]
            nullable = nullable or len(types) < len(current["type"])
            current["type"] = types[0] if len(types) == 1 else types
            break
        else:
            break
    return current, nullable


def _numbers(options: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``int | float`` (pydantic writes an anyOf): one number input taking either,
    within the widest of their bounds."""
    merged: dict[str, Any] = {
        "type": "integer" if all(option["type"] == "integer" for option in options)
        else "number"}
    for key, widest in (("minimum", min), ("maximum", max)):
        bounds: list[float] = [option[key] for option in options if key in option]
        if len(bounds) == len(options):
            merged[key] = widest(bounds)
    return merged


def _children(schema: Mapping[str, Any], prefix: str, defs: Mapping[str, Any],
              depth: int) -> tuple[Node, ...]:
    required = set(schema.get("required") or ())
    return tuple(
        node for name, prop in (schema.get("properties") or {}).items()
        if (node := _node(f"{prefix}.{name}" if prefix else name, name, prop,
                          name in required, defs, depth)) is not None)


def _node(path: str, name: str, raw: Mapping[str, Any], required: bool,
          defs: Mapping[str, Any], depth: int) -> Node | None:
    defs = _defs(raw, defs)
    schema, nullable = _resolved(raw, defs)
    if schema.get("readOnly") and not schema.get("writeOnly"):
        return None
    # A $ref'd model's title is its class name: the property's own title reads better.
    label = str(raw.get("title") or name.replace("_", " ").capitalize())
    examples = schema.get("examples") or ()
    common: dict[str, Any] = {
        "name": path, "label": label, "help": str(schema.get("description") or ""),
        "required": required, "nullable": nullable,
        "default": schema.get("default", _NO_DEFAULT),
        "placeholder": as_text(examples[0]) if examples else "",
    }
    shape = _shape(path, schema, defs, depth)
    if shape["widget"] in (Widget.JSON, Widget.LINES) and _mentions_secret(schema, defs):
        shape["secret"] = True
    if shape["widget"] is Widget.JSON and not common["placeholder"]:
        common["placeholder"] = json.dumps(_sample(schema, defs, 0), ensure_ascii=False)
    return Node(**common, **shape)


def _sample(schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> Any:
    """A skeleton of the JSON a field takes, for its placeholder: the required keys of
    objects, one entry of maps and lists, a word for each kind of value."""
    schema = _resolved(schema, defs)[0]
    if schema.get("examples"):
        return schema["examples"][0]
    if "enum" in schema or "const" in schema:
        return (schema.get("enum") or [schema.get("const")])[0]
    kind = schema.get("type")
    if depth > 3:
        return "…"
    if kind == "object" and schema.get("properties"):
        required = schema.get("required") or list(schema["properties"])[:1]
        return {name: _sample(schema["properties"][name], defs, depth + 1)
                for name in required if name in schema["properties"]}
    if kind == "object":
        values = schema.get("additionalProperties")
        return {"name": _sample(values, defs, depth + 1)
                if isinstance(values, Mapping) else "value"}
    if kind == "array":
        return [_sample(schema.get("items") or {}, defs, depth + 1)]
    return {"integer": 1, "number": 1.5, "boolean": True}.get(str(kind), "…")


def _shape(path: str, schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int
           ) -> dict[str, Any]:
    kind = schema.get("type")
    if "const" in schema or "enum" in schema:
        return {"widget": Widget.SELECT,
                "choices": tuple(schema["enum"]) if "enum" in schema else (schema["const"],)}
    if kind == "object" and schema.get("properties") and depth < MAX_DEPTH:
        return {"widget": Widget.GROUP,
                "children": _children(schema, path, defs, depth + 1)}
    if kind == "array":
        items = _resolved(schema.get("items") or {}, defs)[0]
        if "enum" in items:
            return {"widget": Widget.CHOICES, "choices": tuple(items["enum"])}
        if items.get("type") in ("string", "integer", "number"):
            return {"widget": Widget.LINES, "integer": items["type"] == "integer",
                    "expect": items["type"]}
        return {"widget": Widget.JSON, "expect": "array"}
    if kind == "boolean":
        return {"widget": Widget.CHECKBOX}
    if kind in ("integer", "number"):
        return {"widget": Widget.NUMBER, "integer": kind == "integer",
                "minimum": schema.get("minimum", schema.get("exclusiveMinimum")),
                "maximum": schema.get("maximum", schema.get("exclusiveMaximum"))}
    if kind == "string":
        if schema.get("writeOnly") or schema.get("format") == "password":
            return {"widget": Widget.SECRET, "secret": True}
        if schema.get("format") in URL_FORMATS:
            return {"widget": Widget.URL}
        if schema.get("format") in MULTILINE_FORMATS or "contentMediaType" in schema:
            return {"widget": Widget.TEXTAREA}
        return {"widget": Widget.TEXT}
    return {"widget": Widget.JSON, "expect": "object" if kind == "object" else None}


def _mentions_secret(schema: Any, defs: Mapping[str, Any], depth: int = 0) -> bool:
    if depth > MAX_DEPTH * 4:
        return False
    if isinstance(schema, Mapping):
        if schema.get("writeOnly") or schema.get("format") == "password":
            return True
        if "$ref" in schema:
            target = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1])
            if target is not None and _mentions_secret(target, defs, depth + 1):
                return True
        return any(_mentions_secret(value, defs, depth + 1)
                   for key, value in schema.items() if key != "$defs")
    if isinstance(schema, list):
        return any(_mentions_secret(item, defs, depth + 1) for item in schema)
    return False
