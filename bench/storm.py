"""Benchmark of an alert storm: single-alert payloads at a fixed rate from three sources
into ~1,000 groups, with a webhook endpoint and the Slack and Jira connectors
subscribed, while a person's client reads and writes through the API. Not a test: it
prints figures.

    .venv/bin/python bench/storm.py                                 # SQLite, ~2 minutes
    .venv/bin/python bench/storm.py --db postgresql://… --workers 2  # scale-out

What runs, all on 127.0.0.1:

* ``interlock serve`` on a fresh database. On SQLite it starts its worker process
  itself; with ``--workers N`` (PostgreSQL) it runs ``--no-worker`` beside N
  ``interlock worker`` processes.
* ``bench/peers.py`` in its own process: a webhook receiver noting when each message
  arrives, and the test suite's fake Slack and Jira.
* Three sources (Alertmanager, Grafana, PagerDuty Events v2), each alert posted alone as
  its tool posts it, with its token, by an open-loop client (each POST leaves at its
  scheduled time; a late start is counted).
* One endpoint subscribed to every event; a Slack and a Jira connector sharing every
  incident.
* A person's client at ``--api-rate`` requests/s: lists incidents, reads one, comments.
  It runs in a process of its own, as a responder's browser would, so its latencies are
  not those of an event loop also sending the storm (``--person-in-sender`` puts it
  back in the sender's process, as this benchmark did before).

Printed: accepted rate and how late the client fell; POST → ``incident.created``
webhook latency for each new group (from the first POST of the group to its arrival at
the receiver); API latency; the backlog of unprocessed payloads at the last 202 and how
long it took to drain; deliveries outstanding; CPU time per alert of Interlock's
processes (and of PostgreSQL's, on PostgreSQL). The PostgreSQL server's fsync and
synchronous_commit settings are printed: figures from a server with them off are not
durable figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from yarl import URL

from harness import (
    Context,
    Failed,
    Interlock,
    argument_parser,
    check_db,
    cpu_seconds,
    interlock_command,
    parse_arguments,
    percentiles_ms,
    phase,
    postgres_durability,
    print_table,
    process_tree_cpu,
    run_bench,
    setup_line,
    spooled_payloads,
    start_interlock,
    stop_interlock,
    temp_dir,
    wait_for_workers,
    worker_processes,
)
from interlock.cli.child import CHILDREN, children_for
from interlock.worker.http11 import Http11Client, ResponseBroken

GROUP_TAG = re.compile(r"\[g(\d+)\]")
KINDS = ("alertmanager", "grafana", "pagerduty")


@dataclass
class StormContext(Context):
    peers: Any = None


@dataclass
class Results:
    accepted: int = 0
    refused: int = 0
    sent: int = 0
    send_seconds: float = 0.0
    late_p99_ms: float = 0.0
    first_post: dict[int, float] = field(default_factory=dict)
    created_latency: list[float] = field(default_factory=list)
    groups_seen: int = 0
    api: list[float] = field(default_factory=list)
    #: The same, by what the person asked: list, read, comment.
    api_by_kind: dict[str, list[float]] = field(default_factory=dict)
    api_errors: int = 0
    api_requested: int = 0
    backlog_at_end: int = 0
    drain_seconds: float | None = None
    deliveries_left: int = 0
    cpu_interlock: float = 0.0
    cpu_api: float = 0.0  # the serve process alone: API and ingest
    cpu_workers: list[float] = field(default_factory=list)  # each worker process
    worker_labels: list[str] = field(default_factory=list)  # the --tasks of each
    cpu_postgres: float | None = None
    machine_busy: float | None = None  # CPU seconds all processes used, every core
    processed_overall: float = 0.0  # alerts/s from the first POST to the last processed
    cpu_span: float = 0.0  # seconds the CPU times above cover
    #: PostgreSQL's counts for the database: commits, rollbacks (a batch run again after
    #: meeting another worker's writes is one), deadlocks.
    transactions: dict[str, int] = field(default_factory=dict)
    postgres_settings: str = ""
    webhooks: int = 0
    tool_calls: dict[str, int] = field(default_factory=dict)
    #: The connectors' jobs at the end, by connector kind and status: a connector whose
    #: jobs fail (a wrong setting) would otherwise pass unseen.
    connector_jobs: dict[str, dict[str, int]] = field(default_factory=dict)
    #: This process's CPU while the storm was sent: the sender (and the person's client
    #: with --person-in-sender; the peers' files read meanwhile, if any).
    cpu_client: float = 0.0


# -- payloads, as each tool posts one alert ---------------------------------------------


def body(kind: str, group: int, serial: int) -> bytes:
    tag = f"[g{group:04d}]"
    name, service = f"Storm{group:04d}", f"svc{group % 97:02d}"
    started = datetime.now(UTC).isoformat()
    if kind == "pagerduty":
        return json.dumps({
            "routing_key": "x" * 32, "event_action": "trigger",
            "dedup_key": f"{name}-{serial}",
            "payload": {"summary": f"{tag} {name} on {service} #{serial}", "severity":
                        "critical", "source": f"host{serial}", "class": name,
                        "group": service}}).encode()
    labels = {"alertname": f"{tag} {name}" if kind == "grafana" else name,
              "service": service, "instance": f"host{serial}", "severity": "critical"}
    alert = {"status": "firing", "labels": labels,
             "annotations": {"summary": f"{tag} {name} on {service} #{serial}"},
             "startsAt": started, "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://monitoring.invalid/", "fingerprint": f"{serial:016x}"}
    envelope: dict[str, Any] = {
        "receiver": "interlock", "status": "firing", "alerts": [alert],
        "groupLabels": {"alertname": labels["alertname"]}, "commonLabels": labels,
        "commonAnnotations": alert["annotations"], "externalURL": "http://am.invalid",
        "version": "4", "groupKey": f"{{}}:{{alertname=\"{name}\"}}", "truncatedAlerts": 0}
    if kind == "grafana":
        envelope.update(orgId=1, title=f"[FIRING:1] {name}", state="alerting",
                        message="storm")
    return json.dumps(envelope).encode()


# -- phases ------------------------------------------------------------------------------


async def start_peers(ctx: StormContext) -> dict[str, Any]:
    out = ctx.tmp / "received.jsonl"
    proc = ctx.spawn("peers", [sys.executable, str(Path(__file__).parent / "peers.py"),
                               str(out)])
    ctx.peers = (proc, out)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = proc.log_path.read_text()
        if text.strip().startswith("{"):
            return dict(json.loads(text.splitlines()[0]))
        if proc.popen.poll() is not None:
            raise Failed(f"peers exited:\n{proc.log_tail()}")
        await asyncio.sleep(0.1)
    raise Failed("peers did not start")


async def configure(interlock: Interlock, peers: dict[str, Any]
                    ) -> list[tuple[str, str]]:
    sources = []
    for kind in KINDS:
        made = await interlock.call("POST", "/api/v1/sources",
                                    {"name": f"storm-{kind}", "kind": kind}, expect=201)
        sources.append((made["ingest_url"].split("/ingest/", 1)[1], made["token"]))
    await interlock.call("POST", "/api/v1/endpoints",
                         {"url": peers["receiver"], "description": "storm receiver"},
                         expect=201)
    await interlock.call("POST", "/api/v1/connectors", {
        "name": "slack", "kind": "slack",
        "settings": {"channel": peers["slack_channel"], "api_base": peers["slack_api"]},
        "credentials": {"bot_token": "xoxb-1111-2222-interlocktest",
                        "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5"}}, expect=201)
    await interlock.call("POST", "/api/v1/connectors", {
        "name": "jira", "kind": "jira",
        "settings": {"base_url": peers["jira"], "project_key": "OPS"},
        "credentials": {"email": peers["jira_email"], "api_token": peers["jira_token"],
                        "webhook_secret": peers["jira_secret"]}}, expect=201)
    return sources


async def storm(interlock: Interlock, sources: list[tuple[str, str]], args: Any,
                results: Results) -> None:
    rng = random.Random(7)
    total = int(args.rate * args.seconds)
    plan = []
    for serial in range(total):
        group = rng.randrange(args.groups)
        source = group % len(KINDS)
        plan.append((group, source, body(KINDS[source], group, serial)))
    lateness: list[float] = []
    # The storm's sender shares the machine's two cores with Interlock: it posts through
    # Interlock's own lean HTTP/1.1 client (worker/http11.py), which costs it a third of
    # aiohttp's CPU per request, so that the sender takes less from what is measured.
    http = Http11Client(_connect, user_agent="interlock-bench-storm",
                        limit=args.connections, limit_per_host=args.connections)
    urls = [URL(f"{interlock.base}/ingest/{source_id}") for source_id, _ in sources]
    headers = [{"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
               for _, token in sources]
    try:
        semaphore = asyncio.Semaphore(args.connections)

        async def post(group: int, source: int, payload: bytes) -> None:
            async with semaphore:
                results.first_post.setdefault(group, time.time())
                try:
                    answer = await http.post(urls[source], headers[source], payload, 4096)
                except (OSError, ResponseBroken):
                    results.refused += 1
                    return
                if answer.status == 202:
                    results.accepted += 1
                else:
                    results.refused += 1

        started, client_before = time.perf_counter(), time.process_time()
        tasks = []
        for index, (group, source, payload) in enumerate(plan):
            due = started + index / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lateness.append(max(0.0, time.perf_counter() - due))
            tasks.append(asyncio.create_task(post(group, source, payload)))
            results.sent += 1
        await asyncio.gather(*tasks)
        results.send_seconds = time.perf_counter() - started
        results.cpu_client = time.process_time() - client_before
    finally:
        await http.close()
    lateness.sort()
    results.late_p99_ms = lateness[int(len(lateness) * 0.99) - 1] * 1000 if lateness else 0


async def _connect(scheme: str, host: str, port: int,
                   protocol: Callable[[], asyncio.Protocol]) -> None:
    await asyncio.get_running_loop().create_connection(protocol, host, port)


def person_main(base: str, key: str, api_rate: float, pipe: Connection) -> None:
    """The person's client in a process of its own: runs until told to stop through
    ``pipe``, then sends back what it measured. Ctrl-C is the parent's to handle, as for
    bench/delivery.py's receiver."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    results = Results()

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(pipe.fileno(), stop.set)
        async with aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {key}"},
                connector=aiohttp.TCPConnector(limit=8),
                timeout=aiohttp.ClientTimeout(total=30)) as session:
            interlock = Interlock(None, base, session, "")  # type: ignore[arg-type]
            pipe.send("started")
            await person(interlock, api_rate, results, stop)

    asyncio.run(main())
    pipe.recv()
    pipe.send((results.api, results.api_by_kind, results.api_errors, results.api_requested))


class PersonProcess:
    """The person's client started in a process of its own (see :func:`person_main`)."""

    def __init__(self, interlock: Interlock, api_rate: float) -> None:
        key = interlock.api.headers["Authorization"].removeprefix("Bearer ")
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=person_main, name="bench-person", daemon=True,
                                        args=(interlock.base, key, api_rate, child))
        self._process.start()
        if not self._pipe.poll(30) or self._pipe.recv() != "started":
            raise Failed("the person's client did not start")

    def stop(self, results: Results) -> None:
        self._pipe.send("stop")
        if not self._pipe.poll(60):
            raise Failed("the person's client did not stop within 60 s")
        results.api, results.api_by_kind, results.api_errors, results.api_requested = (
            self._pipe.recv())
        self._process.join(10)


async def person(interlock: Interlock, api_rate: float, results: Results,
                 stop: asyncio.Event) -> None:
    """A responder's client: list, read, comment, at a fixed rate (open loop); none at
    a rate of 0, to measure what the person's requests cost the storm."""
    if api_rate <= 0:
        await stop.wait()
        return
    rng = random.Random(11)
    known: list[str] = []
    started = time.perf_counter()
    index = 0
    pending: set[asyncio.Task[None]] = set()

    async def one(kind: int) -> None:
        began = time.perf_counter()
        try:
            what = "list" if kind == 0 or not known else "read" if kind == 1 else "comment"
            if kind == 0 or not known:
                page = await interlock.call("GET", "/api/v1/incidents?limit=20")
                known[:] = [item["id"] for item in page["data"]] or known
            elif kind == 1:
                await interlock.call("GET", f"/api/v1/incidents/{rng.choice(known)}")
            else:
                await interlock.call("POST", f"/api/v1/incidents/{rng.choice(known)}/comments",
                                     {"body": "looking into it"}, expect=201)
            results.api.append(time.perf_counter() - began)
            results.api_by_kind.setdefault(what, []).append(time.perf_counter() - began)
        except (Failed, aiohttp.ClientError, TimeoutError):
            results.api_errors += 1

    while not stop.is_set():
        due = started + index / api_rate
        delay = due - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
        task = asyncio.create_task(one(index % 4 if index % 4 < 2 else 2))
        pending.add(task)
        task.add_done_callback(pending.discard)
        results.api_requested += 1
        index += 1
    if pending:
        await asyncio.wait(pending, timeout=30)


def pending_payloads(engine: sa.Engine) -> int:
    """Accepted and not yet processed: pending in the table, or still in the spool."""
    with engine.connect() as connection:
        pending = int(connection.exec_driver_sql(
            "SELECT count(*) FROM payloads WHERE status = 'pending'").scalar_one())
    return pending + spooled_payloads(engine)


def outstanding_deliveries(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        undispatched = connection.exec_driver_sql(
            "SELECT count(*) FROM events WHERE dispatched_at IS NULL").scalar_one()
        pending = connection.exec_driver_sql(
            "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'waiting')"
        ).scalar_one()
    return int(undispatched) + int(pending)


def processing_span(engine: sa.Engine) -> tuple[int, float]:
    """Payloads processed, and seconds from the first one's arrival to the last one's
    processing: with a backlog most of the time, their ratio is what the workers can
    process (the storm's rate, when they keep up)."""
    with engine.connect() as connection:
        count, first, last = connection.exec_driver_sql(
            "SELECT count(*), min(received_at), max(processed_at) FROM payloads "
            "WHERE status = 'processed'").one()
    if not count or first is None or last is None:
        return 0, 0.0
    if isinstance(first, str):  # SQLite keeps naive UTC text
        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    return int(count), (last - first).total_seconds()


def connector_jobs(engine: sa.Engine) -> dict[str, dict[str, int]]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT connectors.kind, sync_jobs.status, count(*) FROM sync_jobs JOIN "
            "connectors ON connectors.id = sync_jobs.connector_id GROUP BY 1, 2").all()
    found: dict[str, dict[str, int]] = {}
    for kind, status, count in rows:
        found.setdefault(kind, {})[status] = int(count)
    return found


def transaction_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        row = connection.exec_driver_sql(
            "SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database "
            "WHERE datname = current_database()").one()
    return {"commits": int(row[0]), "rollbacks": int(row[1]), "deadlocks": int(row[2])}


def machine_cpu() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far, every core (/proc/stat):
    whether the CPUs were the limit, whoever used them."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks[:8]) - idle) / hz, sum(ticks[:8]) / hz


def postgres_cpu(url: str) -> float:
    """CPU seconds of the PostgreSQL server behind ``url`` (its postmaster's tree)."""
    with sa.create_engine(url).connect() as connection:
        data_dir = connection.exec_driver_sql("SHOW data_directory").scalar_one()
    pid = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    return process_tree_cpu([pid])


def read_received(out: Path, results: Results) -> None:
    created: dict[int, float] = {}
    for line in out.read_text().splitlines():
        item = json.loads(line)
        if isinstance(item, dict):
            results.tool_calls = item
            continue
        results.webhooks += 1
        arrived, kind, _, _, title = item
        if kind != "incident.created" or not title:
            continue
        found = GROUP_TAG.search(title)
        if found:
            created.setdefault(int(found.group(1)), arrived)
    for group, arrived in created.items():
        if group in results.first_post:
            results.created_latency.append(max(0.0, arrived - results.first_post[group]))
    results.groups_seen = len(created)


async def run(ctx: StormContext, results: Results) -> None:
    args = ctx.args
    ctx.extra_env.update(INTERLOCK_ALLOWED_TARGETS="127.0.0.0/8",
                         INTERLOCK_SECRET_KEY="storm-bench")
    peers = await start_peers(ctx)
    interlock = await start_interlock(ctx, "storm", worker=not args.workers, connections=8)
    layout = ("--split",) if args.split else ()
    workers = [ctx.spawn(f"worker{i}", interlock_command("worker", "--db", interlock.db_url,
                                                        "--tasks", tasks, *layout))
               for i, tasks in enumerate(args.worker_tasks)]
    # How many processes report: `interlock worker --split` runs alert processing in
    # one of its own when it has more to do.
    processes = sum(len(children_for(tasks.split(","))) or 1 if args.split else 1
                    for tasks in args.worker_tasks)
    engine = sa.create_engine(interlock.db_url.replace("postgresql://",
                                                       "postgresql+psycopg://", 1))
    try:
        if ctx.postgres:
            durable, settings = postgres_durability(interlock.db_url)
            results.postgres_settings = (f"{settings} "
                                         f"({'durable' if durable else 'NOT durable'})")
        sources = await configure(interlock, peers)
        await wait_for_workers(interlock, processes or len(CHILDREN))
        pids = [interlock.proc.popen.pid, *(worker.popen.pid for worker in workers)]
        # Each worker process measured alone: those started here (or the processes
        # each started), or serve's own.
        measured = ({pid: tasks for worker, own in zip(workers, args.worker_tasks, strict=True)
                     for pid, tasks in (worker_processes(worker.popen.pid) or {
                         worker.popen.pid: own}).items()}
                    or worker_processes(interlock.proc.popen.pid))
        results.worker_labels = list(measured.values())
        cpu_before = process_tree_cpu(pids)
        api_before = cpu_seconds(interlock.proc.popen.pid) or 0.0
        workers_before = [cpu_seconds(pid) or 0.0 for pid in measured]
        pg_before = postgres_cpu(interlock.db_url) if ctx.postgres else 0.0
        machine_before = machine_cpu()
        cpu_from = time.perf_counter()
        stop = asyncio.Event()
        if args.person_in_sender:
            client = asyncio.create_task(person(interlock, args.api_rate, results, stop))
        else:
            own = await asyncio.to_thread(PersonProcess, interlock, args.api_rate)
        print(f"    storm: {args.rate:g} alerts/s for {args.seconds:g} s into "
              f"{args.groups} groups ...", flush=True)
        await storm(interlock, sources, args, results)
        machine_after = machine_cpu()
        results.machine_busy = ((machine_after[0] - machine_before[0])
                                / max(machine_after[1] - machine_before[1], 1e-9))
        results.backlog_at_end = await asyncio.to_thread(pending_payloads, engine)
        drained_from = time.perf_counter()
        while results.backlog_at_end and time.perf_counter() - drained_from < args.drain:
            if not await asyncio.to_thread(pending_payloads, engine):
                results.drain_seconds = time.perf_counter() - drained_from
                break
            await asyncio.sleep(0.05)
        if not results.backlog_at_end:
            results.drain_seconds = 0.0
        stop.set()
        if args.person_in_sender:
            await client
        else:
            await asyncio.to_thread(own.stop, results)
        deadline = time.perf_counter() + args.drain
        while time.perf_counter() < deadline:
            results.deliveries_left = await asyncio.to_thread(outstanding_deliveries, engine)
            if not results.deliveries_left:
                break
            await asyncio.sleep(0.2)
        results.connector_jobs = await asyncio.to_thread(connector_jobs, engine)
        count, span = await asyncio.to_thread(processing_span, engine)
        results.processed_overall = count / span if span > 0 else 0.0
        results.cpu_interlock = process_tree_cpu(pids) - cpu_before
        results.cpu_span = time.perf_counter() - cpu_from
        if ctx.postgres:
            results.transactions = await asyncio.to_thread(transaction_counts, engine)
        results.cpu_api = (cpu_seconds(interlock.proc.popen.pid) or 0.0) - api_before
        # A worker serve restarted meanwhile is not counted here (it is in the total).
        results.cpu_workers = [(cpu_seconds(pid) or before) - before
                               for pid, before in zip(measured, workers_before, strict=True)]
        if ctx.postgres:
            results.cpu_postgres = postgres_cpu(interlock.db_url) - pg_before
    finally:
        engine.dispose()
        for worker in workers:
            ctx.stop(worker)
        await stop_interlock(ctx, interlock)
        proc, out = ctx.peers
        ctx.stop(proc)
    read_received(out, results)


def summary(ctx: StormContext, results: Results) -> None:
    args = ctx.args
    created = percentiles_ms(results.created_latency)
    api = percentiles_ms(results.api)
    alerts = max(results.accepted, 1)
    setup = ("serve + its worker process" if not args.workers
             else f"serve --no-worker + {args.workers} worker process(es): "
                  + "; ".join(args.worker_tasks))
    print(f"\nstorm on {ctx.database} ({setup}); {results.postgres_settings}")
    print(f"  POSTs: {results.sent:,} sent in {results.send_seconds:.1f} s "
          f"({results.sent / max(results.send_seconds, 1e-9):,.0f}/s; requested "
          f"{args.rate:g}/s; client start late p99 {results.late_p99_ms:.0f} ms), "
          f"{results.accepted:,} accepted, {results.refused} refused")
    processed = (results.accepted - results.backlog_at_end) / max(results.send_seconds, 1e-9)
    print(f"  processed while the storm lasted: {processed:,.0f} alerts/s "
          f"(accepted {results.accepted / max(results.send_seconds, 1e-9):,.0f}/s)")
    print(f"  new groups: {results.groups_seen} incident.created received for "
          f"{len(results.first_post)} groups posted")
    print(f"  webhooks received: {results.webhooks:,}; tool calls: {results.tool_calls}; "
          f"connector jobs at the end, by status: {results.connector_jobs}")
    print(f"  API: {len(results.api)} of {results.api_requested} requests answered "
          f"({results.api_errors} errors) at {args.api_rate:g}/s; p50 / p99 by request: "
          + ", ".join(f"{what} {kind['p50']:,.0f} / {kind['p99']:,.0f} ms"
                      for what, kind in ((what, percentiles_ms(values)) for what, values
                                         in sorted(results.api_by_kind.items()))))
    cpu = f"{results.cpu_interlock / alerts * 1e6:,.0f} µs"
    print(f"  CPU per alert accepted: Interlock {cpu} (API process "
          f"{results.cpu_api / alerts * 1e6:,.0f} µs, worker processes "
          f"{(results.cpu_interlock - results.cpu_api) / alerts * 1e6:,.0f} µs)"
          + (f", PostgreSQL {results.cpu_postgres / alerts * 1e6:,.0f} µs"
             if results.cpu_postgres is not None else "")
          + f"; the load generator (this process) {results.cpu_client / alerts * 1e6:,.0f} µs")
    for tasks, cpu_each in zip(results.worker_labels, results.cpu_workers, strict=True):
        print(f"    worker ({tasks}): {cpu_each / alerts * 1e6:,.0f} µs per alert, "
              f"{cpu_each / max(results.send_seconds, 1e-9) * 100:.0f} % of a core while "
              "the storm lasted")
    print(f"  processed from the first POST to the last alert processed: "
          f"{results.processed_overall:,.0f} alerts/s"
          + (f"; the backlog left at the last 202 drained at {drained:,.0f} alerts/s"
             if (drained := drain_rate(results)) is not None else ""))
    if results.transactions:
        print("  PostgreSQL transactions: " + ", ".join(
            f"{count:,} {name}" for name, count in results.transactions.items()))
    print("  where the limit is, in % of one core, from the storm's start until "
          f"everything was processed and delivered ({results.cpu_span:.0f} s): workers "
          + " + ".join(f"{pct:.0f}" for pct in worker_pcts(results))
          + (f", PostgreSQL {pg_pct(results):.0f}" if results.cpu_postgres is not None
             else "")
          + (f"; during the storm the machine's {os.cpu_count()} cores were "
             f"{results.machine_busy * 100:.0f} % busy (everyone's processes)"
             if results.machine_busy is not None else ""))
    failed_jobs = sum(statuses.get("failed", 0) for statuses in results.connector_jobs.values())
    drain = ("not drained" if results.drain_seconds is None
             else f"{results.drain_seconds:.1f} s")
    if api["n"]:
        api_rows = [("API p50", f"{api['p50']:,.0f} ms", "", ""),
                    ("API p99", f"{api['p99']:,.0f} ms", "<= 100 ms",
                     "ok" if api["p99"] <= 100 else "MISSED")]
    elif args.api_rate <= 0:
        api_rows = [("API", "no person", "", "")]
    else:
        api_rows = [("API", "no answer", "<= 100 ms", "MISSED")]
    rows = [
        ("POST -> incident.created p50", f"{created.get('p50', 0):,.0f} ms", "", ""),
        ("POST -> incident.created p99", f"{created.get('p99', 0):,.0f} ms", "<= 500 ms",
         "ok" if created.get("p99", 1e9) <= 500 else "MISSED"),
        *api_rows,
        ("backlog at the last 202", f"{results.backlog_at_end:,}", "", ""),
        ("backlog drained after", drain, "< 1 s",
         "ok" if results.drain_seconds is not None and results.drain_seconds < 1 else
         "MISSED"),
        ("deliveries outstanding at the end", f"{results.deliveries_left:,}", "0",
         "ok" if not results.deliveries_left else "MISSED"),
        ("connector jobs failed", f"{failed_jobs:,}", "0",
         "ok" if not failed_jobs else "MISSED"),
        ("CPU per alert (Interlock)", cpu, "", ""),
    ]
    print_table("Summary", rows, [], 12)
    print("FIGURES " + json.dumps({
        "db": ctx.database, "workers": args.workers, "rate": args.rate,
        "accepted_per_s": results.accepted / max(results.send_seconds, 1e-9),
        "created_p50_ms": created.get("p50"), "created_p99_ms": created.get("p99"),
        "api_p50_ms": api.get("p50"), "api_p99_ms": api.get("p99"),
        "backlog": results.backlog_at_end, "drain_s": results.drain_seconds,
        "processed_per_s": processed, "connector_jobs": results.connector_jobs,
        "cpu_us_per_alert": results.cpu_interlock / alerts * 1e6,
        "api_cpu_us_per_alert": results.cpu_api / alerts * 1e6,
        "client_cpu_us_per_alert": results.cpu_client / alerts * 1e6,
        "pg_cpu_us_per_alert": (results.cpu_postgres / alerts * 1e6
                                if results.cpu_postgres is not None else None),
        "late_p99_ms": results.late_p99_ms,
        "processed_overall_per_s": results.processed_overall,
        "worker_tasks": results.worker_labels,
        "worker_cpu_us_per_alert": [cpu / alerts * 1e6 for cpu in results.cpu_workers],
        "worker_cpu_pct": worker_pcts(results), "pg_cpu_pct": pg_pct(results),
        "machine_busy_pct": (results.machine_busy * 100
                             if results.machine_busy is not None else None),
        "cores": os.cpu_count(), "drain_per_s": drain_rate(results),
        **{f"pg_{name}": count for name, count in results.transactions.items()}}))


def drain_rate(results: Results) -> float | None:
    """Alerts/s processed after the storm: the workers' pace with the API quiet."""
    if not results.backlog_at_end or not results.drain_seconds:
        return None
    return results.backlog_at_end / results.drain_seconds


def worker_pcts(results: Results) -> list[float]:
    return [cpu / max(results.cpu_span, 1e-9) * 100 for cpu in results.cpu_workers]


def pg_pct(results: Results) -> float | None:
    if results.cpu_postgres is None:
        return None
    return results.cpu_postgres / max(results.cpu_span, 1e-9) * 100


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--rate", type=float, default=1000, help="alerts per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--api-rate", type=float, default=20,
                        help="the person's requests per second (0: no person)")
    parser.add_argument("--connections", type=int, default=64,
                        help="the storm client's connections at most")
    parser.add_argument("--person-in-sender", action="store_true",
                        help="run the person's client on the storm sender's event loop "
                             "(as before), not in a process of its own")
    parser.add_argument("--workers", type=int, default=0,
                        help="run serve --no-worker and this many `interlock worker` "
                             "processes (default: serve with its own worker)")
    parser.add_argument("--drain", type=float, default=120,
                        help="seconds to wait for the backlog after the storm")
    parser.add_argument("--split", action="store_true",
                        help="run each `interlock worker` with --split: alert processing "
                             "in a process of its own beside delivery and sync")
    parser.add_argument("--worker-tasks", default=None,
                        help="one worker per ';'-separated task list, e.g. "
                             "'alerts;deliveries,sync' (instead of --workers running all)")
    args = parse_arguments(parser, ())
    check_db(parser, args)
    if args.worker_tasks:
        args.worker_tasks = args.worker_tasks.split(";")
        args.workers = len(args.worker_tasks)
    else:
        args.worker_tasks = ["alerts,deliveries,sync"] * args.workers
    ctx = StormContext(args=args, tmp=temp_dir("interlock-storm-"), db_prefix="storm",
                       clear_proxy_env=True)
    results = Results()
    errors: list[str] = []
    print(setup_line(ctx))

    def body_() -> None:
        asyncio.run(phase("storm", lambda: run(ctx, results), errors))

    return run_bench(ctx, body_, lambda: summary(ctx, results), errors)


if __name__ == "__main__":
    sys.exit(main())



