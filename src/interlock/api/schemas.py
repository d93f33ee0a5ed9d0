"""Request and response bodies. Requests forbid unknown fields so a typo is an error,
not a silently ignored change.

What ``/openapi.json`` says a field takes is what it takes, no more: booleans are
``true``/``false`` only (not ``0``), numbers are numbers (not ``true``), times are
RFC 3339 strings (not a number of seconds since 1970), and a field that cannot be null
is not documented as nullable. Pydantic's lax mode would accept all of those.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema

from interlock.domain.incidents import SUMMARY_MAX, TITLE_MAX, Severity, Status, Visibility
from interlock.domain.keys import Scope

T = TypeVar("T")


def _storable(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refuse it on both databases alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


#: Documents what ``_storable`` enforces (with its own, clearer message).
NO_NUL = "^[^\\u0000]*$"


def text_schema(max_length: int, min_length: int = 0) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length,
            "pattern": NO_NUL}


def text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[
        str, Field(min_length=min_length, max_length=max_length),
        AfterValidator(_storable), WithJsonSchema(text_schema(max_length, min_length)),
    ]


def text_map(key_length: int, value: Any, value_schema: dict[str, Any],
             max_items: int | None = None) -> Any:
    """A JSON object with text keys (1 to ``key_length`` characters, no NUL). Its schema
    is spelled out: pydantic would turn the keys' pattern into patternProperties, which
    constrains values, not keys."""
    schema: dict[str, Any] = {
        "type": "object", "additionalProperties": value_schema,
        "propertyNames": {"minLength": 1, "maxLength": key_length, "pattern": NO_NUL}}
    if max_items is not None:
        schema["maxProperties"] = max_items
    return Annotated[dict[text(key_length, 1), value],  # type: ignore[misc]
                     Field(max_length=max_items), WithJsonSchema(schema)]


#: ``X | Omitted`` for a header or query parameter that may be left out: it is None in
#: Python when absent, but the schema does not offer null (a client would send the text
#: "null").
Omitted = SkipJsonSchema[None]


def words_list(words: list[str]) -> str:
    """The pattern of a query value that is a comma-separated list of ``words`` (blank
    entries are ignored, as the API reads them)."""
    word = "(" + "|".join(words) + ")"
    return rf"^\s*{word}?\s*(,\s*{word}?\s*)*$"


#: A JSON number (an integer will do); never a boolean or a numeric string.
Number = Annotated[float, Strict()]
_DATE_AND_TIME = re.compile(r"\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_NUMERIC = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _date_time_text(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string like 2026-11-30T10:00:00Z")
    if _NUMERIC.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time like 2026-11-30T10:00:00Z, "
                         "not a number")
    if not _DATE_AND_TIME.match(value):
        raise ValueError("must be an RFC 3339 date-time like 2026-11-30T10:00:00Z, "
                         "with a time of day")
    return value


#: An RFC 3339 date-time string (without an offset it is taken as UTC).
DateTime = Annotated[datetime, BeforeValidator(_date_time_text)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omissible() -> Any:
    """The default of a PATCH field that may be left out but not set to null: the
    field's type stays non-nullable (so null is a 422 and the schema says so), and
    ``model_dump(exclude_unset=True)`` leaves it out when it was not sent."""
    return Field(None, json_schema_extra=_no_default)


Title = text(TITLE_MAX, 1)
Summary = text(SUMMARY_MAX)
Name = text(200, 1)
LabelValue = text(500)
Labels = text_map(100, LabelValue, text_schema(500), max_items=64)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentCreate(Request):
    title: Title  # type: ignore[valid-type]
    severity: Severity = Severity.MEDIUM
    summary: Summary = ""  # type: ignore[valid-type]
    service: Name | None = None  # type: ignore[valid-type]
    assignee: Name | None = None  # type: ignore[valid-type]
    labels: Labels = Field(default_factory=dict)  # type: ignore[valid-type]
    visibility: Visibility = Visibility.PUBLIC


class IncidentPatch(Request):
    """Only the fields present are changed; ``service`` and ``assignee`` may be null to
    clear them."""

    title: Title = omissible()  # type: ignore[valid-type]
    severity: Severity = omissible()
    summary: Summary = omissible()  # type: ignore[valid-type]
    service: Name | None = None  # type: ignore[valid-type]
    assignee: Name | None = None  # type: ignore[valid-type]
    labels: Labels = omissible()  # type: ignore[valid-type]
    visibility: Visibility = omissible()

    def changes(self) -> dict[str, Any]:
        """The fields the client sent."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class CommentCreate(Request):
    body: text(20_000, 1)  # type: ignore[valid-type]


class KeyCreate(Request):
    name: Name  # type: ignore[valid-type]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]


class IncidentOut(BaseModel):
    id: str = Field(examples=["inc_01JD3K2Q6W4Y8Z0A1B2C3D4E5F"])
    reference: str = Field(examples=["INC-42"])
    title: str
    summary: str
    status: Status
    severity: Severity
    service: str | None
    assignee: str | None
    labels: dict[str, str]
    visibility: Visibility
    version: int
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class OriginOut(BaseModel):
    kind: str
    id: str | None
    name: str | None
    actor: str | None


class TimelineEntryOut(BaseModel):
    id: str
    at: datetime
    kind: str
    message: str
    actor: str | None
    origin: OriginOut
    incident_version: int
    changes: dict[str, Any]
    body: str | None


class KeyOut(BaseModel):
    id: str
    name: str
    scopes: list[Scope]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The secret. Shown only in this response; store it now.")


class PageOut(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None
