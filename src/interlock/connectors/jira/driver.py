"""The Jira Cloud connector: one issue per incident, kept in step both ways.

Push makes the issue match the incident's *current* state (never the event's), and
sends only what differs from what the link's state says Interlock last wrote, so a
replayed or redundant push costs a read at most and never overwrites a person's edit
of a field Interlock did not change. Pull reads the issue and maps it to Interlock's
words; deciding what is new is the sync service's job.

Link state, shared with the sync service (a JSON dict; the driver returns its own keys,
which the service merges over the rest):

* ``pushed``: the issue fields as Interlock last wrote them (``summary``, a hash of the
  ``description``, ``priority``, ``labels``); what a push compares against.
* ``issue_id``, ``status_pushed``, ``status_refused``: see :mod:`.push`; ``broken``:
  why the issue is gone (deleted, or hidden from Interlock's account), after which
  nothing is pushed to or pulled from it.
* ``seen`` and ``comments``: what Interlock last wrote to or read from the issue, and
  the ids of comments it wrote or mirrored in; the sync service keeps both
  (domain.ownership), and the driver only reads them. What a push leaves the status
  as, when that is not the incident's (a new issue's initial status, a move a person
  made in Jira that a push leaves alone), it says in ``PushResult.status_shown``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from interlock.connectors.jira import adf, hooks, push
from interlock.connectors.jira.api import IssueGone, JiraApi
from interlock.connectors.jira.pull import pull_issue
from interlock.domain.connectors import (
    Connector,
    FieldMapping,
    Link,
    Owner,
    redacted_title,
    shows_in_tools,
)
from interlock.domain.errors import ToolFailed
from interlock.domain.events import Event
from interlock.domain.incidents import Status
from interlock.domain.ownership import SERVICE_KEYS
from interlock.ports.connector import HookNotice, LinkWrite, PullResult, PushResult, SyncContext

LINK_KIND = "jira_issue"

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
        if ctx.link.state.get("broken"):
            return PullResult(summary=f"Jira issue {ctx.link.external_id} is gone "
                                      f"({ctx.link.state['broken']}); nothing pulled")
        api = _api(ctx)
        own = hooks.own_account(ctx.connector)
        if own is None and ctx.mapping.pulls("comments"):
            own = str((await api.myself()).get("accountId") or "") or None
        try:
            return await pull_issue(api, ctx.link, ctx.mapping, own)
        except IssueGone as gone:
            gave_up = _gone(api, ctx.link.external_id, {}, gone, [])
            return PullResult(summary=gave_up.summary, link=gave_up.link,
                              notes=gave_up.notes)

    def read_hook(self, connector: Connector, headers: Mapping[str, str], body: bytes,
                  now: datetime) -> HookNotice:
        return hooks.read(connector, headers, body)

    def answer(self, notice: HookNotice, message: str, ok: bool) -> tuple[int, Any]:
        return 200, {"ok": ok, "message": message}

    async def _sync(self, ctx: SyncContext, *, with_comment: bool) -> PushResult:
        if ctx.link is not None and ctx.link.state.get("broken"):
            return PushResult(summary=f"Jira issue {ctx.link.external_id} is gone "
                                      f"({ctx.link.state['broken']}); nothing pushed",
                              skipped=True)
        api = _api(ctx)
        learned: dict[str, Any] = {}
        if hooks.own_account(ctx.connector) is None:
            account = (await api.myself()).get("accountId")
            if account:
                learned["account_id"] = str(account)
        wanted = _wanted(ctx)
        done: list[str] = []
        notes: list[str] = []
        key = ctx.link.external_id if ctx.link else ""
        state = _own(ctx.link.state) if ctx.link else {}
        shows = _status_seen(ctx.link)
        failed: ToolFailed | None = None
        moving = False
        comment_ids: list[str] = []
        try:
            if ctx.link is None:
                opened = await _open(api, ctx, wanted, done, notes)
                key, state, shows = opened.key, opened.state, opened.shows
            else:
                changed = await push.update(api, key, wanted, ctx.mapping, state)
                if changed:
                    done.append(f"updated {', '.join(changed)} of Jira issue {key}")
            notes.extend(_shortened(ctx, wanted, created=ctx.link is None))
            moving = push.wants_status_push(ctx, state, shows)
            moved: str | None = None
            try:
                moved = await push.push_status(api, ctx, key, state) if moving else None
            except IssueGone:
                raise
            except ToolFailed as error:
                if error.retryable and ctx.link is not None:
                    raise
                # Kept going: a new issue's link must be written (a retry would make a
                # second one), and a workflow that offers no way must not stop comments.
                failed = error
                if not error.retryable:
                    state["status_refused"] = ctx.incident.status.value
                    notes.append(f"Jira issue {key} was not moved: {error.detail}")
            if moved:
                done.append(f"moved Jira issue {key} to {moved}")
            if with_comment and await push.push_comment(api, ctx, key, comment_ids):
                done.append(f"commented on Jira issue {key}")
        except IssueGone as gone:
            return _gone(api, key, state, gone, notes)
        summary = "; ".join(done) or f"Jira issue {key} already matches the incident"
        return PushResult(summary=summary, notes=notes, learned=learned, failed=failed,
                          comment_ids=comment_ids,
                          # Unless it was moved, the issue shows what it showed before
                          # (or, if new, what its workflow starts in).
                          status_shown=None if moving and failed is None else shows,
                          link=LinkWrite(kind=LINK_KIND, external_id=key,
                                         url=api.browse_url(key), state=state))


async def _open(api: JiraApi, ctx: SyncContext, wanted: push.Wanted, done: list[str],
                notes: list[str]) -> push.NewIssue:
    """The incident's first issue. After a failed attempt the create may have happened
    with its answer lost (a timeout): that issue is looked for before making a second."""
    found = await push.find_lost(api, ctx) if ctx.attempt > 1 else None
    if found is None:
        opened = await push.create(api, ctx, wanted)
        done.append(f"created Jira issue {opened.key}")
        notes.append(f"Jira issue {opened.key} created")
        return opened
    done.append(f"found Jira issue {found.key}, created by an earlier attempt")
    notes.append(f"Jira issue {found.key} created (found again after its answer was lost)")
    await push.update(api, found.key, wanted, ctx.mapping, found.state)
    return found


def _status_seen(link: Link | None) -> Status | None:
    """The issue's status as the sync service last recorded it (``seen``), if known."""
    seen = link.state.get("seen") if link is not None else None
    value = seen.get("status") if isinstance(seen, Mapping) else None
    try:
        return Status(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _api(ctx: SyncContext) -> JiraApi:
    connector = ctx.connector
    credentials = connector.credentials
    return JiraApi(ctx.http, str(connector.settings.get("base_url") or ""),
                   credentials.get("email", ""), credentials.get("api_token", ""))


def _wanted(ctx: SyncContext) -> push.Wanted:
    """The owned issue fields the incident asks for. A private incident gives only its
    reference (in a redacted summary and the link back) and the marker labels."""
    incident, mapping = ctx.incident, ctx.mapping
    wanted = push.Wanted()
    summary = push.summary_for(redacted_title(incident) if incident.is_private
                               else incident.title)
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
    labels = push.labels_for(incident)
    wanted.put("labels", labels, labels)
    return wanted


def _shortened(ctx: SyncContext, wanted: push.Wanted, *, created: bool) -> list[str]:
    """A timeline note when the title went to Jira changed to fit its summary, said
    when that summary is written (not on every push)."""
    title = ctx.incident.title
    summary = wanted.values["summary"]
    if ctx.incident.is_private or summary == title:
        return []
    pushed = (ctx.link.state.get("pushed") or {}).get("summary") if ctx.link else None
    if not created and pushed == summary:
        return []
    how = "put on one line" if len(" ".join(title.split())) <= push.SUMMARY_MAX \
        else f"shortened to {push.SUMMARY_MAX} characters on one line"
    return [f"The title was {how} for the Jira issue's summary (Jira allows one line of "
            f"at most {push.SUMMARY_MAX} characters)"]


def _gone(api: JiraApi, key: str, state: dict[str, Any], gone: IssueGone, notes: list[str]
          ) -> PushResult:
    """The issue answers 404: the link is marked broken and nothing is sent again."""
    reason = "deleted in Jira, or no longer visible to Interlock's account"
    return PushResult(
        summary=f"Jira issue {key} is gone ({reason}); Interlock stops pushing to it",
        notes=[*notes, f"Jira issue {key} was {reason}; changes are no longer sent to it"],
        failed=gone,
        link=LinkWrite(kind=LINK_KIND, external_id=key, url=api.browse_url(key),
                       state={**state, "broken": reason}))


def _digest(document: Mapping[str, Any]) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _own(state: Mapping[str, Any]) -> dict[str, Any]:
    """The driver's part of a link's state (not the service's ``seen`` and
    ``comments``), deep-copied through JSON so the caller's does not change."""
    copied: dict[str, Any] = json.loads(json.dumps(
        {name: value for name, value in state.items() if name not in SERVICE_KEYS}))
    return copied
