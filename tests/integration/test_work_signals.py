"""Waking other processes' workers for the work a commit gave them, and no other: a
storm's payload commits wake alert processing only, not the delivery, sync and mail
loops (each of which would run a claiming write transaction per wake-up). A slot found
with nobody listening is skipped for a while, and a worker that starts listening there
is woken again once that while is over."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path

import pytest

from interlock import config
from interlock.bootstrap import build
from interlock.config import Settings
from interlock.domain.alerts import SourceKind
from interlock.domain.incidents import Severity
from interlock.ports.store import Work
from interlock.services.container import Container
from interlock.services.incidents import Declaration
from interlock.services.sources import SourceSpec
from interlock.store import signals
from interlock.store.signals import WorkSignals
from tests.integration.test_concurrency import VIEWER
from tests.integration.test_sync_claims import jira_connector  # noqa: F401 (a fixture)
from tests.support.ingest import am_alert, am_payload


async def _listen(other: Container, heard: asyncio.Queue[Work], stop: asyncio.Event
                  ) -> asyncio.Task[None]:
    """Start ``other``'s listener; return once it listens."""
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(other.store.listen_for_work(
        lambda work: loop.call_soon_threadsafe(heard.put_nowait, work), stop))
    # It says Work.ALL once it listens (whatever was committed while it was away).
    assert await asyncio.wait_for(heard.get(), 10) == Work.ALL
    return task


async def _heard_within(heard: asyncio.Queue[Work], seconds: float) -> Work:
    """Everything heard until ``seconds`` pass without another signal."""
    work = Work(0)
    try:
        while True:
            work |= await asyncio.wait_for(heard.get(), seconds)
    except TimeoutError:
        return work


def test_payloads_wake_alert_processing_and_events_wake_the_rest(
    container: Container, settings: Settings
) -> None:
    source = container.sources.create(SourceSpec(name="prometheus",
                                                 kind=SourceKind.ALERTMANAGER))[0]
    other = build(settings)

    async def scenario() -> tuple[Work, Work]:
        heard: asyncio.Queue[Work] = asyncio.Queue()
        stop = asyncio.Event()
        listener = await _listen(other, heard, stop)
        try:
            body = json.dumps(am_payload(am_alert("DiskFull"))).encode()
            await asyncio.to_thread(container.intake.store, [
                container.intake.received(source, body, "application/json")])
            after_payload = await _heard_within(heard, 1.0)
            await asyncio.to_thread(container.incidents.declare, VIEWER,
                                    Declaration("Checkout is down", Severity.HIGH))
            after_incident = await _heard_within(heard, 1.0)
        finally:
            stop.set()
            await asyncio.wait_for(listener, 10)
        return after_payload, after_incident

    try:
        after_payload, after_incident = asyncio.run(scenario())
    finally:
        other.close()
    assert after_payload == Work.PAYLOADS
    assert after_incident == Work.EVENTS


def test_a_listener_in_the_same_process_hears_only_what_it_asked_for(
    container: Container,
) -> None:
    heard: list[str] = []
    container.store.on_work_committed(lambda: heard.append("alerts"), Work.PAYLOADS)
    container.store.on_work_committed(lambda: heard.append("deliveries"), Work.EVENTS)
    source = container.sources.create(SourceSpec(name="grafana",
                                                 kind=SourceKind.ALERTMANAGER))[0]
    heard.clear()
    body = json.dumps(am_payload(am_alert("DiskFull"))).encode()
    container.intake.store([container.intake.received(source, body, "application/json")])
    assert heard == ["alerts"]
    container.incidents.declare(VIEWER, Declaration("Checkout is down", Severity.HIGH))
    assert heard == ["alerts", "deliveries"]


@pytest.mark.usefixtures("jira_connector")
def test_events_wake_the_sync_loop_only_once_a_connector_has_jobs(hub: Container) -> None:
    """Every event woke the sync and mail loops, which then each took a transaction to
    look for work that only a connector or a subscriber makes. Now the fan-out's own
    commit wakes the sync loop, when it made jobs."""
    heard: list[str] = []
    for name, work in (("deliveries", Work.EVENTS), ("sync", Work.SYNC), ("mail", Work.MAIL)):
        hub.store.on_work_committed(functools.partial(heard.append, name), work)
    hub.incidents.declare(VIEWER, Declaration("Checkout is down", Severity.HIGH))
    assert heard == ["deliveries"]

    heard.clear()
    hub.deliveries.dispatch()  # the Jira connector takes incident events: a job is made
    assert heard == ["sync"]


def test_a_worker_listening_where_nobody_was_is_told_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sender that found a slot vacant leaves it alone for a while (a refused send
    per commit cost the API 6 % of its samples), but not once a worker has bound it:
    serve's delivery worker, starting a moment after the alert worker had first found
    its slot vacant, missed the new incidents of the next second until it polled (a
    minute, polling set so; tests/e2e/test_wake_ups.py). Once bound, a worker also
    hears of everything it wants, for what was committed before."""
    monkeypatch.setattr(signals, "VACANT_SECONDS", 60.0)
    database = str(tmp_path / "interlock.db")
    sender = WorkSignals(database)
    sender.send(Work.PAYLOADS)  # nobody listens anywhere: every slot is found vacant

    async def listen() -> list[Work]:
        heard: list[Work] = []
        stop = asyncio.Event()
        listener = asyncio.create_task(WorkSignals(database).receive(
            heard.append, stop, wanted=Work.EVENTS | Work.SYNC))
        await asyncio.sleep(0.05)  # bound to the first slot
        sender.send(Work.EVENTS)
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(listener, 5.0)
        return heard

    assert asyncio.run(listen()) == [Work.EVENTS | Work.SYNC, Work.EVENTS]


def test_a_listener_that_says_what_it_wants_is_told_each_kind_once_until_it_looks(
        tmp_path: Path) -> None:
    """A storm's API commits hundreds of times a second; each datagram woke the
    listener's process. A listener that names what it wants hears nothing else, and of
    each kind one signal until it takes that kind (just before it looks for it); then
    the next commit tells it again."""
    database = str(tmp_path / "interlock.db")
    sender = WorkSignals(database)
    listening = WorkSignals(database)

    async def scenario() -> list[list[int]]:
        datagrams: list[int] = []
        stop = asyncio.Event()
        listener = asyncio.create_task(listening.receive(
            lambda work: datagrams.append(work.value), stop,
            wanted=Work.PAYLOADS | Work.EVENTS))
        await asyncio.sleep(0.05)  # bound
        assert datagrams == [(Work.PAYLOADS | Work.EVENTS).value]  # what it missed
        datagrams.clear()
        seen: list[list[int]] = []

        async def after(*sends: Work) -> None:
            for work in sends:
                sender.send(work)
            await asyncio.sleep(0.1)
            seen.append(list(datagrams))
            datagrams.clear()

        try:
            await after(Work.SYNC, Work.MAIL)  # not wanted
            await after(*[Work.PAYLOADS] * 20)
            await after(Work.PAYLOADS | Work.EVENTS, Work.EVENTS)
            listening.taken(Work.PAYLOADS)
            await after(Work.PAYLOADS, Work.PAYLOADS | Work.EVENTS)
            listening.taken(Work.PAYLOADS | Work.EVENTS)
            await after(Work.ALL)
        finally:
            stop.set()
            await asyncio.wait_for(listener, 5.0)
        return seen

    assert asyncio.run(scenario()) == [
        [],
        [Work.PAYLOADS.value],
        [Work.EVENTS.value],
        [Work.PAYLOADS.value],
        [(Work.PAYLOADS | Work.EVENTS).value],
    ]


def test_a_listener_that_does_not_say_what_it_wants_hears_every_commit(
        tmp_path: Path) -> None:
    database = str(tmp_path / "interlock.db")
    sender = WorkSignals(database)

    async def scenario() -> list[Work]:
        heard: list[Work] = []
        stop = asyncio.Event()
        listener = asyncio.create_task(WorkSignals(database).receive(heard.append, stop))
        await asyncio.sleep(0.05)
        try:
            for _ in range(3):
                sender.send(Work.SYNC)
                await asyncio.sleep(0.05)  # each read on its own
        finally:
            stop.set()
            await asyncio.wait_for(listener, 5.0)
        return heard

    assert asyncio.run(scenario()) == [Work.ALL] + [Work.SYNC] * 3


@pytest.mark.postgres
def test_a_worker_process_wakes_other_workers_for_payloads_and_not_for_its_own_events(
        postgres_database: str) -> None:
    """A second PostgreSQL worker woke for every batch of alerts the first committed and
    ran a delivery round and a sync round to claim a share of what the first's own
    loops were claiming already (763 delivery rounds for 521 batches in a 20 s storm).
    A process whose loops take events leaves them out of its NOTIFY; the API's events
    still wake every worker."""
    settings = config.load({"database_url": postgres_database})
    api, worker, other = build(settings), build(settings), build(settings)
    source = api.sources.create(SourceSpec(name="prometheus", kind=SourceKind.ALERTMANAGER))[0]

    async def scenario() -> tuple[Work, Work, Work]:
        heard: asyncio.Queue[Work] = asyncio.Queue()
        stop = asyncio.Event()
        listener = await _listen(other, heard, stop)
        # The worker process listens too, for all it does itself.
        working = asyncio.create_task(worker.store.listen_for_work(
            lambda _: None, stop, Work.ALL))
        try:
            await asyncio.sleep(0.2)  # listening
            await asyncio.to_thread(worker.incidents.declare, VIEWER,
                                    Declaration("Checkout is down", Severity.HIGH))
            from_worker = await _heard_within(heard, 1.0)
            await asyncio.to_thread(api.incidents.declare, VIEWER,
                                    Declaration("Search is slow", Severity.LOW))
            from_api = await _heard_within(heard, 1.0)
            body = json.dumps(am_payload(am_alert("DiskFull"))).encode()
            await asyncio.to_thread(api.intake.store, [
                api.intake.received(source, body, "application/json")])
            payloads = await _heard_within(heard, 1.0)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(listener, working), 10)
        return from_worker, from_api, payloads

    try:
        from_worker, from_api, payloads = asyncio.run(scenario())
    finally:
        for each in (api, worker, other):
            each.close()
    assert from_worker == Work(0)
    assert from_api == Work.EVENTS
    assert payloads == Work.PAYLOADS
