"""Benchmark of alert ingest: Interlock's durable Alertmanager ingest URL against
Prometheus Alertmanager's own in-memory ``POST /api/v2/alerts``, the worker's rate of
processing what was accepted, and processing latency at 1,000 vs 1,000,000 stored
alerts. Not a test: it prints figures.

    .venv/bin/python bench/ingest.py                        # SQLite, about 2 minutes
    .venv/bin/python bench/ingest.py --db postgresql://postgres@127.0.0.1:54329/postgres

Everything runs on this machine, on 127.0.0.1, as real processes:

* Debian's ``prometheus-alertmanager`` (path from ``scripts/alertmanager.sh ensure``),
  clustering off, log level warn, one route grouping by alertname and service to a
  webhook on a dead local port (group_wait 30 s, so it barely tries);
* ``interlock serve`` with its embedded worker, on a fresh database, with one
  Alertmanager source created through the API.

Throughput, for each shape (``--shapes``, or one: ``--batch 1 --concurrency 16``; by
default one alert per POST over 16 connections, as Grafana, Datadog and PagerDuty
send, and 10 per POST over 64): wrk
(Debian's, from ``scripts/wrk.sh ensure``; one C thread, so the client is not the
bottleneck) posts distinct alerts (labels alertname, service, instance, severity;
annotation summary; one group per POST) for ``--seconds`` to each: to Alertmanager as
its v2 body (a JSON array), to Interlock as Alertmanager's webhook payload (version
"4") with the source token as Bearer. Alertmanager keeps alerts in memory; Interlock
answers 202 only once the payload is committed. Then the bench waits for the worker to
process (parse, deduplicate, correlate) the backlog, reading the payloads table, and
prints the backlog at the last 202, when it drained, and Interlock's CPU time per alert
(its processes, accepting and processing).

Latency at scale: on a second fresh database, 1,000 alerts are ingested into a source
(100 groups), then payloads are sent one at a time (each 5 new alerts and 5 repeats of
one group; every 10th a new group) and each is timed from the POST to the moment the
bench sees it processed in the database. Then ~1,000,000 alerts (and a correlation row
per 10 of them) are inserted straight into the database for another source, so every
dedup and correlation lookup walks the big indexes, and the same measurement is
repeated.

Each scenario gets a fresh database: a file in a temporary directory on SQLite, a
temporary database (``CREATE DATABASE``, dropped afterwards) on PostgreSQL. Every
process and temporary file is removed at the end, also after a failure or Ctrl-C.
``INTERLOCK_WORKER_*`` and ``INTERLOCK_SQLITE_SYNCHRONOUS`` from the environment are
passed to Interlock; other ``INTERLOCK_*`` variables are not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from harness import (
    HOST,
    Context,
    Failed,
    Interlock,
    Proc,
    argument_parser,
    check_db,
    cpu_seconds,
    free_port,
    interlock_command,
    parse_arguments,
    percentiles_ms,
    phase,
    print_table,
    process_tree_cpu,
    run_bench,
    setup_line,
    spooled_payloads,
    start_interlock,
    stop_interlock,
    temp_dir,
    verdict,
    worker_processes,
    wrk_binary,
)
from interlock.domain.ids import new_id
from interlock.store.engine import create_engine
from interlock.store.tables import alerts as alerts_table
from interlock.store.tables import correlations as correlations_table

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.5  # Interlock's durable ingest / Alertmanager's in-memory ingest
TARGET_SCALE = 0.20  # latency at 1M stored alerts within 20 % of that at 1,000
ALERTNAMES = ("HighErrorRate", "HighLatency", "DiskFull", "DiskWillFillIn4h", "NodeDown",
              "TargetDown", "CPUThrottling", "MemoryPressure", "PodCrashLooping",
              "CertificateExpiry", "QueueBacklog", "ReplicationLag", "Probefailure",
              "OOMKilled", "KubeJobFailed", "TooManyRestarts", "SlowQueries",
              "ConnectionsExhausted", "BackupMissing", "ClockSkew")
SEVERITIES = ("critical", "warning", "warning", "info")


# -- processes, databases -------------------------------------------------------------


@dataclass
class IngestContext(Context):
    """The shared context, plus the SQLAlchemy engines the bench reads Interlock's
    database with (disposed of first)."""

    engines: list[sa.Engine] = field(default_factory=list)
    wrk: str = "wrk"

    def engine(self, url: str) -> sa.Engine:
        engine = create_engine(url)
        self.engines.append(engine)
        return engine

    def cleanup(self) -> None:
        for engine in self.engines:
            engine.dispose()
        self.engines.clear()
        super().cleanup()


# -- Alertmanager and Interlock --------------------------------------------------------


@dataclass
class Alertmanager:
    proc: Proc
    base: str


async def start_alertmanager(ctx: IngestContext, http: aiohttp.ClientSession) -> Alertmanager:
    found = subprocess.run([str(ROOT / "scripts" / "alertmanager.sh"), "ensure"],
                           capture_output=True, text=True, check=False)
    binary = found.stdout.strip().splitlines()[-1] if found.stdout.strip() else ""
    if found.returncode != 0 or not binary:
        raise Failed(f"scripts/alertmanager.sh ensure failed: {found.stderr[-500:]}")
    home = Path(tempfile.mkdtemp(prefix="alertmanager-", dir=ctx.tmp))
    dead = free_port()  # nothing listens there: notifications fail fast, off the hot path
    config = {
        "global": {"resolve_timeout": "5m"},
        "route": {"receiver": "dead", "group_by": ["alertname", "service"],
                  "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"},
        "receivers": [{"name": "dead", "webhook_configs": [
            {"url": f"http://{HOST}:{dead}/hook", "send_resolved": True}]}],
    }
    (home / "alertmanager.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML
    port = free_port()
    base = f"http://{HOST}:{port}"
    proc = ctx.spawn("alertmanager", [
        binary, f"--config.file={home / 'alertmanager.yml'}",
        f"--storage.path={home / 'data'}", f"--web.listen-address={HOST}:{port}",
        f"--web.external-url={base}", "--cluster.listen-address=", "--log.level=warn",
    ], cwd=home)
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(base + "/-/ready") as response:
                if response.status == 200:
                    return Alertmanager(proc, base)
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise Failed(f"Alertmanager never became ready:\n{proc.log_tail()}")
        await asyncio.sleep(0.05)


async def create_source(interlock: Interlock, name: str) -> tuple[str, str, str]:
    """(id, ingest URL, token) of a new Alertmanager source."""
    answer = await interlock.call("POST", "/api/v1/sources",
                                  {"name": name, "kind": "alertmanager"}, expect=201)
    return answer["id"], answer["ingest_url"], answer["token"]


# -- alerts and bodies -----------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Alerts:
    """Distinct alerts: each has its own instance label; ``group`` picks alertname and
    service (the default grouping is ``{service}/{name}``)."""

    def __init__(self) -> None:
        self.serial = 0
        self.started = _stamp(datetime.now(UTC) - timedelta(minutes=5))

    def new(self, group: int) -> dict[str, Any]:
        self.serial += 1
        i = self.serial
        name = ALERTNAMES[group % len(ALERTNAMES)]
        service = f"svc{group // len(ALERTNAMES):04d}"
        return {
            "labels": {"alertname": name, "service": service,
                       "instance": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:"
                                   f"{9100 + (i >> 24)}",
                       "severity": SEVERITIES[group % len(SEVERITIES)]},
            "annotations": {"summary": f"{name} on {service} (instance #{i})"},
            "startsAt": self.started,
            "generatorURL": f"http://prometheus.invalid/graph?g0.expr={name}",
        }


def fingerprint(labels: dict[str, str]) -> str:
    """16 hex digits of a hash of the sorted labels, like Alertmanager's own."""
    text = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alertmanager_body(batch: list[dict[str, Any]]) -> bytes:
    return json.dumps(batch, separators=(",", ":")).encode()


def webhook_body(batch: list[dict[str, Any]], external: str = "http://alertmanager.invalid"
                 ) -> bytes:
    """Alertmanager's webhook payload (version 4) for one group."""
    common = dict(batch[0]["labels"])
    for item in batch[1:]:
        common = {k: v for k, v in common.items() if item["labels"].get(k) == v}
    group_labels = {k: batch[0]["labels"][k] for k in ("alertname", "service")}
    return json.dumps({
        "version": "4",
        "groupKey": "{}:" + "{" + ",".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "interlock",
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": external,
        "alerts": [{
            "status": "firing", "labels": item["labels"], "annotations": item["annotations"],
            "startsAt": item["startsAt"], "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": item["generatorURL"], "fingerprint": fingerprint(item["labels"]),
        } for item in batch],
    }, separators=(",", ":")).encode()


async def post_all(url: str, bodies: list[bytes], auth: str, concurrency: int) -> None:
    """POST each body, ``concurrency`` at a time; every answer must be 202."""
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(headers={"authorization": auth,
                                              "content-type": "application/json"}) as http:
        async def one(body: bytes) -> None:
            async with semaphore, http.post(url, data=body) as response:
                if response.status != 202:
                    raise Failed(f"POST {url}: {response.status} {await response.text()}")

        await asyncio.gather(*(one(body) for body in bodies))


# -- driving with wrk: a client that is not the bottleneck ----------------------------


@dataclass
class Wrk:
    requests: int
    non_2xx: int
    errors: int
    seconds: float
    batch: int
    latency: dict[str, float]
    cpu: float | None = None  # CPU seconds of the server (its process tree) meanwhile
    own_cpu: float | None = None  # of which the server's own process (the API's, all threads)
    #: By process: the share of the middle of the run it spent on a core, and ready to
    #: run but waiting for one (see scheduler_shares).
    cores: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return self.requests - self.non_2xx

    @property
    def rate(self) -> float:
        """Alerts accepted per second."""
        return self.accepted * self.batch / self.seconds if self.seconds else 0.0

    @property
    def request_rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


#: A Lua script for wrk: every request carries distinct alerts (``@N@`` in the template
#: becomes a per-request serial; ``@G@`` its group).
WRK_SCRIPT = """
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
local counter = 0
local template = io.open(os.getenv("WRK_BODY")):read("*a")
local groups = tonumber(os.getenv("WRK_GROUPS"))
local auth = os.getenv("WRK_AUTH")
local headers = {["Content-Type"] = "application/json"}
if auth ~= "" then headers["Authorization"] = auth end
request = function()
  counter = counter + 1
  local n = tid * 100000000 + counter
  local body = template:gsub("@N@", tostring(n)):gsub("@G@", tostring(n % groups))
  return wrk.format("POST", nil, headers, body)
end
"""


def wrk_template(kind: str, batch: int, external: str) -> str:
    """A body of ``batch`` alerts of one group, with placeholders for wrk's script."""
    alerts = [{
        "labels": {"alertname": "Bench@G@", "service": "svc@G@",
                   "instance": f"i@N@-{k}", "severity": "critical"},
        "annotations": {"summary": f"Bench@G@ on svc@G@ (@N@-{k})"},
        "startsAt": _stamp(datetime.now(UTC) - timedelta(minutes=5)),
        "generatorURL": "http://prometheus.invalid/graph",
    } for k in range(batch)]
    if kind == "alertmanager":
        return json.dumps(alerts, separators=(",", ":"))
    return json.dumps({
        "version": "4", "groupKey": '{}:{alertname="Bench@G@"}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "interlock",
        "groupLabels": {"alertname": "Bench@G@", "service": "svc@G@"},
        "commonLabels": {"alertname": "Bench@G@", "service": "svc@G@"},
        "commonAnnotations": {}, "externalURL": external,
        "alerts": [{**alert, "status": "firing", "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": f"@N@{k:02d}"} for k, alert in enumerate(alerts)],
    }, separators=(",", ":"))


async def wrk_drive(ctx: IngestContext, url: str, template: str, *, batch: int,
                    connections: int, seconds: float, auth: str = "",
                    pids: list[int] | None = None,
                    watch: dict[str, int] | None = None) -> Wrk:
    """``wrk -t1`` POSTing distinct alerts to ``url`` for ``seconds``; with ``watch``
    (names of processes), how those and wrk shared the cores in the middle of the run."""
    script = ctx.tmp / "bench.lua"
    script.write_text(WRK_SCRIPT)
    body = ctx.tmp / f"body-{abs(hash(template))}.json"
    body.write_text(template)
    env = {**os.environ, "WRK_BODY": str(body), "WRK_GROUPS": str(ctx.args.groups),
           "WRK_AUTH": auth}
    cpu_before = process_tree_cpu(pids) if pids else None
    own_before = cpu_seconds(pids[0]) if pids else None
    process = await asyncio.create_subprocess_exec(
        ctx.wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script),
        url, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    cores: dict[str, tuple[float, float]] = {}
    if watch:
        cores = await scheduler_shares({**watch, "wrk": process.pid},
                                       seconds * 0.25, seconds * 0.6)
    output = (await process.communicate())[0].decode()
    cpu = process_tree_cpu(pids) - cpu_before if pids and cpu_before is not None else None
    own_after = cpu_seconds(pids[0]) if pids else None
    own = own_after - own_before if own_after is not None and own_before is not None else None
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    if process.returncode != 0 or not found:
        raise Failed(f"wrk failed ({process.returncode}):\n{output}")
    took = float(found.group(2)) / (1000 if found.group(3) == "ms" else 1)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                       r"timeout (\d+)", output)
    latency = {f"p{q}": _ms(value, unit) for q, value, unit in
               re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)}
    return Wrk(int(found.group(1)), int(non_2xx.group(1)) if non_2xx else 0,
               sum(int(x) for x in errors.groups()) if errors else 0, took, batch,
               latency, cpu, own, cores)


def _schedstat(pid: int) -> tuple[int, int] | None:
    """Nanoseconds that process ``pid``'s threads have run on a core, and waited ready to
    run for one (Linux ``/proc/PID/task/*/schedstat``); None once it is gone."""
    ran = waited = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                on_core, waiting, _ = task.joinpath("schedstat").read_text().split()
                ran, waited = ran + int(on_core), waited + int(waiting)
    except OSError:
        return None
    return ran, waited


async def scheduler_shares(processes: dict[str, int], after: float, span: float
                           ) -> dict[str, tuple[float, float]]:
    """For each named process, over ``span`` seconds starting ``after`` seconds from now:
    the share of one core it ran, and the share it was ready to run but waited for a
    core, from the kernel's scheduler statistics. A process ready to run most of the
    time that waits for much of it is held back by the others, not by itself."""
    await asyncio.sleep(after)
    before = {name: _schedstat(pid) for name, pid in processes.items()}
    started = time.perf_counter()
    await asyncio.sleep(span)
    elapsed = (time.perf_counter() - started) * 1e9
    shares = {}
    for name, pid in processes.items():
        first, last = before[name], _schedstat(pid)
        if first is not None and last is not None:
            shares[name] = ((last[0] - first[0]) / elapsed, (last[1] - first[1]) / elapsed)
    return shares


def cores_line(result: Wrk) -> str:
    return ("    the cores in the middle of the run (the kernel's scheduler; on a core / ready "
            "but waiting for one, in % of a core): "
            + "; ".join(f"{name} {ran:.0%} / {waited:.0%}"
                        for name, (ran, waited) in result.cores.items()))


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_line(what: str, result: Wrk) -> str:
    lat = result.latency
    alerts = max(result.accepted * result.batch, 1)
    cpu = (f"; server CPU {result.cpu / alerts * 1e6:,.0f} µs per alert" if result.cpu is not None
           else "")
    if result.cpu is not None and result.own_cpu is not None and result.own_cpu < result.cpu * 0.99:
        cpu += f", its main process {result.own_cpu / alerts * 1e6:,.0f} µs"
    return (f"    {what}: {result.rate:,.0f} alerts/s, {result.request_rate:,.0f} POSTs/s "
            f"({result.requests:,} POSTs in {result.seconds:.1f} s, {result.non_2xx} non-2xx, "
            f"{result.errors} socket errors; latency p50/p99 {lat.get('p50', 0):.1f}/"
            f"{lat.get('p99', 0):.1f} ms{cpu})")


# -- reading Interlock's database ------------------------------------------------------


def payload_counts(engine: sa.Engine, source_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT status, count(*), coalesce(sum(alerts), 0), min(received_at), "
            "max(processed_at) FROM payloads WHERE source_id = :s GROUP BY status"),
            {"s": source_id}).all()
    by_status = {row[0]: {"payloads": row[1], "alerts": row[2], "first": row[3],
                          "last": row[4]} for row in rows}
    spooled = spooled_payloads(engine, source_id)
    if spooled:  # accepted, waiting in the ingest spool: pending too
        pending = by_status.setdefault("pending", {"payloads": 0, "alerts": 0, "first": None,
                                                   "last": None})
        pending["payloads"] += spooled
    return by_status


def table_count(engine: sa.Engine, table: str, source_id: str | None = None) -> int:
    with engine.connect() as conn:
        if source_id is None:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE source_id = :s"),
                                {"s": source_id}).scalar_one())


async def wait_processed(engine: sa.Engine, source_id: str, expected: int, timeout: float,
                         progress: str = "") -> tuple[dict[str, Any], float]:
    """Until ``expected`` payloads of the source are processed or failed, or
    ``timeout``; returns the counts by status and the wall-clock time it was seen."""
    deadline = time.monotonic() + timeout
    next_print = time.monotonic() + 5
    while True:
        counts = await asyncio.to_thread(payload_counts, engine, source_id)
        done = sum(v["payloads"] for k, v in counts.items() if k != "pending")
        now = time.perf_counter()
        if done >= expected:
            return counts, now
        if time.monotonic() > deadline:
            print(f"    ! only {done:,} of {expected:,} payloads processed within {timeout:g} s")
            return counts, now
        if progress and time.monotonic() > next_print:
            print(f"    {progress}: {done:,} / {expected:,} payloads", flush=True)
            next_print += 5
        await asyncio.sleep(0.05)


# -- phase 1: throughput ---------------------------------------------------------------


@dataclass
class Throughput:
    batch: int
    connections: int
    alertmanager: Wrk
    interlock: Wrk
    processed_alerts: int = 0
    processed_payloads: int = 0
    failed_payloads: int = 0
    pending_payloads: int = 0
    incidents: int = 0
    process_seconds: float = 0.0  # from the first POST to the last payload processed
    drain_seconds: float = 0.0  # after the last 202
    backlog_at_end: int = 0  # payloads still pending at the last 202
    cpu_per_alert: float | None = None  # Interlock's processes, POST to processed

    @property
    def ratio(self) -> float:
        return self.interlock.rate / self.alertmanager.rate if self.alertmanager.rate else 0.0

    @property
    def process_rate(self) -> float:
        return self.processed_alerts / self.process_seconds if self.process_seconds else 0.0


async def throughput_phase(ctx: IngestContext, http: aiohttp.ClientSession, batch: int,
                           connections: int) -> Throughput:
    """Alertmanager, then Interlock, each driven by ``wrk -t1`` for the same time with the
    same shape (``batch`` alerts per POST, ``connections`` open); then the time the
    worker takes to process what Interlock accepted."""
    args = ctx.args
    am = await start_alertmanager(ctx, http)
    interlock = await start_interlock(ctx, f"tput{batch}", worker=not args.no_worker)
    worker: Proc | None = None
    try:
        source_id, ingest_url, token = await create_source(interlock, "bench alertmanager")
        engine = ctx.engine(interlock.db_url)
        print(f"    shape: {batch} alert(s) per POST, {connections} connections, "
              f"{args.seconds:g} s each, distinct alerts in {args.groups} groups; client: "
              f"wrk -t1 (C, one thread; not the bottleneck)", flush=True)
        auth = f"Bearer {token}"
        await wrk_drive(ctx, am.base + "/api/v2/alerts",
                        wrk_template("alertmanager", batch, am.base), batch=batch,
                        connections=connections, seconds=2)
        am_result = await wrk_drive(ctx, am.base + "/api/v2/alerts",
                                    wrk_template("alertmanager", batch, am.base), batch=batch,
                                    connections=connections, seconds=args.seconds,
                                    pids=[am.proc.popen.pid],
                                    watch={"Alertmanager": am.proc.popen.pid})
        print(wrk_line("Alertmanager POST /api/v2/alerts (in memory)", am_result), flush=True)
        print(cores_line(am_result), flush=True)
        template = wrk_template("webhook", batch, am.base)
        warm = await wrk_drive(ctx, ingest_url, template, batch=batch, connections=connections,
                               seconds=2, auth=auth)
        warm_payloads = warm.requests
        if not args.no_worker:
            await wait_processed(engine, source_id, warm_payloads, args.phase_timeout)
        pids = [interlock.proc.popen.pid]
        cpu_before = process_tree_cpu(pids)
        first_post = time.perf_counter()
        watch = {"the API process": pids[0]} | {
            f"worker ({tasks})": pid for pid, tasks in worker_processes(pids[0]).items()}
        il_result = await wrk_drive(ctx, ingest_url, template, batch=batch,
                                    connections=connections, seconds=args.seconds, auth=auth,
                                    pids=pids, watch=watch)
        last_answer = time.perf_counter()
        print(wrk_line("Interlock POST /ingest/{source} (durable)", il_result), flush=True)
        print(cores_line(il_result), flush=True)
        result = Throughput(batch, connections, am_result, il_result)
        counts = await asyncio.to_thread(payload_counts, engine, source_id)
        result.backlog_at_end = counts.get("pending", {}).get("payloads", 0)
        expected = warm_payloads + il_result.accepted
        if args.no_worker:
            # `interlock worker` alone on the backlog: the worker's rate by itself.
            first_post = last_answer = time.perf_counter()
            worker = ctx.spawn(f"tput{batch}-worker", interlock_command(
                "worker", "--db", interlock.db_url))
            pids.append(worker.popen.pid)
        counts, seen = await wait_processed(engine, source_id, expected, args.phase_timeout,
                                            "processing")
        # wrk does not count requests still open when its time is up: wait for those too.
        while counts.get("pending", {}).get("payloads", 0) and \
                time.perf_counter() - seen < args.phase_timeout:
            await asyncio.sleep(0.05)
            counts = await asyncio.to_thread(payload_counts, engine, source_id)
            if not counts.get("pending", {}).get("payloads", 0):
                seen = time.perf_counter()
        cpu = process_tree_cpu(pids) - cpu_before
        processed = counts.get("processed", {})
        result.processed_payloads = processed.get("payloads", 0) - warm_payloads
        result.processed_alerts = processed.get("alerts", 0) - warm_payloads * batch
        result.failed_payloads = counts.get("failed", {}).get("payloads", 0)
        result.pending_payloads = counts.get("pending", {}).get("payloads", 0)
        result.process_seconds = seen - first_post
        result.drain_seconds = seen - last_answer
        result.incidents = await asyncio.to_thread(table_count, engine, "incidents")
        if not args.no_worker and result.processed_alerts:
            result.cpu_per_alert = cpu / result.processed_alerts
        since = "`interlock worker` started" if args.no_worker else "the first POST"
        print(f"    worker: {result.processed_alerts:,} alerts in "
              f"{result.processed_payloads:,} payloads processed (parse, dedup, correlate) "
              f"{result.process_seconds:.1f} s after {since}: "
              f"{result.process_rate:,.0f} alerts/s; backlog at the last 202: "
              f"{result.backlog_at_end:,} payloads, drained {result.drain_seconds:.1f} s later; "
              f"{result.failed_payloads} failed, {result.pending_payloads} pending; "
              f"{result.incidents:,} incidents; Interlock CPU "
              + (f"{result.cpu_per_alert * 1e6:,.0f} µs per alert (accept + process)"
                 if result.cpu_per_alert else "n/a"), flush=True)
        return result
    finally:
        if worker is not None:
            await asyncio.to_thread(ctx.stop, worker)
        await stop_interlock(ctx, interlock)
        await asyncio.to_thread(ctx.stop, am.proc)


# -- phase 2: latency at 1,000 and 1,000,000 stored alerts --------------------------


@dataclass
class Latency:
    stored: int
    end_to_end: dict[str, float]
    accept: dict[str, float]
    server: dict[str, float]  # processed_at - received_at, from the database


@dataclass
class Scale:
    small: Latency | None = None
    large: Latency | None = None
    load_seconds: float = 0.0
    loaded_alerts: int = 0
    loaded_correlations: int = 0

    def ratio(self, key: str = "p50") -> float:
        if not self.small or not self.large or not self.small.end_to_end.get(key):
            return 0.0
        return self.large.end_to_end[key] / self.small.end_to_end[key]


class Groups:
    """The alerts each group of the measured source has fired, for repeats."""

    def __init__(self, alerts: Alerts) -> None:
        self.alerts = alerts
        self.fired: dict[int, list[dict[str, Any]]] = {}
        self.next_new = 1_000_000

    def batch(self, group: int, new: int, repeats: int) -> list[dict[str, Any]]:
        seen = self.fired.setdefault(group, [])
        fresh = [self.alerts.new(group) for _ in range(new)]
        batch = seen[-repeats:] + fresh if repeats else fresh
        seen.extend(fresh)
        return batch

    def new_group(self) -> int:
        self.next_new += 1
        return self.next_new


async def measure_latency(interlock: Interlock, engine: sa.Engine, ingest_url: str,
                          token: str, groups: Groups, count: int, source_id: str,
                          seed_groups: int) -> Latency:
    """Send ``count`` payloads one at a time; each is timed from its POST to the moment
    the bench reads it as processed."""
    end_to_end: list[float] = []
    accept: list[float] = []
    ids: list[str] = []
    query = sa.text("SELECT status FROM payloads WHERE id = :id")
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    warm = 20
    with engine.connect() as conn:
        for index in range(count + warm):
            group = groups.new_group() if index % 10 == 9 else index % seed_groups
            body = webhook_body(groups.batch(group, 5, 5))
            started = time.perf_counter()
            async with interlock.api.post(ingest_url, data=body, headers=headers) as response:
                answer = await response.read()
                if response.status != 202:
                    raise Failed(f"ingest answered {response.status}: {answer[:300]!r}")
            accepted = time.perf_counter()
            payload_id = json.loads(answer)["id"]
            deadline = accepted + 30
            while True:
                status = conn.execute(query, {"id": payload_id}).scalar()
                conn.rollback()  # a fresh snapshot for the next read
                if status not in ("pending", None):  # None: still in the ingest spool
                    break
                if time.perf_counter() > deadline:
                    raise Failed(f"payload {payload_id} not processed within 30 s")
                await asyncio.sleep(0.0005)
            if status != "processed":
                raise Failed(f"payload {payload_id} is {status}")
            done = time.perf_counter()
            if index >= warm:
                end_to_end.append(done - started)
                accept.append(accepted - started)
                ids.append(payload_id)
        rows = conn.execute(sa.text(
            "SELECT received_at, processed_at FROM payloads WHERE source_id = :s "
            "ORDER BY position DESC LIMIT :n"), {"s": source_id, "n": count}).all()
        stored = int(conn.execute(sa.text("SELECT count(*) FROM alerts")).scalar_one())
    server = [(datetime.fromisoformat(str(b)) - datetime.fromisoformat(str(a))).total_seconds()
              for a, b in rows]
    return Latency(stored, percentiles_ms(end_to_end), percentiles_ms(accept),
                   percentiles_ms(server))


def bulk_rows(source_id: str, count: int, per_group: int) -> Iterator[tuple[list[dict[str, Any]],
                                                                        list[dict[str, Any]]]]:
    """Alert rows (and their groups' correlation rows) in chunks."""
    chunk = 20_000
    now = datetime.now(UTC)
    made = 0
    while made < count:
        alert_rows: list[dict[str, Any]] = []
        correlation_rows: list[dict[str, Any]] = []
        incident = ""
        for i in range(made, min(count, made + chunk)):
            group = i // per_group
            name = ALERTNAMES[group % len(ALERTNAMES)]
            service = f"bulk{group // len(ALERTNAMES):06d}"
            key = f"{service}/{name}"
            if i % per_group == 0:
                incident = new_id("inc", now)
                correlation_rows.append({"source_id": source_id, "group_key": key,
                                         "incident_id": incident, "updated_at": now})
            labels = {"alertname": name, "service": service,
                      "instance": f"node-{i}:9100", "severity": "warning"}
            alert_rows.append({
                "id": new_id("alr", now), "source_id": source_id,
                "fingerprint": fingerprint(labels), "status": "firing",
                "title": f"{name} on {service}", "severity": "medium", "name": name,
                "service": service, "summary": f"{name} on {service} (node {i})",
                "labels": labels, "annotations": {"summary": f"{name} on {service}"},
                "url": "http://prometheus.invalid/graph", "starts_at": now, "ends_at": None,
                "first_seen_at": now, "last_seen_at": now, "count": 1,
                "incident_id": incident, "group_key": key, "suppressed_by": None,
            })
        made += len(alert_rows)
        yield alert_rows, correlation_rows


def bulk_load(ctx: IngestContext, engine: sa.Engine, source_id: str) -> tuple[int, int, float]:
    args = ctx.args
    started = time.perf_counter()
    alerts_done = correlations_done = 0
    next_print = started + 10
    with engine.connect() as conn:
        if not ctx.postgres:
            conn.exec_driver_sql("PRAGMA cache_size=-262144")
            conn.commit()
        for alert_rows, correlation_rows in bulk_rows(source_id, args.bulk_alerts,
                                                      args.bulk_per_group):
            with conn.begin():
                conn.execute(alerts_table.insert(), alert_rows)
                if correlation_rows:
                    conn.execute(correlations_table.insert(), correlation_rows)
            alerts_done += len(alert_rows)
            correlations_done += len(correlation_rows)
            if time.perf_counter() > next_print:
                rate = alerts_done / (time.perf_counter() - started)
                print(f"    loaded {alerts_done:,} alerts ({rate:,.0f}/s)", flush=True)
                next_print += 10
        if ctx.postgres:
            conn.exec_driver_sql("ANALYZE alerts")
            conn.exec_driver_sql("ANALYZE correlations")
        else:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.commit()
    return alerts_done, correlations_done, time.perf_counter() - started


def latency_line(label: str, item: Latency) -> str:
    e, a, s = item.end_to_end, item.accept, item.server
    return (f"    {label} ({item.stored:,} alerts stored): POST -> processed p50/p95/p99 "
            f"{e['p50']:.1f}/{e['p95']:.1f}/{e['p99']:.1f} ms (mean {e['mean']:.1f}); "
            f"202 p50 {a['p50']:.1f} ms; received_at -> processed_at p50 {s['p50']:.1f} ms "
            f"({e['n']} payloads of 10 alerts)")


async def scale_phase(ctx: IngestContext, results: Scale) -> None:
    args = ctx.args
    interlock = await start_interlock(ctx, "scale")
    try:
        source_id, ingest_url, token = await create_source(interlock, "measured")
        bulk_id, _, _ = await create_source(interlock, "bulk (loaded into the database)")
        engine = ctx.engine(interlock.db_url)
        alerts = Alerts()
        groups = Groups(alerts)
        # About 1,000 alerts stored: 100 groups of 10, through the ingest URL.
        seed = [(webhook_body(groups.batch(g, 10, 0)), 10) for g in range(args.seed_groups)]
        await post_all(ingest_url, [body for body, _ in seed], f"Bearer {token}", 8)
        await wait_processed(engine, source_id, len(seed), args.phase_timeout)
        results.small = await measure_latency(interlock, engine, ingest_url, token, groups,
                                              args.latency_payloads, source_id, args.seed_groups)
        print(latency_line("small", results.small), flush=True)
        print(f"    bulk-loading {args.bulk_alerts:,} alerts into another source ...", flush=True)
        loaded = await asyncio.to_thread(bulk_load, ctx, engine, bulk_id)
        results.loaded_alerts, results.loaded_correlations, results.load_seconds = loaded
        print(f"    loaded {results.loaded_alerts:,} alerts and {results.loaded_correlations:,} "
              f"correlations in {results.load_seconds:.1f} s "
              f"({results.loaded_alerts / results.load_seconds:,.0f} alerts/s)", flush=True)
        results.large = await measure_latency(interlock, engine, ingest_url, token, groups,
                                              args.latency_payloads, source_id, args.seed_groups)
        print(latency_line("large", results.large), flush=True)
    finally:
        await stop_interlock(ctx, interlock)


# -- the run ---------------------------------------------------------------------------


@dataclass
class Results:
    throughput: list[Throughput] = field(default_factory=list)
    scale: Scale = field(default_factory=Scale)
    errors: list[str] = field(default_factory=list)


async def run(ctx: IngestContext, results: Results) -> None:
    args = ctx.args
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def throughput(batch: int, connections: int) -> None:
            results.throughput.append(await throughput_phase(ctx, http, batch, connections))

        async def scale() -> None:
            await scale_phase(ctx, results.scale)

        if not args.skip_throughput:
            for batch, connections in args.shapes:
                await phase(f"Throughput: {batch} alert(s) per POST, {connections} "
                            "connections, Alertmanager vs `interlock serve`",
                            lambda b=batch, c=connections: throughput(b, c), results.errors)
        if not args.skip_scale:
            await phase(f"Latency at scale: ~1,000 vs ~{args.bulk_alerts:,} stored alerts",
                        scale, results.errors)


def print_summary(ctx: IngestContext, results: Results) -> None:
    rows: list[tuple[str, str, str, str]] = []
    db = ctx.database
    for t in results.throughput:
        shape = f"{t.batch}/POST, {t.connections} conns"
        rows.append((f"[{shape}] Alertmanager in-memory ingest",
                     f"{t.alertmanager.rate:,.0f} alerts/s", "", ""))
        rows.append((f"[{shape}] Interlock durable ingest ({db})",
                     f"{t.interlock.rate:,.0f} alerts/s", "", ""))
        rows.append(("  Interlock / Alertmanager", f"{t.ratio:.2f}",
                     f">= {TARGET_RATIO:.2f} (goal 1)", verdict(t.ratio >= TARGET_RATIO)))
        api = t.interlock.cores.get("the API process")
        if api is not None:
            rows.append(("  the API process on a core / waiting for one",
                         f"{api[0]:.0%} / {api[1]:.0%}", "", ""))
        rows.append(("  Interlock non-2xx answers or socket errors",
                     f"{t.interlock.non_2xx + t.interlock.errors:,}", "0",
                     verdict(not t.interlock.non_2xx and not t.interlock.errors)))
        rows.append(("  processing (parse, dedup, correlate)"
                     + (", worker alone" if ctx.args.no_worker else ""),
                     f"{t.process_rate:,.0f} alerts/s", "", ""))
        rows.append(("  backlog at the last 202", f"{t.backlog_at_end:,} payloads", "", ""))
        rows.append(("  drained after the last 202", f"{t.drain_seconds:.1f} s", "", ""))
        if t.cpu_per_alert:
            rows.append(("  Interlock CPU per alert", f"{t.cpu_per_alert * 1e6:,.0f} µs", "",
                         ""))
        rows.append(("  payloads left pending", f"{t.pending_payloads:,}", "0",
                     verdict(t.pending_payloads == 0)))
    s = results.scale
    if s.small and s.large:
        for label, item in (("~1,000", s.small), (f"~{s.loaded_alerts:,}", s.large)):
            e = item.end_to_end
            rows.append((f"latency p50/p95 at {label} stored ({item.stored:,})",
                         f"{e['p50']:.1f}/{e['p95']:.1f} ms", "", ""))
        rows.append(("  large / small (p50)", f"{s.ratio('p50'):.2f}",
                     f"<= {1 + TARGET_SCALE:.2f}", verdict(s.ratio("p50") <= 1 + TARGET_SCALE)))
        rows.append(("  large / small (mean)", f"{s.ratio('mean'):.2f}", "", ""))
        rows.append(("  large / small (p95)", f"{s.ratio('p95'):.2f}", "", ""))
    if not rows:
        rows.append(("(no figures)", "", "", ""))
    print_table(f"Summary ({db}, {os.cpu_count()} CPUs)", rows, results.errors,
                figure_width=20)


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--shapes", default=None,
                        help="throughput runs as ALERTS_PER_POSTxCONNECTIONS, comma-separated "
                             "(default 1x16,10x64: single-alert payloads as Grafana, Datadog "
                             "and PagerDuty send them, and Alertmanager's groups)")
    parser.add_argument("--batch", type=int, default=None, metavar="ALERTS",
                        help="one throughput run of ALERTS per POST instead of --shapes' "
                             "(with --concurrency; alone, 16 connections for 1 alert per "
                             "POST and 64 for more, as in the default run)")
    parser.add_argument("--concurrency", type=int, default=None, metavar="CONNECTIONS",
                        help="the connections of that run (alone: 1 alert per POST)")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="seconds wrk posts to each, per shape (default 15)")
    parser.add_argument("--groups", type=int, default=1000,
                        help="alert groups (alertname x service) the alerts fall into "
                             "(default 1000)")
    parser.add_argument("--phase-timeout", type=float, default=120.0,
                        help="longest wait for the worker to process a backlog (default "
                             "120 s)")
    parser.add_argument("--bulk-alerts", type=int, default=1_000_000,
                        help="alerts loaded into the database for the latency run "
                             "(default 1,000,000)")
    parser.add_argument("--bulk-per-group", type=int, default=10,
                        help="loaded alerts per correlation row (default 10)")
    parser.add_argument("--seed-groups", type=int, default=100,
                        help="groups of 10 alerts ingested before the first latency run "
                             "(default 100: 1,000 alerts)")
    parser.add_argument("--latency-payloads", type=int, default=300,
                        help="payloads timed in each latency run (default 300)")
    parser.add_argument("--no-worker", action="store_true",
                        help="throughput run: `interlock serve --no-worker` takes the alerts, "
                             "then `interlock worker` alone processes the backlog (default: "
                             "the embedded worker processes while alerts arrive)")
    args = parse_arguments(parser, skips=("throughput", "scale"))
    if args.batch is not None or args.concurrency is not None:
        if args.shapes is not None:
            parser.error("--batch and --concurrency name one run, --shapes several: give "
                         "one or the other")
        batch = 1 if args.batch is None else args.batch
        args.shapes = f"{batch}x{args.concurrency or (16 if batch == 1 else 64)}"
    elif args.shapes is None:
        args.shapes = "1x16,10x64"
    try:
        args.shapes = [tuple(int(x) for x in shape.split("x")) for shape in
                       args.shapes.split(",")]
    except ValueError:
        parser.error("--shapes: like 1x16,10x64")
    if not all(len(shape) == 2 and 1 <= shape[0] <= 1000 and 1 <= shape[1] <= 1024
               for shape in args.shapes):
        parser.error("--shapes: 1 to 1000 alerts per POST, 1 to 1024 connections")
    if not 1 <= args.groups <= 100_000 or not 1 <= args.seconds <= 600:
        parser.error("--groups: 1 to 100,000; --seconds: 1 to 600")
    if not 1 <= args.bulk_alerts <= 20_000_000 or args.bulk_per_group < 1:
        parser.error("--bulk-alerts: 1 to 20,000,000; --bulk-per-group: at least 1")
    if not 1 <= args.seed_groups <= 10_000 or not 10 <= args.latency_payloads <= 10_000:
        parser.error("--seed-groups: 1 to 10,000; --latency-payloads: 10 to 10,000")
    check_db(parser, args)
    return args


def main() -> int:
    args = parse_args()
    ctx = IngestContext(args, temp_dir("interlock-ingest-bench-"),
                        db_prefix="interlock_ingest_bench", clear_proxy_env=True)
    if not args.skip_throughput:
        ctx.wrk = wrk_binary()
    results = Results()

    def body() -> None:
        print(setup_line(ctx), flush=True)
        asyncio.run(run(ctx, results))

    return run_bench(ctx, body, lambda: print_summary(ctx, results), results.errors)


if __name__ == "__main__":
    sys.exit(main())
