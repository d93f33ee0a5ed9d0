"""Two-way sync as use cases: fan events out to connectors as jobs, lease due jobs, run
them through their driver, and record what happened.

The queue is the webhook queue's twin: jobs are made from the event outbox in the same
transaction that fans events out to endpoints, leased, retried on the same schedule
(RetryPolicy), and kept in order per connector and incident. The async loop that
drives this lives in ``interlock.worker.sync``.

Echo rule: an event whose origin is connector X never becomes a job for X.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from interlock.domain import incidents as rules
from interlock.domain import ownership, webhooks
from interlock.domain.alerts import Alert
from interlock.domain.connectors import (
    PUSHED_EVENTS,
    Activity,
    Call,
    Connector,
    Direction,
    JobKind,
    JobStatus,
    Link,
    Outcome,
    SyncJob,
)
from interlock.domain.errors import (
    InterlockError,
    StoreUnavailable,
    ToolCredentialsRefused,
    ToolFailed,
)
from interlock.domain.events import Event, EventType, Origin
from interlock.domain.filters import Filter
from interlock.domain.ids import new_id
from interlock.domain.incidents import Incident, Status
from interlock.domain.retry import RETRY_AFTER_CAP, RetryPolicy
from interlock.logs import get_logger
from interlock.ports.clock import Clock
from interlock.ports.connector import (
    LinkWrite,
    Pull,
    PullResult,
    Push,
    PushResult,
    SyncContext,
    ToolHttp,
    ToolResponse,
)
from interlock.ports.store import JobOutcome, Store, Transaction
from interlock.services.connectors import ConnectorService
from interlock.services.incidents import IncidentService, Viewer

log = get_logger(__name__)

DEFAULT_LEASE = timedelta(seconds=120)
#: Resolved incidents are still reconciled for this long (a ticket reopened after).
RECONCILE_AFTER_RESOLVED = timedelta(days=1)
RECONCILE_BATCH = 200
#: Most alerts handed to a driver (a silence needs their common labels, not all).
ALERTS_FOR_DRIVER = 500
#: How long a rate-limited job waits when the tool gave no Retry-After.
THROTTLED_WAIT = 30.0


@dataclass(frozen=True)
class JobWork:
    """A leased job with everything its driver needs."""

    job: SyncJob
    connector: Connector
    incident: Incident
    link: Link | None
    event: Event | None = None
    alerts: Sequence[Alert] = ()
    #: Why the connector cannot run at all (its credentials do not decrypt): the job
    #: fails with it, and only this connector's jobs do.
    unusable: InterlockError | None = None


@dataclass(frozen=True)
class JobDone:
    work: JobWork
    started_at: datetime
    calls: tuple[Call, ...]
    result: PushResult | PullResult | None = None
    error: InterlockError | None = None


class RecordingHttp:
    """A ToolHttp that remembers every call, for the activity log."""

    def __init__(self, inner: ToolHttp) -> None:
        self._inner = inner
        self.calls: list[Call] = []

    async def request(self, method: str, url: str, *, json: Any = None,
                      data: bytes | None = None, headers: Mapping[str, str] | None = None
                      ) -> ToolResponse:
        started = time.perf_counter()
        try:
            response = await self._inner.request(method, url, json=json, data=data,
                                                 headers=headers)
        except ToolFailed as error:
            self.calls.append(Call(method, url, None, _ms(started), error.detail[:300]))
            raise
        self.calls.append(Call(method, url, response.status, _ms(started)))
        return response


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class SyncService:
    def __init__(
        self, store: Store, clock: Clock, connectors: ConnectorService,
        incidents: IncidentService, *,
        base_url: str, reconcile_every: timedelta = timedelta(minutes=5),
        policy: RetryPolicy | None = None, lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self._store = store
        self._clock = clock
        self._connectors = connectors
        self._drivers = connectors.drivers
        #: The drivers that push (an isinstance of a Protocol costs tens of µs).
        self._pushers = {kind: driver for kind, driver in self._drivers.items()
                         if isinstance(driver, Push)}
        self._plugins = {kind: connectors.plugin(kind) for kind in connectors.kinds}
        self._paced_kinds = sorted(kind for kind in self._plugins if self.pace(kind))
        self._incidents = incidents
        self._base_url = base_url.rstrip("/")
        self._reconcile_every = reconcile_every
        self._policy = policy or RetryPolicy()
        self._lease = lease

    def now(self) -> datetime:
        return self._clock.now()

    @property
    def lease(self) -> timedelta:
        return self._lease

    def pace(self, kind: str) -> float:
        """Seconds between the starts of one connector's jobs, as its plugin says its
        tool's rate limit needs (0: no pacing)."""
        plugin = self._plugins.get(kind)
        return (plugin.pace or 0.0) if plugin is not None else 0.0

    def incident_url(self, incident: Incident) -> str:
        return f"{self._base_url}/incidents/{incident.reference}"

    # -- fan-out (runs inside the webhook dispatcher's transaction) ----------------------

    def fan_out(self, tx: Transaction, events: Sequence[Event], now: datetime) -> None:
        """Queue a push job per event and connector that shares the incident, except to
        the connector the change came from."""
        relevant = [event for event in events
                    if event.incident_id and event.type in PUSHED_EVENTS]
        if not relevant:
            return
        pushers = self._pushers
        routes = [(stored.connector, Filter.parse(stored.connector.filter))
                  for stored in tx.connectors.enabled()
                  if stored.connector.kind in pushers]
        if not routes:
            return
        jobs = []
        # Alerts joining an incident that already has a push waiting to start need no
        # push of their own: that one sends the incident as it is when it runs. In a
        # storm this keeps a tool from getting a call per alert.
        unstarted = tx.sync_jobs.unstarted_pairs(
            {connector.id for connector, _ in routes},
            {event.incident_id for event in relevant
             if event.type is EventType.INCIDENT_ALERT_ATTACHED and event.incident_id},
            JobKind.PUSH)
        for event in relevant:
            incident: Any = webhooks.redact(event.data).get("incident")
            for connector, where in routes:
                if connector.is_origin_of(event.origin) or not where.matches(incident):
                    continue
                if not pushers[connector.kind].wants(event):
                    continue
                pair = (connector.id, event.incident_id or "")
                if event.type is EventType.INCIDENT_ALERT_ATTACHED and pair in unstarted:
                    continue
                unstarted.add(pair)
                jobs.append(_job(connector.id, event.incident_id or "", JobKind.PUSH, now,
                                 reason=event.type.value, event_id=event.id))
        self._enqueue(tx, jobs)

    def _enqueue(self, tx: Transaction, jobs: list[SyncJob]) -> None:
        """Insert jobs; one queued behind a pending job of the same connector and
        incident waits (no due time) until that one finishes."""
        if not jobs:
            return
        queued = tx.sync_jobs.pending_pairs({job.connector_id for job in jobs},
                                            {job.incident_id for job in jobs})
        placed = []
        for job in jobs:
            pair = (job.connector_id, job.incident_id)
            if pair in queued:
                job = dataclasses.replace(job, next_attempt_at=None)
            queued.add(pair)
            placed.append(job)
        tx.sync_jobs.insert_many(placed)

    def enqueue_in(self, tx: Transaction, connector_id: str, incident_id: str,
                   kind: JobKind, reason: str) -> bool:
        """Queue a pull or refresh unless one is already waiting (they coalesce: one
        pull reads everything that changed)."""
        if tx.sync_jobs.waiting(connector_id, incident_id, kind):
            return False
        self._enqueue(tx, [_job(connector_id, incident_id, kind, self._clock.now(),
                                reason=reason)])
        return True

    # -- reconciliation ----------------------------------------------------------------

    def reconcile(self, limit: int = RECONCILE_BATCH) -> int:
        """Queue a pull for each link not pulled for a while: it heals webhooks that
        never arrived. Returns the pulls queued."""
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            ids = [stored.connector.id for stored in tx.connectors.enabled()
                   if self._reconciles(stored.connector.kind)]
            links = tx.links.due_for_reconcile(ids, now - self._reconcile_every,
                                               now - RECONCILE_AFTER_RESOLVED, limit)
            queued = sum(self.enqueue_in(tx, link.connector_id, link.incident_id,
                                         JobKind.PULL, "reconcile") for link in links)
            tx.links.mark_reconciled([link.id for link in links], now)
        return queued

    # -- leasing and running -----------------------------------------------------------

    def _reconciles(self, kind: str) -> bool:
        plugin = self._plugins.get(kind)
        return (plugin is not None and plugin.reconciles
                and isinstance(self._drivers.get(kind), Pull))

    def claim(self, owner: str, limit: int, exclude_connectors: Sequence[str] = ()
              ) -> list[JobWork]:
        now = self._clock.now()
        # A paced tool's jobs are run by one worker at a time: each worker keeps the
        # pace in its own lane, so two running them called the tool twice as fast, and
        # Slack answered 429 (bench/storm.py with two workers: 10 of 42 calls). Another
        # worker takes the lane over once the holder has no job leased.
        paced = self._paced_kinds
        # Every commit of an event wakes this; most find nothing for connectors (or only
        # jobs already leased, or of lanes that are full or another worker's), and on
        # SQLite a write transaction would queue behind (and in front of) real writers.
        with self._store.transaction() as tx:
            held = tx.sync_jobs.held_elsewhere(owner, now, paced) if paced else []
            if not tx.sync_jobs.any_due(now, [*exclude_connectors, *held]):
                return []
        with self._store.transaction(write=True) as tx:
            jobs = tx.sync_jobs.claim(owner, now, now + self._lease, limit,
                                      exclude_connectors, paced_kinds=paced)
        if not jobs:
            return []
        # What the jobs need, read after the claim has committed: a handful of queries
        # for the whole batch, none of them holding the write lock.
        with self._store.transaction() as tx:
            opened: dict[str, Connector] = {}
            unusable: dict[str, InterlockError] = {}
            for connector_id in sorted({job.connector_id for job in jobs}):
                stored = tx.connectors.get(connector_id)
                if stored is None:  # deleted since; its jobs went with it
                    continue
                try:
                    opened[connector_id] = self._connectors.open(stored)
                except InterlockError as error:
                    # Credentials sealed with another INTERLOCK_SECRET_KEY: this
                    # connector's jobs fail (and it shows as failing); others go on.
                    opened[connector_id] = stored.connector
                    unusable[connector_id] = ToolFailed(error.detail, retryable=True)
            incidents = tx.incidents.get_many({job.incident_id for job in jobs})
            links = {(link.connector_id, link.incident_id): link
                     for link in tx.links.for_incidents(incidents)}
            events = tx.events.get_many({job.event_id for job in jobs if job.event_id})
            work = []
            for job in jobs:
                connector = opened.get(job.connector_id)
                incident = incidents.get(job.incident_id)
                if connector is None or incident is None:
                    continue
                plugin = self._plugins.get(connector.kind)
                alerts: Sequence[Alert] = ()
                if (plugin is not None and plugin.uses_alerts
                        and connector.id not in unusable):
                    alerts = tx.alerts.for_incident(incident.id)[:ALERTS_FOR_DRIVER]
                work.append(JobWork(
                    job=job, connector=connector, incident=incident,
                    link=links.get((job.connector_id, job.incident_id)),
                    event=events.get(job.event_id) if job.event_id else None,
                    alerts=alerts, unusable=unusable.get(connector.id),
                ))
        return work

    async def run(self, work: JobWork, http: ToolHttp) -> JobDone:
        """Run one job through its driver. Never raises for what the tool or the driver
        does: every outcome is recorded."""
        started = self._clock.now()
        recorder = RecordingHttp(http)
        driver = self._drivers.get(work.connector.kind)
        context = SyncContext(
            connector=work.connector, incident=work.incident, link=work.link, http=recorder,
            now=started, incident_url=self.incident_url(work.incident), event=work.event,
            alerts=work.alerts, attempt=work.job.attempts + 1,
        )
        result: PushResult | PullResult | None = None
        try:
            if work.unusable is not None:
                raise work.unusable
            if driver is None:
                raise InterlockError(f"no driver for connector kind {work.connector.kind!r}")
            if work.job.kind is JobKind.PUSH and isinstance(driver, Push):
                result = await driver.push(context)
            elif work.job.kind is JobKind.REFRESH and isinstance(driver, Push):
                result = await driver.refresh(context) if work.link else None
            elif work.job.kind is JobKind.PULL and isinstance(driver, Pull):
                result = await driver.pull(context) if work.link else None
        except InterlockError as error:
            return JobDone(work, started, tuple(recorder.calls), error=error)
        except Exception as error:  # a driver bug must not stop the loop; it is shown
            log.exception("connector driver failed", connector=work.connector.id)
            return JobDone(work, started, tuple(recorder.calls), error=ToolFailed(
                f"the {work.connector.kind} driver failed: {type(error).__name__}: {error}",
                retryable=True))
        return JobDone(work, started, tuple(recorder.calls), result=result)

    def record(self, owner: str, done: JobDone) -> None:
        """Write a job's outcome: links, incident changes pulled from the tool, the
        activity row, the connector's health, and the job's next step."""
        now = self._clock.now()
        work, job = done.work, done.work.job
        try:
            with self._store.transaction(write=True) as tx:
                if not tx.connectors.hold(work.connector.id):
                    log.info("sync job of a deleted connector not recorded", job=job.id)
                    return
                summary = self._apply(tx, done, now) if done.error is None else ""
                if isinstance(done.result, PushResult) and done.result.failed is not None:
                    done = JobDone(work, done.started_at, done.calls, done.result,
                                   error=done.result.failed)
                outcome, activity = self._outcome(done, summary, now)
                tx.sync_jobs.complete(owner, [outcome], now)
                tx.connector_activity.append([activity])
                learned = _attention(work.connector, done.error, now, done.result.learned
                                     if isinstance(done.result, PushResult) else None)
                if activity.outcome is not Outcome.SKIPPED or learned:
                    tx.connectors.record_health(work.connector.id, at=now,
                                                error=activity.error, learned=learned)
            return
        except InterlockError as error:
            if error.retryable:
                raise
            failed = JobDone(work, done.started_at, done.calls, error=error)
        # Applying what the tool said failed (say, a status the incident cannot take):
        # record that instead, in a fresh transaction.
        with self._store.transaction(write=True) as tx:
            if not tx.connectors.hold(work.connector.id):
                return
            outcome, activity = self._outcome(failed, "", now)
            tx.sync_jobs.complete(owner, [outcome], now)
            tx.connector_activity.append([activity])
            tx.connectors.record_health(work.connector.id, at=now, error=activity.error,
                                        learned=_attention(work.connector, failed.error, now))
        log.info("sync job failed while applying", job=job.id, error=failed.error)

    def record_many(self, owner: str, batch: Sequence[JobDone]) -> None:
        """Write many jobs' outcomes in one transaction: in a storm hundreds finish a
        second, and on SQLite each write transaction is a turn at the one write lock.
        If applying any of them fails, each is written on its own, as :meth:`record`
        does, so one job's failure is recorded as its own."""
        if len(batch) <= 1:
            for done in batch:
                self.record(owner, done)
            return
        now = self._clock.now()
        try:
            with self._store.transaction(write=True) as tx:
                outcomes, activities = [], []
                health: dict[str, tuple[str | None, Any]] = {}
                present = {connector_id for connector_id in
                           sorted({done.work.connector.id for done in batch})
                           if tx.connectors.hold(connector_id)}
                for done in batch:
                    if done.work.connector.id not in present:
                        log.info("sync job of a deleted connector not recorded",
                                 job=done.work.job.id)
                        continue
                    summary = self._apply(tx, done, now) if done.error is None else ""
                    if isinstance(done.result, PushResult) and done.result.failed is not None:
                        done = JobDone(done.work, done.started_at, done.calls, done.result,
                                       error=done.result.failed)
                    outcome, activity = self._outcome(done, summary, now)
                    outcomes.append(outcome)
                    activities.append(activity)
                    learned = _attention(done.work.connector, done.error, now,
                                         done.result.learned
                                         if isinstance(done.result, PushResult) else None)
                    before = health.get(done.work.connector.id, (None, None))
                    health[done.work.connector.id] = (activity.error, learned or before[1])
                tx.sync_jobs.complete(owner, outcomes, now)
                tx.connector_activity.append(activities)
                for connector_id, (error, learned) in health.items():
                    tx.connectors.record_health(connector_id, at=now, error=error,
                                                learned=learned)
            return
        except StoreUnavailable:
            raise
        except InterlockError as error:
            log.info("recording sync jobs one at a time", jobs=len(batch), error=error.detail)
        for done in batch:
            self.record(owner, done)

    def _outcome(self, done: JobDone, summary: str, now: datetime
                 ) -> tuple[JobOutcome, Activity]:
        job = done.work.job
        error = done.error
        status, next_at = JobStatus.SUCCEEDED, None
        if _throttled(error):
            # The tool asked to slow down: try again after its Retry-After, without
            # counting the attempt (the store adds one to the attempts given).
            wait = error.retry_after if isinstance(error, ToolFailed) else None
            next_at = now + min(timedelta(seconds=max(wait or THROTTLED_WAIT, 1.0)),
                                RETRY_AFTER_CAP)
            activity = self._activity(done, summary, now, next_at)
            return (JobOutcome(dataclasses.replace(job, attempts=job.attempts - 1),
                               JobStatus.PENDING, next_at, activity.error), activity)
        if error is not None:
            if error.retryable:
                retry_after = error.retry_after if isinstance(error, ToolFailed) else None
                next_at = self._policy.after_failure(job.attempts + 1, now,
                                                     retry_after).next_attempt_at
            status = JobStatus.PENDING if next_at else JobStatus.FAILED
        activity = self._activity(done, summary, now, next_at)
        return JobOutcome(job, status, next_at, activity.error), activity

    def _activity(self, done: JobDone, summary: str, now: datetime,
                  next_at: datetime | None) -> Activity:
        job, error = done.work.job, done.error
        outcome = Outcome.SUCCEEDED if error is None else Outcome.FAILED
        said_skip = isinstance(done.result, PushResult) and done.result.skipped
        if error is None and (said_skip or (not done.calls and not summary)):
            outcome = Outcome.SKIPPED
        activity = Activity(
            id=new_id("act", now), connector_id=job.connector_id, at=done.started_at,
            direction=Direction.OUTBOUND if job.kind is not JobKind.PULL else Direction.INBOUND,
            action=f"{job.kind.value}:{job.reason}", outcome=outcome,
            summary=summary or (error.detail if error else "nothing to do"),
            incident_id=job.incident_id, job_id=job.id, attempt=job.attempts + 1,
            calls=done.calls, error=error.detail if error else None, next_attempt_at=next_at,
        )
        return activity

    def _apply(self, tx: Transaction, done: JobDone, now: datetime) -> str:
        work, result = done.work, done.result
        if result is None:
            return "no link yet; nothing to do"
        origin = work.connector.origin
        link = work.link
        if isinstance(result, PullResult):
            link, applied = self._apply_pull(tx, work, result)
            parts = [result.summary, *applied]
        else:
            parts = [result.summary]
        if result.link is not None:
            link = self._write_link(tx, work, link, result.link, now)
            if isinstance(result, PushResult) and not result.skipped:
                # What the push wrote is now what the tool shows: remembered here, so
                # no driver has to (domain.ownership). After a push that failed in
                # part, only what the driver says it wrote or saw.
                link = dataclasses.replace(link, state=ownership.state_after_push(
                    work.connector.mapping, link.state, work.incident, result.comment_ids,
                    shown=result.status_shown, succeeded=result.failed is None))
                tx.links.put(link)
        elif link is not None and link is not work.link:
            tx.links.put(link)
        for note in result.notes:
            self._incidents.note_in(tx, work.incident.id, origin, note)
        return "; ".join(part for part in parts if part)

    def _write_link(self, tx: Transaction, work: JobWork, current: Link | None,
                    write: LinkWrite, now: datetime) -> Link:
        link = Link(
            id=current.id if current else new_id("lnk", now),
            connector_id=work.connector.id, incident_id=work.incident.id, kind=write.kind,
            external_id=write.external_id, url=write.url,
            state={**(current.state if current else {}), **write.state},
            created_at=current.created_at if current else now, updated_at=now,
            reconciled_at=current.reconciled_at if current else now,
        )
        tx.links.put(link)
        return link

    def _apply_pull(self, tx: Transaction, work: JobWork, result: PullResult
                    ) -> tuple[Link | None, list[str]]:
        """Apply what changed in the tool since Interlock last wrote or read it there.
        The comparison is with the link's ``seen`` state, not with the incident: a tool
        still showing what Interlock itself wrote is not a change."""
        link = work.link
        if link is None:
            return None, []
        connector = work.connector
        decision = ownership.decide_pull(connector.mapping, link.state, ownership.PulledState(
            status=result.status, assignee=result.assignee,
            comment_ids=[comment.id for comment in result.comments]))
        viewer = Viewer(origin=connector.origin, can_see_private=True)
        applied: list[str] = []
        key = work.incident.id
        if decision.status is not None:
            status = decision.status
            for command in _commands_to(status):
                self._incidents.apply_in(
                    tx, viewer, key, command,
                    note=f"Status set to {status.value} in {connector.name}")
            applied.append(f"status → {status.value}")
        if not ownership.is_unset(decision.assignee):
            assignee = decision.assignee
            self._incidents.apply_in(
                tx, viewer, key,
                lambda incident, now: rules.update(incident, {"assignee": assignee}, now),
                note=f"Assignee set to {assignee or '(nobody)'} in {connector.name}")
            applied.append(f"assignee → {assignee or '(nobody)'}")
        comments = {comment.id: comment for comment in result.comments}
        for comment_id in decision.new_comments:
            comment = comments[comment_id]
            author = Viewer(origin=Origin(kind=connector.origin.kind, id=connector.id,
                                          name=connector.name, actor=comment.author),
                            can_see_private=True)
            self._incidents.comment_in(tx, author, key, comment.body)
            applied.append(f"comment from {comment.author}")
        state = {**link.state, "seen": dict(decision.seen),
                 "comments": list(decision.known_comments)}
        return dataclasses.replace(link, state=state, updated_at=self._clock.now()), applied


def _throttled(error: InterlockError | None) -> bool:
    """A rate limit (HTTP 429): not a failed attempt, only a later one."""
    return isinstance(error, ToolFailed) and error.status_code == 429


def _attention(connector: Connector, error: InterlockError | None, now: datetime,
               learned: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """What to merge into the connector's state about credentials the tool refused:
    ``needs_attention`` set (since the first refusal) on a refusal, cleared by the next
    success, so health shows a person must act instead of a stream of failures."""
    merged = dict(learned or {})
    current = connector.state.get("needs_attention")
    if isinstance(error, ToolCredentialsRefused):
        since = current.get("since") if isinstance(current, Mapping) else None
        merged["needs_attention"] = {"since": since or now.isoformat(),
                                     "reason": error.detail}
    elif error is None and current:
        merged["needs_attention"] = None
    return merged or None


def _commands_to(status: Status) -> list[Any]:
    """The incident commands that bring any status to ``status`` (each a no-op where it
    does not apply). Nothing takes an acknowledged incident back to triggered."""
    if status is Status.RESOLVED:
        return [rules.resolve]
    if status is Status.ACKNOWLEDGED:
        return [rules.reopen, rules.acknowledge]
    return [rules.reopen]


def _job(connector_id: str, incident_id: str, kind: JobKind, now: datetime, *,
         reason: str, event_id: str | None = None) -> SyncJob:
    return SyncJob(
        id=new_id("job", now), connector_id=connector_id, incident_id=incident_id,
        kind=kind, status=JobStatus.PENDING, attempts=0, next_attempt_at=now,
        created_at=now, reason=reason, event_id=event_id,
    )
