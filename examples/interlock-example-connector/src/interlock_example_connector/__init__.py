"""``webhook_card``: post a card to an incoming-webhook URL whenever an incident changes.

A push-only connector kind, written only against Interlock's public plugin interface
(``interlock.ports``): a settings model, a credentials model, a driver with the Push
capability, and a ConnectorPlugin that ties them together. Interlock finds it through
the entry point in this package's pyproject.toml.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from interlock.domain.connectors import shows_in_tools
from interlock.domain.events import Event
from interlock.ports.connector import LinkWrite, PushResult, SyncContext
from interlock.ports.plugins import ConnectorPlugin, ToolUrl


class CardSettings(BaseModel):
    url: ToolUrl = Field(title="Webhook URL",
                         description="Where cards are POSTed (an incoming-webhook URL)")
    title_prefix: str = Field("Incident", max_length=50, title="Title prefix",
                              description="Put before each card's title")


class CardCredentials(BaseModel):
    token: SecretStr | None = Field(
        None, title="Bearer token",
        description="Sent as 'Authorization: Bearer …' if the receiver wants one")


class CardDriver:
    """Push only: every change that shows in tools becomes one card."""

    def wants(self, event: Event) -> bool:
        return shows_in_tools(event)

    async def push(self, ctx: SyncContext) -> PushResult:
        incident = ctx.incident
        prefix = ctx.connector.settings.get("title_prefix") or "Incident"
        title = (f"{incident.reference}: private incident" if incident.is_private
                 else f"{incident.reference}: {incident.title}")
        card = {
            "type": "message",
            "title": f"{prefix} {title}",
            "text": f"Status **{incident.status.value}**, severity "
                    f"**{incident.severity.value}**",
            "event": ctx.event.type.value if ctx.event else None,
            "link": ctx.incident_url,
        }
        headers = {}
        token = ctx.connector.credentials.get("token")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = str(ctx.connector.settings["url"])
        (await ctx.http.request("POST", url, json=card, headers=headers)
         ).expect("posting the card")
        sent = int((ctx.link.state.get("cards") if ctx.link else 0) or 0) + 1
        return PushResult(summary=f"posted a card for {incident.reference}",
                          link=LinkWrite(kind="webhook_card", external_id=incident.id,
                                         url=None, state={"cards": sent}))

    async def refresh(self, ctx: SyncContext) -> PushResult:
        return await self.push(ctx)


PLUGIN = ConnectorPlugin(
    kind="webhook_card",
    title="Webhook card",
    description="Posts a card to an incoming-webhook URL whenever an incident changes.",
    settings=CardSettings,
    credentials=CardCredentials,
    driver=CardDriver,
    link_kind="webhook_card",
)
