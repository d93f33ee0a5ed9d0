"""The steps of a push to Jira: create (or find) the issue, update its fields, move
its status, mirror a comment. Each works on the driver's own part of the link state
(``seen`` and ``comments`` are the sync service's, see :mod:`interlock.domain.ownership`;
what the issue's status is, as the service last recorded it, is only read from them).

Link state keys written here (beside ``pushed``, see :mod:`.driver`):

* ``issue_id``: the issue's stable id (its key changes when it moves project).
* ``status_pushed``: the incident status Interlock last brought the issue to (or found
  it in). Status is pushed only when the incident's status changed since, so a person
  who moves the issue back in Jira is not undone by an unrelated push (a comment).
* ``status_refused``: an incident status the workflow offered no way to; not tried
  again (and not in the way of comments) until the incident's status changes. None
  once a move succeeds (the service merges the state key by key, so a key is cleared,
  not dropped).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from interlock.connectors.jira import adf
from interlock.connectors.jira.api import JiraApi
from interlock.connectors.jira.workflow import category_of, move_to
from interlock.domain.connectors import FieldMapping, comment_to_mirror
from interlock.domain.events import EventType
from interlock.domain.incidents import Incident, Status
from interlock.ports.connector import SyncContext

#: Every issue Interlock creates carries this label, so people can find them in Jira.
MARKER_LABEL = "interlock"
LABEL_MAX = 255
#: Jira's summary is one line of at most 255 characters; it refuses longer (400).
SUMMARY_MAX = 255
#: Events that change the incident's status: their push moves the issue even when the
#: status is the one last pushed (it went away and came back in between).
STATUS_EVENTS = frozenset({EventType.INCIDENT_ACKNOWLEDGED, EventType.INCIDENT_RESOLVED,
                           EventType.INCIDENT_REOPENED})

#: Interlock field (the mapping's name) → the Jira field it is written to.
OWNED_FIELDS = (("title", "summary"), ("summary", "description"),
                ("severity", "priority"), ("labels", "labels"))


@dataclass(frozen=True)
class NewIssue:
    """An issue this push made (or found again after a lost answer): its key, the
    driver's link state for it, and the status it shows in Interlock's words (None when
    its category is not mapped)."""

    key: str
    state: dict[str, Any]
    shows: Status | None


@dataclass
class Wanted:
    """The issue fields an incident asks for, with how each is remembered in state."""

    values: dict[str, Any] = field(default_factory=dict)
    remembered: dict[str, Any] = field(default_factory=dict)

    def put(self, name: str, value: Any, remembered: Any) -> None:
        self.values[name] = value
        self.remembered[name] = remembered


def summary_for(title: str) -> str:
    """A title as Jira's summary: on one line, and cut to 255 characters."""
    flat = " ".join(title.split())
    return flat if len(flat) <= SUMMARY_MAX else flat[:SUMMARY_MAX - 1] + "…"


def incident_label(incident: Incident) -> str:
    """The label that finds an incident's issue again (by JQL) if a create's answer
    was lost. Incident ids are opaque, so it is on private incidents' issues too."""
    return f"{MARKER_LABEL}-{incident.id}"


def labels_for(incident: Incident) -> list[str]:
    """Jira labels cannot hold spaces and are at most 255 characters."""
    own = [MARKER_LABEL, incident_label(incident)]
    if incident.is_private:
        return own
    made = {re.sub(r"\s+", "_", f"{name}:{value}".strip())[:LABEL_MAX]
            for name, value in incident.labels.items()}
    return [*own, *sorted(made - {*own, ""})]


async def create(api: JiraApi, ctx: SyncContext, wanted: Wanted) -> NewIssue:
    settings = ctx.connector.settings
    fields: dict[str, Any] = {
        "project": {"key": settings.get("project_key")},
        "issuetype": {"name": settings.get("issue_type") or "Task"},
        # Jira requires a summary even when the mapping gives the title to the tool.
        "summary": wanted.values["summary"],
    }
    pushed = {"summary": wanted.remembered["summary"]}
    for owner_name, jira_name in OWNED_FIELDS[1:]:
        if ctx.mapping.pushes(owner_name) and jira_name in wanted.values:
            fields[jira_name] = wanted.values[jira_name]
            pushed[jira_name] = wanted.remembered[jira_name]
    # Even when Jira owns the labels, a new issue carries Interlock's two, so a retried
    # create can find it (find_lost) and people can find Interlock's issues.
    fields.setdefault("labels", [MARKER_LABEL, incident_label(ctx.incident)])
    created = await api.create_issue(fields)
    key = str(created["key"])
    # The workflow's initial status need not be in the "new" category (a service desk
    # starts in "Waiting for support"): what the issue shows is read, and handed to the
    # sync service (PushResult.status_shown), so the next pull does not take it for a
    # change made in Jira.
    issue = await api.issue(key, "status")
    return _opened(key, str(created.get("id") or ""), pushed, ctx, issue)


async def find_lost(api: JiraApi, ctx: SyncContext) -> NewIssue | None:
    """The issue an earlier attempt created if its answer was lost (a timeout), found
    by the incident's label; None when there is none. Its fields are then all pushed
    again (``pushed`` is empty), so it ends as a fresh create would."""
    project = str(ctx.connector.settings.get("project_key") or "")
    jql = f'project = "{project}" AND labels = "{incident_label(ctx.incident)}"'
    found = await api.search(jql, ["status"], 2)
    if not found or not isinstance(found[0].get("key"), str):
        return None
    issue = found[0]
    return _opened(str(issue["key"]), str(issue.get("id") or ""), {}, ctx, issue)


def _opened(key: str, issue_id: str, pushed: dict[str, Any], ctx: SyncContext,
            issue: Mapping[str, Any]) -> NewIssue:
    status = ctx.mapping.status_from_tool(category_of((issue.get("fields") or {})
                                                      .get("status")))
    state: dict[str, Any] = {
        "issue_id": issue_id, "pushed": pushed,
        # A new issue stands where a new incident belongs: no move for a triggered one.
        "status_pushed": Status.TRIGGERED.value
        if ctx.incident.status is Status.TRIGGERED else None,
    }
    return NewIssue(key=key, state=state, shows=status)


async def update(api: JiraApi, key: str, wanted: Wanted, mapping: FieldMapping,
                 state: dict[str, Any]) -> list[str]:
    """PUT the owned fields that differ from what was last pushed; their Jira names."""
    pushed: dict[str, Any] = dict(state.get("pushed") or {})
    changed = [
        jira_name for owner_name, jira_name in OWNED_FIELDS
        if mapping.pushes(owner_name) and jira_name in wanted.values
        and pushed.get(jira_name) != wanted.remembered[jira_name]
    ]
    if changed:
        await api.update_issue(key, {name: wanted.values[name] for name in changed})
        pushed.update({name: wanted.remembered[name] for name in changed})
    state["pushed"] = pushed
    return changed


def wants_status_push(ctx: SyncContext, state: dict[str, Any], shows: Status | None
                      ) -> bool:
    """Whether this push moves the issue: the mapping pushes status, the issue does
    not show the incident's status already (``shows``: what Interlock last wrote to or
    read from it), the workflow did not refuse it, and the incident's status changed in
    Interlock since Interlock last pushed it."""
    status = ctx.incident.status.value
    if not ctx.mapping.pushes("status"):
        return False
    if shows is not None and shows.value == status:
        state["status_pushed"] = status
        return False
    if state.get("status_refused") == status:
        return False
    if ctx.event is not None and ctx.event.type in STATUS_EVENTS:
        return True
    return state.get("status_pushed") != status


async def push_status(api: JiraApi, ctx: SyncContext, key: str, state: dict[str, Any]
                      ) -> str | None:
    """Move the issue to the incident's status (wants_status_push said it should); the
    status it moved to, if it moved. The sync service records the status as seen once
    the push succeeds."""
    status = ctx.incident.status
    mapped = ctx.mapping.status_for_tool(status)
    moved = await move_to(api, key, mapped) if mapped else None
    state["status_pushed"] = status.value
    state["status_refused"] = None
    return moved


async def push_comment(api: JiraApi, ctx: SyncContext, key: str, written: list[str]
                       ) -> bool:
    """Mirror a comment added in Interlock; its Jira id goes to ``written``, which the
    sync service remembers (PushResult.comment_ids) so a pull never imports it back."""
    line = comment_to_mirror(ctx.event, ctx.mapping, ctx.incident)
    if line is None:
        return False
    created = await api.add_comment(key, adf.from_text(line))
    if created.get("id") is not None:
        written.append(str(created["id"]))
    return True
