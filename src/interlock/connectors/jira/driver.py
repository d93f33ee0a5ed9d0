"""The Jira Cloud connector: one issue per incident, kept in step both ways.

Push makes the issue match the incident's *current* state (never the event's), and
sends only what differs from what the link's state says Interlock last wrote, so a
replayed or redundant push costs a read at most and never overwrites a person's edit
of a field Interlock did not change. Pull reads the issue and maps it to Interlock's
words; deciding what is new is the sync service's job.

Link state, shared with the sync service (a JSON dict, always returned whole):

* ``pushed``: the issue fields as Interlock last wrote them (``summary``, a hash of the
  ``description``, ``priority``, ``labels``); what a push compares against.
* ``seen`` and ``comments``: what Interlock last wrote to or read from the issue, and
  the ids of comments it wrote or mirrored in; the sync service keeps both
  (domain.ownership). A new issue's ``seen`` starts in the workflow's initial status.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from interlock.connectors.jira import adf, hooks
from interlock.connectors.jira.api import JiraApi
from interlock.connectors.jira.pull import pull_issue
from interlock.connectors.jira.workflow import move_to_category
from interlock.domain.connectors import (
    Connector,
    FieldMapping,
    Owner,
    redacted_title,
    shows_in_tools,
)
from interlock.domain.errors import ToolFailed
from interlock.domain.events import Event, EventType
from interlock.ports.connector import HookNotice, LinkWrite, PullResult, PushResult, SyncContext

LINK_KIND = "jira_issue"
#: Every issue Interlock creates carries this label, so people can find them in Jira.
MARKER_LABEL = "interlock"
LABEL_MAX = 255

DEFAULT_MAPPING = FieldMapping(
    owners={"title": Owner.INTERLOCK, "summary": Owner.INTERLOCK,
            "severity": Owner.INTERLOCK, "labels": Owner.INTERLOCK,
            "assignee": Owner.TOOL, "status": Owner.BOTH, "comments": Owner.BOTH},
    # Jira workflows differ per project; their status *categories* do not.
    status_out={"triggered": "new", "acknowledged": "indeterminate", "resolved": "done"},
    status_in={"new": "triggered", "indeterminate": "acknowledged", "done": "resolved"},
    severity_out={"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low",
                  "info": "Lowest"},
)

#: Interlock field (the mapping's name) → the Jira field it is written to.
_OWNED_FIELDS = (("title", "summary"), ("summary", "description"),
                 ("severity", "priority"), ("labels", "labels"))


@dataclass
class _Wanted:
    """The issue fields an incident asks for, with how each is remembered in state."""

    values: dict[str, Any] = field(default_factory=dict)
    remembered: dict[str, Any] = field(default_factory=dict)

    def put(self, name: str, value: Any, remembered: Any) -> None:
        self.values[name] = value
        self.remembered[name] = remembered


class JiraDriver:
    """Push, Pull and InboundHooks (ports.connector) for Jira Cloud (REST API v3); its
    settings and credentials are checked by the models in :mod:`.plugin`."""

    def wants(self, event: Event) -> bool:
        """Every incident event (a push sends the whole current state anyway), except
        alerts joining an incident without raising its severity: the issue shows
        nothing of them, and in a storm they would be a call per alert."""
        return shows_in_tools(event)

    async def push(self, ctx: SyncContext) -> PushResult:
        return await self._sync(ctx, with_comment=True)

    async def refresh(self, ctx: SyncContext) -> PushResult:
        """Fields and status only: a refresh never announces anything in the issue."""
        return await self._sync(ctx, with_comment=False)

    async def pull(self, ctx: SyncContext) -> PullResult:
        if ctx.link is None:
            raise ToolFailed("there is no Jira issue for this incident to pull",
                             retryable=False)
        api = _api(ctx)
        own = hooks.own_account(ctx.connector)
        if own is None and ctx.mapping.pulls("comments"):
            own = str((await api.myself()).get("accountId") or "") or None
        return await pull_issue(api, ctx.link, ctx.mapping, own)

    def read_hook(self, connector: Connector, headers: Mapping[str, str], body: bytes,
                  now: datetime) -> HookNotice:
        return hooks.read(connector, headers, body)

    def answer(self, notice: HookNotice, message: str, ok: bool) -> tuple[int, Any]:
        return 200, {"ok": ok, "message": message}

    async def _sync(self, ctx: SyncContext, *, with_comment: bool) -> PushResult:
        api = _api(ctx)
        learned: dict[str, Any] = {}
        if hooks.own_account(ctx.connector) is None:
            account = (await api.myself()).get("accountId")
            if account:
                learned["account_id"] = str(account)
        wanted = _wanted(ctx)
        done: list[str] = []
        notes: list[str] = []
        if ctx.link is None:
            key, state = await _create(api, ctx, wanted)
            done.append(f"created Jira issue {key}")
            notes.append(f"Jira issue {key} created")
        else:
            key, state = ctx.link.external_id, _copy(ctx.link.state)
            changed = await _update(api, key, wanted, ctx.mapping, state)
            if changed:
                done.append(f"updated {', '.join(changed)} of Jira issue {key}")
        failed: ToolFailed | None = None
        try:
            moved = await _push_status(api, ctx, key, state)
        except ToolFailed as error:
            if ctx.link is not None:
                raise
            # The issue exists now: losing its key would create a second one on retry.
            # Keep the link and fail the job; seen.status still differs, so the retry
            # moves it.
            moved, failed = None, error
        if moved:
            done.append(f"moved Jira issue {key} to {moved}")
        comment_ids: list[str] = []
        if with_comment and await _push_comment(api, ctx, key, comment_ids):
            done.append(f"commented on Jira issue {key}")
        summary = "; ".join(done) or f"Jira issue {key} already matches the incident"
        return PushResult(summary=summary, notes=notes, learned=learned, failed=failed,
                          comment_ids=comment_ids,
                          link=LinkWrite(kind=LINK_KIND, external_id=key,
                                         url=api.browse_url(key), state=state))


def _api(ctx: SyncContext) -> JiraApi:
    connector = ctx.connector
    credentials = connector.credentials
    return JiraApi(ctx.http, str(connector.settings.get("base_url") or ""),
                   credentials.get("email", ""), credentials.get("api_token", ""))


def _wanted(ctx: SyncContext) -> _Wanted:
    """The owned issue fields the incident asks for. A private incident gives only its
    reference (in a redacted summary and the link back) and the marker label."""
    incident, mapping = ctx.incident, ctx.mapping
    wanted = _Wanted()
    summary = redacted_title(incident) if incident.is_private else incident.title
    wanted.put("summary", summary, summary)
    link_line = [adf.link(f"Open {incident.reference} in Interlock", ctx.incident_url)]
    if incident.is_private or not incident.summary.strip():
        description = adf.document(link_line)
    else:
        description = adf.from_text(incident.summary)
        description["content"].extend(adf.document(link_line)["content"])
    wanted.put("description", description, _digest(description))
    priority = mapping.severity_for_tool(incident.severity)
    if priority and not incident.is_private:
        wanted.put("priority", {"name": priority}, priority)
    labels = [MARKER_LABEL] if incident.is_private else _labels(incident.labels)
    wanted.put("labels", labels, labels)
    return wanted


async def _create(api: JiraApi, ctx: SyncContext, wanted: _Wanted) -> tuple[str, dict[str, Any]]:
    settings = ctx.connector.settings
    fields: dict[str, Any] = {
        "project": {"key": settings.get("project_key")},
        "issuetype": {"name": settings.get("issue_type") or "Task"},
        # Jira requires a summary even when the mapping gives the title to the tool.
        "summary": wanted.values["summary"],
    }
    pushed = {"summary": wanted.remembered["summary"]}
    for owner_name, jira_name in _OWNED_FIELDS[1:]:
        if ctx.mapping.pushes(owner_name) and jira_name in wanted.values:
            fields[jira_name] = wanted.values[jira_name]
            pushed[jira_name] = wanted.remembered[jira_name]
    created = await api.create_issue(fields)
    initial = ctx.mapping.status_from_tool("new")
    state: dict[str, Any] = {
        "issue_id": str(created.get("id") or ""),
        "pushed": pushed,
        # A new issue starts in its workflow's initial status, in the "new" category.
        "seen": {"status": initial.value if initial else None, "assignee": None},
        "comments": [],
    }
    return str(created["key"]), state


async def _update(api: JiraApi, key: str, wanted: _Wanted, mapping: FieldMapping,
                  state: dict[str, Any]) -> list[str]:
    """PUT the owned fields that differ from what was last pushed; their Jira names."""
    pushed: dict[str, Any] = dict(state.get("pushed") or {})
    changed = [
        jira_name for owner_name, jira_name in _OWNED_FIELDS
        if mapping.pushes(owner_name) and jira_name in wanted.values
        and pushed.get(jira_name) != wanted.remembered[jira_name]
    ]
    if changed:
        await api.update_issue(key, {name: wanted.values[name] for name in changed})
        pushed.update({name: wanted.remembered[name] for name in changed})
    state["pushed"] = pushed
    return changed


async def _push_status(api: JiraApi, ctx: SyncContext, key: str, state: dict[str, Any]
                       ) -> str | None:
    """Move the issue to the incident's status category if Interlock has not already
    written or read that status; the name of the status it moved to, if it moved. (The
    sync service records the status as seen once the push succeeds.)"""
    seen: Mapping[str, Any] = state.get("seen") or {}
    status = ctx.incident.status
    if not ctx.mapping.pushes("status") or seen.get("status") == status.value:
        return None
    category = ctx.mapping.status_for_tool(status)
    return await move_to_category(api, key, category) if category else None


async def _push_comment(api: JiraApi, ctx: SyncContext, key: str, written: list[str]
                        ) -> bool:
    event = ctx.event
    if (event is None or event.type is not EventType.INCIDENT_COMMENT_ADDED
            or not ctx.mapping.pushes("comments") or ctx.incident.is_private):
        return False
    comment = event.data.get("comment") or {}
    body = str(comment.get("body") or "").strip()
    if not body:
        return False
    actor = comment.get("actor") or "Interlock"
    created = await api.add_comment(key, adf.from_text(f"{actor}: {body}"))
    if created.get("id") is not None:
        written.append(str(created["id"]))
    return True


def _labels(labels: Mapping[str, str]) -> list[str]:
    """Jira labels cannot hold spaces and are at most 255 characters."""
    made = {re.sub(r"\s+", "_", f"{name}:{value}".strip())[:LABEL_MAX]
            for name, value in labels.items()}
    return [MARKER_LABEL, *sorted(made - {MARKER_LABEL, ""})]


def _digest(document: Mapping[str, Any]) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _copy(state: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON: the state is JSON, and the caller's must not change."""
    copied: dict[str, Any] = json.loads(json.dumps(dict(state)))
    return copied
