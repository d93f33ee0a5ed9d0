"""The Jira Cloud connector kind: its settings and credentials, and what it can do."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from interlock.connectors.jira.driver import DEFAULT_MAPPING, LINK_KIND, JiraDriver
from interlock.ports.plugins import ConnectorPlugin, ToolUrl


class JiraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    base_url: ToolUrl = Field(
        title="Jira site",
        description="The Jira site's URL, like https://your-site.atlassian.net")
    project_key: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=100, title="Project key",
        description="The key of the Jira project issues go to, like OPS")
    issue_type: str = Field(
        "Task", min_length=1, max_length=200, title="Issue type",
        description="The issue type to create; it must exist in the project")
    account_id: str | None = Field(
        None, min_length=1, max_length=200, title="Interlock's account id",
        description="Interlock's Jira account id (empty: learned from /myself)")


class JiraCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(title="Account email", max_length=4000,
                       description="The email of the Jira account Interlock acts as")
    api_token: SecretStr = Field(title="API token", max_length=4000,
                                 description="An API token of that account")
    webhook_secret: SecretStr = Field(
        title="Webhook secret", max_length=4000,
        description="The secret you give Jira's webhook, to verify what it sends")


PLUGIN = ConnectorPlugin(
    kind="jira",
    title="Jira Cloud",
    description="One Jira Cloud issue per incident, kept in step both ways: fields and "
                "status pushed, status, assignee and comments pulled.",
    settings=JiraSettings,
    credentials=JiraCredentials,
    driver=JiraDriver,
    link_kind=LINK_KIND,
    default_mapping=DEFAULT_MAPPING,
    reconciles=True,
    # A push is a few calls. Jira Cloud limits each account by a cost budget and a
    # burst rate rather than a fixed rate
    # (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/): five jobs a
    # second stays well inside both for one API token.
    pace=0.2,
)
