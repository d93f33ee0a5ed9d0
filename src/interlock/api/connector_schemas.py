"""Request and response bodies for connectors, their activity and incident links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictBool

from interlock.api.schemas import Request, omissible, text, text_map, text_schema

Name = text(200, 1)
Kind = text(32, 1)
Secret = text(4000, 1)
Settings = text_map(64, Any, {})
Credentials = text_map(64, Secret, text_schema(4000, 1))


class ConnectorCreate(Request):
    name: Name  # type: ignore[valid-type]
    kind: Kind = Field(..., examples=["jira", "slack", "alertmanager"])  # type: ignore[valid-type]
    settings: Settings = Field(  # type: ignore[valid-type]
        default_factory=dict, examples=[{"base_url": "https://acme.atlassian.net",
                                         "project_key": "OPS"}])
    credentials: Credentials = Field(  # type: ignore[valid-type]
        default_factory=dict, description="Stored encrypted; never returned")
    mapping: dict[str, Any] | None = Field(None, examples=[
        {"owners": {"assignee": "tool", "status": "both"}}])
    filter: dict[str, Any] | None = Field(
        None, description="Which incidents it receives (the endpoint filter language)",
        examples=[{"severity": ["critical", "high"]}])
    enabled: StrictBool = True


class ConnectorPatch(Request):
    """Only the fields present are changed; null clears ``filter`` and leaves
    ``mapping`` as it is."""

    name: Name = omissible()  # type: ignore[valid-type]
    settings: Settings = omissible()  # type: ignore[valid-type]
    credentials: Credentials = omissible()  # type: ignore[valid-type]
    mapping: dict[str, Any] | None = None
    filter: dict[str, Any] | None = None
    enabled: StrictBool = omissible()


class ConnectorOut(BaseModel):
    id: str
    name: str
    kind: str
    settings: dict[str, Any]
    credentials_set: list[str] = Field(description="Names of the stored credentials")
    mapping: dict[str, Any]
    filter: dict[str, Any] | None
    enabled: bool
    hook_url: str
    state: dict[str, Any]
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failing_since: datetime | None
    needs_attention: dict[str, Any] | None = Field(
        None, description="Set while the tool refuses the connector's credentials (an "
        "expired or revoked token): {since, reason}. Nothing passes until they are "
        "replaced; the next success clears it.")
    queue: dict[str, int] | None = None
    created_at: datetime
    updated_at: datetime


class CallOut(BaseModel):
    method: str
    url: str
    status: int | None
    duration_ms: float
    error: str | None


class ActivityOut(BaseModel):
    id: str
    at: datetime
    direction: str
    action: str
    outcome: str
    summary: str
    incident_id: str | None
    job_id: str | None
    attempt: int | None
    calls: list[CallOut]
    error: str | None
    next_attempt_at: datetime | None


class LinkOut(BaseModel):
    id: str
    connector_id: str
    incident_id: str
    kind: str
    external_id: str
    url: str | None
    created_at: datetime
    updated_at: datetime
    reconciled_at: datetime | None


class ConnectorKindOut(BaseModel):
    """One installed connector kind: enough for a client to draw its form."""

    kind: str
    title: str
    description: str
    link_kind: str = Field(description="What its link to an incident is (jira_issue, …)")
    capabilities: list[str] = Field(
        description="What its driver does: push, pull, hooks (receives webhooks at "
                    "/hooks/{id}), reconcile (pulled periodically)")
    settings_schema: dict[str, Any] = Field(
        description="JSON Schema of its settings (titles, descriptions, defaults)")
    credentials_schema: dict[str, Any] = Field(
        description="JSON Schema of its credentials; secret ones are writeOnly with "
                    "format password, and answers only say which are set")
    settings: dict[str, Any] = Field(description="Each setting's default (null: required)")
    credentials: list[str] = Field(description="The names of its credentials")
    mapping: dict[str, Any] = Field(description="Its default field mapping")
