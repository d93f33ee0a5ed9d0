"""The wired application, typed by ports only, so adapters (api, cli, worker) can hold
it without importing each other. ``interlock.bootstrap.build`` makes one."""

from __future__ import annotations

from dataclasses import dataclass

from interlock.config import Settings
from interlock.ports.clock import Clock
from interlock.ports.store import Store
from interlock.services.connectors import ConnectorService
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


@dataclass
class Container:
    settings: Settings
    clock: Clock
    store: Store
    incidents: IncidentService
    keys: KeyService
    idempotency: Idempotency
    #: People's incident changes, committed together when they arrive together.
    writes: WriteBatches
    endpoints: EndpointService
    deliveries: DeliveryService
    sources: SourceService
    maintenance: MaintenanceService
    intake: Intake
    alerts: AlertProcessor
    connectors: ConnectorService
    sync: SyncService
    hooks: HookService
    workers: WorkerRegistry
    status_pages: StatusPageService
    public_status: PublicStatus
    mail: MailService
    subscribers: SubscriberService

    def close(self) -> None:
        self.store.close()
