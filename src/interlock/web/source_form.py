"""The source form, for any kind: its name, its kind's options (drawn from the JSON
Schema the kind publishes, web.schema_form) and what every source has (grouping,
auto-resolve, reopen window, rate limit; signing where the kind's tool signs). A new
kind gets its form with no code here.

What every source has is described by the small models below, drawn by the same
renderer as the kinds' options, so the whole form is one way of doing things.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from starlette.datastructures import FormData

from interlock.domain.errors import InvalidInput
from interlock.domain.sources import DEFAULT_GROUPING, RATE_LIMIT_RANGE, Source
from interlock.web.schema_form import Field as FormField
from interlock.web.schema_form import SchemaForm, Texts, place, problems_of

REOPEN_WINDOW_LIMIT = 30 * 86_400


class General(BaseModel):
    """What every source has, beside its kind's options."""

    grouping: str = Field(
        DEFAULT_GROUPING, min_length=1, max_length=200, title="Grouping",
        description="Alerts with the same key share an incident: {service}, {name}, "
                    "{severity}, {title}, {fingerprint}, {labels.NAME}")
    auto_resolve: bool = Field(
        True, title="Resolve incidents when their alerts resolve",
        description="Off: resolved alerts are recorded, and people resolve incidents")
    reopen_window_seconds: int = Field(
        3600, ge=0, le=REOPEN_WINDOW_LIMIT, title="Reopen window (seconds)",
        description="An alert of a group whose incident was resolved less than this long "
                    "ago reopens it instead of opening a new one")
    rate_limit: float | None = Field(
        None, ge=RATE_LIMIT_RANGE[0], le=RATE_LIMIT_RANGE[1], title="Rate limit",
        description="Requests per second accepted at most (empty: no limit)")
    enabled: bool = Field(True, title="Enabled",
                          description="Off: the ingest URL refuses what the tool sends")


class Signing(BaseModel):
    """Asked once, when a source of a kind whose tool signs is created."""

    signed: bool = Field(
        False, title="The tool signs its requests",
        description="A signing secret is made and shown once with the token, to give "
                    "the tool; unsigned requests are then refused")


class Timestamped(BaseModel):
    """For tools that sign with an HMAC and can put a timestamp in a header."""

    timestamp_header: str | None = Field(
        None, min_length=1, max_length=100, title="Timestamp header",
        description="The header carrying the Unix timestamp the signature includes "
                    "(empty: none)")


@dataclass(frozen=True)
class SourceKindForm:
    """What the form needs of a source kind: its names, the JSON Schema of its options,
    and how its tool signs."""

    kind: str
    title: str
    description: str
    options: Mapping[str, Any]
    signs: bool = False
    timestamped: bool = False


@dataclass(frozen=True)
class DrawnSource:
    options: list[FormField]
    general: list[FormField]
    problems: dict[str, str]
    unplaced: dict[str, str]


@dataclass
class SourceForm:
    kind: SourceKindForm
    editing: bool
    name: str = ""
    texts: Texts = field(default_factory=dict)

    @classmethod
    def blank(cls, kind: SourceKindForm) -> SourceForm:
        form = cls(kind, editing=False)
        form.texts = {name: text for part in form._parts() for name, text in
                      part.texts(None).items()}
        return form

    @classmethod
    def of(cls, source: Source, kind: SourceKindForm) -> SourceForm:
        form = cls(kind, editing=True, name=source.name)
        stored = {
            "grouping": source.grouping, "auto_resolve": source.auto_resolve,
            "reopen_window_seconds": round(source.reopen_window.total_seconds()),
            "rate_limit": source.rate_limit, "enabled": source.enabled,
            "timestamp_header": source.timestamp_header,
        }
        form.texts = {**form._options().texts(source.options),
                      **{name: text for part in form._parts()[1:]
                         for name, text in part.texts(stored).items()}}
        return form

    @classmethod
    def posted(cls, kind: SourceKindForm, posted: FormData, *, editing: bool) -> SourceForm:
        form = cls(kind, editing=editing)
        name = posted.get("name", "")
        form.name = name.strip() if isinstance(name, str) else ""
        form.texts = {name: text for part in form._parts()
                      for name, text in part.posted(posted).items()}
        return form

    def change(self) -> dict[str, Any]:
        """What SourceSpec (new) or SourceService.update (editing) take, or one
        InvalidInput naming every field that cannot be read."""
        errors: list[dict[str, str]] = []
        values: dict[str, Any] = {"name": self.name}
        for part in self._parts():
            try:
                read = part.read(self.texts, editing=self.editing)
            except InvalidInput as error:
                errors += error.errors or []
                continue
            if part.prefix:
                values[part.prefix] = read
            else:
                values.update(read)
        if not self.name:
            errors.insert(0, {"field": "name", "message": "required"})
        if errors:
            raise InvalidInput(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
        values["reopen_window"] = timedelta(seconds=values.pop("reopen_window_seconds"))
        return values

    def drawn(self, error: InvalidInput | None = None) -> DrawnSource:
        problems = problems_of(error) if error else {}
        names = ["name", *(name for part in self._parts() for name in part.names())]
        placed, unplaced = place(problems, names)
        options, *general = self._parts()
        return DrawnSource(
            options=options.fields(self.texts, placed),
            general=[item for part in general for item in part.fields(self.texts, placed)],
            problems={"name": placed["name"]} if "name" in placed else {},
            unplaced=unplaced)

    def _options(self) -> SchemaForm:
        return SchemaForm(self.kind.options, "options")

    def _parts(self) -> list[SchemaForm]:
        """The options first, then what every source has."""
        parts = [self._options(), SchemaForm(General.model_json_schema(), "")]
        if self.kind.signs and not self.editing:
            parts.append(SchemaForm(Signing.model_json_schema(), ""))
        if self.kind.timestamped:
            parts.append(SchemaForm(Timestamped.model_json_schema(), ""))
        return parts
