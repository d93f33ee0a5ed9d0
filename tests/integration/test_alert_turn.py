"""On SQLite one worker process at a time processes alerts; the others stand by and one
takes over when it stops (README: Scaling out)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from interlock.domain.alerts import SourceKind
from interlock.domain.sources import Source
from interlock.services.container import Container
from interlock.services.sources import SourceSpec
from interlock.services.workers import OK, STANDBY, TaskStates
from interlock.store.locks import Role
from interlock.store.sql import SqlStore
from interlock.store.tables import workers
from tests.support.ingest import am_alert, am_payload
from tests.support.waiting import eventually
from tests.support.worker import start_worker_process


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_a_sqlite_file_one_process_at_a_time_has_the_turn(database_url: str) -> None:
    stores = [SqlStore(create_engine(database_url), Role.WORKERS) for _ in range(2)]
    try:
        assert stores[1].turn_holder("alerts") is None, "nobody has it yet"
        assert stores[0].take_turn("alerts", "first")
        assert stores[0].take_turn("alerts", "first"), "asking again while holding it"
        assert not stores[1].take_turn("alerts", "second")
        assert stores[1].turn_holder("alerts") == "first"
        assert stores[1].take_turn("deliveries", "second"), "turns are per task"
        stores[0].close()
        assert stores[1].turn_holder("alerts") is None, "its holder let go"
        assert stores[1].take_turn("alerts", "second"), "the turn passes when its holder closes"
        assert stores[0].turn_holder("alerts") == "second"
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_every_process_has_the_turn(database_url: str) -> None:
    stores = [SqlStore(create_engine(database_url), Role.WORKERS) for _ in range(2)]
    try:
        assert all(store.take_turn("alerts", f"worker {n}") for n, store in enumerate(stores))
        assert stores[0].turn_holder("alerts") is None
    finally:
        for store in stores:
            store.close()


def _alert_states(hub: Container) -> dict[int, str]:
    """The ``alerts`` task of each worker process heard from, by process id."""
    with hub.store.transaction() as tx:
        seen = tx.workers.seen_since(hub.clock.now().replace(year=2000))
    return {int(beat.name.split(":")[1]): str(beat.tasks.get("alerts")) for beat in seen}


def _incident_for(hub: Container, source: Source, fingerprint: str) -> str | None:
    with hub.store.transaction() as tx:
        alert = tx.alerts.find(source.id, fingerprint)
    return alert.incident_id if alert else None


def _send(hub: Container, source: Source, name: str, fingerprint: str) -> None:
    body = json.dumps(am_payload(am_alert(name, fingerprint=fingerprint))).encode()
    hub.intake.store([hub.intake.received(source, body, "application/json")])


@contextmanager
def _workers(database_url: str, log: Path, count: int
             ) -> Iterator[list[subprocess.Popen[bytes]]]:
    workers = [start_worker_process(database_url, log, worker_poll_seconds="0.2")
               for _ in range(count)]
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(30)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_second_sqlite_worker_stands_by_for_alerts_and_takes_over_when_the_first_dies(
        hub: Container, database_url: str, tmp_path: Path) -> None:
    source = hub.sources.create(SourceSpec(name="prometheus", kind=SourceKind.ALERTMANAGER))[0]
    log = tmp_path / "workers.log"
    with _workers(database_url, log, 2) as workers:
        pids = {worker.pid for worker in workers}
        states = eventually(
            lambda: (found := _alert_states(hub)).keys() == pids
            and sorted(found.values()) == ["ok", "standby"] and found,
            "one worker processes alerts, the other stands by")
        assert not hub.workers.readiness().problems, "standing by is not a problem"
        _send(hub, source, "DiskFull", "first")
        eventually(lambda: _incident_for(hub, source, "first"), "the first alert applied")

        [processing] = [pid for pid, state in states.items() if state == "ok"]
        [standing_by] = pids - {processing}
        [dying] = [worker for worker in workers if worker.pid == processing]
        dying.send_signal(signal.SIGKILL)
        dying.wait(10)
        _send(hub, source, "CPUHot", "second")
        eventually(lambda: _incident_for(hub, source, "second"),
                   "the alert applied by the worker that stood by", timeout=15)
        eventually(lambda: _alert_states(hub).get(standing_by) == "ok",
                   "the survivor reports processing alerts")
    assert log.read_text().count("taking over alert processing") == 1, log.read_text()


def _fall_silent(hub: Container, pid: int) -> None:
    """Make the report of worker ``pid`` as old as one not heard from for a minute."""
    with hub.store.transaction(write=True) as tx:
        tx.connection.execute(
            workers.update().where(workers.c.name.like(f"%:{pid}:%"))
            .values(beat_at=hub.clock.now() - timedelta(seconds=60)))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_readyz_says_so_when_the_worker_with_the_alert_turn_is_frozen(
        hub: Container, database_url: str, tmp_path: Path) -> None:
    with _workers(database_url, tmp_path / "workers.log", 2) as processes:
        states = eventually(
            lambda: sorted((found := _alert_states(hub)).values()) == ["ok", "standby"]
            and found, "one worker processes alerts, the other stands by")
        [holder] = [process for process in processes if states[process.pid] == "ok"]
        [standing_by] = [process for process in processes if process is not holder]

        # Frozen whole (SIGSTOP, a paused machine): it keeps its lock and stops reporting.
        holder.send_signal(signal.SIGSTOP)
        try:
            _fall_silent(hub, holder.pid)
            problems = hub.workers.readiness().problems
            assert len(problems) == 1, f"one worker stands by, nobody processes: {problems}"
            [(where, what)] = problems.items()
            assert f":{standing_by.pid}:" in where and where.endswith(" / alerts")
            assert f":{holder.pid}:" in what and "no worker process does alerts" in what
        finally:
            holder.send_signal(signal.SIGCONT)
        eventually(lambda: not hub.workers.readiness().problems,
                   "ready again once the holder reports", timeout=15)

        # A holder that stops lets go of the turn: the hand-over is never a problem.
        holder.send_signal(signal.SIGTERM)
        seen: list[dict[str, str]] = []

        def handed_over() -> bool:
            seen.append(dict(hub.workers.readiness().problems))
            return _alert_states(hub).get(standing_by.pid) == "ok"

        eventually(handed_over, "the one standing by takes over", timeout=15, interval=0.02)
        assert not any(seen), seen


def test_workers_processing_alerts_are_counted_without_those_standing_by(
        hub: Container) -> None:
    """What tells a PostgreSQL worker that it shares the alerts with others (and lets
    them gather longer, worker.processing): workers standing by on SQLite, failing, or
    silent too long are not counted."""
    hub.workers.beat("gone", hub.clock.now(), TaskStates({"alerts": OK}))
    hub.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    for name, state in (("first", OK), ("second", OK), ("third", STANDBY),
                        ("fourth", "failing: the database is away")):
        hub.workers.beat(name, hub.clock.now(), TaskStates({"alerts": state, "deliveries": OK}))
    assert hub.workers.doing("alerts") == 2
    assert hub.workers.doing("deliveries") == 4
