"""Benchmark of webhook delivery: throughput, isolation from a hanging endpoint,
latency, and the loopback ceiling. Not a test: it prints figures.

    .venv/bin/python bench/delivery.py                       # SQLite, about 1.5 minutes
    .venv/bin/python bench/delivery.py --db postgresql://postgres@127.0.0.1:54329/postgres
    .venv/bin/python bench/delivery.py --durable-postgres    # its own durable server
    .venv/bin/python bench/delivery.py --skip-ceiling --skip-hang --skip-latency  # throughput

Lead with the worker's CPU per delivery (all its processes, from the first arrival):
on a shared machine it travels better than rates. The latency run says whether the API
kept the requested rate of changes (requested vs achieved changes/s) and gives the
API's p50/p99 next to the deliveries'; a run where it did not measured a lower load.
On PostgreSQL the bench says whether the server is durable (fsync, synchronous_commit,
full_page_writes): the tests' server is not, and its figures flatter.

Everything runs on this machine, on 127.0.0.1, as real processes:

* a webhook receiver (its own process) that verifies the signature of every request
  with the ``standardwebhooks`` reference library, counts per path, records arrival
  times, and takes latency as arrival time minus ``data.incident.updated_at`` (set by
  Interlock just before its commit, so the figure is conservative). It stands for
  endpoints on other machines, so it answers over a bare HTTP/1.1 parser (httptools)
  that takes less of this machine's CPU than aiohttp's server did (``--receiver
  aiohttp`` for that one);
* ``interlock serve --no-worker`` to create endpoints and incidents through the API,
  then ``interlock worker`` to deliver them (throughput, hanging endpoint);
* ``interlock serve`` with its embedded worker for latency, at a fixed rate of
  incident changes (comments) through the API;
* a raw aiohttp client posting signed bodies to the same receiver: the ceiling.

Each scenario gets a fresh database: a file in a temporary directory on SQLite, a
temporary database (``CREATE DATABASE``, dropped afterwards) on PostgreSQL. Every
process and temporary file is removed at the end, also after a failure or Ctrl-C.
``INTERLOCK_WORKER_*`` and ``INTERLOCK_SQLITE_SYNCHRONOUS`` from the environment are
passed to Interlock; other ``INTERLOCK_*`` variables are not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import httptools
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from harness import (
    HOST,
    Context,
    Failed,
    Interlock,
    argument_parser,
    check_db,
    children_of,
    cpu_seconds,
    interlock_command,
    nearest_rank,
    parse_arguments,
    percentiles_ms,
    phase,
    postgres_durability,
    print_table,
    process_tree_cpu,
    run_bench,
    setup_line,
    start_interlock,
    stop_interlock,
    temp_dir,
    verdict,
)

TARGET_THROUGHPUT = 3000.0  # signed deliveries/s on SQLite (issue 10)
TARGET_P99_MS = 100.0  # delivery p99 at 200 changes/s (issue 10)
TARGET_HANG_LOSS = 0.10  # what a hanging endpoint may cost the others
#: --durable-postgres: its port, away from the tests' server on 54329.
DURABLE_PG_PORT = 54339
POSTGRES_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres.sh"


# -- the receiver (its own process) ----------------------------------------------------


class _PathStats:
    __slots__ = ("arrivals", "dupes", "ids")

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.ids: set[str] = set()
        self.dupes = 0


class Receiver:
    """``POST /h/{name}`` answers 204 at once; ``POST /hang/{name}`` answers only after
    ``hang_seconds`` (the sender times out first). Both verify the signature with
    ``{name}``'s secret, set with ``POST /secrets {name: secret}``."""

    def __init__(self, hang_seconds: float) -> None:
        self.hang_seconds = hang_seconds
        self.webhooks: dict[str, Webhook] = {}
        self.reset()

    def reset(self) -> None:
        self.paths: dict[str, _PathStats] = defaultdict(_PathStats)
        self.invalid = 0
        self.invalid_detail: list[str] = []
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.sample: str | None = None

    def receive(self, kind: str, name: str, headers: dict[str, str], body: bytes,
                arrived: float) -> int:
        """Verify and count one delivery; the status code to answer."""
        webhook = self.webhooks.get(name)
        try:
            if webhook is None:
                raise WebhookVerificationError(f"no secret for {name}")
            payload = webhook.verify(body, headers)
        except WebhookVerificationError as error:
            self.invalid += 1
            if len(self.invalid_detail) < 5:
                self.invalid_detail.append(f"/{kind}/{name}: {error}")
            return 401
        stats = self.paths[f"{kind}/{name}"]
        stats.arrivals.append(arrived)
        message_id = headers["webhook-id"]
        if message_id in stats.ids:
            stats.dupes += 1
        else:
            stats.ids.add(message_id)
        incident = (payload.get("data") or {}).get("incident") or {}
        updated_at = incident.get("updated_at")
        if updated_at:
            changed = datetime.fromisoformat(updated_at).timestamp()
            self.latency[payload.get("type", "?")].append(arrived - changed)
        if kind != "hang" and self.sample is None:
            self.sample = body.decode()
        return 204

    async def deliver(self, request: web.Request) -> web.Response:
        """The delivery paths served by aiohttp (--receiver aiohttp)."""
        arrived = time.time()
        body = await request.read()
        kind, name = request.match_info["kind"], request.match_info["name"]
        status = self.receive(kind, name, {key.lower(): value for key, value
                                           in request.headers.items()}, body, arrived)
        if status == 204 and kind == "hang":
            await asyncio.sleep(self.hang_seconds)
        return web.Response(status=status)

    async def set_secrets(self, request: web.Request) -> web.Response:
        for name, secret in (await request.json()).items():
            self.webhooks[name] = Webhook(secret)
        return web.json_response({"names": len(self.webhooks)})

    async def do_reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def stats(self, request: web.Request) -> web.Response:
        wanted = request.query.get("paths")
        names = wanted.split(",") if wanted else [p for p in self.paths if p.startswith("h/")]
        return web.json_response({
            "paths": {path: {"count": len(s.arrivals), "unique": len(s.ids), "dupes": s.dupes}
                      for path, s in self.paths.items()},
            "union": _summary([self.paths[p] for p in names if p in self.paths]),
            "invalid": self.invalid,
            "invalid_detail": self.invalid_detail,
            "latency": {kind: percentiles_ms(values) for kind, values in self.latency.items()},
            "sample": self.sample,
        })


def _summary(paths: list[_PathStats]) -> dict[str, Any]:
    arrivals = sorted(t for s in paths for t in s.arrivals)
    count = len(arrivals)
    result: dict[str, Any] = {
        "count": count, "unique": sum(len(s.ids) for s in paths),
        "dupes": sum(s.dupes for s in paths), "first": None, "last": None,
        "rate": None, "rate_10_90": None,
    }
    if count:
        result["first"], result["last"] = arrivals[0], arrivals[-1]
    if count > 1 and arrivals[-1] > arrivals[0]:
        result["rate"] = (count - 1) / (arrivals[-1] - arrivals[0])
        low, high = int(count * 0.1), int(count * 0.9)
        if high > low and arrivals[high] > arrivals[low]:
            result["rate_10_90"] = (high - low) / (arrivals[high] - arrivals[low])
    return result


_ANSWERS = {status: (f"HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n\r\n").encode()
            for status, reason in ((204, "No Content"), (401, "Unauthorized"),
                                   (404, "Not Found"))}


class _LeanProtocol(asyncio.Protocol):
    """The delivery paths over a bare HTTP/1.1 parser (httptools, uvicorn's): a
    connection kept alive, a body with its Content-Length, one request at a time, as
    aiohttp's client sends them. The receiver stands in for endpoints on other machines,
    so its own CPU should take as little of this one as it can: aiohttp's server cost
    about 150 µs per request here, this about a fifth of it. Every signature is still
    verified with the reference library."""

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        arrived = time.time()
        path = self._url.decode("latin-1").split("?")[0]
        _, kind, name = [*path.split("/", 2), "", ""][:3]
        status = 404
        if self._parser.get_method() == b"POST" and kind in ("h", "hang") and name:
            status = self._receiver.receive(kind, name, self._headers, b"".join(self._body),
                                            arrived)
        if status == 204 and kind == "hang":
            asyncio.get_running_loop().call_later(self._receiver.hang_seconds, self._answer,
                                                  status)
        else:
            self._answer(status)

    def _answer(self, status: int) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(_ANSWERS[status])
        if not self._parser.should_keep_alive():
            transport.close()


def receiver_main(conn: Connection, hang_seconds: float, lean: bool) -> None:
    """The receiver process: Ctrl-C is the parent's to handle; it terminates us."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve_receiver(conn, hang_seconds, lean))


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(1024)
    return sock


async def _serve_receiver(conn: Connection, hang_seconds: float, lean: bool) -> None:
    """Deliveries on one port, by the lean server or aiohttp's; the bench's own calls
    (secrets, reset, stats) on another, by aiohttp's."""
    receiver = Receiver(hang_seconds)
    control = web.Application(client_max_size=2**20)
    control.router.add_post("/secrets", receiver.set_secrets)
    control.router.add_post("/reset", receiver.do_reset)
    control.router.add_get("/stats", receiver.stats)
    runners = []
    deliveries = _listening()
    if lean:
        await asyncio.get_running_loop().create_server(
            lambda: _LeanProtocol(receiver), sock=deliveries, backlog=1024)
    else:
        app = web.Application(client_max_size=2**20)
        app.router.add_post("/{kind:h|hang}/{name}", receiver.deliver)
        runners.append((web.AppRunner(app, access_log=None, handler_cancellation=True),
                        deliveries))
    control_sock = _listening()
    runners.append((web.AppRunner(control, access_log=None), control_sock))
    for runner, sock in runners:
        await runner.setup()
        await web.SockSite(runner, sock, backlog=1024).start()
    conn.send((deliveries.getsockname()[1], control_sock.getsockname()[1]))
    conn.close()
    await asyncio.Event().wait()


# -- processes ------------------------------------------------------------------------


@dataclass
class DeliveryContext(Context):
    """The shared context, plus the receiver process (stopped after Interlock's) and,
    with --durable-postgres, the PostgreSQL server this run started."""

    receiver: multiprocessing.process.BaseProcess | None = None
    #: On PostgreSQL, "durable" or "NOT durable", and the settings that say so.
    durability: str = ""
    durability_detail: str = ""
    started_postgres: bool = False

    def start_durable_postgres(self) -> None:
        """A throwaway durable server on DURABLE_PG_PORT (scripts/postgres.sh), never
        the tests' server; stopped and removed at cleanup if this run started it."""
        env = {**os.environ, "INTERLOCK_TEST_PG_PORT": str(DURABLE_PG_PORT),
               "INTERLOCK_TEST_PG_DURABLE": "1"}
        running = subprocess.run(
            ["pg_isready", "-h", HOST, "-p", str(DURABLE_PG_PORT), "-q"],
            check=False).returncode == 0 if shutil.which("pg_isready") else False
        print(f"starting a durable PostgreSQL on port {DURABLE_PG_PORT}", flush=True)
        done = subprocess.run([str(POSTGRES_SCRIPT), "start"], env=env, capture_output=True,
                              text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise Failed(f"scripts/postgres.sh failed:\n{done.stderr[-2000:]}")
        self.started_postgres = not running
        self.args.db = done.stdout.strip().splitlines()[-1]

    def check_durability(self) -> None:
        durable, self.durability_detail = postgres_durability(self.args.db)
        self.durability = "durable" if durable else "NOT durable"

    def cleanup(self) -> None:
        super().cleanup()
        if self.started_postgres:
            env = {**os.environ, "INTERLOCK_TEST_PG_PORT": str(DURABLE_PG_PORT)}
            subprocess.run([str(POSTGRES_SCRIPT), "stop"], env=env, capture_output=True,
                           timeout=120, check=False)
            shutil.rmtree(f"/tmp/interlock-test-pg-{DURABLE_PG_PORT}", ignore_errors=True)
            self.started_postgres = False

    def stop_processes(self) -> None:
        super().stop_processes()
        if self.receiver is not None and self.receiver.is_alive():
            self.receiver.terminate()
            self.receiver.join(5)
            if self.receiver.is_alive():
                self.receiver.kill()
                self.receiver.join(5)


# -- CPU time ---------------------------------------------------------------------------

#: CPU seconds of something so far (None when it cannot be read).
CpuMeter = Callable[[], float | None]


def process_meter(pid: int | None) -> CpuMeter:
    return lambda: cpu_seconds(pid)


def trees_meter(pids: list[int]) -> CpuMeter:
    """The processes and their descendants: the ``interlock worker`` processes, and
    whatever processes they may start tomorrow."""
    return lambda: process_tree_cpu(pids)


def children_meter(pid: int) -> CpuMeter:
    """What ``pid`` started, and their descendants: serve's worker process(es) without
    serve's own API work. Children found afresh each time (a restarted worker)."""
    return lambda: process_tree_cpu(children_of(pid))


# -- talking to the receiver ----------------------------------------------------------


@dataclass
class ReceiverClient:
    http: aiohttp.ClientSession
    #: Where deliveries go (the endpoints' URLs start with it).
    base: str
    #: Where the bench's own calls go.
    control: str

    async def post(self, path: str, body: Any) -> Any:
        async with self.http.post(self.control + path, json=body) as response:
            response.raise_for_status()
            return await response.json()

    async def stats(self, paths: Iterable[str] | None = None) -> dict[str, Any]:
        params = {"paths": ",".join(paths)} if paths is not None else {}
        async with self.http.get(self.control + "/stats", params=params) as response:
            response.raise_for_status()
            result: dict[str, Any] = await response.json()
            return result

    async def wait_for(self, paths: list[str], expected: int, timeout: float,
                       progress: str = "", cpu_of: dict[str, CpuMeter] | None = None
                       ) -> dict[str, Any]:
        """Until ``expected`` distinct messages arrived on ``paths``, or ``timeout``.
        With ``cpu_of`` ({name: meter}), the answer's "cpu" holds the CPU seconds each
        meter counted from the first arrival to the end, and "cpu_count" the arrivals."""
        deadline = time.monotonic() + timeout
        next_print = time.monotonic() + 5
        cpu_start: dict[str, float | None] = {}
        count_start = 0
        while True:
            stats = await self.stats(paths)
            unique = stats["union"]["unique"]
            if cpu_of and not cpu_start and unique:
                cpu_start = {name: meter() for name, meter in cpu_of.items()}
                count_start = stats["union"]["count"]
            if cpu_of and cpu_start:
                end = {name: meter() for name, meter in cpu_of.items()}
                stats["cpu"] = {name: (end[name] or 0.0) - (cpu_start[name] or 0.0)
                                for name in cpu_of
                                if end[name] is not None and cpu_start[name] is not None}
                stats["cpu_count"] = stats["union"]["count"] - count_start
            if unique >= expected or time.monotonic() > deadline:
                if unique < expected:
                    print(f"    ! only {unique:,} of {expected:,} arrived within {timeout:g} s")
                return stats
            if progress and time.monotonic() > next_print:
                print(f"    {progress}: {unique:,} / {expected:,}", flush=True)
                next_print += 5
            await asyncio.sleep(0.1)


async def create_endpoints(interlock: Interlock, receiver: ReceiverClient, names: list[str],
                           timeout: float, hanging: Iterable[str] = ()) -> dict[str, str]:
    """Endpoint ids by name; each points at the receiver's path for its name."""
    hang = set(hanging)
    ids, keys = {}, {}
    for name in names:
        kind = "hang" if name in hang else "h"
        answer = await interlock.call("POST", "/api/v1/endpoints", {
            "url": f"{receiver.base}/{kind}/{name}", "timeout": timeout,
            "description": f"bench {name}",
        }, expect=201)
        ids[name], keys[name] = answer["id"], answer["secret"]
    await receiver.post("/secrets", keys)
    return ids


async def create_incidents(interlock: Interlock, count: int, concurrency: int = 16
                           ) -> tuple[list[str], float]:
    """Incident ids, and the API's rate of creating them."""
    ids: list[str] = []
    todo = iter(range(count))

    async def one_worker() -> None:
        for i in todo:
            answer = await interlock.call("POST", "/api/v1/incidents", {
                "title": f"Checkout returns 502 (bench #{i})", "severity": "high",
                "service": "checkout", "summary": "Error rate above 5 % on /pay since 04:12.",
                "labels": {"team": "payments", "region": "eu-west-1"},
            }, expect=201)
            ids.append(answer["id"])

    started = time.perf_counter()
    await asyncio.gather(*(one_worker() for _ in range(concurrency)))
    return ids, count / (time.perf_counter() - started)


# -- phases ----------------------------------------------------------------------------


@dataclass
class Throughput:
    label: str
    expected: int
    stats: dict[str, Any]
    wall: float  # worker start to last arrival
    enqueue_rate: float
    hanging_attempts: int = 0

    @property
    def rate(self) -> float:
        return float(self.stats["union"]["rate"] or 0.0)

    def cpu_per_delivery(self, name: str) -> float | None:
        """Microseconds of ``name``'s CPU per delivery, from the first arrival on."""
        count = self.stats.get("cpu_count") or 0
        seconds = (self.stats.get("cpu") or {}).get(name)
        return seconds / count * 1e6 if count >= 100 and seconds is not None else None


async def throughput_phase(ctx: DeliveryContext, receiver: ReceiverClient, label: str, *,
                           hang: bool) -> Throughput:
    args = ctx.args
    names = [f"{label}{i}" for i in range(args.endpoints)]
    hanging = names[-1:] if hang else []
    healthy = [name for name in names if name not in hanging]
    paths = [f"h/{name}" for name in healthy]
    expected = args.incidents * len(healthy)
    db_url = ctx.new_database(label)
    interlock = await start_interlock(ctx, label, db_url, worker=False, connections=64)
    try:
        await create_endpoints(interlock, receiver, names, args.timeout, hanging)
        _, enqueue_rate = await create_incidents(interlock, args.incidents)
        print(f"    {args.incidents:,} incidents created ({enqueue_rate:,.0f}/s through the "
              f"API) -> {args.incidents * len(names):,} deliveries queued", flush=True)
        await receiver.post("/reset", {})
        worker_started = time.time()
        workers = [ctx.spawn(f"{label}-worker{n}", interlock_command("worker", "--db", db_url))
                   for n in range(args.workers)]
        try:
            stats = await receiver.wait_for(
                paths, expected, args.phase_timeout, progress="delivered",
                cpu_of={"worker": trees_meter([worker.popen.pid for worker in workers]),
                        "receiver": process_meter(ctx.receiver.pid if ctx.receiver else None)})
        finally:
            for worker in workers:
                if worker.popen.poll() is not None:
                    print(f"    ! worker exited ({worker.popen.returncode}):\n"
                          f"{worker.log_tail()}")
                await asyncio.to_thread(ctx.stop, worker)
    finally:
        await stop_interlock(ctx, interlock)
    last = stats["union"]["last"] or worker_started
    result = Throughput(label, expected, stats, last - worker_started, enqueue_rate)
    if hang:
        result.hanging_attempts = stats["paths"].get(f"hang/{hanging[0]}", {}).get("count", 0)
    return result


def throughput_line(result: Throughput) -> str:
    union = result.stats["union"]
    steady = union["rate_10_90"] or 0.0
    cpu = cpu_line(result.stats)
    return (cpu + "\n" if cpu else "") + (
        f"    {union['unique']:,}/{result.expected:,} delivered, {union['dupes']} duplicates, "
        f"{result.stats['invalid']} bad signatures; {result.rate:,.0f}/s first->last "
        f"arrival ({steady:,.0f}/s for the middle 80 %), "
        f"{result.wall:.1f} s from worker start")


def cpu_line(stats: dict[str, Any]) -> str:
    """CPU per delivery: steadier than rates on a shared machine."""
    count = stats.get("cpu_count") or 0
    if count < 100:
        return ""
    return "    CPU per delivery (from the first arrival): " + ", ".join(
        f"{name} {seconds / count * 1e6:,.0f} us" for name, seconds in stats["cpu"].items())


@dataclass
class Latency:
    endpoints: int
    rate: float
    seconds: float
    expected: int
    received: int
    api: ApiRun
    percentiles: dict[str, float | int]
    invalid: int
    #: CPU seconds over the run, by process group (see latency_phase).
    cpu: dict[str, float]

    @property
    def kept_rate(self) -> bool:
        """Whether the API took the changes as fast as they were sent (within 5 %)."""
        return self.api.achieved_rate >= 0.95 * self.rate


@dataclass
class ApiRun:
    """How the API took a run of changes sent at a fixed rate."""

    #: Changes answered per second, from the first sent to the last answered.
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    errors: int


async def drive_changes(interlock: Interlock, incidents: list[str], rate: float,
                        seconds: float) -> ApiRun:
    """Comments at a fixed rate, open loop (each is sent on schedule, whether or not the
    ones before it have been answered): an API that falls behind answers late, and the
    rate reached falls below the rate asked for."""
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    api_times: list[float] = []
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        sent = time.perf_counter()
        try:
            await interlock.call("POST", f"/api/v1/incidents/{incidents[i % len(incidents)]}"
                                 "/comments", {"body": f"bench change {i}"}, expect=201)
            api_times.append(time.perf_counter() - sent)
        except (Failed, aiohttp.ClientError, TimeoutError) as error:
            errors += 1
            if errors <= 3:
                print(f"    ! change {i} failed: {error}")

    tasks = []
    started = loop.time()
    for i in range(total):
        delay = started + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - started
    api_times.sort()
    p50, p99 = ((nearest_rank(api_times, q) * 1000 for q in (0.50, 0.99)) if api_times
                else (float("nan"), float("nan")))
    return ApiRun(total / elapsed, p50, p99, errors)


async def latency_phase(ctx: DeliveryContext, receiver: ReceiverClient) -> list[Latency]:
    args = ctx.args
    label = "lat"
    names = [f"{label}{i}" for i in range(args.endpoints)]
    db_url = ctx.new_database(label)
    interlock = await start_interlock(ctx, label, db_url, worker=True, connections=64)
    results = []
    try:
        ids = await create_endpoints(interlock, receiver, names, args.timeout)
        incidents, _ = await create_incidents(interlock, args.latency_incidents)
        await receiver.wait_for([f"h/{name}" for name in names],
                                len(incidents) * len(names), args.phase_timeout)
        enabled = set(names)
        for count in args.latency_endpoints:
            wanted = set(names[:count])
            for name in names:
                if (name in wanted) != (name in enabled):
                    await interlock.call("PATCH", f"/api/v1/endpoints/{ids[name]}",
                                         {"enabled": name in wanted})
            enabled = wanted
            await asyncio.sleep(0.5)
            await receiver.post("/reset", {})
            print(f"    {args.rate:g} changes/s for {args.seconds:g} s, "
                  f"{count} endpoint{'s' if count != 1 else ''} "
                  f"({args.rate * count:,.0f} deliveries/s)", flush=True)
            # serve runs the worker as a child process: its CPU is serve's children's.
            meters = {"worker": children_meter(interlock.proc.popen.pid),
                      "API (serve)": process_meter(interlock.proc.popen.pid)}
            cpu_before = {name: meter() or 0.0 for name, meter in meters.items()}
            api = await drive_changes(interlock, incidents, args.rate, args.seconds)
            expected = int(args.rate * args.seconds) * count
            stats = await receiver.wait_for([f"h/{name}" for name in sorted(wanted)],
                                            expected - api.errors * count, 30)
            cpu = {name: (meter() or 0.0) - cpu_before[name] for name, meter in meters.items()}
            percentiles = stats["latency"].get("incident.comment_added", {"n": 0})
            results.append(Latency(count, args.rate, args.seconds, expected,
                                   stats["union"]["unique"], api, percentiles,
                                   stats["invalid"], cpu))
            print(latency_line(results[-1]), flush=True)
    finally:
        await stop_interlock(ctx, interlock)
    return results


def latency_line(result: Latency) -> str:
    api = result.api
    kept = ("the API kept the rate" if result.kept_rate
            else "the API did NOT keep the rate: figures are for a lower load")
    lines = [f"    changes: requested {result.rate:,.0f}/s, achieved {api.achieved_rate:,.0f}/s "
             f"({kept}); API p50 {api.p50_ms:.1f} ms, p99 {api.p99_ms:.1f} ms, "
             f"{api.errors} API errors"]
    p = result.percentiles
    if p.get("n"):
        lines.append(
            f"    delivery p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, p99 {p['p99']:.1f} ms, "
            f"max {p['max']:.1f} ms over {p['n']:,} deliveries ({result.received:,}/"
            f"{result.expected:,} arrived, {result.invalid} bad signatures)")
    else:
        lines.append("    no latency samples")
    if result.received:
        lines.append("    CPU per delivery over the run: " + ", ".join(
            f"{name} {seconds / result.received * 1e6:,.0f} us"
            for name, seconds in result.cpu.items()))
    return "\n".join(lines)


@dataclass
class Ceiling:
    rate: float
    requests: int
    failures: int
    invalid: int


async def ceiling_phase(ctx: DeliveryContext, receiver: ReceiverClient, sample: str | None
                        ) -> Ceiling:
    """A plain aiohttp client posting pre-signed bodies as fast as the receiver takes
    them, with as many connections as Interlock's sender uses for one receiver host."""
    args = ctx.args
    names = [f"ceil{i}" for i in range(args.endpoints)]
    keys = {name: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            for name in names}
    await receiver.post("/secrets", keys)
    body = (sample or _synthetic_body()).encode()
    now = int(time.time())
    requests = []
    for i in range(2000):
        name = names[i % len(names)]
        message_id = f"msg_{uuid.uuid4().hex}"
        signature = Webhook(keys[name]).sign(message_id, datetime.fromtimestamp(now, UTC),
                                             body.decode())
        requests.append((f"{receiver.base}/h/{name}", {
            "content-type": "application/json", "webhook-id": message_id,
            "webhook-timestamp": str(now), "webhook-signature": signature,
        }))
    await receiver.post("/reset", {})
    sent = failures = 0
    stop_at = 0.0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
            limit=args.concurrency, limit_per_host=args.concurrency)) as session:

        async def client(start: int) -> None:
            nonlocal sent, failures
            i = start
            while time.perf_counter() < stop_at:
                url, headers = requests[i % len(requests)]
                i += args.concurrency
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    sent += 1
                    failures += response.status != 204

        # A short warm-up opens the connections, then the measured run.
        stop_at = time.perf_counter() + 0.5
        await asyncio.gather(*(client(i) for i in range(args.concurrency)))
        sent = failures = 0
        started = time.perf_counter()
        stop_at = started + args.ceiling_seconds
        await asyncio.gather(*(client(i) for i in range(args.concurrency)))
        elapsed = time.perf_counter() - started
    stats = await receiver.stats()
    return Ceiling(sent / elapsed, sent, failures, stats["invalid"])


def _synthetic_body() -> str:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    incident = {
        "id": "inc_01BENCH", "reference": "INC-1", "title": "Checkout returns 502 (bench #1)",
        "summary": "Error rate above 5 % on /pay since 04:12.", "status": "triggered",
        "severity": "high", "service": "checkout", "assignee": None,
        "labels": {"region": "eu-west-1", "team": "payments"}, "visibility": "public",
        "version": 1, "created_at": now, "updated_at": now, "acknowledged_at": None,
        "resolved_at": None,
    }
    return json.dumps({"type": "incident.created", "timestamp": now,
                       "data": {"incident": incident, "changes": {}}}, separators=(",", ":"))


# -- the run ---------------------------------------------------------------------------


@dataclass
class Results:
    healthy: Throughput | None = None
    hanging: Throughput | None = None
    latency: list[Latency] = field(default_factory=list)
    ceiling: Ceiling | None = None
    errors: list[str] = field(default_factory=list)


async def run(ctx: DeliveryContext, ports: tuple[int, int], results: Results) -> None:
    args = ctx.args
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        receiver = ReceiverClient(http, f"http://{HOST}:{ports[0]}", f"http://{HOST}:{ports[1]}")

        async def healthy() -> None:
            results.healthy = await throughput_phase(ctx, receiver, "tput", hang=False)
            print(throughput_line(results.healthy))

        async def ceiling() -> None:
            sample = None
            if results.healthy is not None:
                sample = results.healthy.stats.get("sample")
            results.ceiling = await ceiling_phase(ctx, receiver, sample)
            c = results.ceiling
            print(f"    {c.rate:,.0f} POSTs/s ({c.requests:,} in {args.ceiling_seconds:g} s, "
                  f"{args.concurrency} concurrent; {c.failures} non-204, "
                  f"{c.invalid} bad signatures)")

        async def hanging() -> None:
            results.hanging = await throughput_phase(ctx, receiver, "hang", hang=True)
            print(throughput_line(results.hanging))
            print(f"    the hanging endpoint was tried {results.hanging.hanging_attempts} "
                  f"times meanwhile (timeout {args.timeout:g} s)")

        async def latency() -> None:
            results.latency = await latency_phase(ctx, receiver)

        n = args.endpoints
        if not args.skip_throughput:
            await phase(f"Throughput: {args.incidents:,} incidents x {n} endpoints, "
                        f"{args.workers} `interlock worker`", healthy, results.errors)
        if not args.skip_ceiling:
            await phase("Ceiling: raw aiohttp client -> the same receiver", ceiling, results.errors)
        if not args.skip_hang:
            await phase(f"Hanging endpoint: 1 of {n} hangs (timeout {args.timeout:g} s), "
                        f"{args.incidents:,} incidents", hanging, results.errors)
        if not args.skip_latency:
            await phase(f"Latency: `interlock serve` with its embedded worker, "
                        f"{args.rate:g} changes/s", latency, results.errors)


def print_summary(ctx: DeliveryContext, results: Results) -> None:
    args = ctx.args
    rows: list[tuple[str, str, str, str]] = []
    db = ctx.database
    healthy, hanging, ceiling = results.healthy, results.hanging, results.ceiling
    nine = f"{args.endpoints - 1} healthy"
    if ctx.durability:
        rows.append((f"PostgreSQL durability ({ctx.durability_detail})", ctx.durability, "", ""))
    if healthy and healthy.cpu_per_delivery("worker") is not None:
        rows.append(("worker CPU per delivery", f"{healthy.cpu_per_delivery('worker'):,.0f} us",
                     "", ""))
    if healthy:
        rows.append((f"throughput, {db}, {args.endpoints} endpoints", f"{healthy.rate:,.0f}/s",
                     f">= {TARGET_THROUGHPUT:,.0f}/s",
                     verdict(healthy.rate >= TARGET_THROUGHPUT) if not ctx.postgres else "-"))
    if ceiling:
        rows.append(("ceiling: raw aiohttp client", f"{ceiling.rate:,.0f}/s", "", ""))
        if healthy:
            rows.append(("  Interlock / ceiling", f"{healthy.rate / ceiling.rate:.2f}", "", ""))
    if hanging:
        union = hanging.stats["union"]
        rows.append((f"{nine}, 1 hanging", f"{hanging.rate:,.0f}/s", "", ""))
        if healthy:
            before = _rate_of(healthy.stats, [f"h/tput{i}" for i in range(args.endpoints - 1)])
            rows.append((f"{nine}, all healthy", f"{before:,.0f}/s", "", ""))
            if before:
                ratio = hanging.rate / before
                rows.append(("  with hanging / all healthy", f"{ratio:.2f}",
                             f">= {1 - TARGET_HANG_LOSS:.2f}",
                             verdict(ratio >= 1 - TARGET_HANG_LOSS)))
        if union["unique"] < hanging.expected:
            rows.append((f"  {nine}: not delivered", f"{hanging.expected - union['unique']:,}",
                         "0", "MISSED"))
    for item in results.latency:
        p = item.percentiles
        where = f"{item.endpoints} endpoint{'s' if item.endpoints != 1 else ''}"
        rows.append((f"changes/s requested -> achieved, {where}",
                     f"{item.rate:,.0f} -> {item.api.achieved_rate:,.0f}", "kept (>= 95 %)",
                     verdict(item.kept_rate)))
        rows.append((f"  API p50/p99, {where}",
                     f"{item.api.p50_ms:.0f}/{item.api.p99_ms:.0f} ms", "", ""))
        if p.get("n"):
            rows.append((f"  delivery p50/p95/p99, {where}",
                         f"{p['p50']:.0f}/{p['p95']:.0f}/{p['p99']:.0f} ms",
                         f"p99 <= {TARGET_P99_MS:g} ms", verdict(p["p99"] <= TARGET_P99_MS)))
            rows.append((f"  max, {where} ({item.rate * item.endpoints:,.0f} deliveries/s)",
                         f"{p['max']:.0f} ms", "", ""))
        if item.received < item.expected:
            rows.append((f"  not delivered, {where}", f"{item.expected - item.received:,}", "0",
                         "MISSED"))
    invalid = sum(
        [r.stats["invalid"] for r in (healthy, hanging) if r]
        + [item.invalid for item in results.latency] + ([ceiling.invalid] if ceiling else [])
    )
    dupes = sum(r.stats["union"]["dupes"] for r in (healthy, hanging) if r)
    rows.append(("bad signatures at the receiver", str(invalid), "0", verdict(invalid == 0)))
    rows.append(("duplicate deliveries (throughput runs)", str(dupes), "", ""))
    print_table(f"Summary ({db}, {args.incidents:,} incidents, {os.cpu_count()} CPUs)",
                rows, results.errors, figure_width=22)


def _rate_of(stats: dict[str, Any], paths: list[str]) -> float:
    """Delivery rate over some paths of a finished run, from the per-path counts and the
    run's first and last arrival (the paths were sent to interleaved)."""
    union = stats["union"]
    if not union["rate"]:
        return 0.0
    share = sum(stats["paths"].get(p, {}).get("count", 0) for p in paths) / union["count"]
    return float(union["rate"]) * share


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--incidents", type=int, default=1000,
                        help="incidents created per throughput run (default 1000)")
    parser.add_argument("--endpoints", type=int, default=10, help="endpoints (default 10)")
    parser.add_argument("--workers", type=int, default=1,
                        help="`interlock worker` processes delivering in the throughput runs "
                             "(default 1)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="every endpoint's timeout in seconds (default 5)")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="incident changes per second in the latency run (default 200)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each latency run (default 10)")
    parser.add_argument("--latency-endpoints", default="1,10",
                        help="endpoints receiving the changes in the latency runs, "
                             "comma-separated (default 1,10)")
    parser.add_argument("--latency-incidents", type=int, default=200,
                        help="incidents the changes go round (default 200)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="concurrent requests of the ceiling client (default 64, "
                             "Interlock's connections per receiver host)")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0)
    parser.add_argument("--receiver", choices=("lean", "aiohttp"), default="lean",
                        help="the webhook receiver's HTTP server: a bare httptools parser "
                             "(default), or aiohttp's (the one before; about 2.5x its CPU "
                             "per request)")
    parser.add_argument("--durable-postgres", action="store_true",
                        help=f"start a throwaway durable PostgreSQL (fsync, synchronous_commit "
                             f"on) on port {DURABLE_PG_PORT} with scripts/postgres.sh, bench on "
                             "it, and stop it afterwards")
    parser.add_argument("--phase-timeout", type=float, default=60.0,
                        help="longest wait for one run's deliveries (default 60 s)")
    args = parse_arguments(parser, skips=("throughput", "ceiling", "hang", "latency"))
    try:
        args.latency_endpoints = [int(x) for x in args.latency_endpoints.split(",") if x]
    except ValueError:
        parser.error("--latency-endpoints: comma-separated numbers")
    if not 2 <= args.endpoints <= 100:
        parser.error("--endpoints: 2 to 100")
    if not 1 <= args.incidents <= 100_000:
        parser.error("--incidents: 1 to 100,000")
    if not 0 < args.rate <= 5000 or not 0 < args.seconds <= 120:
        parser.error("--rate: up to 5000, --seconds: up to 120")
    if any(not 1 <= n <= args.endpoints for n in args.latency_endpoints):
        parser.error(f"--latency-endpoints: each 1 to {args.endpoints}")
    if args.durable_postgres and args.db:
        parser.error("--durable-postgres starts its own server: leave out --db")
    check_db(parser, args)
    return args


def main() -> int:
    args = parse_args()
    ctx = DeliveryContext(args, temp_dir("interlock-bench-"),
                          extra_env={"INTERLOCK_ALLOWED_TARGETS": "127.0.0.0/8"})
    results = Results()

    def body() -> None:
        if args.durable_postgres:
            ctx.start_durable_postgres()
        if ctx.postgres:
            ctx.check_durability()
            print(f"PostgreSQL is {ctx.durability} ({ctx.durability_detail})", flush=True)
        parent, child = multiprocessing.get_context("spawn").Pipe(duplex=False)
        ctx.receiver = multiprocessing.get_context("spawn").Process(
            target=receiver_main, args=(child, 3600.0, args.receiver == "lean"),
            name="bench-receiver", daemon=True)
        ctx.receiver.start()
        if not parent.poll(30):
            raise Failed("the receiver did not start")
        ports = parent.recv()
        print(f"receiver ({args.receiver}) on http://{HOST}:{ports[0]}; {setup_line(ctx)}",
              flush=True)
        asyncio.run(run(ctx, ports, results))

    return run_bench(ctx, body, lambda: print_summary(ctx, results), results.errors)


if __name__ == "__main__":
    sys.exit(main())
