"""The connector form, one per kind: the fields come from the kind's plugin (its settings
and their defaults, its credentials), so a new kind gets a form without a new
template. What a person types is kept as typed, so a refused form comes back with the
problem beside their work; credentials are never shown back, and left empty when
editing they keep their stored values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from interlock.domain.connectors import Connector
from interlock.domain.errors import InvalidInput
from interlock.ports.plugins import ConnectorPlugin

#: What each field is, for the person filling it in. A field without a line here is
#: shown with its name alone.
HELP: dict[str, str] = {
    "url": "Alertmanager's base URL, e.g. http://alertmanager:9093",
    "duration_minutes": "How long a silence lasts, in minutes (renewed while acknowledged)",
    "created_by": "The author Alertmanager shows on each silence",
    "base_url": "Your Jira Cloud site, e.g. https://your-site.atlassian.net",
    "project_key": "The project issues are created in, e.g. OPS",
    "issue_type": "The issue type to create",
    "account_id": "Interlock's Jira account id (empty: learned from /myself)",
    "email": "The Jira account's email",
    "api_token": "An API token of that account",
    "webhook_secret": "The secret you give Jira's webhook, to verify what it sends",
    "channel": "The channel's ID, e.g. C0123456789",
    "api_base": "Slack's Web API (change only for a proxy)",
    "bot_token": "The app's bot token (xoxb-…), with chat:write",
    "signing_secret": "The app's signing secret, to verify buttons and commands",
}


@dataclass(frozen=True)
class Field:
    name: str
    value: str
    number: bool = False
    required: bool = False
    #: The settings model's description of the field, if it has one.
    description: str = ""

    @property
    def help(self) -> str:
        return self.description or HELP.get(self.name, "")


@dataclass
class ConnectorForm:
    kind: str
    name: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)
    filter: str = ""

    @classmethod
    def blank(cls, plugin: ConnectorPlugin) -> ConnectorForm:
        return cls(kind=plugin.kind, settings={
            name: "" if default is None else str(default)
            for name, default in plugin.default_settings().items()})

    @classmethod
    def of(cls, connector: Connector) -> ConnectorForm:
        return cls(
            kind=connector.kind, name=connector.name,
            settings={name: "" if value is None else str(value)
                      for name, value in connector.settings.items()},
            filter=json.dumps(dict(connector.filter), indent=2) if connector.filter else "")

    @classmethod
    def posted(cls, kind: str, form: FormData, plugin: ConnectorPlugin) -> ConnectorForm:
        def text(name: str) -> str:
            value = form.get(name, "")
            return value.strip() if isinstance(value, str) else ""

        return cls(kind=kind, name=text("name"),
                   settings={name: text(f"settings.{name}") for name in plugin.default_settings()},
                   credentials={name: text(f"credentials.{name}")
                                for name in plugin.credential_names()},
                   filter=text("filter"))

    def setting_fields(self, plugin: ConnectorPlugin) -> list[Field]:
        fields = plugin.settings.model_fields
        return [Field(name, self.settings.get(name, ""), number=_is_number(default),
                      required=fields[name].is_required(),
                      description=fields[name].description or "")
                for name, default in plugin.default_settings().items()]

    def change(self, plugin: ConnectorPlugin, *, editing: bool) -> dict[str, Any]:
        """What ConnectorSpec / ConnectorService.update take, or InvalidInput naming the
        field. Editing, an empty credential keeps the stored one."""
        settings: dict[str, Any] = {}
        for name, default in plugin.default_settings().items():
            typed = self.settings.get(name, "")
            if not typed:
                settings[name] = default
            elif _is_number(default):
                settings[name] = _number(name, typed)
            else:
                settings[name] = typed
        credentials = {name: value for name, value in self.credentials.items()
                       if value or not editing}
        return {"name": self.name, "settings": settings, "credentials": credentials,
                "filter": self._filter()}

    def _filter(self) -> dict[str, Any]:
        if not self.filter:
            return {}
        try:
            value = json.loads(self.filter)
        except ValueError as error:
            raise InvalidInput(f"the filter is not JSON: {error}", errors=[
                {"field": "filter", "message": "not JSON"}]) from error
        if not isinstance(value, dict):
            raise InvalidInput('the filter must be a JSON object, e.g. {"severity": '
                               '["critical", "high"]}')
        return value


def _is_number(default: object) -> bool:
    return isinstance(default, int | float) and not isinstance(default, bool)


def _number(name: str, typed: str) -> int | float:
    try:
        return int(typed)
    except ValueError:
        pass
    try:
        return float(typed)
    except ValueError as error:
        raise InvalidInput(f"{name} must be a number", errors=[
            {"field": f"settings.{name}", "message": "a number"}]) from error


def help_texts(plugin: ConnectorPlugin) -> dict[str, str]:
    """Each credential's help, from the credentials model (else the built-in line)."""
    return {**HELP, **{name: info.description for name, info
                       in plugin.credentials.model_fields.items() if info.description}}


def problems(error: InvalidInput) -> Mapping[str, str]:
    """The error's messages by form field (``settings.url`` …), to show beside them."""
    return {str(item.get("field")): str(item.get("message")) for item in error.errors or []}
