"""What a connector kind is: a small frozen spec, registered by an entry point.

A package adds a kind to Interlock with one entry-point line and nothing else::

    [project.entry-points."interlock.connectors"]
    teams = "interlock_teams:PLUGIN"

where ``PLUGIN`` is a :class:`ConnectorPlugin`. The built-in kinds are registered the
same way, in Interlock's own ``pyproject.toml``.

The plugin's two pydantic models are the whole configuration contract: they validate
what a user saves (a field's error becomes a ``settings.<name>`` or
``credentials.<name>`` entry of a 422), their JSON Schema is published at
``GET /api/v1/connector-kinds`` and draws the console's form (field titles become
labels, descriptions help text). Credentials fields typed ``SecretStr`` are write-only.
A settings field typed :data:`ToolUrl` is a URL Interlock will call: the same target
guard as webhook endpoints checks it on every save, found by its type, so a plugin
cannot forget it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from interlock.domain.connectors import FieldMapping
from interlock.domain.errors import InvalidInput
from interlock.ports.connector import ConnectorDriver

CONNECTOR_GROUP = "interlock.connectors"
SOURCE_GROUP = "interlock.sources"


class ToolUrlMark:
    """The mark :data:`ToolUrl` carries; the service finds URL fields by it."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> Any:
        schema = handler(core_schema)
        schema["format"] = "uri"
        return schema

    def __repr__(self) -> str:
        return "TOOL_URL"


TOOL_URL = ToolUrlMark()


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("must be an http(s) URL with a host, like https://tool.example.com")
    return value


#: A URL Interlock calls: http(s) with a host, and checked against the target guard
#: (no private or link-local addresses unless allowed) whenever it is saved.
ToolUrl = Annotated[str, AfterValidator(_http_url), TOOL_URL]


class NoCredentials(BaseModel):
    """For a kind that needs none (Alertmanager): any credential given is refused."""


@dataclass(frozen=True)
class ConnectorPlugin:
    """One connector kind. ``driver`` makes its driver (called once per process); what
    the driver can do is read off it with isinstance against the capability protocols
    of :mod:`interlock.ports.connector` (Push, Pull, InboundHooks, ChecksSettings)."""

    kind: str
    title: str
    description: str
    settings: type[BaseModel]
    credentials: type[BaseModel]
    driver: Callable[[], ConnectorDriver]
    #: The kind of link it keeps per incident ("jira_issue").
    link_kind: str
    default_mapping: FieldMapping = field(default_factory=lambda: FieldMapping(owners={}))
    #: Whether a periodic pull makes sense for its links (needs the Pull capability).
    reconciles: bool = False
    #: Whether it needs the incident's alerts (SyncContext.alerts), e.g. for silences.
    uses_alerts: bool = False
    #: Seconds between the starts of one connector's sync jobs, to keep to the tool's
    #: documented rate limit rather than run into it (a 429 is waited out but costs a
    #: round trip, and a storm would meet one after another). Cite the tool's
    #: documentation where it is set: Slack allows about one chat.postMessage a second
    #: per channel (https://api.slack.com/methods/chat.postMessage#rate_limiting); Jira
    #: Cloud budgets cost and bursts per account
    #: (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/). None: no
    #: pacing, jobs start as lanes have room.
    pace: float | None = None

    def url_settings(self) -> tuple[str, ...]:
        """The settings typed :data:`ToolUrl` (also inside ``ToolUrl | None``)."""
        return tuple(name for name, info in self.settings.model_fields.items()
                     if TOOL_URL in info.metadata or _mentions_tool_url(info.annotation))

    def credential_names(self) -> tuple[str, ...]:
        return tuple(self.credentials.model_fields)

    def required_credentials(self) -> tuple[str, ...]:
        return tuple(name for name, info in self.credentials.model_fields.items()
                     if info.is_required())

    def default_settings(self) -> dict[str, Any]:
        """Each setting's default; None for those a user must give."""
        return {name: None if info.is_required() else _plain(
                    info.get_default(call_default_factory=True))
                for name, info in self.settings.model_fields.items()}

    def validated(self, settings: Mapping[str, Any], credentials: Mapping[str, str]
                  ) -> tuple[dict[str, Any], dict[str, str]]:
        """The settings (every field, defaults filled in) and credentials (those set)
        as stored, or InvalidInput with an error per field. A None setting or an empty
        credential counts as not given."""
        _refuse_unknown(self.kind, "settings", settings, self.settings)
        _refuse_unknown(self.kind, "credentials", credentials, self.credentials)
        errors: list[dict[str, str]] = []
        checked_settings: dict[str, Any] = {}
        checked_credentials: dict[str, str] = {}
        try:
            model = self.settings.model_validate(
                {name: value for name, value in settings.items() if value is not None})
            checked_settings = model.model_dump(mode="json")
        except ValidationError as error:
            errors += _field_errors("settings", self.settings, error)
        try:
            secrets = self.credentials.model_validate(
                {name: value for name, value in credentials.items() if value})
            checked_credentials = {
                name: value.get_secret_value() if isinstance(value, SecretStr) else str(value)
                for name, value in dict(secrets).items() if value is not None}
        except ValidationError as error:
            errors += _field_errors("credentials", self.credentials, error)
        if errors:
            fields = ", ".join(item["field"] for item in errors)
            raise InvalidInput(f"the {self.title} connector's configuration is not usable "
                               f"({fields})", errors=errors)
        return checked_settings, checked_credentials


def _mentions_tool_url(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        inner, *marks = get_args(annotation)
        return any(mark is TOOL_URL for mark in marks) or _mentions_tool_url(inner)
    if get_origin(annotation) is Union or type(annotation).__name__ == "UnionType":
        return any(_mentions_tool_url(arg) for arg in get_args(annotation))
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def _refuse_unknown(kind: str, part: str, given: Mapping[str, Any],
                    model: type[BaseModel]) -> None:
    known = sorted(model.model_fields)
    unknown = sorted(set(given) - set(known))
    if unknown:
        allowed = f"one of {', '.join(known)}" if known else f"{kind} takes no {part}"
        raise InvalidInput(f"unknown {part} for {kind}: {', '.join(unknown)}",
                           errors=[{"field": f"{part}.{name}", "message": allowed}
                                   for name in unknown])


def _field_errors(part: str, model: type[BaseModel], error: ValidationError
                  ) -> list[dict[str, str]]:
    """One error per field, worded for a person: the field's description says what
    was expected. The value given is never repeated (it may be a secret)."""
    found: dict[str, str] = {}
    for item in error.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in item["loc"])
        top = str(item["loc"][0]) if item["loc"] else ""
        info = model.model_fields.get(top)
        found.setdefault(f"{part}.{name}" if name else part,
                         _message(item, info.description if info else None))
    return [{"field": name, "message": message} for name, message in found.items()]


def _message(item: ErrorDetails, description: str | None) -> str:
    if item["type"] == "missing":
        return f"required: {description}" if description else "required"
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{message} ({description})" if description else message
