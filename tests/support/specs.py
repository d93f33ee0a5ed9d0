"""Checking the loopback fakes' traffic against the makers' own API descriptions.

Every request a connector sends to ``FakeJira`` or ``FakeSlack`` is checked against
the operation the tool's published description declares for it (method and path,
query parameters and their types, the JSON body's schema, the authentication scheme),
and every answer the fake gives is checked against that operation's response schema.
A fake that drifts from the real API, or a driver that sends what the real service
would refuse, then fails the test instead of passing against a kind imitation.

The descriptions are trimmed copies made by ``tests/specs/extract.py`` (see
``tests/specs/README.md`` for where they come from). Where a description is older or
looser than the service it describes, the difference is listed in :data:`SLACK_ERRATA`
or :data:`JIRA_ERRATA` with the documentation that says so; nothing else is relaxed.

Schemas are checked with ``jsonschema`` (draft 4, which OpenAPI 2.0 and 3.0 schemas
follow); OpenAPI 3.0's ``nullable`` is read as "or null" when the description loads.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).resolve().parents[1] / "specs"
_DOCUMENT = "urn:interlock-tests:spec"


@dataclass(frozen=True)
class Errata:
    """What a description gets wrong about its service, each with its source."""

    #: method name → request arguments the service takes that the description omits.
    extra_arguments: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: method name → error codes the service answers that the description omits.
    extra_errors: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Properties a message object may carry that the description omits.
    extra_message_properties: Mapping[str, Any] = field(default_factory=dict)
    #: (method name, JSON pointer) of ``minItems`` the service does not hold to.
    empty_lists: frozenset[tuple[str, str]] = frozenset()


#: slack-web-api.json is version 1.7.0 (2021); Slack's method pages are newer.
SLACK_ERRATA = Errata(
    extra_arguments={
        # https://api.slack.com/methods/chat.postMessage#arg_metadata and
        # https://api.slack.com/metadata/using: message metadata (2022).
        "chat.postMessage": frozenset({"metadata"}),
        "chat.update": frozenset({"metadata"}),
        # https://api.slack.com/methods/conversations.history#arg_include_all_metadata
        "conversations.history": frozenset({"include_all_metadata"}),
    },
    extra_errors={
        # https://api.slack.com/methods/chat.postMessage#errors lists these too.
        "chat.postMessage": frozenset({
            "invalid_blocks", "invalid_blocks_format", "missing_scope", "token_expired",
            "token_revoked", "ratelimited", "restricted_action", "message_limit_exceeded",
            "invalid_metadata_format", "invalid_metadata_schema"}),
        # https://api.slack.com/methods/chat.update#errors
        "chat.update": frozenset({"invalid_blocks", "invalid_blocks_format",
                                  "missing_scope", "token_expired", "not_in_channel",
                                  "is_archived", "ratelimited"}),
        # https://api.slack.com/methods/conversations.history#errors
        "conversations.history": frozenset({"not_in_channel", "token_expired",
                                            "token_revoked", "ratelimited"}),
    },
    # https://api.slack.com/metadata/using#retrieving: messages read with
    # include_all_metadata=true carry {"event_type", "event_payload"}.
    extra_message_properties={"metadata": {
        "type": "object", "required": ["event_type", "event_payload"],
        "properties": {"event_type": {"type": "string"},
                       "event_payload": {"type": "object"}}}},
    # An empty channel answers "messages": [] (the method page's own example when
    # nothing matches), though the schema says minItems 1.
    empty_lists=frozenset({("conversations.history", "/properties/messages")}),
)

#: jira-cloud-rest-v3.json declares most 4xx answers without a schema; Jira's
#: "Status codes" documentation (https://developer.atlassian.com/cloud/jira/platform/
#: rest/v3/intro/#status-codes) says errors come as an ErrorCollection.
JIRA_ERROR_SCHEMA = "#/components/schemas/ErrorCollection"

#: Answers any operation may give though no operation lists them: rate limiting
#: (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/, and
#: https://api.slack.com/apis/rate-limits: HTTP 429 with Retry-After) and outages.
ALWAYS_POSSIBLE = frozenset({429, 503})


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    name: str
    spec: Mapping[str, Any]
    pointer: str


class Contract:
    """One tool's API description, as a checker of requests and answers."""

    def __init__(self, file: str, *, prefix: str, errata: Errata | None = None,
                 error_schema: str | None = None) -> None:
        self.error_schema = error_schema
        document = json.loads((SPECS / file).read_text())
        self.errata = errata or Errata()
        self.document = _openapi30_nullable(document)
        self._apply_errata()
        self.prefix = prefix
        registry: Registry[Any] = Registry().with_resource(
            _DOCUMENT, Resource(contents=self.document, specification=DRAFT4))
        self._registry = registry
        self.operations: list[tuple[re.Pattern[str], Operation]] = []
        for template, methods in self.document["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)",
                                              re.escape(prefix + template)) + "$")
            for method, spec in methods.items():
                if method == "parameters":
                    continue
                pointer = "/paths/" + _escape(template) + "/" + method
                self.operations.append((pattern, Operation(
                    method.upper(), template, template.lstrip("/"), spec, pointer)))

    def operation(self, method: str, path: str) -> Operation | None:
        for pattern, operation in self.operations:
            if operation.method == method and pattern.match(path):
                return operation
        return None

    def validate(self, pointer: str, instance: Any) -> list[str]:
        validator = Draft4Validator({"$ref": f"{_DOCUMENT}#{pointer}"},
                                    registry=self._registry)
        return [f"{'/'.join(str(part) for part in error.absolute_path) or '(top)'}: "
                f"{error.message[:300]}"
                for error in sorted(validator.iter_errors(instance), key=str)][:5]

    def _apply_errata(self) -> None:
        definitions = self.document.get("definitions") or {}
        message = definitions.get("objs_message")
        if message is not None:
            message["properties"].update(copy.deepcopy(self.errata.extra_message_properties))
        for template, methods in self.document["paths"].items():
            name = template.lstrip("/")
            for operation in methods.values():
                if not isinstance(operation, dict):
                    continue
                errors = self.errata.extra_errors.get(name)
                default = (operation.get("responses") or {}).get("default", {})
                enum = ((default.get("schema") or {}).get("properties") or {}) \
                    .get("error", {}).get("enum")
                if errors and isinstance(enum, list):
                    enum.extend(sorted(errors - set(enum)))
                success = (operation.get("responses") or {}).get("200", {}).get("schema")
                for method_name, pointer in self.errata.empty_lists:
                    if method_name == name and success is not None:
                        target = success
                        for part in pointer.strip("/").split("/"):
                            target = target[part]
                        target.pop("minItems", None)


@dataclass
class Checker:
    """Collects what one fake saw that its contract forbids."""

    contract: Contract
    violations: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, query: Mapping[str, str],
                headers: Mapping[str, str], body: Any) -> Operation | None:
        """The operation, or None (and a violation) when the description has none."""
        operation = self.contract.operation(method, path)
        if operation is None:
            self._add(f"{method} {path}: no such operation in the API description")
            return None
        problems = self._request_problems(operation, query, headers, body)
        for problem in problems:
            self._add(f"{method} {path} request: {problem}")
        return operation

    def response(self, operation: Operation | None, status: int,
                 headers: Mapping[str, str], body: bytes) -> None:
        if operation is None:
            return
        for problem in self._response_problems(operation, status, headers, body):
            self._add(f"{operation.method} {operation.template} answer {status}: {problem}")

    def _add(self, problem: str) -> None:
        self.violations.append(problem)

    # -- requests -----------------------------------------------------------------------

    def _request_problems(self, operation: Operation, query: Mapping[str, str],
                          headers: Mapping[str, str], body: Any) -> list[str]:
        problems = _auth_problems(operation.spec, headers)
        declared = [param for param in operation.spec.get("parameters") or []
                    if isinstance(param, dict)]
        extra = self.contract.errata.extra_arguments.get(operation.name, frozenset())
        in_query = {param["name"]: param for param in declared if param.get("in") == "query"}
        for name, value in query.items():
            if name not in in_query and name not in extra:
                problems.append(f"query parameter {name!r} is not declared")
            elif name in in_query and not _fits(in_query[name], value):
                problems.append(f"query parameter {name}={value!r} is not of type "
                                f"{_type_of(in_query[name])}")
        for name, param in in_query.items():
            if param.get("required") and name not in query and name != "token":
                problems.append(f"required query parameter {name!r} is missing")
        form = {param["name"]: param for param in declared if param.get("in") == "formData"}
        if "requestBody" in operation.spec:
            problems.extend(self._body_problems(operation, headers, body))
        elif form:
            problems.extend(_form_problems(form, extra, headers, body))
        elif body not in (None, b"", ""):
            problems.append("a body was sent to an operation that takes none")
        return problems

    def _body_problems(self, operation: Operation, headers: Mapping[str, str], body: Any
                       ) -> list[str]:
        content = operation.spec["requestBody"].get("content") or {}
        if "application/json" not in content:
            return ["the operation takes no JSON body"]
        if not _header(headers, "content-type").startswith("application/json"):
            return ["the JSON body is not sent as application/json"]
        if body is None:
            return ["the body is missing"] if operation.spec["requestBody"].get("required") \
                else []
        pointer = f"{operation.pointer}/requestBody/content/application~1json/schema"
        return [f"body {problem}" for problem in self.contract.validate(pointer, body)]

    # -- answers ------------------------------------------------------------------------

    def _response_problems(self, operation: Operation, status: int,
                           headers: Mapping[str, str], raw: bytes) -> list[str]:
        responses = operation.spec.get("responses") or {}
        declared = str(status) in responses
        if not declared and "default" not in responses and status not in ALWAYS_POSSIBLE:
            return [f"status {status} is not one the operation answers"]
        if status in ALWAYS_POSSIBLE and not declared:
            if status == 429 and not _header(headers, "retry-after"):
                return ["a 429 without Retry-After"]
            return []
        if not raw:
            return []
        try:
            body = json.loads(raw)
        except ValueError:
            return ["the body is not JSON"]
        key = str(status) if declared else "default"
        pointer = self._schema_pointer(operation, key, body)
        if pointer is None:
            if status >= 400 and self.contract.error_schema:
                return [f"error body {problem}" for problem in
                        self.contract.validate(self.contract.error_schema[1:], body)]
            return []
        return [f"body {problem}" for problem in self.contract.validate(pointer, body)]

    def _schema_pointer(self, operation: Operation, key: str, body: Any) -> str | None:
        answer = (operation.spec.get("responses") or {}).get(key) or {}
        if "schema" in answer:  # OpenAPI 2.0 (Slack): 200 is success, "default" is ok:false
            if key == "200" and isinstance(body, dict) and body.get("ok") is False:
                key = "default"
                answer = operation.spec["responses"].get("default") or {}
            return f"{operation.pointer}/responses/{key}/schema" if "schema" in answer \
                else None
        content = answer.get("content") or {}
        schema = (content.get("application/json") or {}).get("schema")
        if not schema:
            return None
        return f"{operation.pointer}/responses/{key}/content/application~1json/schema"


def _auth_problems(operation: Mapping[str, Any], headers: Mapping[str, str]) -> list[str]:
    authorization = _header(headers, "authorization")
    security = operation.get("security") or []
    if any("basicAuth" in item for item in security):
        return [] if authorization.startswith("Basic ") else [
            "no HTTP Basic Authorization header (the operation takes basicAuth or OAuth2)"]
    token_param = any(param.get("name") == "token" for param in operation.get("parameters")
                      or [] if isinstance(param, dict))
    if token_param:
        # https://api.slack.com/web#authentication: the token as a Bearer header.
        return [] if authorization.startswith("Bearer ") else [
            "no Authorization: Bearer token"]
    return []


def _form_problems(form: Mapping[str, Any], extra: frozenset[str],
                   headers: Mapping[str, str], body: Any) -> list[str]:
    """Slack's methods are described as form fields; Slack takes the same arguments as
    a JSON object (https://api.slack.com/web#posting_json), where ``blocks`` and
    ``attachments`` are arrays rather than the form's JSON-encoded strings."""
    if not _header(headers, "content-type").startswith("application/json"):
        return ["the body is not sent as application/json"]
    if not isinstance(body, dict):
        return ["the JSON body is not an object"]
    problems = []
    for name, value in body.items():
        param = form.get(name)
        if param is None:
            if name not in extra:
                problems.append(f"argument {name!r} is not declared")
            continue
        if name in ("blocks", "attachments") and isinstance(value, list):
            continue
        if not _fits(param, value):
            problems.append(f"argument {name}={value!r} is not of type {_type_of(param)}")
    for name, param in form.items():
        if param.get("required") and name not in body:
            problems.append(f"required argument {name!r} is missing")
    return problems


def _fits(param: Mapping[str, Any], value: Any) -> bool:
    kind = _type_of(param)
    if isinstance(value, str):
        if kind == "integer":
            return re.fullmatch(r"-?\d+", value) is not None
        if kind == "number":
            return re.fullmatch(r"-?\d+(\.\d+)?", value) is not None
        if kind == "boolean":
            return value in ("true", "false")
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("integer", "number"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return kind == "array" and isinstance(value, list)


def _type_of(param: Mapping[str, Any]) -> str:
    return str(param.get("type") or (param.get("schema") or {}).get("type") or "string")


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((value for key, value in headers.items() if key.lower() == name), "")


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _openapi30_nullable(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema says it: "or null"."""
    if isinstance(node, list):
        return [_openapi30_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _openapi30_nullable(value) for key, value in node.items()}
    if converted.pop("nullable", False) is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@cache
def jira() -> Contract:
    return Contract("jira-cloud-rest-v3.trimmed.json", prefix="",
                    error_schema=JIRA_ERROR_SCHEMA)


@cache
def slack() -> Contract:
    return Contract("slack-web-api.trimmed.json", prefix="/api", errata=SLACK_ERRATA)
