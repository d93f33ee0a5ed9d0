"""The Slack connector: one card per incident in a channel, and a thread under it.

* push: the first push posts the card (``chat.postMessage``) and links the incident to
  that message (``external_id`` is ``"{channel}:{ts}"``). Later pushes redraw the card
  in place (``chat.update``) and post one thread reply saying what the event changed,
  so the channel stays one message per incident while the thread keeps the story.
* refresh: redraws the card only. It follows a button press or slash command in Slack:
  that change came from Slack, so announcing it there again would be an echo.
* pull: Slack holds no incident state of its own (the card is drawn from Interlock's),
  so there is nothing to reconcile, and ``reconciles`` is False.
* hooks: buttons and ``/incident`` become commands (see :mod:`.commands`).

A card deleted by hand in Slack is posted again, with a note, rather than failing every
later push with ``message_not_found``. A retried first post (the last one may have
been posted with its answer lost to a timeout) first looks for that card in the
channel's history, by its metadata, and adopts it instead of posting a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from interlock.connectors.slack import cards, commands
from interlock.connectors.slack.signature import verify
from interlock.connectors.slack.web_api import SlackApiError, SlackWebApi
from interlock.domain.connectors import Connector, Link, shows_in_tools
from interlock.domain.errors import ToolFailed
from interlock.domain.events import Event
from interlock.domain.incidents import Incident
from interlock.ports.connector import (
    HookNotice,
    LinkWrite,
    PullResult,
    PushResult,
    SyncContext,
)

DEFAULT_API_BASE = "https://slack.com/api"
LINK_KIND = "slack_message"
#: How far before the incident's creation a lost card is looked for.
LOOK_BACK = timedelta(minutes=5)


class SlackDriver:
    """Push, Pull and InboundHooks (ports.connector) for Slack (Web API +
    interactivity); its settings are checked by the models in :mod:`.plugin`."""

    def wants(self, event: Event) -> bool:
        """Every incident event changes what the card shows (even a comment, through
        its thread), so all are pushed; but alerts joining an incident only when they
        raise its severity: in a storm a line per alert would bury the channel."""
        return shows_in_tools(event)

    async def push(self, ctx: SyncContext) -> PushResult:
        if ctx.link is None:
            return await self._post_card(ctx)
        channel, ts = _message_of(ctx.link)
        reposted = await self._redraw(ctx, channel, ts)
        if reposted is not None:
            return reposted
        line = cards.thread_line(ctx.event, ctx.incident) if ctx.event else None
        if line is None:
            return PushResult(summary=f"updated the card of {ctx.incident.reference} in "
                                      f"Slack channel {channel}",
                              link=_link(channel, ts, ctx.incident))
        await _api(ctx).post_message(channel, line, thread_ts=ts)
        return PushResult(summary=f"updated the card of {ctx.incident.reference} in Slack "
                                  f"channel {channel} and replied in its thread",
                          link=_link(channel, ts, ctx.incident))

    async def refresh(self, ctx: SyncContext) -> PushResult:
        if ctx.link is None:
            return await self._post_card(ctx)
        channel, ts = _message_of(ctx.link)
        reposted = await self._redraw(ctx, channel, ts)
        return reposted or PushResult(
            summary=f"redrew the card of {ctx.incident.reference} in Slack channel {channel}",
            link=_link(channel, ts, ctx.incident))

    async def pull(self, ctx: SyncContext) -> PullResult:
        return PullResult(summary="nothing to pull from Slack")

    def read_hook(self, connector: Connector, headers: Mapping[str, str], body: bytes,
                  now: datetime) -> HookNotice:
        verify(connector.credentials.get("signing_secret"), headers, body, now)
        return commands.read(body)

    def answer(self, notice: HookNotice, message: str, ok: bool) -> tuple[int, Any]:
        """A slash command's answer is shown to the person who typed it, and only to
        them (ephemeral). A button's answer body is not shown by Slack at all: an empty
        200 acknowledges it, and the refreshed card shows the outcome."""
        if not commands.is_slash_command(notice):
            return 200, None
        text = notice.ignored if notice.command is None and notice.ignored else message
        return 200, {"response_type": "ephemeral", "text": text}

    async def _redraw(self, ctx: SyncContext, channel: str, ts: str) -> PushResult | None:
        """Update the card in place (None), or post it again if it was deleted."""
        card = cards.card(ctx.incident, ctx.incident_url)
        try:
            await _api(ctx).update(channel, ts, card.text, card.blocks)
        except SlackApiError as error:
            if error.error != "message_not_found":
                raise
            return await self._post_card(ctx, reposted=True)
        return None

    async def _post_card(self, ctx: SyncContext, *, reposted: bool = False) -> PushResult:
        target = ctx.connector.settings.get("channel")
        if not isinstance(target, str) or not target:
            raise ToolFailed("the Slack connector has no channel (settings.channel)",
                             retryable=False)
        card = cards.card(ctx.incident, ctx.incident_url)
        api = _api(ctx)
        if ctx.attempt > 1 and not reposted:
            found = await _lost_card(api, ctx, target)
            if found is not None:
                await api.update(target, found, card.text, card.blocks)
                return PushResult(
                    summary=f"found the card of {ctx.incident.reference} in Slack channel "
                            f"{target}, posted by an earlier attempt",
                    link=_link(target, found, ctx.incident),
                    notes=(f"Posted to Slack channel {target}",))
        channel, ts = await api.post_message(target, card.text, blocks=card.blocks,
                                             incident_id=ctx.incident.id)
        note = (f"The Slack card was deleted; posted a new one to Slack channel {channel}"
                if reposted else f"Posted to Slack channel {channel}")
        return PushResult(summary=f"posted {ctx.incident.reference} to Slack channel "
                                  f"{channel}", link=_link(channel, ts, ctx.incident),
                          notes=(note,))


async def _lost_card(api: SlackWebApi, ctx: SyncContext, channel: str) -> str | None:
    """The card an earlier attempt may have posted before its answer was lost (a
    timeout), found in the channel's history by its metadata. Without the
    channels:history scope (or in a channel it cannot read) the search is skipped."""
    since = ctx.incident.created_at - LOOK_BACK
    try:
        return await api.find_card(channel, ctx.incident.id, since.timestamp())
    except SlackApiError as error:
        if error.error in ("missing_scope", "not_in_channel"):
            return None
        raise


def _api(ctx: SyncContext) -> SlackWebApi:
    api_base = ctx.connector.settings.get("api_base") or DEFAULT_API_BASE
    return SlackWebApi(ctx.http, str(api_base), ctx.connector.credentials.get("bot_token", ""))


def _link(channel: str, ts: str, incident: Incident) -> LinkWrite:
    return LinkWrite(kind=LINK_KIND, external_id=f"{channel}:{ts}", url=None,
                     state={"channel": channel, "ts": ts})


def _message_of(link: Link) -> tuple[str, str]:
    """The card's (channel ID, ts), from the link's state or else its external id."""
    channel, ts = link.state.get("channel"), link.state.get("ts")
    if isinstance(channel, str) and isinstance(ts, str) and channel and ts:
        return channel, ts
    channel, _, ts = link.external_id.partition(":")
    if not channel or not ts:
        raise ToolFailed(f"the Slack link {link.external_id!r} names no message",
                         retryable=False)
    return channel, ts
