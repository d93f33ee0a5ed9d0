"""Forms drawn from JSON Schema: the schema a kind publishes for its settings, credentials
or options (pydantic's ``model_json_schema()``) becomes the fields a person fills in, and
what they post becomes the JSON object the service takes. A new kind needs no template
and no code here: its schema alone draws its form.

Three shapes of the same data meet here. The schema is read once into ``Node``s. What
is *shown and posted* is text, one string (or list of strings, for a group of
checkboxes) per input name, so a refused form comes back exactly as typed. What the
service *takes* is typed JSON (numbers, booleans, lists, nested objects), built by
:meth:`SchemaForm.read`, which names every field it cannot read in one InvalidInput,
with the same ``field`` paths (``settings.url``) the service uses for its own refusals.

Secrets (``writeOnly`` or ``format: password``) are never shown back, not even when a
form is refused: an empty secret means "keep the stored one" when editing.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from interlock.domain.errors import InvalidInput

#: What each input holds as text: a string, or the ticked values of a checkbox group.
Texts = dict[str, str | list[str]]
#: Strings with one of these formats (``Field(json_schema_extra={"format":
#: "template"})``) or a ``contentMediaType`` are written in a text area.
MULTILINE_FORMATS = frozenset({"textarea", "template", "multiline"})
URL_FORMATS = frozenset({"uri", "url", "iri"})
NUMBERS = ("integer", "number")
#: Nesting deeper than this (or a schema that refers to itself) is edited as JSON.
MAX_DEPTH = 6
CHECKED = "on"


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


@dataclass(frozen=True)
class Field:
    """A node with what the page shows: its text, its problem, whether a secret is set."""

    node: Node
    value: str = ""
    ticked: tuple[str, ...] = ()
    error: str | None = None
    secret_set: bool = False
    children: tuple[Field, ...] = ()

    @property
    def id(self) -> str:
        return "field-" + self.node.name.replace(".", "-")

    @property
    def step(self) -> str:
        return "1" if self.node.integer else "any"

    def option_text(self, choice: Any) -> str:
        return _text(choice)


@dataclass
class SchemaForm:
    """The form of one object schema, its inputs named ``prefix.property`` (or just
    ``property`` with an empty prefix)."""

    schema: Mapping[str, Any]
    prefix: str
    nodes: tuple[Node, ...] = field(init=False)

    def __post_init__(self) -> None:
        root = _resolved(self.schema, _defs(self.schema, {}))[0]
        self.nodes = _children(root, self.prefix, _defs(self.schema, {}), 0)

    def texts(self, values: Mapping[str, Any] | None) -> Texts:
        """What the inputs show for stored ``values`` (None: a new form, the defaults)."""
        texts: Texts = {}
        _texts_of(self.nodes, values, texts)
        return texts

    def posted(self, form: Any) -> Texts:
        """The texts of a posted form (a starlette FormData, or any ``getlist`` mapping)."""
        texts: Texts = {}
        for node in _walk(self.nodes):
            if node.widget is Widget.CHOICES:
                texts[node.name] = [str(value) for value in form.getlist(node.name)]
            else:
                value = form.get(node.name)
                texts[node.name] = value if isinstance(value, str) else ""
        return texts

    def read(self, texts: Mapping[str, str | list[str]], *, editing: bool) -> dict[str, Any]:
        """The JSON object the service takes, or InvalidInput naming every field that
        cannot be read. Editing, an empty secret is left out (the stored one stays)."""
        errors: list[dict[str, str]] = []
        value = _read_object(self.nodes, texts, errors, editing=editing)
        if errors:
            raise InvalidInput(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
        return value

    def fields(self, texts: Mapping[str, str | list[str]],
               problems: Mapping[str, str] | None = None,
               secrets_set: Collection[str] = ()) -> list[Field]:
        """The fields to draw. ``problems`` are messages by field path; a path inside a
        field (``options.mapping.status`` in a JSON field) is shown on that field.
        ``secrets_set`` names the secrets (full paths) the stored object has."""
        placed = place(problems or {}, [node.name for node in _walk(self.nodes)])[0]
        return [_field(node, texts, placed, secrets_set) for node in self.nodes]

    def names(self) -> list[str]:
        return [node.name for node in _walk(self.nodes)]


def place(problems: Mapping[str, str], names: Sequence[str]
          ) -> tuple[dict[str, str], dict[str, str]]:
    """Problems by the field that shows them, and those no field owns (for the top of
    the page). A path owned by a field but deeper (``options.mapping.status``) keeps its
    rest in the message."""
    placed: dict[str, str] = {}
    leftover: dict[str, str] = {}
    for path, message in problems.items():
        path = path.removeprefix("body.")
        owners = [name for name in names if path == name or path.startswith(name + ".")]
        if not owners:
            leftover[path] = message
            continue
        owner = max(owners, key=len)
        text = message if owner == path else f"{path[len(owner) + 1:]}: {message}"
        placed[owner] = f"{placed[owner]}; {text}" if owner in placed else text
    return placed, leftover


def problems_of(error: InvalidInput) -> dict[str, str]:
    """An InvalidInput's messages by field path (``settings.url`` …)."""
    found: dict[str, str] = {}
    for item in error.errors or []:
        path = str(item.get("field", ""))
        message = str(item.get("message", ""))
        found[path] = f"{found[path]}; {message}" if path in found else message
    return found


# Reading the schema.

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
        "placeholder": _text(examples[0]) if examples else "",
    }
    shape = _shape(path, schema, defs, depth)
    if shape["widget"] in (Widget.JSON, Widget.LINES) and _mentions_secret(schema, defs):
        shape["secret"] = True
    return Node(**common, **shape)


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


def _walk(nodes: Sequence[Node]) -> list[Node]:
    found: list[Node] = []
    for node in nodes:
        found.append(node)
        found.extend(_walk(node.children))
    return found


# Values to texts, and back.

def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _texts_of(nodes: Sequence[Node], values: Mapping[str, Any] | None, texts: Texts
              ) -> None:
    for node in nodes:
        key = node.name.rsplit(".", 1)[-1]
        if values is not None and key in values:
            value = values[key]
        else:
            value = node.default if node.has_default else None
        if node.widget is Widget.GROUP:
            _texts_of(node.children, value if isinstance(value, Mapping) else None, texts)
        elif node.secret:
            texts[node.name] = ""
        elif node.widget is Widget.CHECKBOX:
            texts[node.name] = CHECKED if value is True else ""
        elif node.widget is Widget.CHOICES:
            texts[node.name] = [_text(item) for item in value or ()]
        elif node.widget is Widget.LINES:
            texts[node.name] = "\n".join(_text(item) for item in value or ())
        elif node.widget is Widget.JSON:
            texts[node.name] = "" if value in (None, {}, []) else json.dumps(value, indent=2)
        else:
            texts[node.name] = _text(value)


def _field(node: Node, texts: Mapping[str, str | list[str]], problems: Mapping[str, str],
           secrets_set: Collection[str]) -> Field:
    raw = texts.get(node.name, "")
    return Field(
        node=node, value="" if node.secret or isinstance(raw, list) else raw,
        ticked=tuple(raw) if isinstance(raw, list) else (), error=problems.get(node.name),
        secret_set=node.name in secrets_set,
        children=tuple(_field(child, texts, problems, secrets_set)
                       for child in node.children))


def _read_object(nodes: Sequence[Node], texts: Mapping[str, str | list[str]],
                 errors: list[dict[str, str]], *, editing: bool) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for node in nodes:
        key = node.name.rsplit(".", 1)[-1]
        try:
            found = _read(node, texts, errors, editing=editing)
        except _Problem as problem:
            errors.append({"field": node.name, "message": str(problem)})
            continue
        if found is not _LEAVE_OUT:
            value[key] = found
    return value


class _Problem(Exception):
    """A field's text cannot be read; the message is shown beside it."""


_LEAVE_OUT = object()


def _read(node: Node, texts: Mapping[str, str | list[str]], errors: list[dict[str, str]],
          *, editing: bool) -> Any:
    if node.widget is Widget.GROUP:
        if node.nullable and _untouched(node, texts):
            return None
        return _read_object(node.children, texts, errors, editing=editing)
    raw = texts.get(node.name, "")
    if node.widget is Widget.CHECKBOX:
        return raw == CHECKED
    if node.widget is Widget.CHOICES:
        ticked = raw if isinstance(raw, list) else [raw] if raw else []
        by_text = {_text(choice): choice for choice in node.choices}
        unknown = [item for item in ticked if item not in by_text]
        if unknown:
            raise _Problem(f"not one of the choices: {', '.join(unknown)}")
        return [by_text[item] for item in ticked]
    text = raw if isinstance(raw, str) else ""
    text = text.replace("\r\n", "\n")
    if node.widget is not Widget.TEXTAREA:
        text = text.strip()
    if not text:
        return _empty(node, editing=editing)
    return _typed(node, text)


def _untouched(group: Node, texts: Mapping[str, str | list[str]]) -> bool:
    """Whether nothing in an optional group differs from a new form's: then the group is
    left unset rather than refused for its empty required fields."""
    fresh: Texts = {}
    _texts_of(group.children, None, fresh)
    return all(not texts.get(name) or texts.get(name) == fresh.get(name)
               for name in fresh)


def _empty(node: Node, *, editing: bool) -> Any:
    """An empty input: a secret keeps its stored value (editing), a nullable field is
    cleared, another takes its default; a required one is a problem, an optional list
    or object is empty."""
    if node.secret:
        if node.required and not editing:
            raise _Problem("required")
        return _LEAVE_OUT
    if node.nullable:
        return None
    if node.has_default:
        return node.default
    if node.required:
        raise _Problem("required")
    if node.widget is Widget.LINES or node.expect == "array":
        return []
    if node.expect == "object":
        return {}
    return _LEAVE_OUT


def _typed(node: Node, text: str) -> Any:
    if node.widget is Widget.NUMBER:
        number = _number(text, integer=node.integer)
        if node.minimum is not None and number < node.minimum:
            raise _Problem(f"at least {node.minimum:g}")
        if node.maximum is not None and number > node.maximum:
            raise _Problem(f"at most {node.maximum:g}")
        return number
    if node.widget is Widget.SELECT:
        by_text = {_text(choice): choice for choice in node.choices}
        if text not in by_text:
            raise _Problem(f"one of {', '.join(by_text)}")
        return by_text[text]
    if node.widget is Widget.LINES:
        lines = [line.strip() for line in text.split("\n") if line.strip()]
        if node.expect in ("integer", "number"):
            return [_number(line, integer=node.integer) for line in lines]
        return lines
    if node.widget is Widget.JSON:
        return _json(node, text)
    return text


def _number(text: str, *, integer: bool) -> int | float:
    try:
        return int(text)
    except ValueError:
        if integer:
            raise _Problem(f"a whole number, not {text[:40]!r}") from None
    try:
        number = float(text)
    except ValueError:
        raise _Problem(f"a number, not {text[:40]!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise _Problem("a finite number")
    return number


def _json(node: Node, text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise _Problem(f"not valid JSON: {error}") from None
    if node.expect == "object" and not isinstance(value, dict):
        raise _Problem('a JSON object, e.g. {"name": "value"}')
    if node.expect == "array" and not isinstance(value, list):
        raise _Problem("a JSON array, e.g. [ ... ]")
    return value
