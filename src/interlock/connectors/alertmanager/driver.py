"""Prometheus Alertmanager silences (API v2), driven by incident status.

Acknowledging an incident creates one silence whose matchers are the labels all its
alerts share (for an Alertmanager group, the group labels), for ``duration_minutes``.
Resolving or reopening it expires that silence. Alertmanager sends no webhook when a
person expires a silence, so reconciliation reads the silence and, if it expired there,
notes it on the timeline and forgets it (it is not recreated behind their back).

Status is Interlock's alone here: a silence never changes an incident.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from interlock.domain.alerts import Alert, AlertStatus
from interlock.domain.connectors import redacted_title
from interlock.domain.errors import ToolFailed
from interlock.domain.events import Event, EventType
from interlock.domain.incidents import Incident, Status
from interlock.domain.timestamps import rfc3339
from interlock.ports.connector import (
    LinkWrite,
    PullResult,
    PushResult,
    SyncContext,
)

LINK_KIND = "alertmanager_silence"
#: Labels that differ between alerts of one problem and would make a silence too narrow.
_NOISY_LABELS = frozenset({"instance", "pod", "container", "job_id"})


class AlertmanagerDriver:
    """Push and Pull (ports.connector) for Alertmanager's API v2; its settings are
    checked by the model in :mod:`.plugin`."""

    def wants(self, event: Event) -> bool:
        return event.type in (EventType.INCIDENT_ACKNOWLEDGED, EventType.INCIDENT_RESOLVED,
                              EventType.INCIDENT_REOPENED)

    async def push(self, ctx: SyncContext) -> PushResult:
        state = dict(ctx.link.state) if ctx.link else {}
        active = state.get("active_silence")
        if ctx.incident.status is Status.ACKNOWLEDGED:
            if active:
                return PushResult(summary=f"silence {active} already active", skipped=True)
            return await self._silence(ctx, state)
        if active:
            return await self._expire(ctx, state, str(active))
        return PushResult(summary="no active silence; nothing to expire", skipped=True)

    async def refresh(self, ctx: SyncContext) -> PushResult:
        return await self.push(ctx)

    async def pull(self, ctx: SyncContext) -> PullResult:
        link = ctx.link
        active = link.state.get("active_silence") if link else None
        if link is None or not active:
            return PullResult(summary="no active silence to check")
        response = (await ctx.http.request(
            "GET", f"{_base(ctx)}/api/v2/silence/{active}")).expect("reading the silence")
        state = (response.json().get("status") or {}).get("state")
        if state != "expired":
            return PullResult(summary=f"silence {active} is {state}")
        return PullResult(
            summary=f"silence {active} was expired in Alertmanager",
            link=LinkWrite(LINK_KIND, str(active), link.url,
                           {**link.state, "active_silence": None}),
            notes=[f"Alertmanager silence {active} was expired in Alertmanager"],
        )

    async def _silence(self, ctx: SyncContext, state: dict[str, Any]) -> PushResult:
        matchers = common_labels(ctx.alerts)
        if not matchers:  # declared by hand, say: nothing of it is in Alertmanager
            return PushResult(
                summary=(f"nothing to silence: {ctx.incident.reference} has no alerts"
                         if not ctx.alerts else
                         f"nothing to silence: {ctx.incident.reference}'s "
                         f"{len(ctx.alerts)} alerts have no labels in common"),
                skipped=True)
        minutes = float(ctx.connector.settings.get("duration_minutes") or 240)
        ends = ctx.now + timedelta(minutes=minutes)
        body = {
            "matchers": [{"name": name, "value": value, "isRegex": False, "isEqual": True}
                         for name, value in sorted(matchers.items())],
            "startsAt": rfc3339(ctx.now),
            "endsAt": rfc3339(ends),
            "createdBy": str(ctx.connector.settings.get("created_by") or "interlock"),
            "comment": _comment(ctx.incident, ctx.incident_url),
        }
        response = (await ctx.http.request("POST", f"{_base(ctx)}/api/v2/silences", json=body)
                    ).expect("creating the silence")
        silence_id = str(response.json().get("silenceID") or "")
        if not silence_id:
            raise ToolFailed("Alertmanager did not return a silenceID", retryable=True)
        shown = ", ".join(f'{name}="{value}"' for name, value in sorted(matchers.items()))
        return PushResult(
            summary=f"silence {silence_id} created for {{{shown}}}",
            link=LinkWrite(LINK_KIND, silence_id, f"{_base(ctx)}/#/silences/{silence_id}",
                           {**state, "active_silence": silence_id,
                            "matchers": matchers, "ends_at": rfc3339(ends)}),
            notes=[f"Alertmanager silence {silence_id} created for {{{shown}}} "
                   f"until {rfc3339(ends)}"],
        )

    async def _expire(self, ctx: SyncContext, state: dict[str, Any], silence_id: str
                      ) -> PushResult:
        response = await ctx.http.request("DELETE",
                                          f"{_base(ctx)}/api/v2/silence/{silence_id}")
        if response.status != 404:  # already gone is what we wanted
            response.expect("expiring the silence")
        link = ctx.link
        return PushResult(
            summary=f"silence {silence_id} expired ({ctx.incident.status.value})",
            link=LinkWrite(LINK_KIND, silence_id, link.url if link else None,
                           {**state, "active_silence": None}),
            notes=[f"Alertmanager silence {silence_id} expired: incident "
                   f"{ctx.incident.status.value}"],
        )


def common_labels(alerts: Sequence[Alert]) -> dict[str, str]:
    """The label pairs every firing alert shares (all alerts if none fires), without
    labels that name one instance of a problem."""
    chosen = [alert for alert in alerts if alert.status is AlertStatus.FIRING] or list(alerts)
    if not chosen:
        return {}
    common = dict(chosen[0].labels)
    for alert in chosen[1:]:
        common = {name: value for name, value in common.items()
                  if alert.labels.get(name) == value}
    if len(chosen) > 1:
        common = {name: value for name, value in common.items() if name not in _NOISY_LABELS}
    return common


def _comment(incident: Incident, url: str) -> str:
    title = redacted_title(incident) if incident.is_private else (
        f"{incident.reference}: {incident.title}")
    return f"Acknowledged in Interlock: {title} ({url})"[:500]


def _base(ctx: SyncContext) -> str:
    return str(ctx.connector.settings["url"]).rstrip("/")
