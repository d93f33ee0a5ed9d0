"""The Slack connector kind: its settings and credentials, and what it can do."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from interlock.connectors.slack.driver import DEFAULT_API_BASE, LINK_KIND, SlackDriver
from interlock.domain.connectors import FieldMapping, Owner
from interlock.ports.plugins import ConnectorPlugin, ToolUrl


class SlackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: str = Field(
        min_length=1, max_length=200, title="Channel ID",
        description="The ID of the channel to post cards to (e.g. C0123456789), with the "
                    "app invited to it")
    api_base: ToolUrl = Field(DEFAULT_API_BASE, title="Web API URL",
                              description="Slack's Web API (change only for a proxy)")


class SlackCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: SecretStr = Field(
        title="Bot token", max_length=4000,
        description="The app's Bot User OAuth Token (xoxb-…), with chat:write")
    signing_secret: SecretStr = Field(
        title="Signing secret", max_length=4000,
        description="The app's Signing Secret, to verify Slack's requests")


PLUGIN = ConnectorPlugin(
    kind="slack",
    title="Slack",
    description="A card per incident in a channel, updates in its thread, and buttons "
                "and an /incident command that act on incidents from Slack.",
    settings=SlackSettings,
    credentials=SlackCredentials,
    driver=SlackDriver,
    link_kind=LINK_KIND,
    default_mapping=FieldMapping(owners={
        "title": Owner.INTERLOCK, "summary": Owner.INTERLOCK, "severity": Owner.INTERLOCK,
        "labels": Owner.INTERLOCK, "assignee": Owner.INTERLOCK,
        "status": Owner.BOTH, "comments": Owner.BOTH,
    }),
    # chat.postMessage allows about one message a second per channel
    # (https://api.slack.com/methods/chat.postMessage#rate_limiting), and a push posts
    # at most one.
    pace=1.0,
)
