"""The Atlassian Statuspage connector: one Statuspage incident per Interlock incident,
written from the incident's public updates, never from its internal state.

Push: a public update creates the Statuspage incident (name, status, body, the
affected components and their statuses through ``component_map``,
``deliver_notifications``) or PATCHes it with the new status and body, which
Statuspage records as an incident update and which sets the components' statuses in
the same call (one request, under a limit of one per second). Nothing else an incident
does (comments, alerts, internal status) is sent.

Pull: Statuspage's incident updates carry no author, and its webhooks go to page
subscribers unsigned, so changes made there are read back by polling the incident
(the sync service's periodic reconcile, ``INTERLOCK_RECONCILE_SECONDS``). Every update
Interlock posted is remembered by id in the link's state, so only the others (posted
by a person in Statuspage) come back, onto the timeline, once each. A resolution made
there resolves the incident while the mapping lets status in (the default).

Link state (a JSON dict, returned whole):

* ``pushed``: ids of the public updates already in Statuspage (a replayed push is a no-op).
* ``comments``: ids of Statuspage incident updates Interlock wrote or already took in.
* ``seen``: ``{"status": "resolved" | None}``, what a pull's change is judged by.
* ``name``: the incident name last written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlock.connectors.statuspage import config
from interlock.connectors.statuspage.api import StatuspageApi, updates_of
from interlock.connectors.statuspage.throttle import Throttle
from interlock.domain.connectors import FieldMapping, Owner
from interlock.domain.errors import ToolFailed
from interlock.domain.events import Event, EventType
from interlock.ports.connector import (
    LinkWrite,
    PullResult,
    PushResult,
    RemoteComment,
    SyncContext,
)

LINK_KIND = "statuspage_incident"
PUBLIC_STATUSES = ("investigating", "identified", "monitoring", "resolved")

DEFAULT_MAPPING = FieldMapping(
    owners={"title": Owner.INTERLOCK, "summary": Owner.INTERLOCK,
            "severity": Owner.INTERLOCK, "labels": Owner.INTERLOCK,
            "assignee": Owner.INTERLOCK, "status": Owner.TOOL, "comments": Owner.BOTH},
    # Interlock's status is never written to Statuspage (public updates are), so the
    # tool owns it: a Statuspage incident resolved by a person resolves the incident.
    status_in={"resolved": "resolved"},
)


@dataclass(frozen=True)
class PublicUpdate:
    """What a public update says, read from its event: only what a customer may see."""

    id: str
    status: str
    body: str
    #: Interlock component id → component status.
    components: Mapping[str, str]
    #: The incident's public name, when the update gives one.
    name: str | None = None


def public_update(event: Event | None) -> PublicUpdate | None:
    """The public update an event carries, or None (another event, or malformed)."""
    if event is None or event.type is not EventType.INCIDENT_PUBLIC_UPDATE:
        return None
    data = event.data.get("public_update")
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
        return None
    status = data.get("status")
    if status not in PUBLIC_STATUSES:
        return None
    components = data.get("components") or {}
    if not isinstance(components, Mapping):
        return None
    name = data.get("title")
    return PublicUpdate(id=data["id"], status=str(status), body=str(data.get("body") or ""),
                        components={str(key): str(value) for key, value in
                                    dict(components).items()},
                        name=str(name) if name else None)


class StatuspageDriver:
    """Push and Pull (ports.connector) for Atlassian Statuspage (REST v1); its kind is
    described in :mod:`interlock.connectors.statuspage.plugin`."""

    def __init__(self, throttle: Throttle | None = None) -> None:
        #: Shared by every Statuspage connector of this process, keyed by API key.
        self._throttle = throttle or Throttle()

    def wants(self, event: Event) -> bool:
        """Public updates only: the rest of an incident's life is internal."""
        return event.type is EventType.INCIDENT_PUBLIC_UPDATE

    async def push(self, ctx: SyncContext) -> PushResult:
        update = public_update(ctx.event)
        if update is None:
            return PushResult(summary="not a public update; nothing to publish", skipped=True)
        if ctx.incident.is_private:
            return PushResult(summary="a private incident is never published", skipped=True)
        state = _copy(ctx.link.state) if ctx.link else {}
        pushed = [str(item) for item in state.get("pushed") or []]
        if update.id in pushed:
            return PushResult(summary=f"public update {update.id} is already in Statuspage",
                              skipped=True)
        settings, credentials = config.parse(ctx.connector.settings, ctx.connector.credentials)
        api = StatuspageApi(ctx.http, settings, credentials, self._throttle)
        components = {settings.component_map[ours]: status
                      for ours, status in update.components.items()
                      if ours in settings.component_map}
        fields: dict[str, Any] = {"status": update.status, "body": update.body,
                                  "deliver_notifications": settings.deliver_notifications}
        if components:
            fields["components"] = components
            fields["component_ids"] = sorted(components)
        name = (update.name or ctx.incident.title)[:255]
        notes: list[str] = []
        if ctx.link is None:
            answer = await api.create_incident({"name": name, **fields})
            incident_id = str(answer["id"])
            notes.append(f"Statuspage incident {incident_id} created")
            summary = f"created Statuspage incident {incident_id} ({update.status})"
        else:
            incident_id = ctx.link.external_id
            if state.get("name") != name:
                fields["name"] = name
            answer = await api.update_incident(incident_id, fields)
            summary = f"posted a {update.status} update to Statuspage incident {incident_id}"
        written = updates_of(answer)
        if not written:
            raise ToolFailed(f"Statuspage answered without the incident's updates for "
                             f"{incident_id}", retryable=False)
        known = [str(item) for item in state.get("comments") or []]
        # The newest update is the one this call made (Statuspage adds one per PATCH
        # with a body or status); any other new one is a person's, for pull to take in.
        known.append(str(written[-1]["id"]))
        state.update(pushed=[*pushed, update.id], comments=known, name=name,
                     seen={"status": "resolved" if answer.get("status") == "resolved"
                           else None})
        if components:
            summary += f"; components {', '.join(f'{k} → {v}' for k, v in components.items())}"
        return PushResult(summary=summary, notes=notes, link=LinkWrite(
            kind=LINK_KIND, external_id=incident_id, url=api.incident_url(incident_id),
            state=state))

    async def refresh(self, ctx: SyncContext) -> PushResult:
        return PushResult(summary="Statuspage incidents change only by public updates",
                          skipped=True)

    async def pull(self, ctx: SyncContext) -> PullResult:
        if ctx.link is None:
            raise ToolFailed("there is no Statuspage incident for this incident to pull",
                             retryable=False)
        settings, credentials = config.parse(ctx.connector.settings, ctx.connector.credentials)
        api = StatuspageApi(ctx.http, settings, credentials, self._throttle)
        incident_id = ctx.link.external_id
        answer = await api.incident(incident_id)
        their_status = str(answer.get("status") or "unknown")
        known = {str(item) for item in ctx.link.state.get("comments") or []}
        comments = [
            RemoteComment(id=str(item["id"]), author="Statuspage",
                          body=f"Update posted in Statuspage ({item.get('status')}): "
                               f"{item.get('body') or '(no text)'}")
            for item in updates_of(answer)
        ]
        new = sum(1 for comment in comments if comment.id not in known)
        status = (ctx.mapping.status_from_tool(their_status)
                  if ctx.mapping.pulls("status") else None)
        return PullResult(
            summary=f"Statuspage incident {incident_id} is {their_status}, "
                    f"{new} new update{'s' if new != 1 else ''} from people",
            status=status, comments=comments if ctx.mapping.pulls("comments") else ())


def _copy(state: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(dict(state)))
    return copied
