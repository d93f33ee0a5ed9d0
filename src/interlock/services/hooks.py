"""Inbound tool webhooks (``POST /hooks/{connector_id}``).

The order of checks is the contract: verify the tool's signature, drop a delivery
already seen (by the tool's delivery id), drop a change Interlock's own account made,
then either queue a pull of the object that changed (the tool's *current* state is
applied, so arrival order does not matter) or, for a command a person gave inside the
tool (a Slack button), apply it now and answer within the tool's deadline. Every
request, applied or not, leaves a row in the connector's activity log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from interlock.domain import incidents as rules
from interlock.domain.connectors import Activity, Connector, Direction, JobKind, Outcome
from interlock.domain.errors import InterlockError, NotFound
from interlock.domain.events import Origin
from interlock.domain.filters import Filter
from interlock.domain.ids import new_id
from interlock.domain.incidents import Incident
from interlock.ports.clock import Clock
from interlock.ports.connector import Command, HookNotice, InboundHooks
from interlock.ports.store import Store, Transaction
from interlock.services.connectors import ConnectorService
from interlock.services.incidents import IncidentService, Viewer
from interlock.services.sync import SyncService

#: Inbound delivery ids are remembered this long (tools retry for hours, not weeks).
RECEIPTS_KEPT = timedelta(days=7)

_COMMANDS = {
    "acknowledge": rules.acknowledge,
    "resolve": rules.resolve,
    "reopen": rules.reopen,
}


@dataclass(frozen=True)
class HookAnswer:
    status: int
    body: Any  # JSON, or None for an empty body


class HookService:
    def __init__(self, store: Store, clock: Clock, connectors: ConnectorService,
                 incidents: IncidentService, sync: SyncService) -> None:
        self._store = store
        self._clock = clock
        self._connectors = connectors
        self._drivers = connectors.drivers
        self._incidents = incidents
        self._sync = sync

    def receive(self, connector_id: str, headers: Mapping[str, str], body: bytes
                ) -> HookAnswer:
        """Raises NotFound for an unknown or disabled connector, or one whose tool sends
        no webhooks (Alertmanager), and Unauthenticated for a bad signature (nothing is
        recorded for those: anyone can send them)."""
        connector = self._connectors.get(connector_id)
        driver = self._drivers.get(connector.kind)
        if driver is None or not connector.enabled:
            raise NotFound(f"no enabled connector {connector_id}")
        if not isinstance(driver, InboundHooks):
            raise NotFound(f"{connector.kind} connectors receive no webhooks; "
                           f"{connector_id} has no hook")
        now = self._clock.now()
        notice = driver.read_hook(connector, headers, body, now)
        with self._store.transaction(write=True) as tx:
            outcome, summary, incident_id, ok = self._handle(tx, connector, notice, now)
            tx.connector_activity.append([Activity(
                id=new_id("act", now), connector_id=connector.id, at=now,
                direction=Direction.INBOUND, action="webhook", outcome=outcome,
                summary=f"{notice.description}: {summary}" if notice.description else summary,
                incident_id=incident_id,
            )])
            if notice.delivery_id and outcome is not Outcome.SKIPPED:
                tx.hook_receipts.purge(now - RECEIPTS_KEPT)
        status, answer = driver.answer(notice, summary, ok)
        return HookAnswer(status, answer)

    def _handle(self, tx: Transaction, connector: Connector, notice: HookNotice,
                now: datetime) -> tuple[Outcome, str, str | None, bool]:
        """(outcome, what happened in words, the incident, whether the request did
        what it asked)."""
        if notice.delivery_id and not tx.hook_receipts.add(connector.id, notice.delivery_id,
                                                           now):
            return Outcome.SKIPPED, f"duplicate delivery {notice.delivery_id}", None, True
        if notice.from_interlock:
            return Outcome.SKIPPED, "made by Interlock itself; not applied again", None, True
        if notice.command is not None:
            return self._command(tx, connector, notice.command)
        if notice.external_id is None:
            return Outcome.SKIPPED, notice.ignored or "nothing to do", None, notice.ignored is None
        link = tx.links.find(connector.id, notice.external_id)
        if link is None and notice.stable_id is not None:
            link = tx.links.find_by_state(connector.id, *notice.stable_id)
        if link is None:
            return (Outcome.SKIPPED, f"{notice.external_id} is not linked to an incident",
                    None, True)
        queued = self._sync.enqueue_in(tx, connector.id, link.incident_id, JobKind.PULL,
                                       "webhook")
        return (Outcome.SUCCEEDED,
                f"pull of {notice.external_id} queued" if queued
                else f"a pull of {notice.external_id} is already queued",
                link.incident_id, True)

    def _command(self, tx: Transaction, connector: Connector, command: Command
                 ) -> tuple[Outcome, str, str | None, bool]:
        viewer = Viewer(
            origin=Origin(kind=connector.origin.kind, id=connector.id, name=connector.name,
                          actor=command.actor),
            can_see_private=False,
        )
        target = tx.incidents.get(command.incident)
        if target is None or not shares(connector, target):
            # The same words as for a missing incident: a person in the tool may not
            # learn which private or unshared incidents exist.
            return Outcome.FAILED, f"no incident {command.incident}", None, False
        try:
            if command.action == "comment":
                incident, _ = self._incidents.comment_in(tx, viewer, command.incident,
                                                         command.body or "")
                done = f"comment added to {incident.reference}"
            elif command.action in _COMMANDS:
                before = target
                incident = self._incidents.apply_in(tx, viewer, command.incident,
                                                    _COMMANDS[command.action])
                done = (f"{incident.reference} {_past(command.action)}"
                        if before is None or before.version != incident.version
                        else f"{incident.reference} was already {incident.status.value}")
            else:
                return Outcome.SKIPPED, f"unknown action {command.action!r}", None, False
        except InterlockError as error:
            if error.retryable:
                raise
            return Outcome.FAILED, error.detail, None, False
        # The change came from this tool, so it is not pushed back here; the tool's own
        # view (the card the button was on) is redrawn without announcing it.
        if tx.links.get(connector.id, incident.id) is not None:
            self._sync.enqueue_in(tx, connector.id, incident.id, JobKind.REFRESH, "command")
        who = f" by {command.actor}" if command.actor else ""
        return Outcome.SUCCEEDED, done + who, incident.id, True


def shares(connector: Connector, incident: Incident) -> bool:
    """Whether people in the connector's tool may act on ``incident``: never a private
    one, and only one its sharing filter lets through (as pushes to it are chosen)."""
    return not incident.is_private and Filter.parse(connector.filter).matches(
        rules.to_dict(incident))


def _past(action: str) -> str:
    return {"acknowledge": "acknowledged", "resolve": "resolved",
            "reopen": "reopened"}.get(action, action)
