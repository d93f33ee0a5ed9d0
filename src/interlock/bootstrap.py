"""The one place that wires concrete adapters to the services."""

from __future__ import annotations

from datetime import timedelta

from interlock.clock import SystemClock
from interlock.config import Settings
from interlock.connectors import registry
from interlock.crypto import FernetBox, secret_key
from interlock.domain.targets import parse_allowed_networks
from interlock.ports.clock import Clock
from interlock.services.connectors import ConnectorService
from interlock.services.container import Container
from interlock.services.deliveries import DeliveryService
from interlock.services.endpoints import EndpointService
from interlock.services.hooks import HookService
from interlock.services.idempotency import Idempotency
from interlock.services.incidents import IncidentService
from interlock.services.ingest import Intake
from interlock.services.keys import KeyService
from interlock.services.mail import MailService
from interlock.services.processing import AlertProcessor
from interlock.services.sources import MaintenanceService, SourceService
from interlock.services.status_pages import StatusPageService
from interlock.services.status_public import PublicStatus
from interlock.services.subscribers import SubscriberService
from interlock.services.sync import SyncService
from interlock.services.workers import WorkerRegistry
from interlock.services.writes import WriteBatches
from interlock.sources.options import SourceParsers
from interlock.store import migrate
from interlock.store.engine import create_engine
from interlock.store.locks import Role
from interlock.store.sql import SqlStore
from interlock.worker.guard import ResolvingGuard


def build(settings: Settings, *, clock: Clock | None = None, migrate_schema: bool = False,
          role: Role = Role.ALONE) -> Container:
    """``role``: whose writes this process makes, which decides on SQLite who goes first
    at the write lock: people (``serve``, the CLI) ahead of worker processes."""
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    if migrate_schema:
        migrate.upgrade(engine)
    store = SqlStore(engine, role, sqlite_synchronous=settings.sqlite_synchronous)
    incidents = IncidentService(store, clock)
    parsers = SourceParsers()
    lease = timedelta(seconds=settings.worker_lease_seconds)
    guard = ResolvingGuard(parse_allowed_networks(settings.allowed_targets))
    box = FernetBox(lambda: secret_key(settings))
    connectors = ConnectorService(store, clock, registry.plugins(), box, guard)
    sync = SyncService(store, clock, connectors, incidents, base_url=settings.base_url,
                       reconcile_every=timedelta(seconds=settings.reconcile_seconds),
                       lease=lease)
    endpoints = EndpointService(store, clock, guard)
    subscribers = SubscriberService(store, clock, endpoints, base_url=settings.base_url,
                                    secret=lambda: secret_key(settings))
    # On SQLite alert processing fans out its events itself and hands the deliveries
    # to a delivery worker, which then sends without waiting for the write lock.
    deliveries = DeliveryService(store, clock, lease=lease,
                                 fan_outs=[sync.fan_out, subscribers.fan_out],
                                 hand_off=store.dialect == "sqlite")
    return Container(
        settings=settings,
        clock=clock,
        store=store,
        incidents=incidents,
        keys=KeyService(store, clock),
        idempotency=Idempotency(store, clock),
        writes=WriteBatches(store),
        endpoints=endpoints,
        deliveries=deliveries,
        sources=SourceService(store, clock, parsers),
        maintenance=MaintenanceService(store, clock),
        intake=Intake(store, clock),
        alerts=AlertProcessor(
            store, clock, parsers, incidents, lease=lease, batch=settings.worker_alert_batch,
            transaction_budget=(settings.worker_alert_transaction_ms / 1000
                                if settings.worker_alert_transaction_ms
                                and store.dialect == "sqlite" else None),
            digest_window=timedelta(seconds=settings.alert_digest_seconds),
            after_write=deliveries.hand_off, decide_first=store.dialect == "sqlite"),
        connectors=connectors,
        sync=sync,
        hooks=HookService(store, clock, connectors, incidents, sync),
        workers=WorkerRegistry(store, clock),
        status_pages=StatusPageService(store, clock),
        public_status=PublicStatus(store, clock),
        mail=MailService(store, clock, lease=lease),
        subscribers=subscribers,
    )
