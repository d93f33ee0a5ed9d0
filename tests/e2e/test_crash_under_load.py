"""Processes killed while alerts pour in: what was accepted is applied, once.

A responder's monitoring keeps posting through a crash. ``interlock serve`` answers
``202`` only once a payload is committed; its alert worker claims payloads in batches
and applies each batch in one transaction. These tests kill processes with SIGKILL
(no chance to tidy up) in the middle of that traffic, through the real ``serve`` on a
SQLite file, and then look at what a user would: every payload processed, every alert
counted once per report, one incident per group.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ingest import am_alert, am_payload, basic
from tests.support.server import KEY_LINE, Server, serving
from tests.support.waiting import eventually
from tests.support.worker import alert_worker, start_worker_process

GROUPS = 30
ALERTS_PER_GROUP = 8
REPORTS = 3
SENDERS = 8
#: Seconds to wait for a backlog of this size to be processed after a crash: a worker
#: restarts within seconds and processes thousands of payloads a second.
DRAIN_TIMEOUT = 90.0
FAST_POLL = {"INTERLOCK_WORKER_POLL_SECONDS": "0.2"}


def _reports() -> list[bytes]:
    """Every alert's REPORTS reports, one alert per payload (as Grafana or PagerDuty
    send), report after report: each alert's second report comes after every alert's
    first."""
    return [json.dumps(am_payload(am_alert("DiskFull", service=f"svc-{group}",
                                           instance=f"host-{alert}"))).encode()
            for _ in range(REPORTS) for group in range(GROUPS)
            for alert in range(ALERTS_PER_GROUP)]


def _api(server: Server, secret: str | None = None) -> httpx.Client:
    """A client with the admin key ``serve`` printed when it made the database (or
    ``secret``: a restarted ``serve`` prints none)."""
    if secret is None:
        (secret,) = KEY_LINE.findall(server.output())
    return httpx.Client(base_url=server.base_url, timeout=30,
                        headers={"Authorization": f"Bearer {secret}"})


def _all(api: httpx.Client, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.get(path, params={"limit": 200, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        items.extend(page.json()["data"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            return items


def _statuses(api: httpx.Client, source_id: str) -> collections.Counter[str]:
    return collections.Counter(payload["status"] for payload in
                               _all(api, f"/api/v1/sources/{source_id}/payloads"))


def _wait_until_processed(api: httpx.Client, source_id: str) -> None:
    eventually(lambda: _statuses(api, source_id) == {"processed": len(_reports())},
               f"all {len(_reports())} payloads processed", timeout=DRAIN_TIMEOUT,
               interval=0.5, explain=lambda: f"payloads: {dict(_statuses(api, source_id))}")


def _post_all(server: Server, source: dict[str, Any], bodies: list[bytes],
              on_progress: Any = None) -> collections.Counter[int]:
    """Post ``bodies`` from SENDERS clients at once; the answers' status codes."""
    path = f"/ingest/{source['id']}"
    headers = {**basic(source["token"]), "Content-Type": "application/json"}
    sent = threading.local()
    done = [0]
    lock = threading.Lock()

    def post(body: bytes) -> int:
        client = getattr(sent, "client", None)
        if client is None:
            client = sent.client = httpx.Client(base_url=server.base_url, timeout=30)
        status = client.post(path, headers=headers, content=body).status_code
        with lock:
            done[0] += 1
            count = done[0]
        if on_progress is not None:
            on_progress(count)
        return status

    with ThreadPoolExecutor(SENDERS) as pool:
        return collections.Counter(pool.map(post, bodies))


def _assert_applied_once(api: httpx.Client) -> None:
    alerts = _all(api, "/api/v1/alerts")
    assert len(alerts) == GROUPS * ALERTS_PER_GROUP
    counts = collections.Counter(alert["count"] for alert in alerts)
    assert counts == {REPORTS: GROUPS * ALERTS_PER_GROUP}, "a report applied twice, or lost"
    incident_of_group = collections.defaultdict(set)
    for alert in alerts:
        incident_of_group[alert["service"]].add(alert["incident_id"])
    assert all(len(ids) == 1 and None not in ids for ids in incident_of_group.values()), \
        "a group's alerts in more than one incident"
    incidents = _all(api, "/api/v1/incidents")
    assert len(incidents) == GROUPS, "a group opened twice, or not at all"
    assert {incident["id"] for incident in incidents} == {
        next(iter(ids)) for ids in incident_of_group.values()}


def test_alerts_posted_while_the_alert_worker_is_killed_are_each_applied_once(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'interlock.db'}"
    with serving(url, tmp_path, "interlock", FAST_POLL) as server:
        api = _api(server)
        source = api.post("/api/v1/sources", json={"name": "am", "kind": "alertmanager"}
                          ).json()
        bodies = _reports()
        killed: set[int] = set()
        worker = eventually(lambda: alert_worker(api, killed), "the alert worker",
                            timeout=30)
        assert worker != server.process.pid

        def kill_once_a_third_is_posted(count: int) -> None:
            if count == len(bodies) // 3:
                os.kill(worker, signal.SIGKILL)
                killed.add(worker)

        statuses = _post_all(server, source, bodies, kill_once_a_third_is_posted)
        assert statuses == {202: len(bodies)}, "ingest answers without the worker"
        assert killed, "the worker was killed while alerts poured in"
        # Whatever worker serve started next, killed in turn while it works off the
        # backlog the first one left.
        second = eventually(lambda: alert_worker(api, killed), "a new alert worker",
                            timeout=60)
        os.kill(second, signal.SIGKILL)
        killed.add(second)
        _wait_until_processed(api, source["id"])
        _assert_applied_once(api)
        assert eventually(lambda: alert_worker(api, killed), "a third alert worker")


def test_payloads_accepted_before_serve_is_killed_are_processed_after_it_restarts(
        tmp_path: Path) -> None:
    """Nothing answered ``202`` is lost with the process that answered it."""
    url = f"sqlite:///{tmp_path / 'interlock.db'}"
    bodies = _reports()
    with serving(url, tmp_path, "first", FAST_POLL, args=("--no-worker",)) as server:
        api = _api(server)
        source = api.post("/api/v1/sources", json={"name": "am", "kind": "alertmanager"}
                          ).json()
        statuses = _post_all(server, source, bodies)
        server.process.kill()
        server.process.wait(timeout=15)
    assert statuses == {202: len(bodies)}
    started = time.monotonic()
    secret = api.headers["Authorization"].removeprefix("Bearer ")
    with serving(url, tmp_path, "second", FAST_POLL) as server:
        api = _api(server, secret)
        _wait_until_processed(api, source["id"])
        _assert_applied_once(api)
    assert time.monotonic() - started < DRAIN_TIMEOUT


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_alerts_shared_by_two_workers_one_killed_are_each_applied_once(
        database_url: str, tmp_path: Path) -> None:
    """On PostgreSQL every worker processes alerts; one dies mid-batch, the other goes
    on, and no group is opened twice by the two. Payloads the dead one had claimed go
    to the other once the dead one has not reported for 30 s, not when their leases
    lapse (120 s by default): they are applied after later reports of the same alerts,
    which stand, and counted."""
    with serving(database_url, tmp_path, "interlock", FAST_POLL, args=("--no-worker",)
                 ) as server:
        api = _api(server)
        source = api.post("/api/v1/sources", json={"name": "am", "kind": "alertmanager"}
                          ).json()
        workers = [start_worker_process(database_url, tmp_path / f"worker-{n}.log",
                                        worker_poll_seconds="0.2")
                   for n in range(2)]
        try:
            eventually(lambda: len({pid for pid in (alert_worker(api, set()),
                                                   alert_worker(api, {workers[0].pid}))
                                    if pid}) == 2, "both workers processing alerts",
                       timeout=30)
            bodies = _reports()

            def kill_one_once_a_third_is_posted(count: int) -> None:
                if count == len(bodies) // 3:
                    workers[0].kill()

            statuses = _post_all(server, source, bodies, kill_one_once_a_third_is_posted)
            assert statuses == {202: len(bodies)}
            assert workers[0].wait(timeout=15) == -signal.SIGKILL
            # Within DRAIN_TIMEOUT, under the default lease: what the dead one held was
            # taken over, not waited out.
            _wait_until_processed(api, source["id"])
            _assert_applied_once(api)
            assert workers[1].poll() is None, (tmp_path / "worker-1.log").read_text()
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
                    worker.wait(timeout=30)
