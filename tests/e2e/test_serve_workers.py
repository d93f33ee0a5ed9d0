"""``interlock serve``'s worker processes: they yield the CPU to the API on Linux, and
they stop when serve is gone, however early.

Each commit of work wakes a worker; under Linux's default policy the woken worker took
the core from the API thread that had just committed, mid-request. The workers run
under SCHED_BATCH (the same share of the CPU, no preemption on wake-up); the API
process keeps the default policy, so a request arriving preempts a worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from interlock.services.workers import SILENT_AFTER
from tests.support.ingest import am_alert, am_payload, basic
from tests.support.receiver import Receiver, hang, ok
from tests.support.server import (
    KEY_LINE,
    START_TIMEOUT,
    Server,
    environment,
    free_port,
    interlock_command,
    serving,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc; scheduling policies are Linux's")


def _workers_of(pid: int) -> list[int]:
    """The ``interlock worker`` processes that process ``pid`` started."""
    children = [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    return [child for child in children
            if b"worker" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (and is not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _reported_workers(server: Server) -> list[int]:
    """serve's two worker processes, once both have reported in (/readyz), so they have
    set their policy if they do."""
    def both() -> list[int] | None:
        reported = httpx.get(server.base_url + "/readyz", timeout=5.0).json()["workers"]
        workers = _workers_of(server.process.pid)
        return workers if len(workers) == 2 and len(reported) >= 2 else None

    return eventually(both, "serve's two workers reporting", timeout=START_TIMEOUT,
                      interval=0.05, explain=server.output)


def _policies(pid: int) -> set[int]:
    """The scheduling policy of each thread of process ``pid``."""
    return {os.sched_getscheduler(int(thread)) for thread in os.listdir(f"/proc/{pid}/task")}


def test_workers_run_as_batch_and_the_api_as_usual(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'interlock.db'}", tmp_path, "serve") as server:
        for worker in _reported_workers(server):
            assert _policies(worker) == {os.SCHED_BATCH}
        assert _policies(server.process.pid) == {os.SCHED_OTHER}
        server.stop()


def test_the_default_policy_when_turned_off(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'interlock.db'}", tmp_path, "serve",
                 {"INTERLOCK_WORKER_BATCH_SCHEDULING": "false"}) as server:
        for worker in _reported_workers(server):
            assert _policies(worker) == {os.SCHED_OTHER}
        server.stop()


def test_workers_stop_when_serve_is_killed_while_they_start(tmp_path: Path) -> None:
    """serve killed (SIGKILL: no chance to stop them) the moment its workers exist, long
    before they have started: they used to note their parent only once started, found
    init there, and lived on, working on the database with nobody to stop them."""
    serve = subprocess.Popen(
        [*interlock_command(), "serve", "--db", f"sqlite:///{tmp_path / 'interlock.db'}",
         "--host", "127.0.0.1", "--port", str(free_port())],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
        env=environment(tmp_path))
    _kill_once_its_workers_exist(serve, "serve's", interval=0.01)


def _kill_once_its_workers_exist(parent: subprocess.Popen[bytes], whose: str, *,
                                 interval: float) -> None:
    """SIGKILL ``parent`` (no chance to stop its workers) once its two worker processes
    exist, and wait for them to stop by themselves."""
    def started() -> list[int] | None:
        workers = _workers_of(parent.pid)
        return workers if len(workers) == 2 else None

    try:
        workers = eventually(started, f"{whose} two workers started",
                             timeout=START_TIMEOUT, interval=interval)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
    try:
        eventually(lambda: not any(_alive(worker) for worker in workers),
                   f"{whose} workers stopped without it", timeout=START_TIMEOUT)
    finally:
        for worker in workers:  # leave nothing behind, even when the test fails
            if _alive(worker):
                os.kill(worker, signal.SIGKILL)


def _tasks_of(pid: int) -> str:
    """The ``--tasks`` a worker process was started with."""
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return arguments[arguments.index("--tasks") + 1]


def test_a_frozen_worker_is_killed_and_another_started(tmp_path: Path) -> None:
    """A worker frozen whole (SIGSTOP) keeps the turn at alert processing: without
    serve's watchdog, alerts would wait until someone restarted it. The worker that
    keeps talking is left alone."""
    with serving(f"sqlite:///{tmp_path / 'interlock.db'}", tmp_path, "serve",
                 {"INTERLOCK_WORKER_WATCHDOG_SECONDS": "4",
                  "INTERLOCK_WORKER_POLL_SECONDS": "0.2"}) as server:
        (secret,) = KEY_LINE.findall(server.output())
        api = httpx.Client(base_url=server.base_url, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
        source = api.post("/api/v1/sources", json={"name": "am", "kind": "alertmanager"}
                          ).json()
        workers = {_tasks_of(pid): pid for pid in _reported_workers(server)}
        frozen = workers["alerts"]
        os.kill(frozen, signal.SIGSTOP)
        try:
            answer = api.post(f"/ingest/{source['id']}", headers=basic(source["token"]),
                              content=json.dumps(am_payload(am_alert("CPUHot"))))
            assert answer.status_code == 202
            eventually(lambda: api.get("/api/v1/incidents").json()["data"],
                       "the alert processed by another worker", timeout=40,
                       explain=server.output)
            assert not _alive(frozen)
            assert "worker process not heard from" in server.output()
            assert _workers_of(server.process.pid).count(workers["deliveries,sync"]) == 1
        finally:
            if _alive(frozen):
                os.kill(frozen, signal.SIGKILL)
        server.stop()


def test_what_a_worker_that_died_was_sending_goes_out_again_at_once(tmp_path: Path) -> None:
    """The delivery worker dies (SIGKILL) while a receiver holds its request: serve
    hands the delivery back as it starts another worker, which sends it within seconds,
    not once its lease lapses (two minutes) or another worker finds the dead one silent
    (30 s)."""
    with Receiver(hang(3)) as receiver, serving(
            f"sqlite:///{tmp_path / 'interlock.db'}", tmp_path, "serve",
            {"INTERLOCK_ALLOWED_TARGETS": "127.0.0.0/8",
             "INTERLOCK_WORKER_POLL_SECONDS": "0.2"}) as server:
        (secret,) = KEY_LINE.findall(server.output())
        api = httpx.Client(base_url=server.base_url, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
        assert api.post("/api/v1/endpoints", json={"url": receiver.url}).status_code == 201
        workers = {_tasks_of(pid): pid for pid in _reported_workers(server)}
        assert api.post("/api/v1/incidents", json={
            "title": "Checkout down", "severity": "high"}).status_code == 201
        [held] = receiver.wait_for(1, timeout=20)
        receiver.behaviour = ok
        os.kill(workers["deliveries,sync"], signal.SIGKILL)
        killed = time.monotonic()
        again = receiver.wait_for(2, timeout=SILENT_AFTER.total_seconds())[1]
        assert again.headers["webhook-id"] == held.headers["webhook-id"]
        assert again.at - killed < SILENT_AFTER.total_seconds() / 2, server.output()
        assert "handed back the work of a worker process that died" in server.output()
        server.stop()


def _worker_processes(database_url: str, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        return subprocess.Popen(
            [*interlock_command(), "worker", "--db", database_url, *args],
            stdout=output, stderr=subprocess.STDOUT, cwd=tmp_path,
            env=environment(tmp_path, {"INTERLOCK_ALLOWED_TARGETS": "127.0.0.0/8",
                                       "INTERLOCK_WORKER_POLL_SECONDS": "0.2"}))


def _reporting_children(server: Server, supervisor: int) -> dict[str, int]:
    """The worker processes ``supervisor`` started, by the tasks /readyz says each runs,
    once both report."""
    def both() -> dict[str, int] | None:
        reported = httpx.get(server.base_url + "/readyz", timeout=5.0).json()["workers"]
        by_pid = {int(worker["name"].split(":")[1]): sorted(worker["tasks"])
                  for worker in reported}
        children = {",".join(task for task in by_pid[pid] if task != "listen"): pid
                    for pid in _workers_of(supervisor) if pid in by_pid}
        return children if len(children) == 2 else None

    return eventually(both, "the worker's two processes reporting",
                      timeout=START_TIMEOUT, interval=0.1)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_split_worker_processes_alerts_apart_from_delivery_and_restarts_either(
        database_url: str, tmp_path: Path) -> None:
    """`interlock worker --split` runs as serve's workers do: alert processing in one
    process, delivery and sync in another, so an alert batch never waits for the
    interpreter lock while webhooks go out. A process that dies is started again;
    SIGTERM stops all of them."""
    with Receiver() as receiver, serving(
            database_url, tmp_path, "serve", {"INTERLOCK_ALLOWED_TARGETS": "127.0.0.0/8"},
            args=("--no-worker",)) as server:
        (secret,) = KEY_LINE.findall(server.output())
        api = httpx.Client(base_url=server.base_url, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
        assert api.post("/api/v1/endpoints", json={
            "url": receiver.url, "event_types": ["incident.created"]}).status_code == 201
        source = api.post("/api/v1/sources", json={"name": "am", "kind": "alertmanager"}
                          ).json()
        worker = _worker_processes(database_url, tmp_path, "--split")
        try:
            children = _reporting_children(server, worker.pid)
            assert set(children) == {"alerts", "deliveries,mail,sync"}

            def alert_told(name: str, count: int) -> None:
                answer = api.post(f"/ingest/{source['id']}", headers=basic(source["token"]),
                                  content=json.dumps(am_payload(am_alert(name))))
                assert answer.status_code == 202
                told = receiver.wait_for(count, timeout=30)
                assert json.loads(told[-1].body)["data"]["incident"]["title"].startswith(name)

            alert_told("CPUHot", 1)
            os.kill(children["alerts"], signal.SIGKILL)
            again = eventually(lambda: (found := _reporting_children(server, worker.pid))
                               ["alerts"] != children["alerts"] and found,
                               "another alert process started", timeout=START_TIMEOUT)
            assert again["deliveries,mail,sync"] == children["deliveries,mail,sync"]
            alert_told("DiskFull", 2)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=90) == 0
            assert not any(_alive(pid) for pid in again.values())
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
    output = (tmp_path / "worker.log").read_text()
    assert "worker process exited; restarting" in output, output


def test_a_split_workers_processes_stop_when_it_is_killed(tmp_path: Path) -> None:
    """SIGKILL gives `interlock worker --split` no chance to stop its processes: they
    notice and stop by themselves, rather than working on with nobody to stop them."""
    worker = _worker_processes(f"sqlite:///{tmp_path / 'interlock.db'}", tmp_path,
                               "--split")
    _kill_once_its_workers_exist(worker, "the worker's", interval=0.05)


def test_a_worker_without_split_runs_every_task_itself(tmp_path: Path) -> None:
    worker = _worker_processes(f"sqlite:///{tmp_path / 'interlock.db'}", tmp_path)
    try:
        eventually(lambda: "worker started" in (tmp_path / "worker.log").read_text(),
                   "the worker started", timeout=START_TIMEOUT)
        assert _workers_of(worker.pid) == []
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
