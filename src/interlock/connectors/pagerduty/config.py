"""What a PagerDuty connector is configured with.

Settings say where incidents go (a service, optionally an escalation policy) and who
Interlock is in PagerDuty: the ``From`` user every write is made as. That user's id is
how a webhook made by Interlock's own change is told apart from a person's; it is
learned from the email on the first push unless given.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from interlock.ports.plugins import ToolUrl

DEFAULT_API_BASE = "https://api.pagerduty.com"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: PagerDuty object ids: upper-case letters and digits (PWIXJZS, P53ZZH5).
_OBJECT_ID = re.compile(r"^[A-Z0-9]{2,32}$")


class PagerDutySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_id: str = Field(
        title="Service id",
        description="The PagerDuty service incidents are opened on (the id in the service's "
                    "URL, like PWIXJZS)")
    from_email: str = Field(
        title="From email",
        description="Email of the PagerDuty user Interlock acts as (the From header of "
                    "every change)")
    api_base: ToolUrl = Field(DEFAULT_API_BASE, title="REST API URL",
                              description="REST API base URL "
                                          "(https://api.eu.pagerduty.com for EU)")
    escalation_policy_id: str = Field(
        "", title="Escalation policy id",
        description="Escalation policy to page instead of the service's own (optional)")
    user_id: str = Field(
        "", title="From user id",
        description="Id of the From user; learned from the email when left empty")

    @field_validator("service_id")
    @classmethod
    def _service(cls, value: str) -> str:
        if not _OBJECT_ID.match(value.strip()):
            raise ValueError("must be a PagerDuty service id, like PWIXJZS")
        return value.strip()

    @field_validator("escalation_policy_id", "user_id")
    @classmethod
    def _optional_id(cls, value: str) -> str:
        if value.strip() and not _OBJECT_ID.match(value.strip()):
            raise ValueError("must be a PagerDuty id, like PT20YPA, or empty")
        return value.strip()

    @field_validator("from_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value.strip()):
            raise ValueError("must be the email address of a PagerDuty user")
        return value.strip()

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL (normally {DEFAULT_API_BASE})")
        return value.rstrip("/")


class PagerDutyCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(
        title="API key", description="A REST API key (account or user), with write access")
    webhook_secret: SecretStr = Field(
        title="Webhook signing secret",
        description="The signing secret of the webhook subscription that calls the hook URL")

    @field_validator("api_key", "webhook_secret")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("required")
        return value
