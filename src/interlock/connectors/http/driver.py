"""The generic HTTP connector: any tool with an HTTP API, configured without code.

* push: the first push makes the tool's object with the ``incident.created`` request
  and links the incident to the id its answer holds. Status is kept by state, not by
  event, as Jira's is: when the status the tool would show differs from what Interlock
  last wrote or read there, the request of the incident's status is sent
  (``incident.acknowledged``, ``incident.resolved``, or ``incident.reopened`` for
  triggered), so a replayed, reordered or retried push never moves the object back.
  ``incident.updated`` (and ``incident.alert_attached``, or else ``incident.updated``
  for it) and ``incident.comment_added`` send their requests when such an event is
  pushed. A request that is not configured is simply not sent.
* refresh: creation and status only, never an announcement.
* pull: the ``fetch`` request reads the object, and JMESPath picks its status,
  assignee and comments; deciding what is new is the sync service's job.
* hooks: see :mod:`.hooks`.

"What the tool would show" is the incident's status through the mapping both ways
(``status_out`` then ``status_in``): a tool with only open and closed shows an
acknowledged incident as open, which reads back as triggered, so acknowledging sends
nothing there and a later pull of "open" is not taken for a reopening.

Link state, shared with the sync service: ``seen`` (``{"status", "assignee"}``, what
Interlock last wrote to or read from the object) and ``comments`` (ids of comments
Interlock wrote or already imported).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from interlock.connectors.http import checks, hooks, rendering
from interlock.connectors.http.calls import Caller
from interlock.connectors.http.config import (
    CREATED,
    HttpCredentials,
    HttpSettings,
    parse,
)
from interlock.connectors.http.pull import pull_object
from interlock.domain.connectors import Connector, FieldMapping, Owner, shows_in_tools
from interlock.domain.errors import InvalidInput, ToolFailed
from interlock.domain.events import Event, EventType
from interlock.domain.incidents import Status
from interlock.ports.connector import (
    HookNotice,
    LinkWrite,
    PullResult,
    PushResult,
    SyncContext,
)

LINK_KIND = "http_object"
#: The request that brings the tool's object to each incident status.
STATUS_REQUESTS = {Status.TRIGGERED: "incident.reopened",
                   Status.ACKNOWLEDGED: "incident.acknowledged",
                   Status.RESOLVED: "incident.resolved"}

DEFAULT_MAPPING = FieldMapping(owners={
    "title": Owner.INTERLOCK, "summary": Owner.INTERLOCK, "severity": Owner.INTERLOCK,
    "labels": Owner.INTERLOCK, "assignee": Owner.TOOL, "status": Owner.BOTH,
    "comments": Owner.BOTH,
})


class HttpDriver:
    """Push, Pull, InboundHooks and ChecksSettings (ports.connector), all from settings;
    the kind is described in :mod:`interlock.connectors.http.plugin`."""

    def check(self, settings: Mapping[str, Any], credentials: Mapping[str, str]) -> None:
        checks.check(settings, credentials, DEFAULT_MAPPING)

    def wants(self, event: Event) -> bool:
        """Every event that changes what a ticket shows: even one whose request is not
        configured may need the status brought up to date."""
        return shows_in_tools(event)

    async def push(self, ctx: SyncContext) -> PushResult:
        return await _Push(ctx).run(with_event=True)

    async def refresh(self, ctx: SyncContext) -> PushResult:
        return await _Push(ctx).run(with_event=False)

    async def pull(self, ctx: SyncContext) -> PullResult:
        if ctx.link is None:
            raise ToolFailed("there is no linked object for this incident to pull",
                             retryable=False)
        settings, credentials = configured(ctx.connector)
        if settings.fetch is None:
            # Nothing to read with; an empty summary and no call: the activity log shows
            # the pull as skipped.
            return PullResult(summary="")
        caller = Caller(ctx, settings, credentials)
        return await pull_object(caller, settings.fetch, ctx.link, ctx.mapping)

    def read_hook(self, connector: Connector, headers: Mapping[str, str], body: bytes,
                  now: datetime) -> HookNotice:
        settings, credentials = parse(connector.settings, connector.credentials)
        return hooks.read(settings, credentials, headers, body, now)

    def answer(self, notice: HookNotice, message: str, ok: bool) -> tuple[int, Any]:
        return 200, {"ok": ok, "message": message}


def configured(connector: Connector) -> tuple[HttpSettings, HttpCredentials]:
    """The parsed configuration; one stored before a check refused it fails the job."""
    try:
        return parse(connector.settings, connector.credentials)
    except InvalidInput as error:
        raise ToolFailed(error.detail, retryable=False) from error


def as_tool_shows(mapping: FieldMapping, status: Status) -> str:
    """The incident status a pull would read back after ``status`` was written."""
    said = mapping.status_for_tool(status)
    back = mapping.status_from_tool(said) if said is not None else None
    return (back or status).value


class _Push:
    """One push or refresh: what was written so far, so a failure after a write still
    keeps the link (a retry must not create a second object)."""

    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        settings, credentials = configured(ctx.connector)
        self.caller = Caller(ctx, settings, credentials)
        self.requests = settings.requests
        self.done: list[str] = []
        self.notes: list[str] = []
        self.external_id = ctx.link.external_id if ctx.link else ""
        self.url = ctx.link.url if ctx.link else None
        self.state: dict[str, Any] = json.loads(json.dumps(dict(ctx.link.state))) \
            if ctx.link else {}

    async def run(self, *, with_event: bool) -> PushResult:
        event = self.ctx.event if with_event else None
        created = self.ctx.link is None
        try:
            if created:
                await self._create()
            elif event is not None and event.type in (EventType.INCIDENT_UPDATED,
                                                      EventType.INCIDENT_ALERT_ATTACHED):
                await self._update(event)
            await self._status()
            if event is not None and event.type is EventType.INCIDENT_COMMENT_ADDED:
                await self._comment()
        except ToolFailed as error:
            if not self.done:
                raise
            return self._result(failed=error)
        if not self.done:
            what = event.type.value if event is not None else "a refresh"
            return PushResult(summary=f"nothing to send to {self.external_id} for {what}",
                              skipped=True)
        return self._result()

    def _result(self, failed: ToolFailed | None = None) -> PushResult:
        return PushResult(summary="; ".join(self.done), notes=self.notes, failed=failed,
                          link=LinkWrite(kind=LINK_KIND, external_id=self.external_id,
                                         url=self.url, state=self.state))

    def _link(self) -> dict[str, Any]:
        return {"external_id": self.external_id, "url": self.url}

    async def _create(self) -> None:
        request = self.requests.get(CREATED)
        if request is None or request.external_id is None:
            raise ToolFailed(f"settings.requests.{CREATED} (with external_id) is needed to "
                             "make the tool's object", retryable=False)
        response = await self.caller.call(CREATED, request, self.caller.values(link=None))
        try:
            answer = response.json()
            found = rendering.search(request.external_id, answer, "external_id")
            external_id = rendering.scalar_text(found)
            url = (rendering.scalar_text(rendering.search(request.external_url, answer,
                                                          "external_url"))
                   if request.external_url else None)
        except (ToolFailed, ValueError) as error:
            detail = error.detail if isinstance(error, ToolFailed) else str(error)
            raise ToolFailed(f"the {CREATED} request succeeded but its answer cannot be "
                             f"read ({detail}); the object may exist in the tool without a "
                             "link: check settings.requests.incident.created.external_id",
                             retryable=False, status_code=response.status) from error
        if not external_id:
            raise ToolFailed(f"the {CREATED} request succeeded but its answer has no id at "
                             f"{request.external_id!r}: {response.body[:200]!r}",
                             retryable=False, status_code=response.status)
        self.external_id, self.url = external_id, url
        # A new object starts in the tool's first status, which reads back as triggered.
        self.state = {"seen": {"status": as_tool_shows(self.ctx.mapping, Status.TRIGGERED),
                               "assignee": None}, "comments": []}
        self.done.append(f"created {external_id}")
        self.notes.append(f"{self.ctx.connector.name}: created {external_id}"
                          + (f" ({url})" if url else ""))

    async def _update(self, event: Event) -> None:
        request = self.requests.get(event.type.value)
        if request is None and event.type is EventType.INCIDENT_ALERT_ATTACHED:
            request = self.requests.get(EventType.INCIDENT_UPDATED.value)
        if request is None:
            return
        await self.caller.call(event.type.value, request, self.caller.values(link=self._link()))
        self.done.append(f"updated {self.external_id}")

    async def _status(self) -> None:
        mapping, status = self.ctx.mapping, self.ctx.incident.status
        seen: dict[str, Any] = dict(self.state.get("seen") or {})
        wanted = as_tool_shows(mapping, status)
        if not mapping.pushes("status") or seen.get("status") == wanted:
            return
        name = STATUS_REQUESTS[status]
        request = self.requests.get(name)
        if request is None:
            return
        await self.caller.call(name, request, self.caller.values(link=self._link()))
        seen["status"] = wanted
        self.state["seen"] = seen
        shown = mapping.status_for_tool(status) or status.value
        self.done.append(f"moved {self.external_id} to {shown}")

    async def _comment(self) -> None:
        request = self.requests.get(EventType.INCIDENT_COMMENT_ADDED.value)
        values = self.caller.values(link=self._link())
        if (request is None or not self.ctx.mapping.pushes("comments")
                or values["comment"] is None or not values["comment"]["body"].strip()):
            return
        response = await self.caller.call(EventType.INCIDENT_COMMENT_ADDED.value, request,
                                          values)
        self.done.append(f"commented on {self.external_id}")
        if request.external_id is None:
            return
        try:
            comment_id = rendering.scalar_text(
                rendering.search(request.external_id, response.json(), "external_id"))
        except (ToolFailed, ValueError):
            comment_id = None  # posted; failing now would post it again on retry
        if comment_id:
            known = [str(item) for item in self.state.get("comments") or []]
            self.state["comments"] = [*known, comment_id]
