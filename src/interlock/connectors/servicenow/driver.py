"""The ServiceNow connector: one record in the ``incident`` table per Interlock
incident, kept in step both ways through the Table API.

Push sends only what differs from what the link's state says Interlock last wrote, in
one PATCH (fields, state, and the comment as a work note or comment). The record's
``correlation_id`` carries Interlock's incident id, so a create retried after a lost
answer finds the first record instead of making a second.

Severity becomes ``urgency`` and ``impact``: the mapping names the ServiceNow priority
a severity should get (1 Critical … 5 Planning), and the pair written is the one the
base system's priority lookup turns into that priority.

Field ownership (the default mapping): short description, description and severity
are Interlock's; ``assigned_to`` is ServiceNow's; state and notes go both ways.

Link state: ``pushed`` (fields as last written; the description as a digest),
``seen`` (``{"status", "assignee"}`` last written or read), ``comments`` (sys_ids of
journal entries already mirrored in), ``number``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from interlock.connectors import config_models
from interlock.connectors.servicenow import hooks
from interlock.connectors.servicenow.api import ServiceNowApi, TokenCache
from interlock.connectors.servicenow.config import (
    STATES,
    ServiceNowCredentials,
    ServiceNowSettings,
)
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

LINK_KIND = "servicenow_incident"
#: ServiceNow's short_description holds 160 characters.
SHORT_MAX = 160
RETURNED = "sys_id,number,state"
PULLED = "sys_id,number,state,assigned_to,sys_updated_by"
#: Priority → (urgency, impact) that the base system's priority lookup maps to it.
PRIORITY_MATRIX = {"1": ("1", "1"), "2": ("1", "2"), "3": ("2", "2"), "4": ("2", "3"),
                   "5": ("3", "3")}

DEFAULT_MAPPING = FieldMapping(
    owners={"title": Owner.INTERLOCK, "summary": Owner.INTERLOCK,
            "severity": Owner.INTERLOCK, "labels": Owner.INTERLOCK,
            "assignee": Owner.TOOL, "status": Owner.BOTH, "comments": Owner.BOTH},
    status_out={"triggered": "new", "acknowledged": "in_progress", "resolved": "resolved"},
    status_in={"new": "triggered", "in_progress": "acknowledged", "on_hold": "acknowledged",
               "resolved": "resolved", "closed": "resolved", "canceled": "resolved"},
    severity_out={"critical": "1", "high": "2", "medium": "3", "low": "4", "info": "5"},
)


class ServiceNowDriver:
    """Push, Pull and InboundHooks (ports.connector) for ServiceNow (Table API)."""

    def __init__(self) -> None:
        self._tokens = TokenCache()

    def wants(self, event: Event) -> bool:
        return shows_in_tools(event)

    async def push(self, ctx: SyncContext) -> PushResult:
        return await self._sync(ctx, with_comment=True)

    async def refresh(self, ctx: SyncContext) -> PushResult:
        return await self._sync(ctx, with_comment=False)

    async def pull(self, ctx: SyncContext) -> PullResult:
        if ctx.link is None:
            raise ToolFailed("there is no ServiceNow incident for this incident to pull",
                             retryable=False)
        api, settings = self._api(ctx)
        sys_id, mapping = ctx.link.external_id, ctx.mapping
        record = await api.record(sys_id, PULLED)
        state = _field(record, "state")
        state_name = settings.state_name(state.get("value"))
        status = mapping.status_from_tool(state_name) if mapping.pulls("status") else None
        assignee: Any = ...
        if mapping.pulls("assignee"):
            person = _field(record, "assigned_to")
            assignee = str(person.get("display_value") or "") or None
        comments: list[RemoteComment] = []
        if mapping.pulls("comments"):
            entries = await api.journal(sys_id, settings.comment_field)
            comments = [RemoteComment(id=str(entry.get("sys_id")),
                                      author=str(entry.get("sys_created_by") or "ServiceNow"),
                                      body=str(entry.get("value") or ""))
                        for entry in entries
                        if str(entry.get("sys_created_by") or "") != settings.own_user]
        number = _field(record, "number").get("value") or sys_id
        said = [f"ServiceNow {number} is {state.get('display_value') or state.get('value')}"]
        if assignee is not ...:
            said.append(f"assigned to {assignee}" if assignee else "unassigned")
        if mapping.pulls("comments"):
            said.append(f"{len(comments)} {settings.comment_field.replace('_', ' ')} "
                        "from people")
        return PullResult(summary=", ".join(said), status=status, assignee=assignee,
                          comments=comments)

    def read_hook(self, connector: Connector, headers: Mapping[str, str], body: bytes,
                  now: datetime) -> HookNotice:
        own = str(connector.settings.get("integration_user")
                  or connector.settings.get("username") or "").strip()
        return hooks.read(headers, body, connector.credentials.get("hook_secret", ""), own)

    def answer(self, notice: HookNotice, message: str, ok: bool) -> tuple[int, Any]:
        return 200, {"ok": ok, "message": message}

    def _api(self, ctx: SyncContext) -> tuple[ServiceNowApi, ServiceNowSettings]:
        settings = config_models.parse(ServiceNowSettings, ctx.connector.settings,
                                       "settings", "ServiceNow")
        credentials = config_models.parse(ServiceNowCredentials, ctx.connector.credentials,
                                          "credentials", "ServiceNow")
        api = ServiceNowApi(ctx.http, settings.base_url, auth=settings.auth,
                            username=settings.username, client_id=settings.client_id,
                            secret=credentials.secret.get_secret_value(),
                            tokens=self._tokens)
        return api, settings

    async def _sync(self, ctx: SyncContext, *, with_comment: bool) -> PushResult:
        api, settings = self._api(ctx)
        wanted = _wanted(ctx)
        done: list[str] = []
        notes: list[str] = []
        failed: ToolFailed | None = None
        if ctx.link is None:
            record, adopted = await _create(api, ctx, settings, wanted)
            sys_id, number = str(record["sys_id"]), str(record.get("number") or "")
            state: dict[str, Any] = {
                "number": number,
                "pushed": {name: value for name, (_, value) in wanted.items()},
                "seen": {"status": _status_of(ctx.mapping, settings, record.get("state")),
                         "assignee": None},
                "comments": [],
            }
            done.append(f"{'found' if adopted else 'created'} ServiceNow incident {number}")
            notes.append(f"ServiceNow incident {number} {'linked' if adopted else 'created'}")
            try:
                changed = await _update(api, ctx, settings, sys_id, wanted, state,
                                        with_comment=False)
            except ToolFailed as error:
                # The record exists: keep the link, fail the job; the retry moves it.
                changed, failed = [], error
        else:
            sys_id, state = ctx.link.external_id, _copy(ctx.link.state)
            changed = await _update(api, ctx, settings, sys_id, wanted, state,
                                    with_comment=with_comment)
        number = state.get("number") or sys_id
        if changed:
            done.append(f"set {', '.join(changed)} of ServiceNow incident {number}")
        summary = "; ".join(done) or f"ServiceNow incident {number} already matches"
        return PushResult(summary=summary, notes=notes, failed=failed,
                          link=LinkWrite(kind=LINK_KIND, external_id=sys_id,
                                         url=api.record_url(sys_id), state=state))


def _wanted(ctx: SyncContext) -> dict[str, tuple[Any, Any]]:
    """Record fields the incident asks for: name → (value, how it is remembered)."""
    incident, mapping = ctx.incident, ctx.mapping
    link_line = f"Open {incident.reference} in Interlock: {ctx.incident_url}"
    if incident.is_private:
        title, description = redacted_title(incident), link_line
    else:
        title = f"[{incident.reference}] {incident.title}"
        description = f"{incident.summary.strip()}\n\n{link_line}".strip()
    wanted: dict[str, tuple[Any, Any]] = {}
    if mapping.pushes("title"):
        wanted["short_description"] = (title[:SHORT_MAX], title[:SHORT_MAX])
    if mapping.pushes("summary"):
        digest = "sha256:" + hashlib.sha256(description.encode()).hexdigest()
        wanted["description"] = (description, digest)
    pair = PRIORITY_MATRIX.get(mapping.severity_for_tool(incident.severity) or "")
    if pair and mapping.pushes("severity") and not incident.is_private:
        wanted["urgency"] = (pair[0], pair[0])
        wanted["impact"] = (pair[1], pair[1])
    return wanted


async def _create(api: ServiceNowApi, ctx: SyncContext, settings: ServiceNowSettings,
                  wanted: Mapping[str, tuple[Any, Any]]) -> tuple[dict[str, Any], bool]:
    found = await api.find(ctx.incident.id, RETURNED)
    if found is not None:
        return found, True
    fields: dict[str, Any] = {name: value for name, (value, _) in wanted.items()}
    fields.setdefault("short_description", redacted_title(ctx.incident))
    fields.update(correlation_id=ctx.incident.id, correlation_display="Interlock")
    if settings.caller_id:
        fields["caller_id"] = settings.caller_id
    if settings.assignment_group:
        fields["assignment_group"] = settings.assignment_group
    return await api.create(fields, RETURNED), False


async def _update(api: ServiceNowApi, ctx: SyncContext, settings: ServiceNowSettings,
                  sys_id: str, wanted: Mapping[str, tuple[Any, Any]], state: dict[str, Any],
                  *, with_comment: bool) -> list[str]:
    """One PATCH with what differs; the names of what it set."""
    pushed: dict[str, Any] = dict(state.get("pushed") or {})
    seen: dict[str, Any] = dict(state.get("seen") or {})
    fields = {name: value for name, (value, remembered) in wanted.items()
              if pushed.get(name) != remembered}
    status = ctx.incident.status
    target = ctx.mapping.status_for_tool(status)
    moving = (ctx.mapping.pushes("status") and seen.get("status") != status.value
              and target is not None and target in STATES)
    if moving and target is not None:
        fields["state"] = str(settings.state_value(target))
        if target in ("resolved", "closed"):
            fields["close_code"] = settings.close_code
            fields["close_notes"] = f"Resolved in Interlock ({ctx.incident.reference})."
    comment = _comment(ctx) if with_comment else None
    if comment:
        fields[settings.comment_field] = comment
    if not fields:
        return []
    await api.update(sys_id, fields, RETURNED)
    pushed.update({name: wanted[name][1] for name in wanted if name in fields})
    if moving:
        seen["status"] = status.value
    state["pushed"], state["seen"] = pushed, seen
    return list(fields)


def _comment(ctx: SyncContext) -> str | None:
    return comment_to_mirror(ctx.event, ctx.mapping, ctx.incident)


def _status_of(mapping: FieldMapping, settings: ServiceNowSettings, value: Any) -> str | None:
    status = mapping.status_from_tool(settings.state_name(value))
    return status.value if status else None


def _field(record: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A field read with sysparm_display_value=all: ``{"value", "display_value"}``."""
    value = record.get(name)
    if isinstance(value, dict):
        return value
    return {"value": value, "display_value": value}


def _copy(state: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(dict(state)))
    return copied
