"""Running the worker: alone (``interlock worker``, and the child process that
``interlock serve`` starts), or in the caller's process (tests, in-memory SQLite), with
the same parts, each supervised."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection

from interlock.config import Settings
from interlock.domain.targets import parse_allowed_networks
from interlock.logs import get_logger
from interlock.ports.store import Work
from interlock.services.container import Container
from interlock.services.workers import BEAT_SECONDS, TaskStates
from interlock.worker.engine import DeliveryWorker, WorkerSettings
from interlock.worker.mail import MailWorker, SmtpSettings, SmtpTransport
from interlock.worker.processing import process_alerts, wait_for_turn
from interlock.worker.sender import WebhookSender
from interlock.worker.supervisor import heartbeat, supervise
from interlock.worker.sync import SyncSettings, SyncWorker
from interlock.worker.tool_http import AiohttpToolHttp
from interlock.worker.wakeup import Wakeup

log = get_logger(__name__)

#: Seconds a stopping worker gives its parts to finish what is in flight.
STOP_GRACE = 45.0
#: Seconds a failure to record results shows as failing in the worker's report.
RECORDING_FAILURE_SHOWN = 60.0


#: What a worker can run; ``interlock worker --tasks`` picks some (all by default).
TASKS = ("alerts", "deliveries", "sync")


async def run_worker(container: Container, stop: asyncio.Event,
                     tasks: Collection[str] = TASKS, *, name: str | None = None) -> None:
    """Process alerts, deliver webhooks and sync connectors (or those of them named in
    ``tasks``) until ``stop`` is set; ``name``: what this worker leases under and
    reports as (services.workers.worker_name by default)."""
    settings = container.settings
    store = container.store

    def waking_for(work: Work) -> Wakeup:
        return Wakeup(lambda: store.work_taken(work))

    # Each loop wakes for its own work only: in a storm, payload commits come by the
    # hundred per second and must not send deliveries, sync and mail looking for events.
    wakeups = {work: waking_for(work) for work in (Work.PAYLOADS, Work.EVENTS, Work.SYNC,
                                                   Work.MAIL, Work.HANDED)}
    # Other processes tell this one only of the work its loops look for, each kind once
    # until a loop looks again (its wait ends: Wakeup's ``taken``).
    wanted = ((Work.PAYLOADS if "alerts" in tasks else Work(0))
              | (Work.EVENTS | Work.HANDED | Work.MAIL if "deliveries" in tasks else Work(0))
              | (Work.SYNC if "sync" in tasks else Work(0)))
    for work, each in wakeups.items():
        store.on_work_committed(each.notify, work)
    # Fairness is per endpoint (each has its own lane); a per-host cap would let one
    # hanging endpoint starve others that share its host, so there is none.
    sender = WebhookSender(allowed_networks=parse_allowed_networks(settings.allowed_targets),
                           limit=settings.worker_max_in_flight, limit_per_host=0)
    worker = DeliveryWorker(
        container.deliveries, sender, wakeups[Work.EVENTS],
        WorkerSettings(
            batch=settings.worker_batch,
            max_in_flight=settings.worker_max_in_flight,
            per_endpoint=settings.worker_per_endpoint,
            poll_interval=settings.worker_poll_seconds,
            gather=settings.worker_gather_ms / 1000,
            record_every=settings.worker_record_ms / 1000,
        ),
        handed=wakeups[Work.HANDED], name=name,
    )
    tool_http = AiohttpToolHttp(allowed_networks=parse_allowed_networks(settings.allowed_targets),
                                timeout=settings.connector_timeout)
    syncer = SyncWorker(container.sync, tool_http, wakeups[Work.SYNC], worker.name,
                        SyncSettings(poll_interval=settings.worker_poll_seconds,
                                     reconcile_check=min(30.0, settings.reconcile_seconds)))
    # Mail goes out with the webhooks (the "deliveries" task): both are messages to
    # subscribers, and both wait for their peer rather than for the database.
    mailer = MailWorker(container.mail, SmtpTransport(smtp_settings(settings)),
                        wakeups[Work.MAIL], worker.name,
                        poll_interval=settings.worker_poll_seconds)
    states = TaskStates()

    def wake(work: Work) -> None:
        for kind, each in wakeups.items():
            if kind & work:
                each.notify()

    async def alerts_in_turn() -> None:
        if not await wait_for_turn(lambda: container.store.take_turn("alerts", worker.name),
                                   stop, states):
            return
        try:
            await process_alerts(container.alerts, wakeups[Work.PAYLOADS], stop, worker.name,
                                 settings.worker_poll_seconds,
                                 sharing=lambda: container.workers.doing("alerts"))
        finally:
            # Before this worker signs off: /readyz never sees the turn held by a
            # worker it no longer hears from unless that worker is frozen.
            container.store.end_turn("alerts")

    every: dict[str, Callable[[], Awaitable[None]]] = {
        "alerts": alerts_in_turn,
        "deliveries": lambda: worker.run(stop),
        "sync": lambda: syncer.run(stop),
    }
    parts = {name: run for name, run in every.items() if name in tasks}
    if "deliveries" in tasks:
        parts["mail"] = lambda: mailer.run(stop)
    parts["listen"] = lambda: store.listen_for_work(wake, stop, wanted)
    registry = container.workers
    started = container.clock.now()

    def beat() -> None:
        # Results a loop failed to record (it goes on, the work is redone when leases
        # lapse) count as failing for a minute: /readyz says so.
        for name, health in (("deliveries", worker.health), ("sync", syncer.health),
                             ("mail", mailer.health)):
            recent = (health.last_error_at is not None
                      and time.monotonic() - health.last_error_at < RECORDING_FAILURE_SHOWN)
            if recent and health.last_error:
                states.failed(f"{name} recording", health.last_error)
            else:
                states.states.pop(f"{name} recording", None)
        registry.beat(worker.name, started, states)

    helpers = {name: asyncio.create_task(supervise(name, run, stop, states))
               for name, run in parts.items()}
    helpers["heartbeat"] = asyncio.create_task(heartbeat(beat, stop, BEAT_SECONDS))
    log.info("worker started", worker=worker.name, tasks=sorted(parts))
    try:
        await stop.wait()
    finally:
        # Let a batch of alerts, the deliveries and the sync jobs in progress finish and
        # be recorded; the listener and the heartbeat have nothing to finish.
        finishing = [helpers[name] for name in (*TASKS, "mail") if name in helpers]
        await asyncio.wait(finishing, timeout=STOP_GRACE)
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


def smtp_settings(settings: Settings) -> SmtpSettings:
    """The mail server's settings; the password leaves its SecretStr only here."""
    password = settings.smtp_password
    return SmtpSettings(
        host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
        username=settings.smtp_username,
        password=password.get_secret_value() if password is not None else None,
        starttls=settings.smtp_starttls, timeout=settings.smtp_timeout)
