"""Running the worker: alone (``interlock worker``, and the child process that
``interlock serve`` starts), or in the caller's process (tests, in-memory SQLite), with
the same parts, each supervised."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from interlock.domain.targets import parse_allowed_networks
from interlock.logs import get_logger
from interlock.services.container import Container
from interlock.services.workers import BEAT_SECONDS, TaskStates
from interlock.worker.engine import DeliveryWorker, WorkerSettings
from interlock.worker.processing import process_alerts
from interlock.worker.sender import AiohttpSender
from interlock.worker.supervisor import heartbeat, supervise
from interlock.worker.sync import SyncSettings, SyncWorker
from interlock.worker.tool_http import AiohttpToolHttp
from interlock.worker.wakeup import Wakeup

log = get_logger(__name__)

#: Seconds a failure to record results shows as failing in the worker's report.
RECORDING_FAILURE_SHOWN = 60.0


async def run_worker(container: Container, stop: asyncio.Event) -> None:
    """Process alerts, deliver webhooks and sync connectors until ``stop`` is set."""
    settings = container.settings
    wakeup, alerts_wakeup, sync_wakeup = Wakeup(), Wakeup(), Wakeup()
    wakeups = [wakeup, alerts_wakeup, sync_wakeup]
    for each in wakeups:
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
    states = TaskStates()
    parts: dict[str, Callable[[], Awaitable[None]]] = {
        "alerts": lambda: process_alerts(container.alerts, alerts_wakeup, stop, worker.name,
                                         settings.worker_poll_seconds),
        "sync": lambda: syncer.run(stop),
    }

    def wake_all() -> None:
        for each in wakeups:
            each.notify()

    parts["listen"] = lambda: container.store.listen_for_work(wake_all, stop)
    registry = container.workers
    started = container.clock.now()
    helpers = {name: asyncio.create_task(supervise(name, run, stop, states))
               for name, run in parts.items()}
    def beat() -> None:
        # Results a loop failed to record (it goes on, the work is redone when leases
        # lapse) count as failing for a minute: /readyz says so.
        for name, health in (("deliveries", worker.health), ("sync", syncer.health)):
            recent = (health.last_error_at is not None
                      and time.monotonic() - health.last_error_at < RECORDING_FAILURE_SHOWN)
            if recent and health.last_error:
                states.failed(f"{name} recording", health.last_error)
            else:
                states.states.pop(f"{name} recording", None)
        registry.beat(worker.name, started, states)

    helpers["heartbeat"] = asyncio.create_task(heartbeat(beat, stop, BEAT_SECONDS))
    log.info("worker started", worker=worker.name)
    try:
        await supervise("deliveries", lambda: worker.run(stop), stop, states)
    finally:
        stop.set()
        # Let a batch of alerts and the sync jobs in progress finish; the listener and
        # the heartbeat have nothing to finish.
        await asyncio.wait([helpers["alerts"], helpers["sync"]], timeout=30)
        for task in helpers.values():
            task.cancel()
        await asyncio.gather(*helpers.values(), return_exceptions=True)
        await sender.close()
        await tool_http.close()
        try:
            await asyncio.to_thread(registry.leave, worker.name)
        except Exception as error:  # the database is away; the row ages out
            log.warning("worker could not sign off", error=repr(error)[:300])
        log.info("worker stopped", worker=worker.name)
