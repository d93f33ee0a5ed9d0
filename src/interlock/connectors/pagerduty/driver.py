"""The PagerDuty connector: one PagerDuty incident per Interlock incident, kept in step
both ways.

Why the REST API and not an Events v2 trigger: Events v2 makes *alerts* that PagerDuty
groups into incidents as its rules decide, answers with a dedup key and no incident,
and can only trigger, acknowledge and resolve by that key, as the integration rather
than as a person. The REST API (``POST /incidents``) answers with the incident itself,
so Interlock gets an id it can read back, update (title, urgency, status), and add
notes to, and every change is made as the ``From`` user, which is how the webhooks
PagerDuty sends back for Interlock's own changes are recognised as echoes. The
``incident_key`` Interlock sets (its incident id) makes PagerDuty refuse a second open
incident for the same key, so a create retried after a lost answer adopts the first.

Field ownership (the default mapping): title, summary and severity (as urgency) are
Interlock's; the assignee is PagerDuty's (it pages people); status and notes go both
ways.

Link state (a JSON dict, always returned whole):

* ``pushed``: ``title`` and ``urgency`` as Interlock last wrote them.
* ``seen``: ``{"status", "assignee"}`` Interlock last wrote to or read from PagerDuty.
* ``comments``: ids of notes Interlock wrote or already mirrored in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from interlock.connectors import config_models
from interlock.connectors.pagerduty import hooks
from interlock.connectors.pagerduty.api import DuplicateKey, PagerDutyApi
from interlock.connectors.pagerduty.config import PagerDutyCredentials, PagerDutySettings
from interlock.domain.connectors import (
    Connector,
    FieldMapping,
    Owner,
    comment_to_mirror,
    redacted_title,
    shows_in_tools,
)
from interlock.domain.errors import ToolFailed
from interlock.domain.events import Event
from interlock.ports.connector import (
    HookNotice,
    LinkWrite,
    PullResult,
    PushResult,
    RemoteComment,
    SyncContext,
)

LINK_KIND = "pagerduty_incident"
#: PagerDuty's limit on an incident title (longer ones are refused).
TITLE_MAX = 1024

DEFAULT_MAPPING = FieldMapping(
    owners={"title": Owner.INTERLOCK, "summary": Owner.INTERLOCK,
            "severity": Owner.INTERLOCK, "labels": Owner.INTERLOCK,
            "assignee": Owner.TOOL, "status": Owner.BOTH, "comments": Owner.BOTH},
    status_out={"triggered": "triggered", "acknowledged": "acknowledged",
                "resolved": "resolved"},
    status_in={"triggered": "triggered", "acknowledged": "acknowledged",
               "resolved": "resolved"},
    # PagerDuty has two urgencies: high pages now, low waits for working hours.
    severity_out={"critical": "high", "high": "high", "medium": "low", "low": "low",
                  "info": "low"},
)


class PagerDutyDriver:
    """Push, Pull and InboundHooks (ports.connector) for PagerDuty (REST API v2)."""

    def wants(self, event: Event) -> bool:
        """Every incident event but alerts joining without raising the severity."""
        return shows_in_tools(event)

    async def push(self, ctx: SyncContext) -> PushResult:
        return await self._sync(ctx, with_comment=True)

    async def refresh(self, ctx: SyncContext) -> PushResult:
        return await self._sync(ctx, with_comment=False)

    async def pull(self, ctx: SyncContext) -> PullResult:
        if ctx.link is None:
            raise ToolFailed("there is no PagerDuty incident for this incident to pull",
                             retryable=False)
        api, _ = _api(ctx)
        incident_id = ctx.link.external_id
        incident = await api.incident(incident_id)
        mapping = ctx.mapping
        status_name = str(incident.get("status") or "unknown")
        status = mapping.status_from_tool(status_name) if mapping.pulls("status") else None
        assignee: Any = ...  # Ellipsis: the mapping does not pull it
        if mapping.pulls("assignee"):
            assignee = _assignee(incident)
        comments: list[RemoteComment] = []
        if mapping.pulls("comments"):
            own = own_user(ctx.connector)
            comments = [_remote(note) for note in await api.notes(incident_id)
                        if not own or (note.get("user") or {}).get("id") != own]
        said = [f"PagerDuty incident {_name(incident)} is {status_name}"]
        if assignee is not ...:
            said.append(f"assigned to {assignee}" if assignee else "unassigned")
        if mapping.pulls("comments"):
            said.append(f"{len(comments)} note{'s' if len(comments) != 1 else ''} "
                        "from people")
        return PullResult(summary=", ".join(said), status=status, assignee=assignee,
                          comments=comments)

    def read_hook(self, connector: Connector, headers: Mapping[str, str], body: bytes,
                  now: datetime) -> HookNotice:
        return hooks.read(connector, headers, body, own_user(connector))

    def answer(self, notice: HookNotice, message: str, ok: bool) -> tuple[int, Any]:
        return 200, {"ok": ok, "message": message}

    async def _sync(self, ctx: SyncContext, *, with_comment: bool) -> PushResult:
        api, settings = _api(ctx)
        learned: dict[str, Any] = {}
        if not own_user(ctx.connector):
            found = await api.user_id(settings.from_email)
            if found:
                learned["user_id"] = found
        wanted = _wanted(ctx)
        done: list[str] = []
        notes: list[str] = []
        failed: ToolFailed | None = None
        if ctx.link is None:
            incident, adopted = await _create(api, ctx, settings, wanted)
            incident_id = str(incident["id"])
            state: dict[str, Any] = {
                "pushed": {name: wanted.get(name) for name in ("title", "urgency")},
                "seen": {"status": _status_in(ctx.mapping, incident), "assignee": None},
                "comments": [],
            }
            verb = "found the open" if adopted else "created"
            done.append(f"{verb} PagerDuty incident {_name(incident)}")
            notes.append(f"PagerDuty incident {_name(incident)} "
                         f"{'linked' if adopted else 'opened'}")
            try:
                changed = await _update(api, ctx, incident_id, wanted, state)
            except ToolFailed as error:
                # The incident exists now: keep the link so a retry does not open a
                # second one; seen.status still differs, so the retry moves it.
                changed, failed = [], error
        else:
            incident_id, state = ctx.link.external_id, _copy(ctx.link.state)
            incident = {"id": incident_id, "html_url": ctx.link.url}
            changed = await _update(api, ctx, incident_id, wanted, state)
        if changed:
            done.append(f"set {', '.join(changed)} of PagerDuty incident {incident_id}")
        if with_comment and await _push_note(api, ctx, incident_id, state):
            done.append(f"added a note to PagerDuty incident {incident_id}")
        summary = "; ".join(done) or f"PagerDuty incident {incident_id} already matches"
        return PushResult(summary=summary, notes=notes, learned=learned, failed=failed,
                          link=LinkWrite(kind=LINK_KIND, external_id=incident_id,
                                         url=incident.get("html_url"), state=state))


def own_user(connector: Connector) -> str | None:
    """The id of the From user: configured, or learned on the first push."""
    value = connector.settings.get("user_id") or connector.state.get("user_id")
    return str(value) if value else None


def _api(ctx: SyncContext) -> tuple[PagerDutyApi, PagerDutySettings]:
    settings = config_models.parse(PagerDutySettings, ctx.connector.settings, "settings",
                                   "PagerDuty")
    credentials = config_models.parse(PagerDutyCredentials, ctx.connector.credentials,
                                      "credentials", "PagerDuty")
    api = PagerDutyApi(ctx.http, settings.api_base,
                       credentials.api_key.get_secret_value(), settings.from_email)
    return api, settings


def _wanted(ctx: SyncContext) -> dict[str, Any]:
    """What the PagerDuty incident should say. A private incident gives only its
    reference (in a redacted title) and the link back."""
    incident = ctx.incident
    link_line = f"Open {incident.reference} in Interlock: {ctx.incident_url}"
    if incident.is_private:
        return {"title": redacted_title(incident), "details": link_line}
    wanted: dict[str, Any] = {
        "title": f"[{incident.reference}] {incident.title}"[:TITLE_MAX],
        "details": f"{incident.summary.strip()}\n\n{link_line}".strip(),
    }
    urgency = ctx.mapping.severity_for_tool(incident.severity)
    if urgency in ("high", "low") and ctx.mapping.pushes("severity"):
        wanted["urgency"] = urgency
    return wanted


async def _create(api: PagerDutyApi, ctx: SyncContext, settings: PagerDutySettings,
                  wanted: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The new incident, or the open one already made for this key; whether adopted."""
    body: dict[str, Any] = {
        "type": "incident", "title": wanted["title"],
        "service": {"id": settings.service_id, "type": "service_reference"},
        "incident_key": ctx.incident.id,
        "body": {"type": "incident_body", "details": wanted["details"]},
    }
    if "urgency" in wanted:
        body["urgency"] = wanted["urgency"]
    if settings.escalation_policy_id:
        body["escalation_policy"] = {"id": settings.escalation_policy_id,
                                     "type": "escalation_policy_reference"}
    try:
        return await api.create_incident(body), False
    except DuplicateKey:
        found = await api.find_incident(ctx.incident.id, settings.service_id)
        if found is None:
            raise
        return found, True


async def _update(api: PagerDutyApi, ctx: SyncContext, incident_id: str,
                  wanted: Mapping[str, Any], state: dict[str, Any]) -> list[str]:
    """One PUT with the owned fields and the status that differ from what Interlock last
    wrote or read; the names of what changed."""
    pushed: dict[str, Any] = dict(state.get("pushed") or {})
    seen: dict[str, Any] = dict(state.get("seen") or {})
    fields: dict[str, Any] = {}
    if ctx.mapping.pushes("title") and pushed.get("title") != wanted["title"]:
        fields["title"] = wanted["title"]
    if "urgency" in wanted and pushed.get("urgency") != wanted["urgency"]:
        fields["urgency"] = wanted["urgency"]
    status = ctx.incident.status
    target = ctx.mapping.status_for_tool(status)
    if ctx.mapping.pushes("status") and seen.get("status") != status.value and target:
        fields["status"] = target
    if fields:
        await api.update_incident(incident_id, fields)
        pushed.update({name: fields[name] for name in ("title", "urgency") if name in fields})
        if "status" in fields:
            seen["status"] = status.value
    state["pushed"], state["seen"] = pushed, seen
    return list(fields)


async def _push_note(api: PagerDutyApi, ctx: SyncContext, incident_id: str,
                     state: dict[str, Any]) -> bool:
    line = comment_to_mirror(ctx.event, ctx.mapping, ctx.incident)
    if line is None:
        return False
    note = await api.add_note(incident_id, line)
    known = [str(item) for item in state.get("comments") or []]
    if note.get("id") is not None:
        known.append(str(note["id"]))
    state["comments"] = known
    return True


def _status_in(mapping: FieldMapping, incident: Mapping[str, Any]) -> str | None:
    status = mapping.status_from_tool(str(incident.get("status") or ""))
    return status.value if status else None


def _assignee(incident: Mapping[str, Any]) -> str | None:
    for assignment in incident.get("assignments") or []:
        person = assignment.get("assignee") if isinstance(assignment, dict) else None
        if isinstance(person, dict) and (person.get("summary") or person.get("id")):
            return str(person.get("summary") or person.get("id"))
    return None


def _remote(note: Mapping[str, Any]) -> RemoteComment:
    user = note.get("user")
    name = (user.get("summary") or user.get("id")) if isinstance(user, dict) else None
    return RemoteComment(id=str(note.get("id")), author=str(name or "someone in PagerDuty"),
                         body=str(note.get("content") or ""))


def _name(incident: Mapping[str, Any]) -> str:
    number = incident.get("incident_number") or incident.get("number")
    return f"#{number} ({incident.get('id')})" if number else str(incident.get("id"))


def _copy(state: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(dict(state)))
    return copied
