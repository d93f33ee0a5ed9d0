"""The store: transactions over repositories, one per kind of row.

Services open a transaction, read and write through its repositories, and everything
written inside one transaction (an incident change, its event, its timeline entry, an
idempotency record) commits or rolls back together. Implementations translate their
driver's errors into :mod:`interlock.domain.errors` (a lost race becomes
:class:`~interlock.domain.errors.ConcurrentUpdate`).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from interlock.domain.alerts import Alert, PayloadStatus, ReceivedPayload
from interlock.domain.connectors import Activity as ConnectorActivity
from interlock.domain.connectors import Connector, JobKind, JobStatus, Link, SyncJob
from interlock.domain.delivery import Attempt, Delivery, DeliveryStatus, Trigger
from interlock.domain.digests import Digest
from interlock.domain.endpoints import Endpoint
from interlock.domain.events import Event
from interlock.domain.incidents import Incident, Severity, Status
from interlock.domain.keys import ApiKey
from interlock.domain.maintenance import MaintenanceWindow
from interlock.domain.sources import Source
from interlock.domain.status_maintenance import PublicMaintenance
from interlock.domain.status_pages import (
    Component,
    PublicIncident,
    PublicUpdate,
    StatusChange,
    StatusPage,
)
from interlock.domain.timeline import TimelineEntry
from interlock.ports.mail import MailRepository
from interlock.ports.subscribers import SubscriberRepository


class Work(enum.Flag):
    """What a commit gave the workers to do, so each wakes only for its own: a storm's
    payload commits must not send the delivery and sync loops looking for events."""

    #: Received alert payloads, for alert processing.
    PAYLOADS = enum.auto()
    #: Incident events: for deliveries (and the console's live view).
    EVENTS = enum.auto()
    #: Connector sync jobs, for the sync loop. Apart from EVENTS: with no connector,
    #: every event woke the sync loop to look for jobs nobody had made.
    SYNC = enum.auto()
    #: Mail to send, for the mail loop.
    MAIL = enum.auto()
    #: Deliveries handed to a delivery worker as they were made (DeliveryService.
    #: hand_off), for it to read.
    HANDED = enum.auto()
    ALL = PAYLOADS | EVENTS | SYNC | MAIL | HANDED


@dataclass(frozen=True)
class IncidentFilter:
    statuses: frozenset[Status] = frozenset()
    severities: frozenset[Severity] = frozenset()
    service: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    text: str | None = None
    include_private: bool = False


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status_code: int
    body: dict[str, Any]


class IncidentRepository(Protocol):
    def insert(self, incident: Incident) -> Incident:
        """Store a new incident; the answer carries its assigned ``number``."""
        ...

    def insert_many(self, items: Sequence[Incident]) -> list[Incident]:
        """Store new incidents; the answer carries each one's ``number``, in order."""
        ...

    def get(self, key: str, *, for_update: bool = False) -> Incident | None:
        """By id (``inc_…``) or reference (``INC-42``)."""
        ...

    def get_many(self, ids: Collection[str], *, for_update: bool = False
                 ) -> dict[str, Incident]:
        """By id; ``for_update`` locks them (in id order) until the transaction ends."""
        ...

    def save_many(self, items: Sequence[tuple[Incident, int]]) -> None:
        """Save each (incident, expected version); ConcurrentUpdate if any changed."""
        ...

    def save(self, incident: Incident, *, expected_version: int) -> None:
        """Write ``incident`` if the stored version is still ``expected_version``, else
        raise ConcurrentUpdate."""
        ...

    def list(self, where: IncidentFilter, *, before: int | None, limit: int) -> list[Incident]:
        """Newest first; ``before`` is the ``number`` of the last incident already seen."""
        ...

    def private_among(self, incident_ids: Collection[str]) -> set[str]:
        """Which of these incidents are private (to hide what hangs on them)."""
        ...


class EventLog(Protocol):
    def append(self, event: Event) -> Event: ...

    def fanned_out(self) -> None:
        """Every event this transaction appended has been fanned out in it: its commit
        wakes the workers with Work.HANDED, not Work.EVENTS."""
        ...

    def append_many(self, items: Sequence[Event]) -> None: ...

    def for_incident(self, incident_id: str) -> list[Event]: ...

    def get(self, event_id: str) -> Event | None: ...

    def get_many(self, event_ids: Collection[str]) -> dict[str, Event]: ...

    def undispatched(self, limit: int, *, wait: bool = True) -> list[Event]:
        """The oldest events not yet fanned out, locked against other dispatchers;
        ``wait=False``: none while another dispatcher is at it (it, or a later round
        woken by the same commits, fans them out)."""
        ...

    def mark_dispatched(self, sequences: Sequence[int], at: datetime) -> None: ...

    def list(self, *, before: int | None, limit: int, event_type: str | None = None
             ) -> list[Event]:
        """Newest first; ``before`` is the sequence of the last event already seen."""
        ...


class TimelineRepository(Protocol):
    def append(self, entry: TimelineEntry) -> None: ...

    def append_many(self, items: Sequence[TimelineEntry]) -> None: ...

    def list(self, incident_id: str, *, after: int | None, limit: int) -> list[
        tuple[int, TimelineEntry]
    ]:
        """Oldest first, each with its position for the next cursor."""
        ...


class KeyRepository(Protocol):
    def insert(self, key: ApiKey, digest: str) -> None: ...

    def find_by_digest(self, digest: str) -> ApiKey | None: ...

    def get(self, key_id: str) -> ApiKey | None: ...

    def lock_active(self) -> list[ApiKey]:
        """Every unrevoked key, locked until the transaction ends (PostgreSQL), so two
        revocations cannot each count the other's key as the admin that remains."""
        ...

    def list(self) -> list[ApiKey]: ...

    def revoke(self, key_id: str, at: datetime) -> None: ...


class IdempotencyRepository(Protocol):
    def get(self, owner: str, key: str) -> StoredResponse | None: ...

    def put(self, owner: str, key: str, response: StoredResponse, at: datetime) -> None:
        """Raise ConcurrentUpdate if another transaction stored the same key first."""
        ...

    def purge(self, older_than: datetime) -> int: ...


class EndpointRepository(Protocol):
    def insert(self, endpoint: Endpoint) -> None: ...

    def get(self, endpoint_id: str) -> Endpoint | None: ...

    def save(self, endpoint: Endpoint) -> None: ...

    def delete(self, endpoint_id: str) -> bool: ...

    def enabled(self) -> list[Endpoint]: ...

    def enabled_routing(self) -> tuple[tuple[Any, ...], ...]:
        """What routes events to the enabled endpoints, by id: each one's id, event
        types and filter, as stored. Equal between two reads, :meth:`enabled` would
        route alike."""
        ...

    def mark_succeeded(self, endpoint_ids: Sequence[str], at: datetime) -> None:
        """End the failure streak of these endpoints and note their last success."""
        ...

    def list(self, *, after: str | None, limit: int) -> list[Endpoint]:
        """Oldest first, by id."""
        ...


@dataclass(frozen=True)
class Claim:
    """A delivery leased to one worker, with what is needed to send it."""

    delivery: Delivery
    event: Event
    endpoint: Endpoint


@dataclass(frozen=True)
class Outcome:
    """What to write after an attempt: the attempt row and the delivery's new state."""

    attempt: Attempt
    status: DeliveryStatus
    next_attempt_at: datetime | None
    #: The delivery's incident: when it is finished, the next one waiting is due.
    incident_id: str | None = None


@dataclass(frozen=True)
class Completed:
    """What writing outcomes did beyond the outcomes themselves."""

    #: Outcomes not written: their endpoint was deleted meanwhile.
    dropped: int
    #: Deliveries that were waiting behind a finished one and are due now.
    made_due: int


class DeliveryRepository(Protocol):
    def insert_many(self, deliveries: Sequence[Delivery], *,
                    lease: tuple[str, datetime] | None = None,
                    claim: tuple[str, datetime, Collection[str]] | None = None) -> None:
        """``lease``: (owner, until) for the deliveries that are due: handed to that
        worker as they are made, leased in its name for what is handed (apart from
        what it claims); the others are inserted unleased. ``claim``: (owner, until,
        ids): these due deliveries are inserted leased to that worker as :meth:`claim`
        would lease them (the worker fanning out claims what it made without writing
        each row twice)."""
        ...

    def pending_pairs(self, incident_ids: Collection[str]) -> set[tuple[str, str]]:
        """(endpoint id, incident id) of every pending delivery of these incidents, locked
        so that none finishes unseen while new ones are queued behind it."""
        ...

    def claim(
        self, owner: str, now: datetime, lease_until: datetime, limit: int,
        exclude_endpoints: Sequence[str] = (),
    ) -> list[Delivery]:
        """Lease due pending deliveries, oldest due first. (Deliveries waiting behind an
        older one of the same incident to the same endpoint have no due time yet.)"""
        ...

    def claims(self, leased: Sequence[Delivery], events: Collection[Event] = ()
               ) -> list[Claim]:
        """Leased deliveries with their events and endpoints, in event order: a read,
        for after the transaction that leased them, which on SQLite holds the one write
        lock. ``events``: those already in hand (events never change), not read again;
        endpoints are always read. A delivery whose endpoint or event is gone meanwhile
        is left out."""
        ...

    def extend_leases(self, owner: str, delivery_ids: Sequence[str], until: datetime) -> int:
        """Move the leases ``owner`` still holds on these deliveries to ``until``."""
        ...

    def handed_after(self, owner: str, after: int, now: datetime, limit: int
                     ) -> tuple[list[Claim], int]:
        """Pending deliveries after position ``after`` handed to ``owner`` (insert_many's
        ``lease``) whose lease is live, oldest first, and the position of the last one
        looked at (``after`` when there is none). Never one it claimed itself."""
        ...

    def handed_start(self, owner: str) -> int:
        """The position after which a delivery worker starting now reads what is handed
        to it (handed_after)."""
        ...

    def release(self, owner: str, delivery_ids: Sequence[str]) -> None:
        """Give up these pending deliveries handed to ``owner``, to be claimed again."""
        ...

    def complete(self, owner: str, outcomes: Sequence[Outcome], at: datetime) -> Completed:
        """Write attempts and delivery states, and make due the next delivery waiting
        behind each one that finished. A delivery whose lease another worker holds now
        keeps its state (the attempt is still recorded). Outcomes for endpoints deleted
        meanwhile are dropped."""
        ...

    def get(self, delivery_id: str) -> Delivery | None: ...

    def find(self, event_id: str, endpoint_id: str) -> Delivery | None: ...

    def for_event(self, event_id: str) -> list[Delivery]: ...

    def reschedule(self, delivery_ids: Sequence[str], at: datetime, trigger: Trigger) -> int:
        """Make deliveries pending and due at ``at`` (resend, recover)."""
        ...

    def recoverable_since(self, endpoint_id: str, since: datetime, now: datetime) -> list[str]:
        """Deliveries created since ``since`` that failed for good or are waiting for a
        retry, oldest first."""
        ...

    def fail_pending(self, endpoint_id: str, reason: str, at: datetime) -> int: ...

    def attempts(self, endpoint_id: str, *, before: int | None, limit: int
                 ) -> list[tuple[int, Attempt]]:
        """Newest first, each with its position for the next cursor."""
        ...

    def counts(self, endpoint_id: str) -> dict[str, int]: ...

    def recent_attempts(self, *, after: int | None, limit: int, endpoint_id: str | None = None
                        ) -> list[tuple[int, Attempt]]:
        """Oldest first after ``after``; with ``after`` None, the last ``limit``."""
        ...


class SourceRepository(Protocol):
    def insert(self, source: Source) -> None: ...

    def get(self, source_id: str) -> Source | None: ...

    def get_many(self, ids: Collection[str]) -> dict[str, Source]: ...

    def save(self, source: Source) -> None: ...

    def delete(self, source_id: str) -> bool: ...

    def list(self, *, after: str | None, limit: int) -> list[Source]: ...


class PayloadRepository(Protocol):
    def insert_many(self, items: Sequence[ReceivedPayload]) -> None: ...

    def claim(self, owner: str, now: datetime, lease_until: datetime, limit: int
              ) -> list[ReceivedPayload]:
        """Lease up to ``limit`` free pending payloads, oldest first; concurrent claims
        take disjoint sets (on PostgreSQL, of sources no other worker holds while there
        are such sources with work)."""
        ...

    def finish(self, payload: ReceivedPayload, owner: str) -> None:
        """Write the outcome carried by ``payload`` and release its lease."""
        ...

    def store_new(self, items: Sequence[ReceivedPayload]) -> list[ReceivedPayload]:
        """Store those of ``items`` not stored before, to be applied and finished in this
        transaction; returns them with their positions (a payload stored before, by a
        move repeated after a crash or another worker, is left out)."""
        ...

    def any_free(self, now: datetime) -> bool:
        """Whether a pending payload is free to claim (a read)."""
        ...

    def finish_many(self, items: Sequence[ReceivedPayload], owner: str | None) -> None:
        """Like finish, for many; owner None for payloads that were never leased."""
        ...

    def position(self, payload_id: str) -> int | None: ...

    def get(self, payload_id: str) -> ReceivedPayload | None: ...

    def list(self, source_id: str, *, before: int | None, limit: int,
             status: PayloadStatus | None = None) -> list[ReceivedPayload]:
        """Newest first."""
        ...


class AlertRepository(Protocol):
    def find(self, source_id: str, fingerprint: str) -> Alert | None: ...

    def get_by_ids(self, ids: Collection[str]) -> dict[str, Alert]: ...

    def find_many(self, keys: Collection[tuple[str, str]], *, for_update: bool = False
                  ) -> dict[tuple[str, str], Alert]:
        """By (source id, fingerprint); ``for_update`` locks them in key order."""
        ...

    def insert(self, alert: Alert) -> None: ...

    def insert_many(self, items: Sequence[Alert]) -> None:
        """ConcurrentUpdate when another worker stored one of them first."""
        ...

    def save(self, alert: Alert) -> None: ...

    def save_many(self, items: Sequence[Alert]) -> None: ...

    def firing_counts(self, incident_ids: Collection[str]) -> dict[str, tuple[int, int]]:
        """Per incident: (alerts firing, alerts in all)."""
        ...

    def for_incident(self, incident_id: str) -> list[Alert]: ...

    def firing_for_incident(self, incident_id: str) -> int: ...

    def list(self, *, before: int | None, limit: int, source_id: str | None = None,
             suppressed: bool | None = None) -> list[tuple[int, Alert]]: ...


class CorrelationRepository(Protocol):
    def get_many(self, keys: Collection[tuple[str, str]], *, for_update: bool = False
                 ) -> dict[tuple[str, str], str]:
        """Incident ids by (source id, group key); ``for_update`` locks them in order,
        and where writers are concurrent holds every one of the groups, found or not,
        until the transaction ends: a transaction making one of them is waited for, and
        none is made by another meanwhile."""
        ...

    def put_many(self, items: Sequence[tuple[str, str, str]], at: datetime, *,
                 existing: Collection[tuple[str, str]]) -> None:
        """(source id, group key, incident id): rows in ``existing`` are updated, others
        inserted; ConcurrentUpdate when another worker inserted one first."""
        ...


class DigestRepository(Protocol):
    """Alert digests (domain/digests.py). Write a digest only while holding it (read
    ``for_update`` in the same transaction) or by inserting it."""

    def get_many(self, incident_ids: Collection[str], *, for_update: bool = False,
                 skip_locked: bool = False) -> dict[str, Digest]:
        """``for_update`` locks them in incident order; with ``skip_locked``, those
        another transaction holds are left out rather than waited for."""
        ...

    def put_many(self, digests: Sequence[Digest], *, existing: Collection[str]) -> None:
        """Rows of ``existing`` incidents are updated, others inserted; ConcurrentUpdate
        when another worker inserted one first."""
        ...

    def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of incidents whose waiting alerts are due, the longest due first."""
        ...


class MaintenanceRepository(Protocol):
    def insert(self, window: MaintenanceWindow) -> None: ...

    def get(self, window_id: str) -> MaintenanceWindow | None: ...

    def save(self, window: MaintenanceWindow) -> None: ...

    def delete(self, window_id: str) -> bool: ...

    def every(self) -> list[MaintenanceWindow]: ...

    def active(self, at: datetime) -> list[MaintenanceWindow]: ...

    def count(self, window_id: str, *, dropped: int = 0, suppressed: int = 0) -> None: ...

    def count_many(self, counts: Mapping[str, tuple[int, int]]) -> None:
        """Add (dropped, suppressed) to each window's counters."""
        ...

    def counts(self, window_id: str) -> tuple[int, int]:
        """(dropped, suppressed) so far."""
        ...


@dataclass(frozen=True)
class StoredConnector:
    """A connector as stored: its credentials still sealed (see ports.connector.SecretBox)."""

    connector: Connector
    sealed_credentials: str


class ConnectorRepository(Protocol):
    def insert(self, connector: Connector, sealed_credentials: str) -> None: ...

    def get(self, connector_id: str) -> StoredConnector | None: ...

    def enabled(self) -> list[StoredConnector]: ...

    def save(self, connector: Connector, sealed_credentials: str | None = None) -> None:
        """Write the configuration; credentials only when ``sealed_credentials`` is given."""
        ...

    def delete(self, connector_id: str) -> bool: ...

    def hold(self, connector_id: str) -> bool:
        """Whether the connector still exists; if so it cannot be deleted until the
        transaction ends (what is recorded for it refers to it)."""
        ...

    def record_health(self, connector_id: str, *, at: datetime, error: str | None,
                      learned: Mapping[str, Any] | None = None) -> None:
        """After a call to the tool: success (``error`` None) ends a failure streak;
        ``learned`` is merged into the connector's state."""
        ...

    def list(self, *, after: str | None, limit: int) -> list[StoredConnector]:
        """Oldest first, by id."""
        ...


class LinkRepository(Protocol):
    def get(self, connector_id: str, incident_id: str) -> Link | None: ...

    def find(self, connector_id: str, external_id: str) -> Link | None: ...

    def find_by_state(self, connector_id: str, key: str, value: str) -> Link | None:
        """The connector's link whose state has ``value`` under ``key`` (a stable id)."""
        ...

    def for_incident(self, incident_id: str) -> list[Link]: ...

    def for_incidents(self, incident_ids: Collection[str]) -> list[Link]: ...

    def put(self, link: Link) -> None:
        """Insert, or update the link of the same connector and incident."""
        ...

    def due_for_reconcile(self, connector_ids: Sequence[str], before: datetime,
                          resolved_after: datetime, limit: int) -> list[Link]:
        """Links not reconciled since ``before``, of incidents still open or resolved
        after ``resolved_after``."""
        ...

    def mark_reconciled(self, link_ids: Sequence[str], at: datetime) -> None: ...

    def for_connector(self, connector_id: str, *, limit: int) -> list[Link]:
        """Newest first."""
        ...


@dataclass(frozen=True)
class JobOutcome:
    job: SyncJob
    status: JobStatus
    next_attempt_at: datetime | None
    error: str | None


class SyncJobRepository(Protocol):
    def insert_many(self, jobs: Sequence[SyncJob]) -> None: ...

    def pending_pairs(self, connector_ids: Collection[str], incident_ids: Collection[str]
                      ) -> set[tuple[str, str]]:
        """(connector id, incident id) of every pending job of these incidents for these
        connectors, locked."""
        ...

    def unstarted_pairs(self, connector_ids: Collection[str], incident_ids: Collection[str],
                        kind: JobKind) -> set[tuple[str, str]]:
        """(connector, incident) pairs with a job of ``kind`` not yet started."""
        ...

    def waiting(self, connector_id: str, incident_id: str, kind: JobKind) -> bool:
        """Whether a job of this kind is pending and not yet started (to coalesce)."""
        ...

    def claim(self, owner: str, now: datetime, lease_until: datetime, limit: int,
              exclude_connectors: Sequence[str] = (), paced_kinds: Collection[str] = ()
              ) -> list[SyncJob]:
        """Lease due pending jobs, oldest due first, never of a disabled connector, nor
        of a connector of ``paced_kinds`` another worker holds (see
        :meth:`held_elsewhere`; claims that pass ``paced_kinds`` take turns)."""
        ...

    def held_elsewhere(self, owner: str, now: datetime, kinds: Collection[str]) -> list[str]:
        """Enabled connectors of ``kinds`` with a job leased to a worker other than
        ``owner``: a paced tool's jobs are run by one worker at a time."""
        ...

    def any_due(self, now: datetime, exclude_connectors: Sequence[str] = ()) -> bool:
        """Whether a job may be claimable now (due, not leased, not of these
        connectors): a read, so an idle queue costs no write."""
        ...

    def complete(self, owner: str, outcomes: Sequence[JobOutcome], at: datetime) -> None:
        """Write each job's new state and make due the next job waiting behind it."""
        ...

    def get(self, job_id: str) -> SyncJob | None: ...

    def counts(self, connector_id: str) -> dict[str, int]: ...


class ConnectorActivityRepository(Protocol):
    def append(self, items: Sequence[ConnectorActivity]) -> None: ...

    def list(self, connector_id: str, *, before: int | None, limit: int,
             incident_id: str | None = None) -> list[tuple[int, ConnectorActivity]]:
        """Newest first, each with its position for the next cursor."""
        ...


class HookReceipts(Protocol):
    def add(self, connector_id: str, delivery_id: str, at: datetime) -> bool:
        """Remember an inbound delivery; False if it was seen before."""
        ...

    def purge(self, older_than: datetime) -> int: ...


class Flags(Protocol):
    def claim(self, name: str, value: str) -> bool:
        """Set a one-time flag; True only for the first caller, ever."""
        ...

    def counter(self, name: str) -> int:
        """A named counter's value (0 until first incremented)."""
        ...

    def increment(self, name: str) -> None:
        """Add one to a named counter, in the caller's write transaction."""
        ...


@dataclass(frozen=True)
class Activity:
    """Counts per consecutive time bucket, oldest first (the console's chart)."""

    alerts: list[int]
    incidents: list[int]
    delivered: list[int]
    failed: list[int]


class ActivityRepository(Protocol):
    def counts(self, bounds: Sequence[datetime], *, include_private: bool) -> Activity:
        """Per bucket ``[bounds[i], bounds[i + 1])``: alerts first seen, incidents opened
        (private ones only with ``include_private``), attempts that succeeded and failed."""
        ...


@dataclass(frozen=True)
class WorkerBeat:
    """A worker process's last report: each of its tasks' state (``ok``, or what failed)."""

    name: str
    started_at: datetime
    beat_at: datetime
    tasks: Mapping[str, Any]


class WorkerRepository(Protocol):
    def beat(self, name: str, started_at: datetime, at: datetime,
             tasks: Mapping[str, Any]) -> None: ...

    def seen_since(self, since: datetime) -> list[WorkerBeat]: ...

    def silent(self, before: datetime) -> list[str]:
        """The workers last heard from before ``before``."""
        ...

    def take_over(self, names: Sequence[str]) -> dict[str, int]:
        """Free at once what these workers lease (payloads, deliveries, sync jobs,
        mail) and forget their reports; how many of each kind."""
        ...


class StatusPageRepository(Protocol):
    """Status pages, their components and status history, public updates, and each
    page's view of an incident (``PublicIncident``). Reads for the public page never
    return an incident that is private now."""

    def insert_page(self, page: StatusPage) -> None:
        """Conflict if another page has the slug."""
        ...

    def get_page(self, page_id: str) -> StatusPage | None: ...

    def find_page(self, slug: str) -> StatusPage | None: ...

    def get_pages(self, page_ids: Collection[str]) -> dict[str, StatusPage]: ...

    def save_page(self, page: StatusPage) -> None:
        """Conflict if another page has the slug."""
        ...

    def delete_page(self, page_id: str) -> bool:
        """With its components, their history and its view of incidents."""
        ...

    def list_pages(self, *, after: str | None, limit: int) -> list[StatusPage]:
        """Oldest first, by id."""
        ...

    def touch(self, page_ids: Collection[str], at: datetime) -> None:
        """What these pages show changed: their version goes up."""
        ...

    def hidden_count(self, page_id: str) -> int:
        """How many of the page's incidents were made private after being published."""
        ...

    def insert_component(self, component: Component) -> None: ...

    def get_component(self, component_id: str) -> Component | None: ...

    def get_components(self, component_ids: Collection[str]) -> dict[str, Component]: ...

    def components(self, page_id: str) -> list[Component]:
        """In display order."""
        ...

    def components_for_service(self, service: str) -> list[Component]: ...

    def save_component(self, component: Component) -> None: ...

    def delete_component(self, component_id: str) -> bool: ...

    def next_position(self, page_id: str) -> int: ...

    def record_statuses(self, changes: Sequence[StatusChange]) -> None: ...

    def history(self, component_ids: Collection[str], since: datetime
                ) -> dict[str, list[StatusChange]]:
        """Changes since ``since``, oldest first, led by the last one before it."""
        ...

    def insert_update(self, update: PublicUpdate) -> None: ...

    def updates(self, incident_ids: Collection[str]) -> dict[str, list[PublicUpdate]]:
        """Each incident's public updates, newest first."""
        ...

    def put_incident(self, item: PublicIncident) -> None:
        """Insert or replace one page's view of an incident."""
        ...

    def incident_views(self, incident_id: str) -> list[PublicIncident]: ...

    def page_incidents(self, page_id: str, *, open_only: bool = False, limit: int = 50
                       ) -> list[PublicIncident]:
        """Most recently updated first, never one that is private now."""
        ...

    def insert_maintenance(self, item: PublicMaintenance) -> None: ...

    def save_maintenance(self, item: PublicMaintenance) -> None: ...

    def get_maintenance(self, maintenance_id: str) -> PublicMaintenance | None: ...

    def delete_maintenance(self, maintenance_id: str) -> bool: ...

    def maintenances(self, page_id: str, *, limit: int = 50, shown_only: bool = False
                     ) -> list[PublicMaintenance]:
        """Latest window first; with ``shown_only``, never a cancelled one."""
        ...

    def maintenance_phase(self, page_id: str, now: datetime) -> int:
        """Starts and ends of uncancelled windows at or before ``now``."""
        ...


class Transaction(Protocol):
    @property
    def incidents(self) -> IncidentRepository: ...

    @property
    def events(self) -> EventLog: ...

    @property
    def timeline(self) -> TimelineRepository: ...

    @property
    def keys(self) -> KeyRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def flags(self) -> Flags: ...

    @property
    def endpoints(self) -> EndpointRepository: ...

    @property
    def deliveries(self) -> DeliveryRepository: ...

    @property
    def sources(self) -> SourceRepository: ...

    @property
    def payloads(self) -> PayloadRepository: ...

    @property
    def alerts(self) -> AlertRepository: ...

    @property
    def correlations(self) -> CorrelationRepository: ...

    @property
    def maintenance(self) -> MaintenanceRepository: ...

    @property
    def digests(self) -> DigestRepository: ...

    @property
    def connectors(self) -> ConnectorRepository: ...

    @property
    def links(self) -> LinkRepository: ...

    @property
    def sync_jobs(self) -> SyncJobRepository: ...

    @property
    def connector_activity(self) -> ConnectorActivityRepository: ...

    @property
    def hook_receipts(self) -> HookReceipts: ...

    @property
    def activity(self) -> ActivityRepository: ...

    @property
    def workers(self) -> WorkerRepository: ...

    @property
    def status_pages(self) -> StatusPageRepository: ...

    @property
    def mail(self) -> MailRepository: ...

    @property
    def subscribers(self) -> SubscriberRepository: ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A part of the transaction undone alone when it raises: what it wrote is
        rolled back, what came before stays, and the exception goes on."""
        ...


class Store(Protocol):
    def transaction(self, *, write: bool = False, priority_after: float = 0.0
                    ) -> AbstractContextManager[Transaction]:
        """A unit of work. ``write=True`` takes the write lock up front on SQLite so
        concurrent writers queue instead of failing on lock upgrade. In the process
        serving people, such a write goes ahead of the worker processes' once it has
        waited ``priority_after`` seconds: at once by default (a person's write); the
        ingest writer waits a while first, so that a storm leaves the workers turns."""
        ...

    def receive(self, payloads: Sequence[ReceivedPayload], *, priority_after: float = 0.0
                ) -> None:
        """Commit received payloads: once this returns, they survive a crash. On SQLite
        shared with worker processes they wait in the ingest spool (store.spool) until
        :meth:`admit_received`; ``priority_after`` as for :meth:`transaction` otherwise."""
        ...

    def receive_now(self, payloads: Sequence[ReceivedPayload]) -> bool:
        """:meth:`receive` on the calling thread, if that waits for nothing (no other
        writer, no flush to disk: the ingest spool in WAL mode); whether it did. Nothing
        is stored when it did not."""
        ...

    def admit_received(self, limit: int) -> int:
        """Move up to ``limit`` payloads waiting in the ingest spool, oldest first, into
        the payloads workers claim; how many. Nothing to do without a spool."""
        ...

    def received_oldest(self, limit: int) -> list[tuple[int, ReceivedPayload]]:
        """Up to ``limit`` payloads waiting in the ingest spool, oldest first, each with
        its place there (for :meth:`forget_received`); none without a spool."""
        ...

    def forget_received(self, through: int) -> None:
        """Take the spooled payloads up to place ``through`` out of the spool, once they
        are stored (committed)."""
        ...

    def received_waiting(self, source_id: str, limit: int) -> list[ReceivedPayload]:
        """A source's payloads still in the ingest spool, newest first (pending)."""
        ...

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used again."""
        ...

    async def listen_for_work(self, wake: Callable[[Work], None], stop: asyncio.Event,
                              wanted: Work | None = None) -> None:
        """Call ``wake`` with what another process committed, whenever it does, until
        ``stop``. With ``wanted``, the listener promises to call ``work_taken`` before
        each look for a kind of work in it, and may be told of each kind only once
        until then; without, it may be told of every commit. ``wanted`` is also what
        this process's own loops look for: while it listens, its commits of events,
        sync jobs and mail may wake only those loops, not other processes'."""
        ...

    def work_taken(self, work: Work) -> None:
        """This process is about to look for ``work`` (see listen_for_work)."""
        ...

    def take_turn(self, task: str, holder: str) -> bool:
        """Whether this process (named ``holder``) is the one doing ``task`` now: on a
        SQLite file shared by processes, one at a time, held until the process ends;
        elsewhere always."""
        ...

    def end_turn(self, task: str) -> None:
        """Let go of the turn at ``task``, if this process has it, for another to take."""
        ...

    def turn_holder(self, task: str) -> str | None:
        """The name of the process holding the turn at ``task``; None where every
        process has it, or while nobody does."""
        ...

    def on_work_committed(self, callback: Callable[[], None], work: Work = Work.ALL
                          ) -> None:
        """Call ``callback`` (from any thread) after each commit of this process that
        gave ``work`` (wrote events, received payloads), so a worker starts in
        milliseconds, not on its next poll."""
        ...
