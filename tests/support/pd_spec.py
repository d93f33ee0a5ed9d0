"""PagerDuty's own OpenAPI description, as the judge of what the driver sends and what
the fake answers.

The source is PagerDuty's published REST API v2 description (OpenAPI 3.0.2,
github.com/PagerDuty/api-schema, ``reference/REST/openapiv3.json``). The whole file is
2.7 MB and its licence is not stated where the team keeps it, so the repository carries
a trimmed extraction instead: the operations the connector uses, and every component
they reference, unchanged (``tests/specs/pagerduty-rest-v2.trimmed.json``). To make it
again from a full copy::

    python -m tests.support.pd_spec /path/to/pagerduty-rest-v2.json

OpenAPI 3.0 schemas are not quite JSON Schema (``nullable``), so they are converted on
load, then checked with ``jsonschema`` (Draft 7 rules, which ignore the OpenAPI-only
keywords such as ``readOnly`` and ``example``).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

TRIMMED = Path(__file__).resolve().parents[1] / "specs" / "pagerduty-rest-v2.trimmed.json"
SOURCE = ("PagerDuty REST API v2, OpenAPI 3.0.2: github.com/PagerDuty/api-schema, "
          "reference/REST/openapiv3.json (2026-08)")

#: (method, path template) of every operation the connector calls.
OPERATIONS = (
    ("post", "/incidents"),
    ("get", "/incidents"),
    ("get", "/incidents/{id}"),
    ("put", "/incidents/{id}"),
    ("get", "/incidents/{id}/notes"),
    ("post", "/incidents/{id}/notes"),
    ("get", "/users"),
)


# -- checking -------------------------------------------------------------------------

def request_errors(method: str, path: str, body: Any) -> list[str]:
    """Why ``body`` is not a request body the operation accepts (empty: it is)."""
    template = template_of(path)
    operation = _document()["paths"][template][method.lower()]
    if "requestBody" not in operation:
        return [] if body is None else [f"{method} {template} takes no body"]
    pointer = _pointer("paths", template, method.lower(), "requestBody", "content",
                       "application/json", "schema")
    return _errors(pointer, body)


def response_errors(method: str, path: str, status: int, body: Any) -> list[str]:
    """Why ``body`` is not an answer the operation documents for ``status``."""
    template = template_of(path)
    responses = _document()["paths"][template][method.lower()]["responses"]
    if str(status) not in responses:
        return [f"{method} {template} documents no {status} answer "
                f"(only {', '.join(sorted(responses))})"]
    answer = responses[str(status)]
    parts = ["paths", template, method.lower(), "responses", str(status)]
    if "$ref" in answer:
        parts = answer["$ref"].lstrip("#/").split("/")
        parts = [part.replace("~1", "/").replace("~0", "~") for part in parts]
        answer = _resolve(answer["$ref"])
    if "content" not in answer:
        return [] if body is None else [f"the {status} answer has no body"]
    return _errors(_pointer(*parts, "content", "application/json", "schema"), body)


def query_errors(method: str, path: str, query: list[tuple[str, str]]) -> list[str]:
    """Query parameters the operation does not declare, or values outside its enum."""
    declared: dict[str, Any] = {}
    for parameter in _document()["paths"][template_of(path)][method.lower()].get(
            "parameters", []):
        if "$ref" in parameter:
            parameter = _resolve(parameter["$ref"])
        if parameter.get("in") == "query":
            schema = parameter.get("schema") or {}
            declared[parameter["name"]] = schema.get("enum") or (
                schema.get("items") or {}).get("enum")
    problems = []
    for name, value in query:
        if name not in declared:
            problems.append(f"{method} {template_of(path)} has no query parameter {name}")
        elif declared[name] is not None and value not in declared[name]:
            problems.append(f"{name}={value} is not one of {declared[name]}")
    return problems


def header_required(method: str, path: str, header: str) -> bool:
    """Whether the operation declares ``header`` as a required request header."""
    operation = _document()["paths"][template_of(path)][method.lower()]
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = _resolve(parameter["$ref"])
        if parameter.get("in") == "header" and parameter["name"].lower() == header.lower():
            return bool(parameter.get("required"))
    return False


def example(method: str, template: str, status: int) -> Any:
    """A fresh copy of the response example PagerDuty documents for the operation."""
    answer = _document()["paths"][template][method.lower()]["responses"][str(status)]
    examples = answer["content"]["application/json"]["examples"]
    return copy.deepcopy(next(iter(examples.values()))["value"])


def template_of(path: str) -> str:
    """The documented path template a concrete path belongs to (``/incidents/{id}``)."""
    for template in _document()["paths"]:
        pattern = "^" + re.sub(r"\\\{[^/]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    raise KeyError(f"{path} is not among the operations in {TRIMMED.name}")


def _errors(pointer: str, instance: Any) -> list[str]:
    validator = _validator(pointer)
    return [f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
            for error in validator.iter_errors(instance)]


@cache
def _validator(pointer: str) -> jsonschema.Draft7Validator:
    # The whole document is the root resource, so "#/components/..." references resolve;
    # Draft 7 ignores the siblings of "$ref" and the document's other keys.
    root = dict(_document())
    root["$ref"] = pointer
    return jsonschema.Draft7Validator(root)


@cache
def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(TRIMMED.read_text())
    _apply_errata(loaded)
    converted: dict[str, Any] = _json_schema(loaded)
    return converted


def _apply_errata(document: dict[str, Any]) -> None:
    """Where the description contradicts PagerDuty's own documentation, the
    documentation wins, and each such place is named here:

    * ``IncidentBody.details`` is typed ``object``, but "the Incident Creation API
      currently only supports string Incident bodies" (developer.pagerduty.com,
      REST API > Incident Creation API), and the operation's own request example sends
      a string.
    * ``Incident.resolved_at`` and ``alert_grouping.ended_at`` are typed ``string`` and
      ``resolve_reason`` an object, but the operations' own response examples answer
      ``null`` for an incident that is not resolved: the real API does.
    """
    schemas = document["components"]["schemas"]
    schemas["IncidentBody"]["properties"]["details"]["type"] = ["string", "object"]
    incident = schemas["Incident"]["allOf"][1]["properties"]
    incident["resolved_at"]["nullable"] = True
    incident["alert_grouping"]["properties"]["ended_at"]["nullable"] = True
    incident["resolve_reason"] = {"oneOf": [incident["resolve_reason"], {"type": "null"}]}


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects as JSON Schema: ``nullable: true`` allows null."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", False) is True:
        kind = converted.get("type")
        if isinstance(kind, str):
            converted["type"] = [kind, "null"]
        if isinstance(converted.get("enum"), list) and None not in converted["enum"]:
            converted["enum"] = [*converted["enum"], None]
    return converted


def _resolve(reference: str) -> Any:
    node: Any = _document()
    for part in reference.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


# -- extracting -------------------------------------------------------------------------

def extract(full: dict[str, Any]) -> dict[str, Any]:
    """The operations in OPERATIONS and everything they reference, copied unchanged."""
    trimmed: dict[str, Any] = {
        "openapi": full["openapi"],
        "info": {**full["info"], "x-interlock-extracted-from": SOURCE,
                 "x-interlock-operations": [f"{m.upper()} {p}" for m, p in OPERATIONS]},
        "paths": {},
    }
    for method, template in OPERATIONS:
        trimmed["paths"].setdefault(template, {})[method] = copy.deepcopy(
            full["paths"][template][method])
    pending = list(_references(trimmed["paths"]))
    seen: set[str] = set()
    while pending:
        reference = pending.pop()
        parts = [part.replace("~1", "/").replace("~0", "~")
                 for part in reference.lstrip("#/").split("/")]
        # Copy the whole named component the pointer lands in (components/<kind>/<name>).
        top = "/".join(parts[:3])
        if top in seen:
            continue
        seen.add(top)
        source: Any = full
        target: Any = trimmed
        for index, part in enumerate(parts[:3]):
            source = source[part]
            if index < 2:
                target = target.setdefault(part, {})
            else:
                target[part] = copy.deepcopy(source)
        pending.extend(_references(source))
    return trimmed


def _references(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_references(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_references(item))
    return found


if __name__ == "__main__":
    document = extract(json.loads(Path(sys.argv[1]).read_text()))
    TRIMMED.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"wrote {TRIMMED} ({TRIMMED.stat().st_size} bytes)")
