"""The generic HTTP connector's configuration, as pydantic models.

Settings say, per incident event type, which request to make (method, URL, headers and
body, each a sandboxed Jinja template as in webhook payload templates) and where the
answer holds the tool's id and URL for the new object (JMESPath); how to read the
object's current state back (``fetch``); how to read the tool's webhooks (``hook``);
and how those are signed (``hmac``). Credentials are kept apart, as secrets: they are
added to requests by the driver and never reach a template, so a template cannot put a
token into a URL that the activity log shows.

Templates and expressions are compiled when the models are built, so a typo is a 422
naming the field when the connector is saved; :mod:`.checks` then renders every
template against sample incidents to catch what compiles but cannot render.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from interlock.domain.connectors import PUSHED_EVENTS
from interlock.domain.errors import InvalidInput
from interlock.domain.templates import PayloadTemplate, TemplateError
from interlock.ports.plugins import TOOL_URL

EXPRESSION_MAX = 1000
TEMPLATE_MAX = 20_000
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
#: Event types a request can be configured for: those pushed to connectors.
EVENT_NAMES = tuple(sorted(event.value for event in PUSHED_EVENTS))
CREATED = "incident.created"


@lru_cache(maxsize=512)
def compiled_template(source: str) -> PayloadTemplate:
    """Compiling costs far more than rendering, and every push parses the settings."""
    return PayloadTemplate.compile(source)


@lru_cache(maxsize=1024)
def compiled_expression(expression: str) -> Any:
    return jmespath.compile(expression)


def _template(source: str) -> str:
    try:
        compiled_template(source)
    except TemplateError as error:
        raise ValueError(error.message) from None
    return source


def _body(body: str | dict[str, Any] | list[Any]) -> str | dict[str, Any] | list[Any]:
    """Every string in it compiles (a string body is one template)."""
    if len(json.dumps(body)) > TEMPLATE_MAX:
        raise ValueError(f"at most {TEMPLATE_MAX} characters")
    for where, leaf in string_leaves(body):
        try:
            compiled_template(leaf)
        except TemplateError as error:
            raise ValueError(f"{where or 'body'}: {error.message}" if where
                             else error.message) from None
    return body


def string_leaves(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, text) of every string in a JSON value."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_leaves(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_leaves(item, f"{where}[{index}]")


def _expression(expression: str) -> str:
    if not expression.strip():
        raise ValueError("expected a JMESPath expression (https://jmespath.org/)")
    if len(expression) > EXPRESSION_MAX:
        raise ValueError(f"longer than {EXPRESSION_MAX} characters")
    try:
        compiled_expression(expression)
    except (JMESPathError, RecursionError) as error:
        first = str(error).splitlines()[0][:200]
        raise ValueError(f"not a valid JMESPath expression: {first}") from None
    return expression


def _header_name(name: str) -> str:
    if not HEADER_NAME.match(name):
        raise ValueError(f"{name!r} is not an HTTP header name")
    return name


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host, like https://api.example.com")
    return url.rstrip("/")


def _event_names(requests: dict[str, RequestTemplate]) -> dict[str, RequestTemplate]:
    unknown = sorted(set(requests) - set(EVENT_NAMES))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not an event type; the event types are "
                         f"{', '.join(EVENT_NAMES)}")
    return requests


Template = Annotated[str, Field(max_length=TEMPLATE_MAX), AfterValidator(_template)]
Expression = Annotated[str, AfterValidator(_expression)]
HeaderName = Annotated[str, AfterValidator(_header_name)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestTemplate(_Model):
    """One HTTP request, made from templates, and where its answer holds what to keep."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    url: Template
    headers: dict[HeaderName, Template] = Field(default_factory=dict, max_length=50)
    #: Sent as application/json. Either a template that renders JSON (embed values
    #: with ``tojson``), or JSON whose strings are each a template rendered as text.
    body: Annotated[str | dict[str, Any] | list[Any], AfterValidator(_body)] | None = None
    #: The tool's id of the object the answer describes (required for incident.created;
    #: for incident.comment_added, the comment's id, so it is not imported back).
    external_id: Expression | None = None
    #: Where a person opens the object (incident.created only).
    external_url: Expression | None = None


class CommentsMapping(_Model):
    """Where the object's comments are, and what each one says."""

    #: A request of its own when the comments are not in the fetched object.
    request: RequestTemplate | None = None
    #: The list of comments in the answer.
    items: Expression = "@"
    id: Expression = "id"
    author: Expression = "author"
    body: Expression = "body"
    #: True for a comment Interlock's own account wrote (an echo, never imported).
    by_interlock: Expression | None = None


class FetchState(_Model):
    """How to read the object's current state (after a webhook, and on reconcile)."""

    request: RequestTemplate
    #: The tool's status word, renamed by the mapping's ``status_in``.
    status: Expression | None = None
    #: The assignee's name; null is "nobody".
    assignee: Expression | None = None
    comments: CommentsMapping | None = None


class HookMapping(_Model):
    """How to read the tool's webhook payload (JMESPath over its JSON body)."""

    #: The id of the object that changed, as the incident.created answer gave it.
    external_id: Expression
    #: Only deliveries for which this is true are used (others are ignored, answered 200).
    when: Expression | None = None
    #: True when the change was made by Interlock's own account: an echo.
    by_interlock: Expression | None = None
    #: The header holding the tool's delivery id, to drop redeliveries.
    delivery_id_header: HeaderName | None = None


class HmacCheck(_Model):
    """How the tool signs its webhooks: an HMAC of ``signed`` (``{body}`` is the raw
    body, ``{timestamp}`` the ``timestamp_header``), keyed with ``credentials.hmac_secret``,
    sent in ``header`` as ``prefix`` + hex or base64 digest."""

    header: HeaderName
    algorithm: Literal["sha256", "sha1"] = "sha256"
    prefix: str = Field("", max_length=40)
    encoding: Literal["hex", "base64"] = "hex"
    signed: str = Field("{body}", max_length=100)
    timestamp_header: HeaderName | None = None
    #: How far a timestamp may be from now, either way, in seconds.
    tolerance_seconds: int = Field(300, ge=1, le=86_400)

    @model_validator(mode="after")
    def _signed_text(self) -> HmacCheck:
        if not self.signed.endswith("{body}") or self.signed.count("{body}") != 1:
            raise ValueError('signed must end with "{body}", like "{body}" or '
                             '"{timestamp}.{body}"')
        leftover = self.signed.removesuffix("{body}").replace("{timestamp}", "")
        if "{" in leftover or "}" in leftover:
            raise ValueError('signed may hold only "{timestamp}" and "{body}"')
        if "{timestamp}" in self.signed and not self.timestamp_header:
            raise ValueError("signed uses {timestamp}: set timestamp_header")
        return self


class HttpSettings(_Model):
    #: Checked against the target rules when saved; templates see it as ``base_url``.
    base_url: Annotated[str, AfterValidator(_http_url), TOOL_URL] | None = Field(
        None, title="Base URL",
        description="The tool's API root, e.g. https://api.github.com; templates see it "
                    "as base_url, and it is checked like a webhook URL when saved")
    #: By event type name (``incident.created`` …).
    requests: Annotated[dict[str, RequestTemplate], AfterValidator(_event_names)] = Field(
        title="Requests",
        description="Per event type (incident.created, incident.acknowledged, …): method, "
                    "URL, headers and body templates, and JMESPath for the external id "
                    "and URL in the answer")
    fetch: FetchState | None = Field(
        None, title="Fetch current state",
        description="A request that reads the object, with JMESPath for status, assignee "
                    "and comments; used after an inbound hook and on reconcile")
    hook: HookMapping | None = Field(
        None, title="Inbound hook",
        description="JMESPath over the tool's webhook: which object changed, whether it "
                    "matters, whether Interlock made the change")
    hmac: HmacCheck | None = Field(
        None, title="Hook signature",
        description="How the tool signs its webhooks (header, algorithm, prefix, what is "
                    "signed); checked with credentials.hmac_secret")
    #: The header ``credentials.api_key`` is sent in (X-API-Key, say).
    api_key_header: HeaderName | None = Field(
        None, title="API key header",
        description="The header the API key credential is sent in, e.g. X-API-Key")


class HttpCredentials(_Model):
    hmac_secret: SecretStr | None = Field(
        None, title="Hook signing secret",
        description="The secret the tool signs its webhooks with")
    bearer_token: SecretStr | None = Field(
        None, title="Bearer token", description="Sent as Authorization: Bearer …")
    username: SecretStr | None = Field(
        None, title="Username", description="For HTTP Basic authentication")
    password: SecretStr | None = Field(
        None, title="Password", description="For HTTP Basic authentication")
    api_key: SecretStr | None = Field(
        None, title="API key", description="Sent in the header named by api_key_header")


#: Every setting with its default, as the connector service merges them.


def parse(settings: Mapping[str, Any], credentials: Mapping[str, str]
          ) -> tuple[HttpSettings, HttpCredentials]:
    """Both models, or InvalidInput with one error per field (``settings.requests.…``)."""
    errors: list[dict[str, str]] = []
    parsed_settings = parsed_credentials = None
    try:
        parsed_settings = HttpSettings.model_validate(dict(settings))
    except ValidationError as error:
        errors += _field_errors(error, "settings")
    try:
        parsed_credentials = HttpCredentials.model_validate(dict(credentials))
    except ValidationError as error:
        errors += _field_errors(error, "credentials")
    if errors or parsed_settings is None or parsed_credentials is None:
        raise InvalidInput("the http connector's configuration is not usable: "
                           f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
    return parsed_settings, parsed_credentials


def _field_errors(error: ValidationError, prefix: str) -> list[dict[str, str]]:
    found = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in (prefix, *item["loc"]))
        found.append({"field": where,
                      "message": str(item["msg"]).removeprefix("Value error, ")})
    return found
