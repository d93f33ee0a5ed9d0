"""What a ServiceNow connector is configured with.

The instance's ``incident`` table is the target. Its ``state`` choice values differ
between instances (the base system's are New 1, In Progress 2, On Hold 3, Resolved 6,
Closed 7, Canceled 8), so each is a setting. Interlock authenticates as one
integration user, with Basic auth (``username`` and ``secret`` its password) or with
an OAuth 2.0 client-credentials application (``client_id`` and ``secret`` the client
secret); changes that user made are Interlock's own and are not applied back.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from interlock.ports.plugins import ToolUrl

#: Interlock's names for the incident states, in the order of the settings.
STATES = ("new", "in_progress", "on_hold", "resolved", "closed", "canceled")


class ServiceNowSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: ToolUrl = Field(
        title="Instance URL", description="The instance URL, like https://acme.service-now.com")
    auth: Literal["basic", "oauth"] = Field(
        "basic", title="Authentication",
        description="basic (username and password) or oauth (client credentials)")
    username: str = Field("", title="Username",
                          description="The integration user (Basic auth)")
    client_id: str = Field("", title="OAuth client id",
                           description="The OAuth application's client id (oauth)")
    integration_user: str = Field(
        "", title="Integration user",
        description="user_name of the account Interlock writes as (defaults to username); "
                    "its changes are echoes")
    caller_id: str = Field(
        "", title="Caller",
        description="Caller of new incidents (a sys_user sys_id, or the user's name as "
                    "ServiceNow displays it)")
    assignment_group: str = Field(
        "", title="Assignment group",
        description="Assignment group of new incidents (sys_id or name)")
    comment_field: Literal["work_notes", "comments"] = Field(
        "work_notes", title="Comments go to",
        description="Where Interlock comments go: work_notes (internal) or comments "
                    "(visible to the caller)")
    close_code: str = Field("Solution provided", title="Close code",
                            description="close_code set on resolve (a Resolution code choice)")
    state_new: int = Field(1, title="State: New", description="state value of New")
    state_in_progress: int = Field(2, title="State: In Progress",
                                   description="state value of In Progress")
    state_on_hold: int = Field(3, title="State: On Hold", description="state value of On Hold")
    state_resolved: int = Field(6, title="State: Resolved",
                                description="state value of Resolved")
    state_closed: int = Field(7, title="State: Closed", description="state value of Closed")
    state_canceled: int = Field(8, title="State: Canceled",
                                description="state value of Canceled")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the instance URL, like https://acme.service-now.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _auth_needs(self) -> ServiceNowSettings:
        if self.auth == "basic" and not self.username.strip():
            raise ValueError("username is required with basic auth")
        if self.auth == "oauth" and not self.client_id.strip():
            raise ValueError("client_id is required with oauth")
        if self.auth == "oauth" and not self.integration_user.strip():
            raise ValueError("integration_user (the OAuth application's user) is required "
                             "with oauth, to recognise Interlock's own changes")
        values = [self.state_value(name) for name in STATES]
        if len(set(values)) != len(values):
            raise ValueError("the state_* values must differ from each other")
        return self

    @property
    def own_user(self) -> str:
        return (self.integration_user or self.username).strip()

    def state_value(self, name: str) -> int:
        value: int = getattr(self, f"state_{name}")
        return value

    def state_name(self, value: object) -> str | None:
        """Interlock's name for a ``state`` value as the Table API gives it ("2")."""
        for name in STATES:
            if str(self.state_value(name)) == str(value).strip():
                return name
        return None


class ServiceNowCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretStr = Field(
        title="Password or client secret",
        description="The integration user's password (basic), or the OAuth application's "
                    "client secret (oauth)")
    hook_secret: SecretStr = Field(
        title="Hook secret",
        description="Shared secret the Business Rule sends in the X-Interlock-Secret header")

    @field_validator("secret", "hook_secret")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("required")
        return value
