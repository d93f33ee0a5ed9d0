"""The connector form, one per kind, drawn from the JSON Schema of the kind's settings
and credentials models (web.schema_form): a new kind, built in or installed, gets its
form with no code or template here. What a person types is kept as typed, so a refused
form comes back with each problem beside its field; credentials are never shown back
(only whether each is set), and left empty when editing they keep their stored values.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from interlock.domain.connectors import Connector
from interlock.domain.errors import InvalidInput
from interlock.web.schema_form import Field, SchemaForm, Texts, place, problems_of

#: The fields of the connector itself, beside those of its kind's schemas.
OWN_FIELDS = ("name", "filter")


@dataclass(frozen=True)
class KindSchemas:
    """What a connector kind publishes: the JSON Schema of its settings and of its
    credentials (GET /api/v1/connector-kinds)."""

    settings: Mapping[str, Any]
    credentials: Mapping[str, Any]


@dataclass(frozen=True)
class DrawnForm:
    """What the page shows: the kind's fields with their problems, the problems of the
    connector's own fields, and those no field owns."""

    settings: list[Field]
    credentials: list[Field]
    problems: dict[str, str]
    unplaced: dict[str, str]


@dataclass
class ConnectorForm:
    kind: str
    settings: SchemaForm
    credentials: SchemaForm
    name: str = ""
    filter: str = ""
    texts: Texts = field(default_factory=dict)

    @classmethod
    def blank(cls, kind: str, schemas: KindSchemas) -> ConnectorForm:
        form = cls._for(kind, schemas)
        form.texts = {**form.settings.texts(None), **form.credentials.texts(None)}
        return form

    @classmethod
    def of(cls, connector: Connector, schemas: KindSchemas) -> ConnectorForm:
        form = cls._for(connector.kind, schemas)
        form.name = connector.name
        form.filter = json.dumps(dict(connector.filter), indent=2) if connector.filter else ""
        # Secret fields are never filled in (SchemaForm.texts leaves them empty); a
        # credential the kind does not type as secret (an account's email) is shown.
        form.texts = {**form.settings.texts(connector.settings),
                      **form.credentials.texts(connector.credentials)}
        return form

    @classmethod
    def posted(cls, kind: str, posted: FormData, schemas: KindSchemas) -> ConnectorForm:
        form = cls._for(kind, schemas)
        form.name = _text(posted, "name")
        form.filter = _text(posted, "filter")
        form.texts = {**form.settings.posted(posted), **form.credentials.posted(posted)}
        return form

    @classmethod
    def _for(cls, kind: str, schemas: KindSchemas) -> ConnectorForm:
        return cls(kind=kind, settings=SchemaForm(schemas.settings, "settings"),
                   credentials=SchemaForm(schemas.credentials, "credentials"))

    def change(self, *, editing: bool) -> dict[str, Any]:
        """What ConnectorSpec / ConnectorService.update take, or one InvalidInput naming
        every field that cannot be read. Editing, an empty credential keeps the stored
        one."""
        errors: list[dict[str, str]] = []
        values: dict[str, Any] = {"name": self.name}
        for part, form in (("settings", self.settings), ("credentials", self.credentials)):
            try:
                values[part] = form.read(self.texts, editing=editing)
            except InvalidInput as error:
                errors += error.errors or []
        try:
            values["filter"] = self._filter()
        except InvalidInput as error:
            errors += error.errors or []
        if errors:
            raise InvalidInput(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
        return values

    def drawn(self, error: InvalidInput | None = None,
              credentials_set: Collection[str] = ()) -> DrawnForm:
        """The fields to show, with ``error``'s problems beside them. ``credentials_set``
        names the stored connector's credentials."""
        problems = problems_of(error) if error else {}
        names = [*OWN_FIELDS, *self.settings.names(), *self.credentials.names()]
        placed, unplaced = place(problems, names)
        secrets = {f"credentials.{name}" for name in credentials_set}
        return DrawnForm(
            settings=self.settings.fields(self.texts, placed),
            credentials=self.credentials.fields(self.texts, placed, secrets),
            problems={name: placed[name] for name in OWN_FIELDS if name in placed},
            unplaced=unplaced)

    def _filter(self) -> dict[str, Any]:
        if not self.filter:
            return {}
        try:
            value = json.loads(self.filter)
        except ValueError as error:
            raise InvalidInput(f"the filter is not JSON: {error}", errors=[
                {"field": "filter", "message": f"not valid JSON: {error}"}]) from error
        if not isinstance(value, dict):
            raise InvalidInput("the filter must be a JSON object", errors=[
                {"field": "filter",
                 "message": 'a JSON object, e.g. {"severity": ["critical", "high"]}'}])
        return value


def _text(posted: FormData, name: str) -> str:
    value = posted.get(name, "")
    return value.strip() if isinstance(value, str) else ""
