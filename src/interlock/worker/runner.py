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
from interlock.worker.wakeup import Wakeup, listen

log = get_logger(__name__)


async def run_worker(container: Container, stop: asyncio.Event) -> None:
    """Process alerts and deliver webhooks until ``stop`` is set."""
    settings = container.settings
    wakeup, alerts_wakeup = Wakeup(), Wakeup()
    container.store.on_work_committed(wakeup.notify)
    container.store.on_work_committed(alerts_wakeup.notify)
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
    helpers = [asyncio.create_task(process_alerts(
        container.alerts, container.intake, alerts_wakeup, stop, worker.name,
        settings.worker_poll_seconds))]
    if settings.database_url.startswith(("postgresql", "postgres")):
        helpers.append(asyncio.create_task(
            listen(settings.database_url, EVENTS_CHANNEL, [wakeup, alerts_wakeup], stop)
        ))
    log.info("worker started", worker=worker.name)
    try:
        await worker.run(stop)
    finally:
        await asyncio.wait(helpers[:1], timeout=30)  # let a payload in progress finish
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await sender.close()
        log.info("worker stopped", worker=worker.name)
