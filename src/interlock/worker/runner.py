"""Running the worker: embedded next to the API (``interlock serve``) or alone
(``interlock worker``), with the same parts."""

from __future__ import annotations

import asyncio

from interlock.domain.targets import parse_allowed_networks
from interlock.logs import get_logger
from interlock.services.container import Container
from interlock.store.records import EVENTS_CHANNEL
from interlock.worker.engine import DeliveryWorker, WorkerSettings
from interlock.worker.processing import process_alerts
from interlock.worker.sender import AiohttpSender
from interlock.worker.sync import SyncSettings, SyncWorker
from interlock.worker.tool_http import AiohttpToolHttp
from interlock.worker.wakeup import Wakeup, listen

log = get_logger(__name__)


async def run_worker(container: Container, stop: asyncio.Event) -> None:
    """Process alerts, deliver webhooks and sync connectors until ``stop`` is set."""
    settings = container.settings
    wakeup, alerts_wakeup, sync_wakeup = Wakeup(), Wakeup(), Wakeup()
    for each in (wakeup, alerts_wakeup, sync_wakeup):
        container.store.on_work_committed(each.notify)
    # Fairness is per endpoint (each has its own lane); a per-host cap would let one
    # hanging endpoint starve others that share its host, so there is none.
    sender = AiohttpSender(allowed_networks=parse_allowed_networks(settings.allowed_targets),
                           limit=settings.worker_max_in_flight, limit_per_host=0)
    worker = DeliveryWorker(
        container.deliveries, sender, wakeup,
        WorkerSettings(
            batch=settings.worker_batch,
            max_in_flight=settings.worker_max_in_flight,
            per_endpoint=settings.worker_per_endpoint,
            poll_interval=settings.worker_poll_seconds,
        ),
    )
    tool_http = AiohttpToolHttp(allowed_networks=parse_allowed_networks(settings.allowed_targets),
                                timeout=settings.connector_timeout)
    syncer = SyncWorker(container.sync, tool_http, sync_wakeup, worker.name,
                        SyncSettings(poll_interval=settings.worker_poll_seconds,
                                     reconcile_check=min(30.0, settings.reconcile_seconds)))
    helpers = [
        asyncio.create_task(process_alerts(
            container.alerts, container.intake, alerts_wakeup, stop, worker.name,
            settings.worker_poll_seconds)),
        asyncio.create_task(syncer.run(stop)),
    ]
    if settings.database_url.startswith(("postgresql", "postgres")):
        helpers.append(asyncio.create_task(
            listen(settings.database_url, EVENTS_CHANNEL,
                   [wakeup, alerts_wakeup, sync_wakeup], stop)
        ))
    log.info("worker started", worker=worker.name)
    try:
        await worker.run(stop)
    finally:
        # Let a payload and the sync jobs in progress finish.
        await asyncio.wait(helpers[:2], timeout=30)
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await sender.close()
        await tool_http.close()
        log.info("worker stopped", worker=worker.name)
