"""Alert processing in bulk, with several workers at once: no group opens two
incidents, no alert is stored twice, a later report is never overwritten by an earlier
one, and a storm into one incident is told in digests, not one event per alert."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from interlock.bootstrap import build
from interlock.clock import ManualClock
from interlock.config import Settings
from interlock.domain.alerts import SourceKind
from interlock.domain.errors import ConcurrentUpdate
from interlock.domain.events import Origin, OriginKind
from interlock.domain.incidents import Incident, Severity
from interlock.domain.sources import Source
from interlock.ports.store import Transaction
from interlock.services.container import Container
from interlock.services.incidents import Viewer
from interlock.services.processing import TELL_BATCH, AlertProcessor
from interlock.services.sources import SourceSpec
from interlock.sources.options import SourceParsers
from interlock.store.digests import SqlDigests
from interlock.store.tables import alerts, events, incidents, timeline_entries
from interlock.worker.processing import TELL_WHILE_ALERTS_ARRIVE, process_alerts
from interlock.worker.wakeup import Wakeup
from tests.support.ingest import am_alert, am_payload


def _store(container: Container, source: Source, *bodies: dict[str, Any]) -> None:
    container.intake.store([container.intake.received(
        source, json.dumps(body).encode(), "application/json") for body in bodies])


def _source(container: Container, name: str = "prometheus") -> Source:
    return container.sources.create(SourceSpec(name=name, kind=SourceKind.ALERTMANAGER))[0]


def _count(container: Container, query: Any) -> int:
    with container.store.transaction() as tx:
        return int(tx.connection.execute(query).scalar_one())


def _attached(container: Container) -> list[dict[str, Any]]:
    """The data of the events that told of alerts: incident.created (the alerts that
    opened an incident) and incident.alert_attached."""
    query = (sa.select(events.c.data)
             .where(events.c.type.in_(["incident.created", "incident.alert_attached"]))
             .order_by(events.c.sequence))
    with container.store.transaction() as tx:
        return list(tx.connection.execute(query).scalars())


def _with_clock(settings: Settings, clock: ManualClock, **overrides: Any) -> Container:
    return build(settings.model_copy(update=overrides), clock=clock)


def _run_alert_worker(processor: object, stop: asyncio.Event) -> None:
    """The alert worker's loop (worker/processing.py) on ``processor`` until ``stop``."""

    async def run() -> None:
        await asyncio.wait_for(process_alerts(
            processor, Wakeup(), stop, "worker"), 30)  # type: ignore[arg-type]

    asyncio.run(run())


def test_a_storm_into_one_incident_is_told_at_once_then_in_one_digest(
        settings: Settings, manual_clock: ManualClock) -> None:
    container = _with_clock(settings, manual_clock)
    try:
        source = _source(container)
        _store(container, source, *[am_payload(am_alert("DiskFull", instance=f"host{i}"))
                                    for i in range(300)])
        batches = []
        while claimed := container.alerts.process("worker", limit=100):
            batches.append(claimed)
        assert batches == [100, 100, 100]
        assert _count(container, sa.select(sa.func.count()).select_from(incidents)) == 1
        # The incident is declared with its first alerts; the rest wait for the window.
        first = _attached(container)
        assert [row["alert_count"] for row in first] == batches[:1]
        assert len(first[0]["alerts"]) == min(20, batches[0])  # the first listed, all counted
        assert container.alerts.tell_due_digests() == 0  # not yet due
        manual_clock.advance(timedelta(seconds=10))
        assert container.alerts.tell_due_digests() == 1
        rows = _attached(container)
        assert [row["alert_count"] for row in rows] == [batches[0], 300 - batches[0]]
        listed = [alert["labels"]["instance"] for alert in rows[1]["alerts"]]
        assert listed == [f"host{i}" for i in range(batches[0], batches[0] + 20)]
        assert container.alerts.tell_due_digests() == 0  # told once
    finally:
        container.close()


def test_a_slow_storm_into_many_incidents_is_one_event_per_incident_per_window(
        settings: Settings, manual_clock: ManualClock) -> None:
    """One alert a second into each of 20 incidents for 30 s: an event per incident
    every 10 s (the first at once), not 30; the timeline says the same."""
    container = _with_clock(settings, manual_clock)
    try:
        source = _source(container)
        for second in range(30):
            _store(container, source, *[am_payload(am_alert(f"Group{group}",
                                                            instance=f"h{second}"))
                                        for group in range(20)])
            while container.alerts.process("worker"):
                pass
            container.alerts.tell_due_digests()
            manual_clock.advance(timedelta(seconds=1))
        manual_clock.advance(timedelta(seconds=10))
        container.alerts.tell_due_digests()
        rows = _attached(container)
        per_incident: dict[str, list[int]] = {}
        for row in rows:
            per_incident.setdefault(row["incident"]["id"], []).append(row["alert_count"])
        assert len(per_incident) == 20
        for counts in per_incident.values():
            assert sum(counts) == 30, "every alert is told, exactly once"
            assert counts[0] == 1 and len(counts) <= 4
        with container.store.transaction() as tx:
            entries = tx.connection.execute(
                sa.select(sa.func.count()).select_from(timeline_entries)
                .where(timeline_entries.c.kind.in_(["incident.created",
                                                    "incident.alert_attached"]))
            ).scalar_one()
        assert entries == len(rows)
    finally:
        container.close()


def test_an_alert_raising_severity_is_told_at_once_with_those_waiting(
        settings: Settings, manual_clock: ManualClock) -> None:
    container = _with_clock(settings, manual_clock)
    try:
        source = _source(container)
        _store(container, source, am_payload(am_alert("Latency", instance="a",
                                                      severity="warning")))
        container.alerts.process("worker")
        manual_clock.advance(timedelta(seconds=1))
        _store(container, source, am_payload(am_alert("Latency", instance="b",
                                                      severity="warning")))
        container.alerts.process("worker")
        assert [row["alert_count"] for row in _attached(container)] == [1]
        manual_clock.advance(timedelta(seconds=1))
        _store(container, source, am_payload(am_alert("Latency", instance="c",
                                                      severity="critical")))
        container.alerts.process("worker")
        rows = _attached(container)
        assert [row["alert_count"] for row in rows] == [1, 2]
        assert [alert["labels"]["instance"] for alert in rows[1]["alerts"]] == ["b", "c"]
        assert rows[1]["changes"]["severity"]["to"] == "critical"
        manual_clock.advance(timedelta(seconds=30))
        assert container.alerts.tell_due_digests() == 0  # nothing was left waiting
    finally:
        container.close()


def test_incidents_falling_due_together_do_not_hold_up_the_alerts_behind_them(
        settings: Settings, manual_clock: ManualClock) -> None:
    """A storm opens its incidents within a second, so their digests fall due together
    every window. While alerts arrive, the worker tells a few of them between its
    batches of alerts: alerts arriving meanwhile open their incidents between the
    tellings, and their webhooks go out in that order, not after every incident was
    told."""
    container = _with_clock(settings, manual_clock)
    try:
        source = _source(container)
        due = TELL_BATCH * 2 + 20
        _store(container, source, *[am_payload(am_alert(f"Group{group}", instance="a"))
                                    for group in range(due)])
        while container.alerts.process("worker"):
            pass
        _store(container, source, *[am_payload(am_alert(f"Group{group}", instance="b"))
                                    for group in range(due)])
        while container.alerts.process("worker"):
            pass
        manual_clock.advance(timedelta(seconds=10))
        processor, stop = container.alerts, asyncio.Event()
        arriving = iter(range(1000))

        class Streaming:
            """The real processor, with a new alert arriving before each batch."""

            def process(self, name: str) -> int:
                _store(container, source, am_payload(am_alert(f"New{next(arriving)}")))
                return processor.process(name)

            behind = False  # one new alert a batch

            def tell_some_due_digests(self, limit: int, *, late_only: bool
                                      ) -> tuple[int, bool]:
                assert not late_only
                told, more = processor.tell_some_due_digests(limit)
                if not more:
                    stop.set()
                return told, more

        _run_alert_worker(Streaming(), stop)
        query = (sa.select(events.c.type, events.c.data["alert_count"])
                 .where(events.c.type.in_(["incident.created", "incident.alert_attached"]))
                 .order_by(events.c.sequence))
        with container.store.transaction() as tx:
            told = list(tx.connection.execute(query))[due:]
        assert sum(1 for kind, _ in told if kind == "incident.alert_attached") == due
        runs, run_length = [], 0
        for kind, _ in told:
            if kind == "incident.alert_attached":
                run_length += 1
            elif run_length:
                runs.append(run_length)
                run_length = 0
        runs.append(run_length)
        assert max(runs) <= TELL_WHILE_ALERTS_ARRIVE, runs
    finally:
        container.close()


def test_while_the_worker_is_behind_alerts_go_first_and_digests_wait_a_window_at_most(
        settings: Settings, manual_clock: ManualClock) -> None:
    container = _with_clock(settings, manual_clock)
    try:
        source = _source(container)
        for instance in ("a", "b"):
            _store(container, source, *[am_payload(am_alert(f"Group{group}",
                                                            instance=instance))
                                        for group in range(30)])
            while container.alerts.process("worker"):
                pass
        manual_clock.advance(timedelta(seconds=10))  # due, not yet a window late
        assert container.alerts.tell_some_due_digests(late_only=True) == (0, False)
        processor, stop = container.alerts, asyncio.Event()
        _store(container, source, *[am_payload(am_alert("New", instance=f"n{i}"))
                                    for i in range(20)])
        asked: list[tuple[bool, int, int]] = []  # late only, told, alerts processed by then
        processed = [0]

        class FiveAtATime:
            """The real processor, taking batches of five: full while alerts wait."""

            @property
            def behind(self) -> bool:
                return processor.behind

            def process(self, name: str) -> int:
                claimed = processor.process(name, limit=5)
                processed[0] += claimed
                return claimed

            def tell_some_due_digests(self, limit: int, *, late_only: bool
                                      ) -> tuple[int, bool]:
                told, more = processor.tell_some_due_digests(limit, late_only=late_only)
                asked.append((late_only, told, processed[0]))
                if not late_only and not more:
                    stop.set()
                return told, more

        _run_alert_worker(FiveAtATime(), stop)
        assert asked[0] == (True, 0, 5), asked  # behind: due digests not yet told
        assert all(told == 0 for late_only, told, _ in asked if late_only), asked
        told_when = [alerts for _, told, alerts in asked if told]
        assert told_when and min(told_when) == 20, asked  # once the alerts were in
        assert sum(told for _, told, _ in asked) == 30
        _store(container, source, *[am_payload(am_alert(f"Group{group}", instance="c"))
                                    for group in range(30)])
        while container.alerts.process("worker"):
            pass
        manual_clock.advance(timedelta(seconds=20))  # a window late: told, behind or not
        # The 30 groups, and the new incident's alerts that joined after its first.
        assert container.alerts.tell_some_due_digests(late_only=True) == (31, False)
    finally:
        container.close()


def test_without_a_digest_window_every_batch_is_told(
        settings: Settings, manual_clock: ManualClock) -> None:
    container = _with_clock(settings, manual_clock, alert_digest_seconds=0)
    try:
        source = _source(container)
        for i in range(3):
            _store(container, source, am_payload(am_alert("DiskFull", instance=f"h{i}")))
            container.alerts.process("worker")
        assert [row["alert_count"] for row in _attached(container)] == [1, 1, 1]
    finally:
        container.close()


def test_a_batch_from_several_sources_tells_each_incident_from_its_own_source(
        settings: Settings, manual_clock: ManualClock) -> None:
    """One batch opens incidents, and tells incidents of alerts, for three sources at
    once (their rows written together): each event and timeline entry names the source
    whose alerts it tells of, and each incident holds only its source's alerts."""
    container = _with_clock(settings, manual_clock, alert_digest_seconds=0)
    try:
        sources = [_source(container, f"am{i}") for i in range(3)]
        for round_ in range(2):  # the first opens the incidents, the second tells them
            for source in sources:
                _store(container, source, *[
                    am_payload(am_alert(f"Down{group}", instance=f"{source.name}-{round_}"))
                    for group in range(4)])
            assert container.alerts.process("worker") == 12, "one batch, every source"
            manual_clock.advance(timedelta(seconds=1))
        names = {source.id: source.name for source in sources}
        query = (sa.select(events.c.type, events.c.origin, events.c.incident_id,
                           events.c.data)
                 .where(events.c.type.in_(["incident.created", "incident.alert_attached"])))
        with container.store.transaction() as tx:
            told = tx.connection.execute(query).all()
            sources_of = dict(tx.connection.execute(
                sa.select(alerts.c.incident_id, sa.func.min(alerts.c.source_id))
                .group_by(alerts.c.incident_id)
                .having(sa.func.count(sa.distinct(alerts.c.source_id)) == 1)).all())
            entries = tx.connection.execute(
                sa.select(timeline_entries.c.incident_id, timeline_entries.c.origin)
                .where(timeline_entries.c.kind == "incident.alert_attached")).all()
        assert sorted(type_ for type_, *_ in told).count("incident.created") == 12
        assert len(told) == 24, "each incident opened once and told once"
        assert len(sources_of) == 12, "no incident holds alerts of two sources"
        for _, origin, incident_id, data in told:
            origin = json.loads(origin) if isinstance(origin, str) else origin
            assert origin["id"] == sources_of[incident_id]
            assert origin["name"] == names[sources_of[incident_id]]
            assert all(alert["labels"]["instance"].startswith(names[origin["id"]])
                       for alert in data["alerts"])
        for incident_id, origin in entries:
            origin = json.loads(origin) if isinstance(origin, str) else origin
            assert origin["id"] == sources_of[incident_id]
    finally:
        container.close()


def test_two_workers_at_once_open_one_incident_per_group_and_store_each_alert_once(
        container: Container) -> None:
    sources = [_source(container, f"am{i}") for i in range(2)]
    for round_ in range(4):
        for source in sources:
            _store(container, source, *[
                am_payload(am_alert(f"Alert{group}", instance=f"host{round_}-{i}"))
                for group in range(30) for i in range(3)])
    done: list[int] = []
    failures: list[BaseException] = []

    def work(name: str) -> None:
        try:
            while made := container.alerts.process(name, limit=40):
                done.append(made)
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert sum(done) == 2 * 4 * 30 * 3
    # 2 sources x 30 groups: one incident each, whatever the interleaving.
    assert _count(container, sa.select(sa.func.count()).select_from(incidents)) == 60
    assert _count(container, sa.select(sa.func.count()).select_from(alerts)) == 2 * 4 * 30 * 3
    per_incident = (sa.select(alerts.c.incident_id, sa.func.count())
                    .group_by(alerts.c.incident_id))
    with container.store.transaction() as tx:
        counts = dict(tx.connection.execute(per_incident).all())
    assert sorted(counts.values()) == [12] * 60


class _CountingStore:
    """A store that counts the write transactions opened through it."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.writes = 0

    def transaction(self, *, write: bool = False, **options: Any) -> Any:
        self.writes += write
        return self._store.transaction(write=write, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_batch_meeting_a_group_another_worker_is_opening_joins_it_in_one_go(
        container: Container) -> None:
    """Two workers whose batches both bring a new group's first alerts: the second
    waits for the first to commit and attaches to the incident it opened. It used to
    decide to open one too, fail on the group's key and run its whole batch again; in a
    storm with two workers one batch ran six times over, then one payload at a time,
    and its alerts waited 6 s (bench/storm.py)."""
    source = _source(container)
    _store(container, source, am_payload(am_alert("DiskFull", instance="host0")))
    holding, release = threading.Event(), threading.Event()
    first = threading.Thread(target=_held_processor(container, holding, release).process,
                             args=("w1",))
    first.start()
    counting = _CountingStore(container.store)
    second = AlertProcessor(counting, container.clock, SourceParsers(),
                            container.incidents, digest_window=timedelta(seconds=10))
    try:
        assert holding.wait(10), "the first batch never reached its commit"
        # The first's alert again (stored by the first, not yet committed), and another.
        _store(container, source, am_payload(am_alert("DiskFull", instance="host0"),
                                             am_alert("DiskFull", instance="host1")))
        joined = threading.Thread(target=second.process, args=("w2",))
        joined.start()
        _wait_for_a_lock_wait(container)
    finally:
        release.set()
        first.join(30)
    joined.join(30)
    assert not joined.is_alive()
    incident = _only_incident(container)
    with container.store.transaction() as tx:
        stored = tx.alerts.for_incident(incident.id)
    assert sorted((alert.labels["instance"], alert.count) for alert in stored) == [
        ("host0", 2), ("host1", 1)]
    assert counting.writes == 2, "the second batch ran again (a claim and one apply)"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_batch_holds_its_groups_within_postgresqls_lock_table(
        container: Container) -> None:
    """Each group a batch looks up is held with an advisory lock until commit; a batch
    of many groups holds them in at most 1,024 locks, so that a large batch cannot run
    PostgreSQL's shared lock table (6,400 locks by default) out of room."""
    held = sa.text("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
                   "AND locktype = 'advisory'")
    for groups, most in ((10, 10), (5000, 1024)):
        keys = {("src_1", f"svc/Group{i}") for i in range(groups)}
        with container.store.transaction(write=True) as tx:
            assert tx.correlations.get_many(keys, for_update=True) == {}
            locks = tx.connection.execute(held).scalar_one()
        assert groups >= locks >= most * 0.9
        assert locks <= most


def test_an_earlier_report_applied_later_does_not_overwrite_a_later_one(
        container: Container) -> None:
    source = _source(container)
    _store(container, source, am_payload(am_alert("CPUHot", fingerprint="fp1")))
    container.alerts.process("first")
    firing_again = am_payload(am_alert("CPUHot", fingerprint="fp1"))
    resolved = am_payload(am_alert("CPUHot", fingerprint="fp1", status="resolved"))
    _store(container, source, firing_again)
    _store(container, source, resolved)
    # A slow worker leases the earlier payload; a faster one applies the later first.
    now = container.clock.now()
    with container.store.transaction(write=True) as tx:
        held = tx.payloads.claim("slow", now, now + timedelta(hours=1), 1)
    assert len(held) == 1
    assert container.alerts.process("fast") == 1  # the resolution
    container.alerts.process_claimed(held, "slow")  # the slow worker finishes
    with container.store.transaction() as tx:
        alert = tx.alerts.find(source.id, "fp1")
        incident = tx.incidents.get(alert.incident_id) if alert and alert.incident_id \
            else None
    assert alert is not None and alert.status.value == "resolved"
    assert incident is not None and incident.status.value == "resolved"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_claim_different_sources_while_there_are_free_ones(
        container: Container) -> None:
    """Workers that claim at once take different sources' payloads (the rows each batch
    locks are then its own: a source's alerts, groups and incidents), oldest source
    first; when every source with work is held, a worker still helps."""
    sources = [_source(container, f"am{i}") for i in range(3)]
    for round_ in range(4):
        for source in sources:  # interleaved arrivals, as in a storm
            _store(container, source, *[am_payload(am_alert(f"A{round_}", instance=f"h{i}"))
                                        for i in range(5)])
    now = container.clock.now()
    lease = now + timedelta(minutes=5)
    claims = []
    for worker in ("w1", "w2", "w3"):
        with container.store.transaction(write=True) as tx:
            claims.append(tx.payloads.claim(worker, now, lease, 8))
    held = [{payload.source_id for payload in claim} for claim in claims]
    assert held == [{sources[0].id}, {sources[1].id}, {sources[2].id}]
    assert all(len(claim) == 8 for claim in claims)
    # Every source is held now: a fourth worker takes the oldest payloads still free.
    with container.store.transaction(write=True) as tx:
        extra = tx.payloads.claim("w4", now, lease, 100)
    assert len(extra) == 3 * 20 - 3 * 8
    claimed = [payload.id for claim in [*claims, extra] for payload in claim]
    assert len(set(claimed)) == 60


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_fills_its_batch_from_several_free_sources(container: Container) -> None:
    sources = [_source(container, f"am{i}") for i in range(2)]
    for source in sources:
        _store(container, source, *[am_payload(am_alert("A", instance=f"h{i}"))
                                    for i in range(5)])
    now = container.clock.now()
    with container.store.transaction(write=True) as tx:
        claim = tx.payloads.claim("w1", now, now + timedelta(minutes=5), 100)
    assert len(claim) == 10
    assert [payload.position for payload in claim] == sorted(p.position for p in claim)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_payload_that_cannot_be_parsed_fails_alone(container: Container) -> None:
    source = _source(container)
    _store(container, source, am_payload(am_alert("Good")), {"not": "alertmanager"},
           am_payload(am_alert("AlsoGood")))
    assert container.alerts.process("worker") == 3
    with container.store.transaction() as tx:
        stored = tx.payloads.list(source.id, before=None, limit=10)
    assert sorted(payload.status.value for payload in stored) == [
        "failed", "processed", "processed"]
    assert _count(container, sa.select(sa.func.count()).select_from(incidents)) == 2


def _held_processor(container: Container, holding: threading.Event,
                    release: threading.Event) -> AlertProcessor:
    """An alert processor whose write transactions stop before they commit, holding what
    they hold, until ``release``."""

    def hold(_: Transaction) -> None:
        holding.set()
        assert release.wait(30)

    return AlertProcessor(container.store, container.clock, SourceParsers(),
                          container.incidents, digest_window=timedelta(seconds=10),
                          after_write=hold)


_PERSON = Viewer(Origin(OriginKind.API_KEY, "key_1", "alice"), can_see_private=True)


def _an_incident_and_fifty_alerts_for_it(container: Container) -> Incident:
    """An incident opened by one alert, and 50 more of its group waiting to be applied."""
    source = _source(container)
    _store(container, source, am_payload(am_alert("DiskFull", instance="host0")))
    container.alerts.process("worker")
    incident = _only_incident(container)
    _store(container, source, *[am_payload(am_alert("DiskFull", instance=f"host{i}"))
                                for i in range(1, 51)])
    return incident


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_person_changes_an_incident_while_a_batch_of_its_alerts_is_being_written(
        container: Container) -> None:
    """An alert batch holds its incidents' digests, not the incidents: a person's
    comment and severity change go through at once, not after the batch commits (with
    two workers in a storm people waited seconds)."""
    incident = _an_incident_and_fifty_alerts_for_it(container)
    holding, release = threading.Event(), threading.Event()
    processor = _held_processor(container, holding, release)
    batch = threading.Thread(target=processor.process, args=("worker",))
    batch.start()
    try:
        assert holding.wait(10), "the batch never reached its commit"
        done = threading.Event()
        comments: list[str] = []

        def change() -> None:
            _, comment = container.incidents.comment(_PERSON, incident.id,
                                                     "Looking at the disks")
            comments.append(comment.id)
            container.incidents.update(_PERSON, incident.id, {"severity": Severity.CRITICAL})
            done.set()

        person = threading.Thread(target=change)
        person.start()
        assert done.wait(5), "the person's changes waited for the alert batch"
        assert batch.is_alive(), "the batch was still holding when the person was done"
    finally:
        release.set()
        batch.join(30)
    person.join(10)
    with container.store.transaction() as tx:
        attached = tx.alerts.for_incident(incident.id)
        now = tx.incidents.get(incident.id)
    assert len(attached) == 51
    assert now is not None and now.severity is Severity.CRITICAL
    entries = sa.select(sa.func.count()).select_from(timeline_entries).where(
        timeline_entries.c.id.in_(comments))
    assert _count(container, entries) == 1


def _only_incident(container: Container) -> Incident:
    with container.store.transaction() as tx:
        incident_id = tx.connection.execute(sa.select(incidents.c.id)).scalar_one()
        found = tx.incidents.get(incident_id)
    assert found is not None
    return found


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("change", ["retitle", "resolve"])
def test_a_batch_telling_an_incident_a_person_is_changing_tells_it_as_changed(
        container: Container, manual_clock: ManualClock, change: str) -> None:
    """The batch reads the incident unlocked; a person is changing it when the batch
    comes to tell of its alerts. The batch waits for the person's change and tells the
    incident as it is then: a new title stays, and the alerts are told once. If the
    person resolved it, the batch runs again and reopens it (the alert fired again
    within the reopen window), as if the resolution had come first."""
    container = _with_clock(container.settings, manual_clock)
    try:
        source = _source(container)
        _store(container, source, am_payload(am_alert("DiskFull", instance="host0")))
        container.alerts.process("worker")
        incident = _only_incident(container)
        manual_clock.advance(timedelta(seconds=11))  # a new alert is told at once
        _store(container, source, am_payload(am_alert("DiskFull", instance="host1")))
        person_holding, person_release = threading.Event(), threading.Event()

        def person() -> None:  # changes the incident, and commits when told to
            with container.store.transaction(write=True) as tx:
                if change == "retitle":
                    container.incidents.update_in(
                        tx, _PERSON, incident.id, {"title": "Disks full on the database hosts"})
                else:
                    container.incidents.change_status_in(tx, _PERSON, incident.id, "resolve")
                person_holding.set()
                assert person_release.wait(30)

        changing = threading.Thread(target=person)
        changing.start()
        assert person_holding.wait(10)
        batch = threading.Thread(target=container.alerts.process, args=("worker",))
        batch.start()
        try:
            _wait_for_a_lock_wait(container)  # the batch's telling waits for the person
        finally:
            person_release.set()
            changing.join(10)
        batch.join(30)
        assert not batch.is_alive()
        with container.store.transaction() as tx:
            now = tx.incidents.get(incident.id)
        assert now is not None
        told = [row for row in _attached(container)
                if row["incident"]["id"] == incident.id]
        assert [row["alert_count"] for row in told] == [1, 1]
        assert told[-1]["incident"]["version"] == now.version
        if change == "retitle":
            assert now.title == "Disks full on the database hosts"
            assert told[-1]["incident"]["title"] == now.title
        else:
            assert now.is_open and now.resolved_at is None, "reopened by the alert"
            with container.store.transaction() as tx:
                kinds = list(tx.connection.execute(
                    sa.select(events.c.type).where(events.c.incident_id == incident.id)
                    .order_by(events.c.sequence)).scalars())
            assert kinds == ["incident.created", "incident.resolved", "incident.reopened",
                             "incident.alert_attached"]
    finally:
        container.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_telling_leaves_a_digest_another_workers_batch_holds_for_later(
        container: Container, manual_clock: ManualClock) -> None:
    """Incidents whose waiting alerts fall due are told between batches of alerts. One
    whose digest another worker's batch holds is left to that batch (which tells it if
    due) or to a later telling, not waited for: with two workers in a storm, tellings
    and batches waited for each other seconds in all (bench/storm.py)."""
    container = _with_clock(container.settings, manual_clock)
    try:
        source = _source(container)
        for instance in ("a", "b"):  # two incidents, each with an alert waiting
            _store(container, source, *[am_payload(am_alert(f"Group{group}", instance=instance))
                                        for group in range(2)])
            container.alerts.process("worker")
        manual_clock.advance(timedelta(seconds=11))  # both fall due
        _store(container, source, am_payload(am_alert("Group0", instance="c")))
        holding, release = threading.Event(), threading.Event()
        batch = threading.Thread(target=_held_processor(container, holding, release).process,
                                 args=("other",))
        batch.start()
        told: list[tuple[int, bool]] = []
        try:
            assert holding.wait(10), "the batch never reached its commit"
            telling = threading.Thread(
                target=lambda: told.append(container.alerts.tell_some_due_digests(10)))
            telling.start()
            telling.join(10)
            assert not telling.is_alive(), "the telling waited for the batch"
        finally:
            release.set()
            batch.join(30)
        assert told == [(1, False)]  # the incident the batch did not hold
        assert container.alerts.tell_some_due_digests(10) == (0, False)
        attached = [(row["alert_count"], sorted(alert["labels"]["instance"]
                                                for alert in row["alerts"]))
                    for row in _attached(container)[2:]]
        assert sorted(attached) == [(1, ["b"]), (2, ["b", "c"])]
    finally:
        container.close()


def _wait_for_a_lock_wait(container: Container) -> None:
    """Until some session of the test database waits for a lock (PostgreSQL)."""
    query = sa.text("SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with container.store.transaction() as tx:
            if tx.connection.execute(query).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError("nothing waited for a lock within 10 s")


def _pausing_decisions(monkeypatch: pytest.MonkeyPatch, processor: AlertProcessor,
                       decided: threading.Event, release: threading.Event) -> None:
    """The processor's first decision (reading and applying a batch in memory, before
    the write lock on SQLite) stops when made, until ``release``."""
    decide = processor._decide

    def pausing(tx: Transaction, items: Any) -> Any:
        made = decide(tx, items)
        if not decided.is_set():
            decided.set()
            assert release.wait(30)
        return made

    monkeypatch.setattr(processor, "_decide", pausing)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_a_batch_is_read_and_decided_before_it_takes_the_write_lock(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    """People's writes wait only for a batch's writes: while it reads its alerts,
    groups and incidents and applies them in memory, a person's comment commits."""
    incident = _an_incident_and_fifty_alerts_for_it(container)
    decided, release = threading.Event(), threading.Event()
    _pausing_decisions(monkeypatch, container.alerts, decided, release)
    batch = threading.Thread(target=container.alerts.process, args=("worker",))
    batch.start()
    try:
        assert decided.wait(10)
        commented = threading.Event()
        person = threading.Thread(target=lambda: (
            container.incidents.comment(_PERSON, incident.id, "Looking"), commented.set()))
        person.start()
        assert commented.wait(5), "the comment waited for the batch's decisions"
    finally:
        release.set()
        batch.join(30)
    person.join(10)
    with container.store.transaction() as tx:
        assert len(tx.alerts.for_incident(incident.id)) == 51


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_a_batch_decided_before_another_workers_write_is_decided_again(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow worker decides an earlier report (firing) of an alert; meanwhile a fast one
    writes a later report (resolved). The slow one's decision is stale: it decides again
    under the write lock, sees the later report, and leaves it standing."""
    source = _source(container)
    _store(container, source, am_payload(am_alert("CPUHot", fingerprint="fp1")))
    container.alerts.process("first")
    _store(container, source, am_payload(am_alert("CPUHot", fingerprint="fp1")))
    _store(container, source, am_payload(am_alert("CPUHot", fingerprint="fp1",
                                                  status="resolved")))
    now = container.clock.now()
    with container.store.transaction(write=True) as tx:
        [earlier] = tx.payloads.claim("slow", now, now + timedelta(hours=1), 1)
    with container.store.transaction(write=True) as tx:
        [later] = tx.payloads.claim("fast", now, now + timedelta(hours=1), 1)
    decided, release = threading.Event(), threading.Event()
    _pausing_decisions(monkeypatch, container.alerts, decided, release)
    slow = threading.Thread(target=container.alerts.process_claimed,
                            args=([earlier], "slow"))
    slow.start()
    try:
        assert decided.wait(10)
        container.alerts.process_claimed([later], "fast")
    finally:
        release.set()
        slow.join(30)
    with container.store.transaction() as tx:
        alert = tx.alerts.find(source.id, "fp1")
        incident = tx.incidents.get(alert.incident_id) if alert and alert.incident_id \
            else None
    assert alert is not None and alert.status.value == "resolved"
    assert alert.payload_position == later.position
    assert incident is not None and incident.status.value == "resolved"


def test_a_telling_the_database_undid_is_run_again_and_told_once(
        settings: Settings, manual_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A telling transaction that PostgreSQL undoes (a deadlock with a person changing
    two of its incidents in the other order) runs again, rather than ending the alert
    worker's loop; the alerts are told once."""
    container = _with_clock(settings, manual_clock)
    try:
        source = _source(container)
        _store(container, source, *[am_payload(am_alert("DiskFull", instance=f"h{i}"))
                                    for i in range(3)])
        container.alerts.process("worker")
        _store(container, source, am_payload(am_alert("DiskFull", instance="h9")))
        container.alerts.process("worker")  # joins the incident's digest, and waits
        manual_clock.advance(timedelta(seconds=10))
        put_many = SqlDigests.put_many
        undone: list[int] = []

        def undone_once(self: SqlDigests, *args: Any, **kwargs: Any) -> None:
            if not undone:
                undone.append(1)
                raise ConcurrentUpdate("the database undid it: deadlock detected")
            put_many(self, *args, **kwargs)

        monkeypatch.setattr(SqlDigests, "put_many", undone_once)
        assert container.alerts.tell_due_digests() == 1
        assert undone == [1]
        assert [row["alert_count"] for row in _attached(container)] == [3, 1]
    finally:
        container.close()
