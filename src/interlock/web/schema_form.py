"""Forms drawn from JSON Schema: the schema a kind publishes for its settings, credentials
or options (pydantic's ``model_json_schema()``) becomes the fields a person fills in, and
what they post becomes the JSON object the service takes. A new kind needs no template
and no code here: its schema alone draws its form.

Three shapes of the same data meet here. The schema is read once into ``Node``s
(web.schema_nodes). What
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
from typing import Any

from interlock.domain.errors import InvalidInput
from interlock.web.schema_nodes import Node, Widget, as_text, read_nodes, walk

#: What each input holds as text: a string, or the ticked values of a checkbox group.
Texts = dict[str, str | list[str]]
CHECKED = "on"


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
        return as_text(choice)


@dataclass
class SchemaForm:
    """The form of one object schema, its inputs named ``prefix.property`` (or just
    ``property`` with an empty prefix)."""

    schema: Mapping[str, Any]
    prefix: str
    nodes: tuple[Node, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.nodes = read_nodes(self.schema, self.prefix)

    def texts(self, values: Mapping[str, Any] | None) -> Texts:
        """What the inputs show for stored ``values`` (None: a new form, the defaults)."""
        texts: Texts = {}
        _texts_of(self.nodes, values, texts)
        return texts

    def posted(self, form: Any) -> Texts:
        """The texts of a posted form (a starlette FormData, or any ``getlist`` mapping)."""
        texts: Texts = {}
        for node in walk(self.nodes):
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
        placed = place(problems or {}, self.names())[0]
        return [_field(node, texts, placed, secrets_set) for node in self.nodes]

    def names(self) -> list[str]:
        return [node.name for node in walk(self.nodes)]


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


# Values to texts, and back.

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
            texts[node.name] = [as_text(item) for item in value or ()]
        elif node.widget is Widget.LINES:
            texts[node.name] = "\n".join(as_text(item) for item in value or ())
        elif node.widget is Widget.JSON:
            texts[node.name] = "" if value in (None, {}, []) else json.dumps(value, indent=2)
        else:
            texts[node.name] = as_text(value)


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
        by_text = {as_text(choice): choice for choice in node.choices}
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
        by_text = {as_text(choice): choice for choice in node.choices}
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
