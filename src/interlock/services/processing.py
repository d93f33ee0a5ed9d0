"""Alerts in, second half: parse, deduplicate and correlate received payloads in bulk.

A worker claims hundreds of payloads at once, across sources, parses them outside any
transaction, and applies them in one write transaction whose reads and writes are
set-based: one query for the batch's alerts, one for its groups, one for their
incidents, and one statement per kind of row written. In a storm the cost of a payload
is its parsing and its share of a few statements, not a dozen round trips; and a storm
of 10,000 alerts into one incident is one ``incident.alert_attached`` per batch, not
10,000.

Several workers (PostgreSQL) may process payloads of one source at once:

* Within a batch, payloads are applied in arrival order. Across batches, an alert keeps
  the queue position of the payload that last reported it and ignores older ones, so a
  later payload is never overtaken by an earlier one for the same alert.
* The batch's alerts, groups and its incidents' digests are read locked, each kind in
  key order, so two workers wait for each other rather than deadlock. A new alert,
  group or digest that another worker stored first fails the insert (a unique
  constraint): the batch rolls back and runs again, and then finds it. One group never
  opens two incidents.
* The incidents themselves are not held while the batch works: people change them
  meanwhile (a comment, an acknowledgement) without waiting for a batch of hundreds of
  alerts to commit; on PostgreSQL with two workers they waited seconds. The incidents
  the batch tells of alerts are locked just before, and told as they are then (a
  comment since stays); if one was opened or closed meanwhile, or a reopening finds it
  changed, the batch runs again. (With digests off, the batch holds its incidents as
  before: there is no digest to hold.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from interlock.domain import digests as digest_rules
from interlock.domain import incidents as incident_rules
from interlock.domain import json_input
from interlock.domain import sources as rules
from interlock.domain.alerts import (
    Alert,
    AlertStatus,
    PayloadStatus,
    ReceivedPayload,
    Signal,
    SignalAction,
    alert_to_dict,
)
from interlock.domain.digests import ALERTS_PER_EVENT, Digest, Joined, Telling
from interlock.domain.errors import (
    ConcurrentUpdate,
    Conflict,
    InterlockError,
    LeaseLost,
    PreconditionFailed,
)
from interlock.domain.events import Origin, OriginKind
from interlock.domain.evolve import evolve
from interlock.domain.ids import new_id
from interlock.domain.incidents import Incident, Severity
from interlock.domain.maintenance import MaintenanceMode, MaintenanceWindow, first_covering
from interlock.domain.sources import Source
from interlock.logs import get_logger
from interlock.ports.clock import Clock
from interlock.ports.parser import PayloadParser
from interlock.ports.store import Store, Transaction
from interlock.services.incidents import Attachment, Declaration, IncidentService, Viewer

log = get_logger(__name__)

#: Payloads claimed and applied per transaction, at most.
BATCH = 500
#: Incidents whose waiting alerts are told per transaction. A storm's 1,000 incidents
#: fall due together; telling them in one transaction held SQLite's write lock for
#: 200-400 ms, and every ingest request and person's write waited that long.
TELL_BATCH = 50
#: The fewest a batch shrinks to when a transaction budget is set.
MIN_BATCH = 50
#: While batches come back full (more is waiting than a batch takes), the worker is
#: behind, and its transactions may last this many times the budget: larger batches
#: cost less per alert. Kept to the budget, a slower machine fell further behind in a
#: storm (bench/storm.py); kept to twice the budget always, people's writes waited longer.
CATCH_UP = 2
#: Times a batch is run again after another worker stored one of its alerts or groups.
CONFLICT_RETRIES = 5
#: A flag counting the write transactions that changed alerts, groups or digests
#: (SQLite): a batch decided before the write lock is written as decided only if none
#: came between (another worker's batch, a telling); else it is read and decided again.
ALERT_WRITES = "alert_writes"
#: Provisional queue positions of spooled payloads while their batch is decided: after
#: every stored payload's, as theirs will be.
_PROVISIONAL = 1 << 62
#: Processing attempts before a payload that keeps failing is set aside as failed.
MAX_ATTEMPTS = 5
FINGERPRINT_MAX = 200
GROUP_KEY_MAX = 400

_Key = tuple[str, str]
_T = TypeVar("_T")


@dataclass(frozen=True)
class Parsed:
    """A claimed payload after parsing: its signals, or why it cannot be applied."""

    payload: ReceivedPayload
    source: Source | None
    signals: Sequence[Signal] = ()
    failure: str | None = None


class AlertProcessor:
    def __init__(self, store: Store, clock: Clock, parser: PayloadParser,
                 incidents: IncidentService, lease: timedelta = timedelta(seconds=120),
                 batch: int = BATCH, transaction_budget: float | None = None,
                 digest_window: timedelta = timedelta(0),
                 after_write: Callable[[Transaction], None] | None = None,
                 decide_first: bool = False) -> None:
        """``transaction_budget``: seconds a batch's write transaction should last at
        most. On SQLite every other writer (people using the API) waits that long, so
        the batch size follows the time the last batches took; in a storm batches grow
        as large as the budget allows, when it is quiet they are whatever has arrived.
        ``digest_window``: alerts joining an incident within this long of its last
        ``incident.alert_attached`` wait to be told together (domain/digests.py); zero
        tells every batch's alerts at once. ``after_write``: called at the end of each
        write transaction that applies alerts or tells digests, before it commits (the
        events' fan-out, DeliveryService.hand_off). ``decide_first`` (SQLite): read and
        decide each batch in a read transaction, and take the write lock only to write
        it (:meth:`_decided`); people's writes then wait for less."""
        self._after_write = after_write
        self._store = store
        self._clock = clock
        self._parse = parser
        self._incidents = incidents
        self._lease = lease
        self._batch = batch
        self._budget = transaction_budget
        self._limit = batch if transaction_budget is None else min(batch, 100)
        self._behind = False
        self._window = digest_window
        self._decide_first = decide_first

    def process(self, owner: str, limit: int | None = None) -> int:
        """Claim, parse and apply a batch of pending payloads (or, once none is free,
        of those waiting in the ingest spool); returns how many were taken. If the batch
        fails for a reason that is not a conflict, its payloads are applied again one
        per transaction, so one bad payload cannot hold back others."""
        now = self._clock.now()
        limit = limit or self._limit
        if self._decide_first:
            # A read first: on SQLite a write transaction would queue behind (and in
            # front of) people's requests for nothing. On PostgreSQL the claim is the
            # look: each transaction is round trips, milliseconds each on a busy machine.
            with self._store.transaction() as tx:
                if not tx.payloads.any_free(now):
                    return self._process_spooled(limit)
        with self._store.transaction(write=True) as tx:
            claimed = tx.payloads.claim(owner, now, now + self._lease, limit)
            sources = (tx.sources.get_many({payload.source_id for payload in claimed})
                       if claimed else {})
        self._behind = len(claimed) >= limit
        if not claimed:
            return 0 if self._decide_first else self._process_spooled(limit)
        self.process_claimed(claimed, owner, sources)
        return len(claimed)

    def _process_spooled(self, limit: int) -> int:
        """Apply the oldest payloads of the ingest spool (SQLite shared with worker
        processes) in the transaction that stores them: no lease, no claim, one write
        transaction for the batch. A payload stored before (a batch repeated after a
        crash, or by another worker) is not applied again; one of a source deleted while
        it waited goes with the source. If the batch fails, its payloads are stored
        pending instead, and taken one at a time as any other."""
        waiting = self._store.received_oldest(limit)
        self._behind = len(waiting) >= limit
        if not waiting:
            return 0
        received = [payload for _, payload in waiting]
        with self._store.transaction() as tx:
            sources = tx.sources.get_many({payload.source_id for payload in received})
        readers = self._readers(sources)
        kept = [payload for payload in received if payload.source_id in sources]
        parsed = {payload.id: self.parse(payload, sources[payload.source_id],
                                         readers[payload.source_id])
                  for payload in kept if payload.status is PayloadStatus.PENDING}

        started = time.monotonic()
        decided = self._decided([parsed[payload.id] for payload in kept
                                 if payload.id in parsed], unstored=True)

        def store_and_apply(tx: Transaction) -> None:
            nonlocal decided
            attempt, decided = decided, None  # a run again decides again
            stored = tx.payloads.store_new(kept)
            applying = [evolve(parsed[payload.id], payload=payload)
                        for payload in stored if payload.id in parsed]
            outcomes, _ = self._apply(tx, applying, attempt and attempt.placed(applying))
            tx.payloads.finish_many(outcomes, None)

        try:
            self._write_with_retries(store_and_apply)
        except Exception as error:  # taken one at a time from the payloads, as claimed
            log.warning("spooled batch failed; storing it to process one payload at a time",
                        payloads=len(waiting), error=repr(error)[:300])
            self._store.admit_received(len(waiting))
            return len(waiting)
        self._adapt(len(parsed), time.monotonic() - started)
        self._store.forget_received(waiting[-1][0])
        return len(waiting)

    def process_claimed(self, claimed: Sequence[ReceivedPayload], owner: str,
                        sources: dict[str, Source] | None = None) -> None:
        """Parse and apply payloads this owner has leased (``sources``: theirs, if read
        with the claim)."""
        if sources is None:
            with self._store.transaction() as tx:
                sources = tx.sources.get_many({payload.source_id for payload in claimed})
        readers = self._readers(sources)
        parsed = [self.parse(payload, sources.get(payload.source_id),
                             readers.get(payload.source_id)) for payload in claimed]
        started = time.monotonic()
        try:
            self._apply_with_retries(parsed, owner)
            self._adapt(len(parsed), time.monotonic() - started)
        except LeaseLost as lost:  # another worker has them: undone here, done there
            log.warning("batch not applied: its payloads were taken over", owner=owner,
                        payloads=len(parsed), detail=lost.detail)
        except Exception as error:  # applied again one by one just below
            log.warning("batch failed; processing one payload at a time",
                        payloads=len(parsed), error=repr(error)[:300])
            for item in parsed:
                self._apply_alone(item, owner)

    def process_now(self, payload: ReceivedPayload) -> tuple[ReceivedPayload, list[str]]:
        """Store and apply a payload at once, outside the queue (``interlock alerts
        send``); returns it as stored and the ids of the incidents it touched."""
        with self._store.transaction(write=True) as tx:
            tx.payloads.insert_many([payload])
            if payload.status is PayloadStatus.FAILED:
                return payload, []
            position = tx.payloads.position(payload.id) or 0
            item = self.parse(dataclasses.replace(payload, position=position),
                              tx.sources.get(payload.source_id))
            outcomes, touched = self._apply(tx, [item])
            tx.payloads.finish_many(outcomes, None)
        return outcomes[0], sorted(touched)

    def _adapt(self, size: int, seconds: float) -> None:
        """Size the next batch so its transaction fits the budget (an average over the
        last few, so one slow batch does not halve the next); CATCH_UP times the budget
        while the worker is behind."""
        if self._budget is None or size < MIN_BATCH or seconds <= 0:
            return
        budget = self._budget * (CATCH_UP if self._behind else 1)
        fits = size * budget / seconds
        self._limit = max(MIN_BATCH, min(self._batch, int(0.7 * self._limit + 0.3 * fits)))

    def _readers(self, sources: dict[str, Source]) -> dict[str, Callable[[Any], list[Signal]]]:
        """Each source's parser for a batch: its options are checked once, not once per
        payload."""
        return {source.id: self._parse.reader(source.kind, source.options)
                for source in sources.values()}

    def parse(self, payload: ReceivedPayload, source: Source | None,
              reader: Callable[[Any], list[Signal]] | None = None) -> Parsed:
        """Parse outside any transaction (with ``reader``, the source's parser made for
        the batch). Parsers are pure: a payload they cannot read will not read better
        later, so any failure here fails the payload for good."""
        if source is None:
            return Parsed(payload, None, failure="the source was deleted")
        try:
            read = reader or self._parse.reader(source.kind, source.options)
            signals = read(json_input.loads(payload.body, what="the payload"))
        except Exception as error:  # kept on the payload, for the user to see
            return Parsed(payload, source, failure=str(error) or repr(error))
        return Parsed(payload, source, [_bounded(signal) for signal in signals])

    def _apply_with_retries(self, items: Sequence[Parsed], owner: str) -> None:
        decided = self._decided(items)

        def apply(tx: Transaction) -> None:
            nonlocal decided
            attempt, decided = decided, None  # a run again decides again
            tx.payloads.finish_many(self._apply(tx, items, attempt)[0], owner)

        self._write_with_retries(apply)

    def _write_with_retries(self, work: Callable[[Transaction], None]) -> None:
        """``work`` in a write transaction, run again from the start when the database
        undid it for another worker's writes."""

        def write() -> None:
            with self._store.transaction(write=True) as tx:
                work(tx)
                if self._after_write is not None:
                    self._after_write(tx)

        _retried(write)

    def _apply_alone(self, item: Parsed, owner: str) -> None:
        """Apply one payload whole, or not at all. A failure that is not the payload's
        fault (the database, a bug) leaves it pending for another try after its lease;
        after MAX_ATTEMPTS it is set aside as failed, with the reason, for a person."""
        payload = item.payload
        try:
            self._apply_with_retries([item], owner)
        except LeaseLost:
            log.warning("payload not applied: it was taken over", payload=payload.id,
                        owner=owner)
        except Exception as error:  # recorded on the payload, never lost
            reason = error.detail if isinstance(error, InterlockError) else repr(error)
            log.error("payload processing failed", payload=payload.id,
                      attempt=payload.attempts, error=reason[:300])
            if payload.attempts < MAX_ATTEMPTS:
                return  # the lease lapses and it is tried again
            failed = _failed(payload, self._clock.now(),
                             f"gave up after {payload.attempts} attempts: {reason}")
            with contextlib.suppress(LeaseLost), self._store.transaction(write=True) as tx:
                tx.payloads.finish_many([failed], owner)

    def _apply(self, tx: Transaction, items: Sequence[Parsed],
               decided: _Decided | None = None) -> tuple[list[ReceivedPayload], set[str]]:
        """Write a batch in ``tx``: as ``decided`` before the write lock, if no write to
        alerts, groups or digests came between, or else read and decided now."""
        if decided is not None and tx.flags.counter(ALERT_WRITES) == decided.writes:
            batch, outcomes = decided.batch, decided.outcomes
        else:
            batch, outcomes = self._decide(tx, items)
        self._write(tx, batch)
        return outcomes, batch.touched()

    def _decided(self, items: Sequence[Parsed], *, unstored: bool = False
                 ) -> _Decided | None:
        """SQLite: read and decide a batch in a read transaction, before the write lock
        (readers do not wait for the writer), so that people's writes wait only for the
        batch's writes. ``unstored``: the payloads have no queue position yet (the spool's,
        stored in the write transaction); they get provisional ones, after every stored
        payload's, in their order. None on PostgreSQL: there the batch's locks are what
        keep two workers apart, and a read transaction takes none."""
        if not self._decide_first:
            return None
        if unstored:
            items = [evolve(item, payload=dataclasses.replace(
                item.payload, position=_PROVISIONAL + index))
                for index, item in enumerate(items)]
        with self._store.transaction() as tx:
            writes = tx.flags.counter(ALERT_WRITES)
            batch, outcomes = self._decide(tx, items)
        return _Decided(writes, [item.payload.id for item in items], batch, outcomes)

    def _decide(self, tx: Transaction, items: Sequence[Parsed]
                ) -> tuple[_Batch, list[ReceivedPayload]]:
        """Read the batch's alerts, groups and incidents, and apply its payloads in
        order, in memory: what :meth:`_write` will write, and each payload's outcome.
        Reads only."""
        now = self._clock.now()
        batch = _Batch.load(tx, items, now, digests=bool(self._window))
        outcomes: list[ReceivedPayload] = []
        for item in items:
            if item.failure is not None or item.source is None:
                outcomes.append(_failed(item.payload, now, item.failure or "no source"))
                continue
            counts = _Counts()
            for signal in item.signals:
                self._signal(batch, item, signal, counts)
            outcomes.append(evolve(
                item.payload, status=PayloadStatus.PROCESSED, processed_at=now, error=None,
                alerts=counts.alerts, dropped=counts.dropped, suppressed=counts.suppressed))
        # What the batch tells, with the alerts it lists read and encoded here: on
        # SQLite before the write lock (reading and encoding them was an eighth of a
        # batch's hold of the lock, py-spy, bench/storm.py).
        batch.tellings, batch.digests_after = batch.join_digests(self._window)
        batch.told_alerts = _told_alerts(tx, batch.tellings, batch.alerts.values())
        return batch, outcomes

    def _signal(self, batch: _Batch, item: Parsed, signal: Signal,
                counts: _Counts) -> None:
        source, payload = item.source, item.payload
        assert source is not None
        counts.alerts += 1
        window = first_covering(batch.windows, signal, source.id, batch.now)
        if window is not None and window.mode is MaintenanceMode.DROP:
            counts.dropped += 1
            batch.count_window(window, dropped=1)
            return
        key = (source.id, signal.fingerprint)
        existing = batch.alerts.get(key)
        if existing is not None and existing.payload_position > payload.position:
            # An older report applied after a newer one (a worker that claimed it died,
            # or was slower): the newer one stands, and the report is counted.
            batch.put_alert(key, evolve(existing, count=existing.count + 1))
            return
        alert = _remember(existing, signal, source, batch.now, payload.position)
        if window is not None:
            counts.suppressed += 1
            batch.count_window(window, suppressed=1)
            batch.put_alert(key, evolve(alert, suppressed_by=window.id))
            return
        if alert.suppressed_by is not None:
            alert = evolve(alert, suppressed_by=None)
        if signal.action is SignalAction.FIRING:
            if not batch.repeat(existing):
                incident_id = self._correlate(batch, source, alert)
                alert = evolve(alert, incident_id=incident_id)
                batch.attached.setdefault(incident_id, (source, []))[1].append(alert)
        elif alert.incident_id is not None:
            target = (batch.resolved if signal.action is SignalAction.RESOLVED
                      else batch.acknowledged)
            target.setdefault(alert.incident_id, source)
        batch.put_alert(key, alert)

    def _correlate(self, batch: _Batch, source: Source, alert: Alert) -> str:
        """The incident this firing alert belongs to: the group's open incident, the
        group's incident reopened if it was resolved within the window, or a new one
        (reopened and declared when the batch is written)."""
        group = (source.id, alert.group_key or "")
        incident_id = batch.correlations.get(group)
        if incident_id is not None and incident_id in batch.declared:
            return incident_id
        incident = batch.incidents.get(incident_id) if incident_id else None
        if incident is not None and incident.is_open:
            return incident.id
        if (incident is not None and incident.resolved_at is not None
                and batch.now - incident.resolved_at <= source.reopen_window):
            transition = incident_rules.reopen(incident, batch.now)
            assert transition is not None  # it was resolved
            batch.reopening[incident.id] = _Reopening(
                source, incident.version,
                f"Reopened: {alert.title} fired again within "
                f"{_duration(source.reopen_window)} of resolution")
            batch.incidents[incident.id] = transition.incident  # open, for what follows
            return incident.id
        new = new_id("inc", batch.now)
        batch.declared[new] = (source, Declaration(
            title=alert.title, severity=alert.severity, summary=alert.summary,
            service=alert.service))
        batch.correlations[group] = new
        batch.correlated[group] = new
        return new

    def tell_due_digests(self, limit: int = TELL_BATCH) -> int:
        """Tell incidents of the alerts that waited out their digest window, one
        ``incident.alert_attached`` each, ``limit`` incidents per transaction, until none
        is due; returns how many were told."""
        told = 0
        while True:
            tellings, more = self.tell_some_due_digests(limit)
            told += tellings
            if not more:
                return told

    def tell_some_due_digests(self, limit: int = TELL_BATCH, *, late_only: bool = False
                              ) -> tuple[int, bool]:
        """One transaction of :meth:`tell_due_digests`: at most ``limit`` incidents
        told. Returns how many were told and whether more may be due. The alert worker
        tells a few between its batches of alerts (worker/processing.py).

        ``late_only``: only digests due a whole window ago or more. While the worker is
        behind on alerts, the alerts go first (a new incident's webhook waits for them)
        and their digests are told at most a window late: in a storm that fell behind,
        tellings were a fifth of the alert worker's CPU (py-spy, bench/storm.py)."""
        if not self._window:
            return 0, False
        now = self._clock.now()
        due_by = now - self._window if late_only else now
        with self._store.transaction() as tx:
            if not tx.digests.due(due_by, 1):
                return 0, False
        tellings, looked_at = self._tell_due(now, limit, due_by)
        return tellings, looked_at >= limit

    @property
    def behind(self) -> bool:
        """Whether the last batch was full: more payloads wait than a batch takes."""
        return self._behind

    def _tell_due(self, now: datetime, limit: int, due_by: datetime | None = None
                  ) -> tuple[int, int]:
        """One transaction of :meth:`tell_due_digests`: how many it told, and how many
        due digests it looked at (those due by ``due_by``, by default now). Run again
        when the database undid it (a deadlock with a person's change to two of its
        incidents, taken in another order)."""
        return _retried(lambda: self._tell_due_once(now, limit, due_by or now))

    def _tell_due_once(self, now: datetime, limit: int, due_by: datetime
                       ) -> tuple[int, int]:
        with self._store.transaction(write=True) as tx:
            due = tx.digests.due(due_by, limit)
            # Digests first, then their incidents, as alert batches take them: held, what
            # another worker wrote is in. A digest an alert batch of another worker holds
            # is told next time rather than waited for: with two workers on PostgreSQL,
            # tellings waiting for batches and batches for tellings came to seconds in
            # a storm (pg_stat_statements, bench/storm.py).
            digests = tx.digests.get_many(due, for_update=True, skip_locked=True)
            incidents = tx.incidents.get_many(digests, for_update=True)
            told = [digest_rules.tell_waiting(digest, now) for digest in digests.values()
                    if digest.due_at is not None and digest.due_at <= due_by]
            tellings = [(telling, incidents[telling.incident_id].severity)
                        for telling, _ in told if telling is not None]
            tx.digests.put_many([digest for _, digest in told], existing=digests.keys())
            if self._decide_first:
                tx.flags.increment(ALERT_WRITES)
            self._tell(tx, tellings, incidents, {}, _told_alerts(tx, tellings, ()))
            if tellings and self._after_write is not None:
                self._after_write(tx)
        return len(tellings), len(due)

    def _tell(self, tx: Transaction, tellings: Sequence[tuple[Telling, Severity]],
              incidents: dict[str, Incident], sources: dict[str, Source],
              alerts: dict[str, dict[str, object]]) -> None:
        """Write an ``incident.alert_attached`` for each telling, from its alerts' source
        (a telling whose source was deleted meanwhile is dropped), listing its alerts
        (``alerts``: see :func:`_told_alerts`). ``sources`` are those at hand; others
        are read."""
        missing = {telling.source_id for telling, _ in tellings} - sources.keys()
        if missing:
            sources = {**sources, **tx.sources.get_many(missing)}
        attachments: list[tuple[Viewer, Attachment]] = []
        # In incident order, the order other workers lock incidents in; every source's
        # in the same few statements.
        for telling, severity in sorted(tellings, key=lambda told: told[0].incident_id):
            source = sources.get(telling.source_id)
            if source is None:
                continue
            attachments.append((_viewer(source), Attachment(
                incidents[telling.incident_id],
                [alerts[alert_id] for alert_id in telling.alert_ids if alert_id in alerts],
                count=telling.count, severity=severity)))
        if attachments:
            self._incidents.attach_many_in(tx, attachments)

    def _write(self, tx: Transaction, batch: _Batch) -> None:
        for incident_id, reopening in batch.reopening.items():
            try:
                batch.incidents[incident_id] = self._incidents.apply_in(
                    tx, _viewer(reopening.source), incident_id, incident_rules.reopen,
                    expected_version=reopening.version, note=reopening.note)
            except PreconditionFailed as error:  # a person changed it since the batch read it
                raise ConcurrentUpdate(str(error)) from error
        if batch.declared:
            ids = list(batch.declared)
            made = self._incidents.declare_many_in(
                tx, [(_viewer(batch.declared[each][0]), batch.opened(each)) for each in ids],
                ids=ids)
            batch.incidents.update((incident.id, incident) for incident in made)
        tx.correlations.put_many([(source_id, key, incident_id) for (source_id, key),
                                  incident_id in batch.correlated.items()],
                                 batch.now, existing=batch.stored_groups)
        tx.alerts.insert_many([batch.alerts[key] for key in batch.new_alerts])
        tx.alerts.save_many([batch.alerts[key] for key in batch.changed_alerts
                             if key not in batch.new_alerts])
        tx.maintenance.count_many(batch.window_counts)
        if self._window:
            tx.digests.put_many(batch.digests_after, existing=batch.digests.keys())
        batch.hold_told(tx, batch.tellings)
        self._tell(tx, batch.tellings, batch.incidents, batch.sources(), batch.told_alerts)
        for incident_id, source in sorted(batch.acknowledged.items()):
            try:
                self._incidents.apply_in(tx, _viewer(source), incident_id,
                                         incident_rules.acknowledge)
            except Conflict:
                continue  # resolved meanwhile: an acknowledgement cannot reopen it
        resolving = {incident_id: source for incident_id, source in batch.resolved.items()
                     if source.auto_resolve}
        counts = tx.alerts.firing_counts(resolving) if resolving else {}
        for incident_id, source in sorted(resolving.items()):
            firing, total = counts.get(incident_id, (0, 0))
            if firing:
                continue
            which = "its alert" if total == 1 else f"all {total} alerts"
            self._incidents.apply_in(
                tx, _viewer(source), incident_id, incident_rules.resolve,
                note=f"Resolved automatically: {which} resolved in {source.name}")
        if self._decide_first:
            tx.flags.increment(ALERT_WRITES)


@dataclass(frozen=True)
class _Reopening:
    source: Source
    #: The version the batch read: reopened only if still at it.
    version: int
    note: str


@dataclass
class _Decided:
    """A batch read and applied in memory before the write transaction (SQLite)."""

    #: The ALERT_WRITES count it read: written only if no such write came since.
    writes: int
    payload_ids: list[str]
    batch: _Batch
    outcomes: list[ReceivedPayload]

    def placed(self, stored: Sequence[Parsed]) -> _Decided | None:
        """The batch with the queue positions its payloads were stored at, in place of
        the provisional ones; None if not all of them were stored (some were before)."""
        if [item.payload.id for item in stored] != self.payload_ids:
            return None
        positions = {_PROVISIONAL + index: item.payload.position
                     for index, item in enumerate(stored)}
        alerts = self.batch.alerts
        for key in self.batch.changed_alerts:
            alert = alerts[key]
            if alert.payload_position >= _PROVISIONAL:
                alerts[key] = evolve(alert, payload_position=positions[alert.payload_position])
        self.outcomes = [dataclasses.replace(outcome, position=item.payload.position)
                         for outcome, item in zip(self.outcomes, stored, strict=True)]
        return self


@dataclass
class _Counts:
    alerts: int = 0
    dropped: int = 0
    suppressed: int = 0


@dataclass
class _Batch:
    """What one transaction knows and will write: the rows its payloads touch, read
    once up front, and the changes gathered while applying them in order."""

    now: datetime
    windows: list[MaintenanceWindow]
    alerts: dict[_Key, Alert]
    correlations: dict[_Key, str]
    incidents: dict[str, Incident]
    stored_groups: set[_Key]
    #: The digests of the incidents the batch read (when digests are kept).
    digests: dict[str, Digest]
    #: Alerts first seen in this batch, in the order they arrived (insertion order).
    new_alerts: dict[_Key, None] = field(default_factory=dict)
    changed_alerts: dict[_Key, None] = field(default_factory=dict)
    #: Groups pointed at a new incident by this batch.
    correlated: dict[_Key, str] = field(default_factory=dict)
    #: Incidents this batch opens, by the id they will have, with the source opening them.
    declared: dict[str, tuple[Source, Declaration]] = field(default_factory=dict)
    #: Per incident, the source of its first alert in this batch and the alerts joining.
    attached: dict[str, tuple[Source, list[Alert]]] = field(default_factory=dict)
    acknowledged: dict[str, Source] = field(default_factory=dict)
    resolved: dict[str, Source] = field(default_factory=dict)
    #: Incidents this batch reopens (written first when the batch is written).
    reopening: dict[str, _Reopening] = field(default_factory=dict)
    window_counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Decided last (see join_digests): what the batch tells, with the worst severity
    #: joining; every touched incident's digest after; the told alerts, encoded.
    tellings: list[tuple[Telling, Severity]] = field(default_factory=list)
    digests_after: list[Digest] = field(default_factory=list)
    told_alerts: dict[str, dict[str, object]] = field(default_factory=dict)

    @classmethod
    def load(cls, tx: Transaction, items: Sequence[Parsed], now: datetime, *,
             digests: bool) -> _Batch:
        alert_keys: set[_Key] = set()
        groups: set[_Key] = set()
        for item in items:
            if item.source is None or item.failure is not None:
                continue
            for signal in item.signals:
                alert_keys.add((item.source.id, signal.fingerprint))
                if signal.action is SignalAction.FIRING:
                    groups.add((item.source.id, _group_key(item.source, signal)))
        # Groups first: held (found or not) until commit, they keep two workers whose
        # batches share a new group from both opening it; the one that waited then reads
        # the alerts the other stored (those of a group share it).
        correlations = tx.correlations.get_many(groups, for_update=True)
        alerts = tx.alerts.find_many(alert_keys, for_update=True)
        incident_ids = {alert.incident_id for alert in alerts.values() if alert.incident_id}
        incident_ids.update(correlations.values())
        # With digests kept, the batch holds its incidents' digests (only workers take
        # them), not the incidents: a person's comment on one of them does not wait for
        # the batch to commit. Those it tells are locked just before (hold_told).
        held = tx.digests.get_many(incident_ids, for_update=True) if digests else {}
        incidents = tx.incidents.get_many(incident_ids, for_update=not digests)
        windows = tx.maintenance.active(now) if alert_keys else []
        return cls(now=now, windows=windows, alerts=alerts, correlations=correlations,
                   incidents=incidents, stored_groups=set(correlations), digests=held)

    def repeat(self, existing: Alert | None) -> bool:
        """A firing alert reported again while it is firing in an open incident:
        counted, nothing more. (Alertmanager resends a group whenever one alert
        changes.)"""
        if existing is None or existing.status is not AlertStatus.FIRING:
            return False
        if existing.incident_id is None:
            return False
        if existing.incident_id in self.declared:
            return True
        incident = self.incidents.get(existing.incident_id)
        return incident is not None and incident.is_open

    def hold_told(self, tx: Transaction, tellings: Sequence[tuple[Telling, Severity]]
                  ) -> None:
        """Lock the incidents about to be told (their digests are held, they are not)
        and tell them as they are now: a person's comment or change since the batch
        read them stays, and costs no rerun. If one was opened or closed meanwhile, the
        batch's alerts may belong elsewhere: ConcurrentUpdate, and the batch runs
        again."""
        told = {telling.incident_id for telling, _ in tellings} - self.declared.keys()
        if not told:
            return
        now = tx.incidents.get_many(told, for_update=True)
        for incident_id, incident in now.items():
            if incident.is_open != self.incidents[incident_id].is_open:
                raise ConcurrentUpdate(f"{incident.reference} was opened or closed "
                                       "while alerts were being attached")
        self.incidents.update(now)

    def put_alert(self, key: _Key, alert: Alert) -> None:
        if key not in self.alerts:
            self.new_alerts[key] = None
        self.alerts[key] = alert
        self.changed_alerts[key] = None

    def count_window(self, window: MaintenanceWindow, *, dropped: int = 0,
                     suppressed: int = 0) -> None:
        before = self.window_counts.get(window.id, (0, 0))
        self.window_counts[window.id] = (before[0] + dropped, before[1] + suppressed)

    def join_digests(self, window: timedelta
                     ) -> tuple[list[tuple[Telling, Severity]], list[Digest]]:
        """Per incident alerts joined: what to tell now (with the worst severity
        among them) and every touched incident's digest after."""
        tellings: list[tuple[Telling, Severity]] = []
        digests: list[Digest] = []
        for incident_id, (source, attached) in self.attached.items():
            if incident_id in self.declared:
                # Told in its incident.created; later alerts wait for the window.
                digests.append(Digest(incident_id, last_event_at=self.now))
                continue
            worst = _worst(alert.severity for alert in attached)
            joined = Joined(
                incident_id, source.id, [alert.id for alert in attached[:ALERTS_PER_EVENT]],
                count=len(attached),
                raises_severity=worst.rank > self.incidents[incident_id].severity.rank)
            telling, digest = digest_rules.join(self.digests.get(incident_id), joined,
                                                self.now, window)
            digests.append(digest)
            if telling is not None:
                tellings.append((telling, worst))
        return tellings, digests

    def opened(self, incident_id: str) -> Declaration:
        """The declaration of a new incident, with the alerts that open it: its
        severity the worst of theirs."""
        declaration = self.declared[incident_id][1]
        attached = self.attached.get(incident_id, (None, []))[1]
        if not attached:
            return declaration
        return dataclasses.replace(
            declaration,
            severity=_worst([declaration.severity, *(alert.severity for alert in attached)]),
            alerts=[alert_to_dict(alert) for alert in attached[:ALERTS_PER_EVENT]],
            alert_count=len(attached))

    def sources(self) -> dict[str, Source]:
        """The sources of the batch's alerts."""
        return {source.id: source for source, _ in self.attached.values()}

    def touched(self) -> set[str]:
        return set(self.attached) | set(self.resolved) | set(self.acknowledged)


def _retried(attempt: Callable[[], _T]) -> _T:
    """``attempt()``, run again (CONFLICT_RETRIES times at most) while the database undoes
    it for another transaction's writes (ConcurrentUpdate)."""
    for retry in range(CONFLICT_RETRIES):
        try:
            return attempt()
        except ConcurrentUpdate:
            log.debug("met another transaction's writes; running it again", retry=retry + 1)
    return attempt()


def _told_alerts(tx: Transaction, tellings: Sequence[tuple[Telling, Severity]],
                 at_hand: Iterable[Alert]) -> dict[str, dict[str, object]]:
    """The alerts ``tellings`` list, as their events show them, by id: those
    ``at_hand`` as they are there, the others read as they are now."""
    wanted = {alert_id for telling, _ in tellings for alert_id in telling.alert_ids}
    if not wanted:
        return {}
    found = {alert.id: alert for alert in at_hand if alert.id in wanted}
    unread = wanted - found.keys()
    if unread:
        found.update(tx.alerts.get_by_ids(unread))
    return {alert_id: alert_to_dict(alert) for alert_id, alert in found.items()}


def _worst(severities: Iterable[Severity]) -> Severity:
    return max(severities, key=lambda severity: severity.rank)


def _viewer(source: Source) -> Viewer:
    return Viewer(Origin(OriginKind.SOURCE, source.id, source.name), can_see_private=True)


def _group_key(source: Source, signal: Signal) -> str:
    return rules.group_key(source.grouping, signal)[:GROUP_KEY_MAX]


def _remember(existing: Alert | None, signal: Signal, source: Source, now: datetime,
              position: int) -> Alert:
    status = AlertStatus.RESOLVED if signal.action is SignalAction.RESOLVED else (
        AlertStatus.FIRING if signal.action is SignalAction.FIRING
        else existing.status if existing else AlertStatus.FIRING)
    fields: dict[str, Any] = {
        "status": status, "title": signal.title, "severity": signal.severity,
        "name": signal.name, "service": signal.service, "summary": signal.summary,
        "labels": dict(signal.labels), "annotations": dict(signal.annotations),
        "url": signal.url, "starts_at": signal.starts_at, "ends_at": signal.ends_at,
        "last_seen_at": now, "group_key": _group_key(source, signal),
        "payload_position": position,
    }
    if existing is None:
        return Alert(id=new_id("alr", now), source_id=source.id,
                     fingerprint=signal.fingerprint, first_seen_at=now, **fields)
    return evolve(existing, count=existing.count + 1, **fields)


def _bounded(signal: Signal) -> Signal:
    """Fit what a tool sent into what is stored, without losing identity."""
    fingerprint = signal.fingerprint
    if len(fingerprint) > FINGERPRINT_MAX:
        fingerprint = "sha256:" + hashlib.sha256(fingerprint.encode()).hexdigest()
    bounded = {
        "fingerprint": fingerprint,
        "title": (signal.title.strip() or signal.name or "Alert")[:incident_rules.TITLE_MAX],
        "name": signal.name[:200],
        "service": signal.service[:200] if signal.service else None,
        "summary": signal.summary[:incident_rules.SUMMARY_MAX],
    }
    if all(getattr(signal, name) == value for name, value in bounded.items()):
        return signal  # most signals fit as they are: no copy
    return evolve(signal, **bounded)


def _failed(payload: ReceivedPayload, now: datetime, error: str) -> ReceivedPayload:
    return dataclasses.replace(payload, status=PayloadStatus.FAILED, processed_at=now,
                               error=error[:1000])


def _duration(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 and minutes >= 60 else f"{minutes} min"
