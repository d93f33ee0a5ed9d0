"""The Statuspage connector's settings and credentials, as pydantic models.

The models are the connector's configuration contract: ``check`` validates with them,
and their JSON Schema (``settings_schema``/``credentials_schema``) is what a form or
the plugin kit publishes. The API key is a ``SecretStr``: it prints as ``**********``
and is taken out only where a request is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from interlock.domain.errors import InvalidInput
from interlock.ports.plugins import ToolUrl

COMPONENT_STATUSES = ("operational", "under_maintenance", "degraded_performance",
                      "partial_outage", "major_outage")
#: Statuspage ids: lowercase letters and digits (12 of them in practice).
_STATUSPAGE_ID = re.compile(r"^[a-z0-9]{1,64}$")


class StatuspageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Statuspage's API; another URL only for a proxy (or a test double).
    base_url: ToolUrl = Field("https://api.statuspage.io", title="API URL",
                              description="Statuspage's API (change only for a proxy)")
    page_id: str = Field(..., title="Page id",
                         description="The Statuspage page's id (Page settings → API)")
    #: Interlock component id → Statuspage component id. Components of an update that
    #: are not in the map are left out of the Statuspage incident.
    component_map: dict[str, str] = Field(
        default_factory=dict, title="Components",
        description="Interlock component id → Statuspage component id")
    deliver_notifications: bool = Field(
        True, title="Notify Statuspage subscribers",
        description="Whether Statuspage notifies its own subscribers of each update")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL like https://api.statuspage.io")
        return value.rstrip("/")

    @field_validator("page_id")
    @classmethod
    def _page(cls, value: str) -> str:
        if not _STATUSPAGE_ID.match(value):
            raise ValueError("must be a Statuspage page id (lowercase letters and digits)")
        return value

    @field_validator("component_map")
    @classmethod
    def _components(cls, value: dict[str, str]) -> dict[str, str]:
        for theirs in value.values():
            if not _STATUSPAGE_ID.match(theirs):
                raise ValueError(f"{theirs!r} is not a Statuspage component id")
        return value


class StatuspageCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr = Field(..., min_length=1, title="API key",
                               description="A Statuspage API key (user API keys page)")




def parse(settings: Mapping[str, Any], credentials: Mapping[str, str]
          ) -> tuple[StatuspageSettings, StatuspageCredentials]:
    """Both models, or InvalidInput with one error per bad field."""
    errors: list[dict[str, str]] = []
    # Left out, null or empty (an empty field of the console's form): the default.
    given = {name: value for name, value in settings.items() if value not in (None, "")}
    parsed_settings = _model(StatuspageSettings, given, "settings", errors)
    parsed_credentials = _model(StatuspageCredentials, dict(credentials), "credentials",
                                errors)
    if parsed_settings is None or parsed_credentials is None:
        raise InvalidInput("the Statuspage connector's configuration is not usable",
                           errors=errors)
    return parsed_settings, parsed_credentials


def _model(model: type[Any], values: dict[str, Any], prefix: str,
           errors: list[dict[str, str]]) -> Any:
    try:
        return model(**values)
    except ValidationError as error:
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"])
            errors.append({"field": f"{prefix}.{where}" if where else prefix,
                           "message": str(item["msg"]).removeprefix("Value error, ")})
        return None
