"""The ingest spool (SQLite shared with worker processes): a sender's ``202`` does not
wait for a worker's transaction, what was accepted is processed in arrival order and
exactly once, and a payload still waiting is listed as pending."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from interlock import config
from interlock.asgi import create_app
from interlock.bootstrap import build
from interlock.domain.alerts import AlertStatus, PayloadStatus, ReceivedPayload, SourceKind
from interlock.domain.keys import Scope
from interlock.domain.sources import Source
from interlock.services.container import Container
from interlock.services.sources import SourceSpec
from interlock.store.locks import FileLock, Role
from interlock.store.spool import CHECKPOINT_PAGES, spool_path
from interlock.store.tables import payloads
from tests.conftest import TEST_SECRET_KEY, make_key
from tests.support.ingest import am_alert, am_payload

#: How long the worker's transaction below holds SQLite's write lock.
WORKER_HOLD = 2.0


@pytest.fixture
def settings(sqlite_template: Path, tmp_path: Path) -> config.Settings:
    path = tmp_path / "interlock.db"
    shutil.copy(sqlite_template, path)
    return config.load({"database_url": f"sqlite:///{path}", "secret_key": TEST_SECRET_KEY},
                       environ={})


@pytest.fixture
def api(settings: config.Settings) -> Iterator[Container]:
    """The process serving people and senders (``interlock serve``)."""
    built = build(settings, role=Role.PEOPLE)
    yield built
    built.close()


@pytest.fixture
def worker(settings: config.Settings) -> Iterator[Container]:
    """A worker process's container on the same file (``interlock worker``)."""
    built = build(settings, role=Role.WORKERS)
    yield built
    built.close()


def _source(api: Container) -> Source:
    return api.sources.create(SourceSpec(name="prometheus", kind=SourceKind.ALERTMANAGER))[0]


def _receive(api: Container, source: Source, *alerts: dict[str, object]) -> str:
    payload = api.intake.received(source, json.dumps(am_payload(*alerts)).encode(),
                                  "application/json")
    api.intake.store([payload])
    return payload.id


def _stored(container: Container) -> int:
    with container.store.transaction() as tx:
        return int(tx.connection.execute(sa.select(sa.func.count()).select_from(payloads))
                   .scalar_one())


def test_a_commit_does_not_wait_for_a_worker_transaction(api: Container,
                                                         worker: Container) -> None:
    source = _source(api)
    holding, release = threading.Event(), threading.Event()

    def long_transaction() -> None:
        with worker.store.transaction(write=True):
            holding.set()
            release.wait(WORKER_HOLD)

    thread = threading.Thread(target=long_transaction)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        _receive(api, source, am_alert("DiskFull"))
        took = time.monotonic() - started
    finally:
        release.set()
        thread.join(10)
    assert took < WORKER_HOLD / 4, f"the commit waited {took:.2f} s for the worker"
    assert api.store.spool is not None
    assert api.store.spool.path == spool_path(api.settings.database_url.removeprefix(
        "sqlite:///"))


def test_the_worker_processes_spooled_payloads_in_order_and_once(
    api: Container, worker: Container
) -> None:
    source = _source(api)
    _receive(api, source, am_alert("DiskFull", fingerprint="f1"))
    _receive(api, source, am_alert("DiskFull", fingerprint="f1", status="resolved"))
    _receive(api, source, am_alert("HighLatency", fingerprint="f2"))
    assert _stored(api) == 0  # all three wait in the spool

    processed = 0
    while made := worker.alerts.process("test"):
        processed += made
    assert processed == 3
    page = api.sources.alerts(cursor=None, limit=10)
    states = {alert.fingerprint: alert.status for alert in page.items}
    # The resolution came after the firing, and was applied after it.
    assert states == {"f1": AlertStatus.RESOLVED, "f2": AlertStatus.FIRING}
    assert worker.store.admit_received(100) == 0  # nothing left in the spool
    assert _stored(api) == 3


def test_reports_of_one_alert_in_batches_one_after_another_are_applied_in_order(
    api: Container, worker: Container
) -> None:
    """A spooled batch is decided before its payloads are stored, with provisional queue
    positions; the alerts must keep the positions the payloads were stored at, or the
    next batch's reports would look older and be ignored."""
    source = _source(api)
    for status in ("firing", "resolved", "firing", "resolved", "firing"):
        _receive(api, source, am_alert("DiskFull", fingerprint="f1", status=status))
        assert worker.alerts.process("test") == 1
        [alert] = api.sources.alerts(cursor=None, limit=10).items
        assert alert.status.value == status
    with api.store.transaction() as tx:
        stored = tx.connection.execute(sa.select(sa.func.max(payloads.c.position))).scalar()
        found = tx.alerts.find(source.id, "f1")
    assert found is not None and found.payload_position == stored


def test_a_move_repeated_after_a_crash_adds_nothing(api: Container, worker: Container) -> None:
    source = _source(api)
    first = _receive(api, source, am_alert("DiskFull"))
    spool = api.store.spool
    assert spool is not None
    waiting = spool.oldest(10)
    assert worker.store.admit_received(10) == 1
    # As if the worker had died after its commit and before emptying the spool:
    spool.append([payload for _, payload in waiting])
    assert worker.store.admit_received(10) == 1
    assert _stored(api) == 1
    while worker.alerts.process("test"):
        pass
    listed = api.sources.payloads(source.id, cursor=None, limit=10).items
    assert [(payload.id, payload.status) for payload in listed] == [
        (first, PayloadStatus.PROCESSED)]


def test_waiting_payloads_are_listed_as_pending_first(api: Container, worker: Container,
                                                      ) -> None:
    source = _source(api)
    ids = [_receive(api, source, am_alert(f"Alert{n}")) for n in range(3)]
    assert worker.store.admit_received(2) == 2  # the two oldest are stored, one waits
    client = TestClient(create_app(api), raise_server_exceptions=False)
    admin = make_key(api, Scope.ADMIN, name="admin")
    first = client.get(f"/api/v1/sources/{source.id}/payloads?limit=2", headers=admin)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [(item["id"], item["status"]) for item in body["data"]] == [
        (ids[2], "pending"), (ids[1], "pending")]
    second = client.get(f"/api/v1/sources/{source.id}/payloads?limit=2&cursor="
                        f"{body['next_cursor']}", headers=admin)
    assert [item["id"] for item in second.json()["data"]] == [ids[0]]


def test_payloads_of_a_source_deleted_while_they_waited_go_with_it(
    api: Container, worker: Container
) -> None:
    """As stored payloads do (ON DELETE CASCADE); one would otherwise fail every move,
    and hold up everything behind it."""
    doomed, kept = _source(api), api.sources.create(
        SourceSpec(name="grafana", kind=SourceKind.ALERTMANAGER))[0]
    _receive(api, doomed, am_alert("DiskFull"))
    survivor = _receive(api, kept, am_alert("HighLatency"))
    api.sources.delete(doomed.id)
    assert worker.store.admit_received(10) == 2
    assert worker.store.admit_received(10) == 0  # the spool is empty
    while worker.alerts.process("test"):
        pass
    listed = api.sources.payloads(kept.id, cursor=None, limit=10).items
    assert [(payload.id, payload.status) for payload in listed] == [
        (survivor, PayloadStatus.PROCESSED)]


def test_a_spooled_batch_repeated_after_a_crash_is_applied_once(
    api: Container, worker: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker applies spooled payloads in the transaction that stores them, then
    empties the spool: dying in between leaves them in the spool, stored and applied."""
    source = _source(api)
    first = _receive(api, source, am_alert("DiskFull", fingerprint="f1"))
    spool = api.store.spool
    assert spool is not None
    waiting = spool.oldest(10)
    assert worker.alerts.process("test") == 1
    # As if the worker had died after its commit and before emptying the spool:
    spool.append([payload for _, payload in waiting])

    def no_fallback(limit: int) -> int:
        raise AssertionError("the repeated batch failed instead of skipping what was stored")

    monkeypatch.setattr(worker.store, "admit_received", no_fallback)
    while worker.alerts.process("test"):
        pass
    assert _stored(api) == 1
    (alert,) = api.sources.alerts(cursor=None, limit=10).items
    assert alert.count == 1  # applied once, not seen firing twice
    listed = api.sources.payloads(source.id, cursor=None, limit=10).items
    assert [(payload.id, payload.status) for payload in listed] == [
        (first, PayloadStatus.PROCESSED)]


def test_a_spooled_batch_that_fails_is_stored_and_taken_one_payload_at_a_time(
    api: Container, worker: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _source(api)
    ids = [_receive(api, source, am_alert(f"Alert{n}", fingerprint=f"f{n}")) for n in range(3)]
    processor = worker.alerts
    real_apply = processor._apply
    failures = []

    def apply_failing_once(tx: object, items: list[object], *decided: object) -> object:
        if not failures:
            failures.append(len(items))
            raise RuntimeError("the disk went away")
        return real_apply(tx, items, *decided)  # type: ignore[arg-type]

    monkeypatch.setattr(processor, "_apply", apply_failing_once)
    assert processor.process("test") == 3
    assert failures == [3]
    assert _stored(api) == 3  # out of the spool, pending, nothing lost
    while processor.process("test"):
        pass
    listed = api.sources.payloads(source.id, cursor=None, limit=10).items
    assert sorted((payload.id, payload.status) for payload in listed) == sorted(
        (payload_id, PayloadStatus.PROCESSED) for payload_id in ids)
    assert worker.store.admit_received(10) == 0


class _Stopwatch:
    """Stands in for the time module of services.processing: every batch's
    transaction seems to take ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self._now = 0.0
        self._step = seconds / 2  # two readings per batch: before and after

    def monotonic(self) -> float:
        self._now += self._step
        return self._now


def test_a_worker_behind_takes_larger_batches_and_one_keeping_up_keeps_to_the_budget(
    api: Container, worker: Container, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On SQLite a batch's transaction aims at INTERLOCK_WORKER_ALERT_TRANSACTION_MS,
    since people's writes wait for it; while the spool holds more than a batch, the
    worker is behind and may take twice that, which costs less per alert."""
    import interlock.services.processing as processing

    monkeypatch.setattr(processing, "time", _Stopwatch(seconds=0.05))  # = the budget
    source = _source(api)
    api.intake.store([api.intake.received(
        source, json.dumps(am_payload(am_alert(f"Disk{i}"))).encode(), "application/json")
        for i in range(1200)])

    sizes = []
    while taken := worker.alerts.process("worker-1"):
        sizes.append(taken)
    assert sum(sizes) == 1200
    assert sizes[0] == 100  # the first batch, before any is timed
    assert max(sizes) >= 180, sizes  # behind: batches grew towards twice the budget

    def arriving(name: str, count: int) -> None:
        api.intake.store([api.intake.received(
            source, json.dumps(am_payload(am_alert(f"{name}{i}"))).encode(),
            "application/json") for i in range(count)])

    arriving("Late", 60)  # fewer than a batch takes: the worker keeps up
    grown = sizes[-2]
    assert worker.alerts.process("worker-1") == 60
    arriving("More", 1000)
    assert worker.alerts.process("worker-1") < grown  # back towards the budget


def _payloads(api: Container, source: Source, count: int, note: str = "") -> list[
        ReceivedPayload]:
    labels = {"note": note} if note else {}
    return [api.intake.received(source, json.dumps(am_payload(am_alert(
        f"Disk{i}", **labels))).encode(), "application/json") for i in range(count)]


def test_a_commit_made_at_once_stores_what_a_commit_in_a_thread_would(
    api: Container, worker: Container,
) -> None:
    """The API's event loop commits to the spool itself when nothing is in the way (the
    group commit's hand-over to a thread cost the API process a third of its CPU per
    single-alert POST); when a worker process is writing the spool it does not wait,
    and the commit goes to a thread as before."""
    source = _source(api)
    first, second = _payloads(api, source, 2)  # alerts Disk0 and Disk1
    assert api.intake.store_now([first])

    moving = FileLock(spool_path(api.settings.database_url.removeprefix("sqlite:///")))
    assert moving.take_if_free()  # as a worker process moving a batch holds it
    try:
        started = time.monotonic()
        assert not api.intake.store_now([second])
        assert time.monotonic() - started < 0.1
    finally:
        moving.__exit__()
        moving.close()
    assert [payload.id for _, payload in api.store.received_oldest(10)] == [first.id]
    api.intake.store([second])

    while worker.alerts.process("worker-1"):
        pass
    assert sorted(alert.title for alert in api.sources.alerts(cursor=None, limit=10).items
                  ) == ["Disk0 on checkout", "Disk1 on checkout"]
    with api.store.transaction() as tx:
        stored = {row.id: row.status for row in tx.connection.execute(
            sa.select(payloads.c.id, payloads.c.status))}
    assert stored == {first.id: PayloadStatus.PROCESSED.value,
                      second.id: PayloadStatus.PROCESSED.value}


def test_commits_made_at_once_still_let_the_spool_be_checkpointed(api: Container) -> None:
    """A commit made on the event loop never checkpoints (that flushes to disk): once
    such commits have written about CHECKPOINT_PAGES, one goes to a thread, which does,
    so the spool's write-ahead log does not grow for as long as ingest runs."""
    source = _source(api)
    wal = Path(spool_path(api.settings.database_url.removeprefix("sqlite:///")) + "-wal")
    batches = [_payloads(api, source, 1, note="x" * 3000) for _ in range(4000)]
    threaded = 0
    for batch in batches:  # as the group commit does
        if not api.intake.store_now(batch):
            api.intake.store(batch)
            threaded += 1
    # A commit writes ~4 pages here: one in every ~CHECKPOINT_PAGES / 4 went to a thread.
    assert 4000 * 4 // CHECKPOINT_PAGES // 2 <= threaded <= 4000 * 4 // CHECKPOINT_PAGES * 2
    # 64 MB of log had nothing been checkpointed.
    log = wal.stat().st_size
    assert log < 4 * 4096 * CHECKPOINT_PAGES, f"the spool's log grew to {log} bytes"


def test_with_synchronous_full_every_commit_goes_to_a_thread(
    sqlite_template: Path, tmp_path: Path,
) -> None:
    """With INTERLOCK_SQLITE_SYNCHRONOUS=FULL a commit flushes to disk: never on the
    event loop."""
    path = tmp_path / "interlock.db"
    shutil.copy(sqlite_template, path)
    settings = config.load({"database_url": f"sqlite:///{path}", "secret_key": TEST_SECRET_KEY,
                            "sqlite_synchronous": "FULL"}, environ={})
    built = build(settings, role=Role.PEOPLE)
    try:
        source = _source(built)
        batch = _payloads(built, source, 1)
        assert not built.intake.store_now(batch)
        assert built.store.received_oldest(10) == []
    finally:
        built.close()
