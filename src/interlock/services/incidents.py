"""Declaring, reading and changing incidents.

Every write follows one path (:meth:`IncidentService._apply`): lock the incident, check
the caller may see it and that ``If-Match`` still holds, compute the transition in the
domain, and write the new state, its event and its timeline entry in one transaction.
A command that would change nothing writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from interlock.domain import incidents as rules
from interlock.domain.alerts import Alert, describe_with_labels, differing_labels
from interlock.domain.errors import Forbidden, NotFound, PreconditionFailed
from interlock.domain.events import Event, EventType, Origin
from interlock.domain.ids import new_id
from interlock.domain.incidents import Incident, Severity, Transition, Visibility
from interlock.domain.pagination import Page, check_limit, decode_cursor, encode_cursor
from interlock.domain.timeline import TimelineEntry, describe
from interlock.ports.clock import Clock
from interlock.ports.store import IncidentFilter, Store, Transaction

#: The status commands people give, by name.
STATUS_COMMANDS = {"acknowledge": rules.acknowledge, "resolve": rules.resolve,
                   "reopen": rules.reopen}

Command = Callable[[Incident, datetime], Transition | None]


@dataclass(frozen=True)
class Viewer:
    """Who is asking, and whether private incidents exist for them."""

    origin: Origin
    can_see_private: bool


@dataclass(frozen=True)
class Declaration:
    title: str
    severity: Severity
    summary: str = ""
    service: str | None = None
    assignee: str | None = None
    labels: Mapping[str, str] | None = None
    visibility: Visibility = Visibility.PUBLIC
    #: The alerts that open the incident (the first few) and their count, told in its
    #: incident.created: a new incident is one event, not two in the same moment.
    alerts: Sequence[Mapping[str, Any]] = ()
    alert_count: int = 0


@dataclass(frozen=True)
class Attachment:
    """Alerts that joined an incident in one go: the first few listed, all counted."""

    incident: Incident
    alerts: Sequence[Mapping[str, Any]]
    count: int
    severity: Severity


class IncidentService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    # -- reading -----------------------------------------------------------------------

    def get(self, viewer: Viewer, key: str) -> Incident:
        with self._store.transaction() as tx:
            return _visible(tx, viewer, key)

    def list(
        self, viewer: Viewer, where: IncidentFilter, *, cursor: str | None, limit: int
    ) -> Page[Incident]:
        limit = check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        where = IncidentFilter(
            **{**where.__dict__, "include_private": viewer.can_see_private}
        )
        with self._store.transaction() as tx:
            rows = tx.incidents.list(where, before=before, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, encode_cursor(rows[-1].number) if more else None)

    def alerts(self, viewer: Viewer, key: str) -> Sequence[Alert]:
        with self._store.transaction() as tx:
            incident = _visible(tx, viewer, key)
            return tx.alerts.for_incident(incident.id)

    def timeline(
        self, viewer: Viewer, key: str, *, cursor: str | None, limit: int
    ) -> Page[TimelineEntry]:
        limit = check_limit(limit)
        after = decode_cursor(cursor) if cursor else None
        with self._store.transaction() as tx:
            incident = _visible(tx, viewer, key)
            rows = tx.timeline.list(incident.id, after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([entry for _, entry in rows], encode_cursor(rows[-1][0]) if more else None)

    # -- writing -----------------------------------------------------------------------

    def declare(self, viewer: Viewer, declaration: Declaration) -> Incident:
        with self._store.transaction(write=True) as tx:
            return self.declare_in(tx, viewer, declaration)

    def declare_in(self, tx: Transaction, viewer: Viewer, declaration: Declaration) -> Incident:
        """Declare inside the caller's transaction (idempotent requests, correlation)."""
        if declaration.visibility is Visibility.PRIVATE and not viewer.can_see_private:
            raise Forbidden("declaring a private incident needs the incidents:private scope")
        now = self._clock.now()
        incident = rules.declare(
            incident_id=new_id("inc", now),
            title=declaration.title,
            severity=declaration.severity,
            summary=declaration.summary,
            service=declaration.service,
            assignee=declaration.assignee,
            labels=declaration.labels,
            visibility=declaration.visibility,
            now=now,
        )
        incident = tx.incidents.insert(incident)
        _record(tx, Transition(incident, EventType.INCIDENT_CREATED, {}), viewer.origin, now)
        return incident

    def declare_many_in(self, tx: Transaction,
                        declarations: Sequence[tuple[Viewer, Declaration]], *,
                        ids: Sequence[str] | None = None) -> Sequence[Incident]:
        """Declare public incidents, each by its own viewer (the origin of its events),
        in a few statements whatever their number and origins (alert correlation opens
        one per new group; a storm brings hundreds at once, from several sources).
        ``ids`` lets the caller refer to them before they exist."""
        now = self._clock.now()
        ids = ids or [new_id("inc", now) for _ in declarations]
        made = tx.incidents.insert_many([rules.declare(
            incident_id=incident_id, title=item.title, severity=item.severity,
            summary=item.summary, service=item.service, assignee=item.assignee,
            labels=item.labels, visibility=Visibility.PUBLIC, now=now,
        ) for incident_id, (_, item) in zip(ids, declarations, strict=True)])
        _record_many(tx, [_written(
            Transition(incident, EventType.INCIDENT_CREATED, {}), viewer.origin, now,
            message=_declared_message(item),
            extra={"alerts": [dict(alert) for alert in item.alerts],
                   "alert_count": item.alert_count} if item.alert_count else None,
        ) for incident, (viewer, item) in zip(made, declarations, strict=True)])
        return made

    def attach_many_in(self, tx: Transaction,
                       attachments: Sequence[tuple[Viewer, Attachment]]) -> Sequence[Incident]:
        """Record, per incident, that ``count`` alerts joined it: one
        ``incident.alert_attached`` event each, listing the first of them, from its own
        viewer. Each incident is saved only if still at the version given
        (ConcurrentUpdate otherwise)."""
        now = self._clock.now()
        transitions = [rules.attach_alert(item.incident, item.severity, now)
                       for _, item in attachments]
        tx.incidents.save_many([(transition.incident, item.incident.version)
                                for transition, (_, item) in zip(transitions, attachments,
                                                                 strict=True)])
        _record_many(tx, [_written(
            transition, viewer.origin, now, message=_attached_message(item, transition),
            extra={"alerts": [dict(alert) for alert in item.alerts],
                   "alert_count": item.count},
        ) for transition, (viewer, item) in zip(transitions, attachments, strict=True)])
        return [transition.incident for transition in transitions]

    def update(
        self, viewer: Viewer, key: str, patch: Mapping[str, Any], *,
        expected_version: int | None = None,
    ) -> Incident:
        with self._store.transaction(write=True) as tx:
            return self.update_in(tx, viewer, key, patch, expected_version=expected_version)

    def update_in(
        self, tx: Transaction, viewer: Viewer, key: str, patch: Mapping[str, Any], *,
        expected_version: int | None = None,
    ) -> Incident:
        if patch.get("visibility") is Visibility.PRIVATE and not viewer.can_see_private:
            raise Forbidden("making an incident private needs the incidents:private scope")
        return self.apply_in(tx, viewer, key,
                             lambda incident, now: rules.update(incident, patch, now),
                             expected_version=expected_version)

    def acknowledge(self, viewer: Viewer, key: str, *, expected_version: int | None = None
                    ) -> Incident:
        return self._apply(viewer, key, expected_version, rules.acknowledge)

    def change_status_in(self, tx: Transaction, viewer: Viewer, key: str, action: str, *,
                         expected_version: int | None = None) -> Incident:
        """``action`` (acknowledge, resolve, reopen) inside the caller's transaction."""
        return self.apply_in(tx, viewer, key, STATUS_COMMANDS[action],
                             expected_version=expected_version)

    def resolve(self, viewer: Viewer, key: str, *, expected_version: int | None = None
                ) -> Incident:
        return self._apply(viewer, key, expected_version, rules.resolve)

    def reopen(self, viewer: Viewer, key: str, *, expected_version: int | None = None
               ) -> Incident:
        return self._apply(viewer, key, expected_version, rules.reopen)

    def comment(self, viewer: Viewer, key: str, body: str) -> tuple[Incident, TimelineEntry]:
        with self._store.transaction(write=True) as tx:
            return self.comment_in(tx, viewer, key, body)

    def comment_in(
        self, tx: Transaction, viewer: Viewer, key: str, body: str
    ) -> tuple[Incident, TimelineEntry]:
        """Comment inside the caller's transaction (idempotent requests)."""
        incident = _visible(tx, viewer, key, for_update=True)
        now = self._clock.now()
        transition = rules.comment(incident, body, now)
        tx.incidents.save(transition.incident, expected_version=incident.version)
        entry = _record(tx, transition, viewer.origin, now, body=body)
        return transition.incident, entry

    def _apply(
        self,
        viewer: Viewer,
        key: str,
        expected_version: int | None,
        command: Command,
    ) -> Incident:
        with self._store.transaction(write=True) as tx:
            return self.apply_in(tx, viewer, key, command, expected_version=expected_version)

    def apply_in(
        self, tx: Transaction, viewer: Viewer, key: str, command: Command, *,
        expected_version: int | None = None, note: str | None = None,
    ) -> Incident:
        """Run a status or field command inside the caller's transaction. ``note``
        replaces the timeline's sentence (say why: "all 3 alerts resolved")."""
        incident = _visible(tx, viewer, key, for_update=True)
        if expected_version is not None and expected_version != incident.version:
            raise PreconditionFailed(
                f"{incident.reference} is at version {incident.version}, "
                f"not {expected_version}"
            )
        now = self._clock.now()
        transition = command(incident, now)
        if transition is None:
            return incident
        tx.incidents.save(transition.incident, expected_version=incident.version)
        _record(tx, transition, viewer.origin, now, message=note)
        return transition.incident

    def attach_alerts_in(
        self, tx: Transaction, viewer: Viewer, key: str, alerts: Sequence[Mapping[str, Any]], *,
        count: int, severity: Severity,
    ) -> Incident:
        """Record that ``count`` alerts joined the incident, in one
        ``incident.alert_attached`` event listing the first of them."""
        incident = _visible(tx, viewer, key, for_update=True)
        return self.attach_many_in(tx, [(viewer, Attachment(incident, alerts, count,
                                                            severity))])[0]

    def note_in(self, tx: Transaction, incident_id: str, origin: Origin, message: str, *,
                kind: str = "connector.note") -> None:
        """A timeline line that changes nothing (a link made in a tool, a silence that
        expired there): no version bump and no event, so nothing is pushed for it."""
        incident = tx.incidents.get(incident_id)
        if incident is None:
            return
        now = self._clock.now()
        tx.timeline.append(TimelineEntry(
            id=new_id("tle", now), incident_id=incident.id, at=now, kind=kind,
            origin=origin, incident_version=incident.version, message=message,
        ))


def _visible(tx: Transaction, viewer: Viewer, key: str, *, for_update: bool = False) -> Incident:
    """The incident, or NotFound: a private incident does not exist for those who may not
    see it, so the answer must not differ from a missing one."""
    incident = tx.incidents.get(key, for_update=for_update)
    if incident is None or (incident.is_private and not viewer.can_see_private):
        raise NotFound(f"no incident {key}")
    return incident


def _declared_message(item: Declaration) -> str | None:
    """'Incident declared by 2 alerts: X (instance=web-1), ...' for an incident alerts
    opened; None (the usual sentence) for one a person declared."""
    if not item.alert_count:
        return None
    listed = _listed_alerts(item.alerts, item.alert_count)
    which = "an alert" if item.alert_count == 1 else f"{item.alert_count} alerts"
    return f"Incident declared by {which}: {listed}"


def _listed_alerts(alerts: Sequence[Mapping[str, Any]], count: int) -> str:
    """'X (instance=web-1), X (instance=web-2) and 3 more': the labels that tell the
    first few apart."""
    shown = alerts[:3]
    differing = differing_labels([_labels(alert) for alert in shown])
    titles = ", ".join(describe_with_labels(str(alert["title"]), labels)
                       for alert, labels in zip(shown, differing, strict=True))
    return titles + (f" and {count - 3} more" if count > 3 else "")


def _attached_message(item: Attachment, transition: Transition) -> str:
    """'2 alerts attached: X (instance=web-1), X (instance=web-2)'."""
    titles = _listed_alerts(item.alerts, item.count)
    message = (f"Alert attached: {titles}" if item.count == 1
               else f"{item.count} alerts attached: {titles}")
    if transition.changes:
        message += f"; severity raised to {item.severity.value}"
    return message


def _record(
    tx: Transaction, transition: Transition, origin: Origin, now: datetime, *,
    body: str | None = None, message: str | None = None,
    extra: dict[str, Any] | None = None,
) -> TimelineEntry:
    """Write the event and the timeline entry for a transition already saved."""
    event, entry = _written(transition, origin, now, body=body, message=message, extra=extra)
    tx.events.append(event)
    tx.timeline.append(entry)
    return entry


def _record_many(tx: Transaction, written: Sequence[tuple[Event, TimelineEntry]]) -> None:
    tx.events.append_many([event for event, _ in written])
    tx.timeline.append_many([entry for _, entry in written])


def _written(
    transition: Transition, origin: Origin, now: datetime, *,
    body: str | None = None, message: str | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Event, TimelineEntry]:
    """The event and the timeline entry that record a transition."""
    incident = transition.incident
    data: dict[str, Any] = {"incident": rules.to_dict(incident), "changes": transition.changes,
                            **(extra or {})}
    entry = TimelineEntry(
        id=new_id("tle", now),
        incident_id=incident.id,
        at=now,
        kind=transition.event_type.value,
        origin=origin,
        incident_version=incident.version,
        message=message or describe(transition),
        changes=transition.changes,
        body=body,
    )
    if body is not None:
        data["comment"] = {"id": entry.id, "body": body, "actor": entry.actor}
    event = Event(
        id=new_id("evt", now),
        type=transition.event_type,
        occurred_at=now,
        origin=origin,
        incident_id=incident.id,
        incident_version=incident.version,
        data=data,
    )
    return event, entry


def _labels(alert: Mapping[str, Any]) -> dict[str, str]:
    labels = alert.get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
