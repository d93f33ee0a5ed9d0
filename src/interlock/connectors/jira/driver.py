"""The Jira Cloud connector: one issue per incident, kept in step both ways.

Push makes the issue match the incident's *current* state (never the event's), and
sends only what differs from what the link's state says Interlock last wrote, so a
replayed or redundant push costs a read at most and never overwrites a person's edit
of a field Interlock did not change. Pull reads the issue and maps it to Interlock's
words; deciding what is new is the sync service's job.

Link state, shared with the sync service (a JSON dict, always returned whole):

* ``pushed``: the issue fields as Interlock last wrote them (``summary``, a hash of the
  ``description``, ``priority``, ``labels``); what a push compares against.
* ``seen``: ``{"status": <incident status>, "assignee": <display name or None>}``, what
  Interlock last wrote to or read from the issue; what a pull's change is judged by.
* ``comments``: ids of Jira comments Interlock wrote or already mirrored in.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from interlock.connectors.jira import adf, hooks, push
from interlock.connectors.jira.api import IssueGone, JiraApi
from interlock.connectors.jira.pull import pull_issue
from interlock.domain.connectors import (
    Connector,
    FieldMapping,
    Owner,
    redacted_title,
    shows_in_tools,
)
from interlock.domain.errors import InvalidInput, ToolFailed
from interlock.domain.events import Event
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

_PROJECT_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class JiraDriver:
    """Implements ports.connector.ConnectorDriver for Jira Cloud (REST API v3)."""

    kind: ClassVar[str] = "jira"
    link_kind: ClassVar[str] = LINK_KIND
    reconciles: ClassVar[bool] = True
    uses_alerts: ClassVar[bool] = False
    #: Seconds between the starts of this connector's jobs (a push is a few calls).
    #: Jira Cloud limits each account by a cost budget and a burst rate rather than
    #: a fixed rate (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/);
    #: five jobs a second stays well inside both for one API token.
    pace: ClassVar[float] = 0.2
    defaults: ClassVar[Mapping[str, Any]] = {
        "base_url": None, "project_key": None, "issue_type": "Task", "account_id": None,
    }
    required_credentials: ClassVar[tuple[str, ...]] = ("email", "api_token", "webhook_secret")
    default_mapping: ClassVar[FieldMapping] = DEFAULT_MAPPING

    def check(self, settings: Mapping[str, Any], credentials: Mapping[str, str]) -> None:
        errors: list[dict[str, str]] = []
        base_url = settings.get("base_url")
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            errors.append({"field": "settings.base_url", "message":
                           "must be the Jira site's URL, like https://example.atlassian.net"})
        project_key = settings.get("project_key")
        if not isinstance(project_key, str) or not _PROJECT_KEY.match(project_key):
            errors.append({"field": "settings.project_key", "message":
                           "must be the key of the Jira project issues go to, like OPS"})
        issue_type = settings.get("issue_type", "Task")
        if not isinstance(issue_type, str) or not issue_type.strip():
            errors.append({"field": "settings.issue_type",
                           "message": "must name an issue type of the project, like Task"})
        account_id = settings.get("account_id")
        if account_id is not None and (not isinstance(account_id, str) or not account_id):
            errors.append({"field": "settings.account_id",
                           "message": "must be a Jira account id, or left out to be learned"})
        for name in self.required_credentials:
            if not credentials.get(name):
                errors.append({"field": f"credentials.{name}", "message": "required"})
        if errors:
            raise InvalidInput("the Jira connector's configuration is not usable",
                               errors=errors)

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
        state = _copy(ctx.link.state) if ctx.link else {}
        failed: ToolFailed | None = None
        try:
            if ctx.link is None:
                # After a failed attempt the create may have happened with its answer
                # lost (a timeout): look for that issue before making a second one.
                found = await push.find_lost(api, ctx) if ctx.attempt > 1 else None
                if found is None:
                    key, state = await push.create(api, ctx, wanted)
                    done.append(f"created Jira issue {key}")
                    notes.append(f"Jira issue {key} created")
                else:
                    key, state = found
                    done.append(f"found Jira issue {key}, created by an earlier attempt")
                    notes.append(f"Jira issue {key} created (found again after its answer "
                                 f"was lost)")
                    await push.update(api, key, wanted, ctx.mapping, state)
            else:
                changed = await push.update(api, key, wanted, ctx.mapping, state)
                if changed:
                    done.append(f"updated {', '.join(changed)} of Jira issue {key}")
            notes.extend(_shortened(ctx, wanted, created=ctx.link is None))
            try:
                moved = await push.push_status(api, ctx, key, state)
            except IssueGone:
                raise
            except ToolFailed as error:
                if error.retryable and ctx.link is not None:
                    raise
                # Kept going: a new issue's link must be written (a retry would make a
                # second one), and a workflow that offers no way must not stop comments.
                moved, failed = None, error
                if not error.retryable:
                    state["status_refused"] = ctx.incident.status.value
                    notes.append(f"Jira issue {key} was not moved: {error.detail}")
            if moved:
                done.append(f"moved Jira issue {key} to {moved}")
            if with_comment and await push.push_comment(api, ctx, key, state):
                done.append(f"commented on Jira issue {key}")
        except IssueGone as gone:
            return _gone(api, key, state, gone, notes)
        summary = "; ".join(done) or f"Jira issue {key} already matches the incident"
        return PushResult(summary=summary, notes=notes, learned=learned, failed=failed,
                          link=LinkWrite(kind=LINK_KIND, external_id=key,
                                         url=api.browse_url(key), state=state))


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


def _copy(state: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON: the state is JSON, and the caller's must not change."""
    copied: dict[str, Any] = json.loads(json.dumps(dict(state)))
    return copied
