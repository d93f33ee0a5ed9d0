"""What a connector driver is, and what it is given.

A driver (one package per tool, registered by a :class:`~interlock.ports.plugins.
ConnectorPlugin` under the entry point group ``interlock.connectors``) has one or more
small capabilities: push an incident to the tool (:class:`Push`), pull the tool's state
(:class:`Pull`), and, where the tool sends webhooks, read them (:class:`InboundHooks`).
Its settings and credentials are checked by the plugin's pydantic models before it ever
sees them. It never touches the store:
the sync service hands it a :class:`SyncContext` and writes what it answers (links,
incident changes, activity) in one transaction. HTTP goes through :class:`ToolHttp`, so
every call is recorded and the same target guard as webhooks applies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from interlock.domain.alerts import Alert
from interlock.domain.connectors import Connector, FieldMapping, Link
from interlock.domain.errors import ToolFailed
from interlock.domain.events import Event
from interlock.domain.incidents import Incident, Status
from interlock.domain.ownership import UNSET


@dataclass(frozen=True)
class ToolResponse:
    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """A response header, by name in any case."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted),
                    None)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as error:
            raise ToolFailed(f"the tool answered {self.status} with a body that is not "
                             f"JSON: {self.body[:200]!r}", retryable=True,
                             status_code=self.status) from error

    def expect(self, doing: str) -> ToolResponse:
        """This response if it is a 2xx; else ToolFailed, retryable for 408, 409, 429 and
        5xx (the tool may recover), not for other 4xx (our request is wrong)."""
        if self.ok:
            return self
        retry_after = _seconds(self.header("Retry-After"))
        text = self.body[:300].decode("utf-8", "replace")
        raise ToolFailed(f"{doing}: HTTP {self.status} {text}".strip(),
                         retryable=self.status in (408, 409, 429) or self.status >= 500,
                         retry_after=retry_after, status_code=self.status)


def _seconds(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


class ToolHttp(Protocol):
    async def request(
        self, method: str, url: str, *, json: Any = None, data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ToolResponse:
        """Any HTTP answer is a ToolResponse; no answer at all (refused, timed out,
        blocked by the target guard) raises ToolFailed, retryable."""
        ...


@dataclass(frozen=True)
class SyncContext:
    connector: Connector
    incident: Incident
    #: This connector's link for the incident, if it has one yet.
    link: Link | None
    http: ToolHttp
    now: datetime
    #: Where people open the incident in Interlock.
    incident_url: str
    #: The event being pushed (None for a pull or a refresh).
    event: Event | None = None
    #: The incident's alerts, for connectors that act on them (silences).
    alerts: Sequence[Alert] = ()
    #: Which attempt at this job this is (1 the first): after a failed one a create
    #: may have happened with its answer lost, so a driver looks before creating again.
    attempt: int = 1

    @property
    def mapping(self) -> FieldMapping:
        return self.connector.mapping


@dataclass(frozen=True)
class LinkWrite:
    """A link to create or update: kind + external id + url + the state to remember."""

    kind: str
    external_id: str
    url: str | None
    state: Mapping[str, Any]


@dataclass(frozen=True)
class PushResult:
    #: What was done, in words, for the activity log ("created issue OPS-12").
    summary: str
    link: LinkWrite | None = None
    #: Lines for the incident's timeline ("Jira issue OPS-12 created").
    notes: Sequence[str] = ()
    #: What the connector learned about the tool, merged into Connector.state.
    learned: Mapping[str, Any] = field(default_factory=dict)
    #: Set when part of the work failed after something was made in the tool (an issue
    #: created, its transition refused): the link is still written, so a retry does not
    #: make a second one, and the job counts as failed with this error.
    failed: ToolFailed | None = None
    #: Nothing to do in the tool (an incident without alerts to silence, no silence to
    #: expire): the activity log shows it as skipped, and it says nothing about the
    #: tool's health, so the connector is not marked failing (nor healthy) for it.
    skipped: bool = False
    #: Ids, in the tool, of the comments this push wrote there: the sync service
    #: remembers them with the link, so a pull never imports them back (the echo guard).
    comment_ids: Sequence[str] = ()
    #: The status the tool shows after this push, in Interlock's words, when the driver
    #: knows it is not the incident's: a new issue that starts where its workflow
    #: begins, or a status the push left alone on purpose (a person moved it in the
    #: tool since Interlock last pushed). None: the incident's, which the push wrote.
    #: The sync service records it as seen (domain.ownership.state_after_push).
    status_shown: Status | None = None


@dataclass(frozen=True)
class RemoteComment:
    id: str
    author: str
    body: str


@dataclass(frozen=True)
class PullResult:
    """The tool's current state, already mapped to Interlock's words. Fields are None
    when the tool did not say (or the mapping does not pull them)."""

    summary: str
    status: Status | None = None
    #: UNSET when the tool says nothing about the assignee (``...`` means the same);
    #: None is "nobody".
    assignee: Any = UNSET
    #: Comments not made by Interlock, all of them (the service imports the new ones).
    comments: Sequence[RemoteComment] = ()
    link: LinkWrite | None = None
    notes: Sequence[str] = ()


@dataclass(frozen=True)
class Command:
    """Something a person asked for from inside the tool (a Slack button)."""

    action: str  # acknowledge | resolve | reopen | comment
    incident: str  # id or reference
    actor: str | None = None
    body: str | None = None


@dataclass(frozen=True)
class HookNotice:
    """What an inbound webhook says, once verified.

    * ``external_id`` set: something changed on that object; pull it.
    * ``command`` set: apply it now and answer with ``driver.answer``.
    * neither: nothing to do (a ping, an event Interlock does not use); ``ignored``
      says why.
    """

    delivery_id: str | None
    external_id: str | None = None
    command: Command | None = None
    #: ``(state key, value)`` naming the object by an id that never changes (Jira's
    #: issue id, where its key changes when the issue moves project): the link whose
    #: state holds it is the one meant when no link has ``external_id`` (the webhook
    #: that told of the move was lost).
    stable_id: tuple[str, str] | None = None
    #: The change was made by Interlock's own account in the tool: an echo.
    from_interlock: bool = False
    ignored: str | None = None
    description: str = ""


@runtime_checkable
class Push(Protocol):
    """The capability of a driver that writes incidents to its tool (every built-in
    kind). After a push that did not fail, the sync service remembers what it wrote
    (``link.state["seen"]``, comment ids): the driver only says what it did
    (``PushResult.comment_ids``, and ``status_shown`` where the tool's status is not
    the incident's)."""

    def wants(self, event: Event) -> bool:
        """Whether this event needs a push at all (Alertmanager ignores comments)."""
        ...

    async def push(self, ctx: SyncContext) -> PushResult: ...

    async def refresh(self, ctx: SyncContext) -> PushResult:
        """Redraw the tool's view without announcing a change (after a command that
        came from the tool itself)."""
        ...


@runtime_checkable
class Pull(Protocol):
    """The capability of a driver that can read its tool's current state of a linked
    object (for fetch-on-notify and reconciliation). What is new in it, and what a pull
    may change, is the sync service's decision (domain.ownership), not the driver's."""

    async def pull(self, ctx: SyncContext) -> PullResult: ...


@runtime_checkable
class InboundHooks(Protocol):
    """The optional capability of a driver whose tool sends webhooks (Jira, Slack).
    A kind without it (Alertmanager) has no ``/hooks/{id}``: requests there are 404."""

    def read_hook(self, connector: Connector, headers: Mapping[str, str], body: bytes,
                  now: datetime) -> HookNotice:
        """Verify the tool's signature (raise Unauthenticated) and say what happened."""
        ...

    def answer(self, notice: HookNotice, message: str, ok: bool) -> tuple[int, Any]:
        """The HTTP status and JSON body to answer a command with (``message`` says what
        Interlock did, or why it could not)."""
        ...


@runtime_checkable
class ChecksSettings(Protocol):
    """Optional: a check beyond what the settings and credentials models say (two
    fields that only make sense together, say). Raise InvalidInput with per-field
    errors (``settings.<name>``, ``credentials.<name>``)."""

    def check(self, settings: Mapping[str, Any], credentials: Mapping[str, str]) -> None: ...


#: A driver is any object with one or more of the capabilities above; the sync service
#: asks with isinstance which it has and never calls one it lacks.
ConnectorDriver = Push | Pull | InboundHooks | ChecksSettings


class SecretBox(Protocol):
    """Encrypts credentials at rest."""

    def seal(self, plain: str) -> str: ...

    def open(self, sealed: str) -> str:
        """Raise InvalidInput if ``sealed`` was not sealed with this box's key."""
        ...

