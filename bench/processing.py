"""Benchmark of alert processing alone: CPU per single-alert payload in the worker, and
how processing scales with worker processes.

    .venv/bin/python bench/processing.py [--db URL] [--payloads 3000] [--groups 1000]
    .venv/bin/python bench/processing.py --db postgresql://… --processes 1,2 --payloads 20000

Stores N single-alert Alertmanager payloads (as the ingest URL would) into a fresh
database, then processes them until none is left, and prints payloads/s and the CPU time
per payload. By default the alert processor runs in this process: no HTTP and no other
process, the cost of parse, dedup, correlation and writes, which travels between
machines better than a rate. With ``--processes 1,2`` that many worker processes
(each what ``interlock worker --tasks alerts`` runs) drain the same backlog together,
the counts alternating run by run, and the ratio of their rates to the first count's
is printed with each process's and PostgreSQL's CPU and how busy the machine was: where
the limit is when adding a process stops helping. Repeat it (``--runs``) and read the
median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa

from harness import cpu_seconds, interlock_command
from ingest import Alerts, webhook_body
from interlock.bootstrap import build
from interlock.config import Settings
from interlock.domain.alerts import ReceivedPayload, SourceKind
from interlock.services.container import Container
from interlock.services.sources import SourceSpec
from interlock.store.engine import normalise_url
from storm import machine_cpu, postgres_cpu


def new_payloads(url: str, payloads: int, groups: int, sources: int
                 ) -> tuple[Container, list[ReceivedPayload]]:
    """A fresh database with its sources, and ``payloads`` single-alert payloads for
    them as the ingest URL receives them (not stored yet)."""
    container = build(Settings(database_url=url, secret_key="bench"), migrate_schema=True)
    made = [container.sources.create(SourceSpec(name=f"am{i}", kind=SourceKind.ALERTMANAGER))[0]
            for i in range(sources)]
    alerts = Alerts()
    received = []
    for i in range(payloads):
        group = i % groups  # each group belongs to one source, as in bench/storm.py
        source = made[group % sources]
        body = webhook_body([alerts.new(group)])
        received.append(container.intake.received(source, body, "application/json"))
    return container, received


def one_run(url: str, payloads: int, groups: int, sources: int) -> tuple[float, float, int]:
    container, received = new_payloads(url, payloads, groups, sources)
    for start in range(0, len(received), 500):
        container.intake.store(received[start:start + 500])
    wall, cpu = time.perf_counter(), time.process_time()
    while container.alerts.process("bench"):
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    incidents = scalar(container, "SELECT count(*) FROM incidents")
    container.close()
    return wall, cpu, incidents


def scalar(container: Container, query: str) -> int:
    with container.store.transaction() as tx:
        found: int = tx.connection.execute(sa.text(query)).scalar_one()
    return found


def processes_run(url: str, processes: int, args: argparse.Namespace) -> dict[str, float]:
    """Drain a backlog with ``processes`` ``interlock worker --tasks alerts`` processes,
    started and reporting before the backlog is committed (in one transaction, which
    wakes them); their rate and CPU until no payload is pending."""
    container, received = new_payloads(url, args.payloads, args.groups, args.sources)
    env = {**os.environ, "INTERLOCK_SECRET_KEY": "bench", "INTERLOCK_AUTO_MIGRATE": "false"}
    workers = [subprocess.Popen(interlock_command("worker", "--quiet", "--db", url,
                                                  "--tasks", "alerts"),
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(processes)]
    try:
        deadline = time.monotonic() + 60
        while scalar(container, "SELECT count(*) FROM workers") < processes:
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise SystemExit("the worker processes did not start")
            time.sleep(0.1)
        container.intake.store(received)
        started = time.monotonic()
        workers_cpu = [cpu_seconds(worker.pid) or 0.0 for worker in workers]
        database_cpu = postgres_cpu(url) if args.db else 0.0
        busy, total = machine_cpu()
        # Whether any is left, not how many: counting them every 20 ms cost PostgreSQL
        # 1.3 ms a time, 5 % of a core of the database CPU this benchmark measures.
        pending = "SELECT EXISTS (SELECT 1 FROM payloads WHERE status = 'pending')"
        while scalar(container, pending):
            if time.monotonic() - started > 1800:
                raise SystemExit("the backlog did not drain within 30 minutes")
            time.sleep(0.02)
        wall = time.monotonic() - started
        workers_cpu = [(cpu_seconds(worker.pid) or 0.0) - before
                       for worker, before in zip(workers, workers_cpu, strict=True)]
        database_cpu = (postgres_cpu(url) - database_cpu) if args.db else 0.0
        busy, total = machine_cpu()[0] - busy, machine_cpu()[1] - total
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
    incidents = scalar(container, "SELECT count(*) FROM incidents")
    container.close()
    return {"rate": args.payloads / wall, "wall": wall, "incidents": incidents,
            "worker_cpu_pct": statistics.mean(workers_cpu) / wall * 100,
            "cpu_us": sum(workers_cpu) / args.payloads * 1e6,
            "pg_cpu_pct": database_cpu / wall * 100,
            "pg_cpu_us": database_cpu / args.payloads * 1e6,
            "machine_busy_pct": busy / max(total, 1e-9) * 100}


def scale(args: argparse.Namespace) -> int:
    counts = [int(each) for each in args.processes.split(",")]
    results: dict[int, list[dict[str, float]]] = {count: [] for count in counts}
    for run in range(args.runs):
        for count in counts:
            with tempfile.TemporaryDirectory() as tmp:
                url, cleanup = _database(args.db, Path(tmp))
                try:
                    figures = processes_run(url, count, args)
                finally:
                    cleanup()
            results[count].append(figures)
            print(f"run {run + 1}, {count} process(es): {figures['rate']:,.0f} payloads/s, "
                  f"{figures['cpu_us']:,.0f} µs worker CPU and {figures['pg_cpu_us']:,.0f} µs "
                  f"database CPU per payload; each process {figures['worker_cpu_pct']:.0f} %"
                  f" of a core, database {figures['pg_cpu_pct']:.0f} %, machine "
                  f"{figures['machine_busy_pct']:.0f} % busy; {figures['incidents']} incidents",
                  flush=True)
    base = statistics.median(f["rate"] for f in results[counts[0]])
    for count in counts:
        rows = results[count]
        print(f"{count} process(es), median (range) of {len(rows)}: " + "; ".join(
            f"{label} {statistics.median(r[key] for r in rows):,.0f} "
            f"({min(r[key] for r in rows):,.0f} to {max(r[key] for r in rows):,.0f})"
            for key, label in (("rate", "payloads/s"), ("cpu_us", "worker µs/payload"),
                               ("pg_cpu_us", "database µs/payload"),
                               ("worker_cpu_pct", "% of a core each"),
                               ("pg_cpu_pct", "database % of a core"),
                               ("machine_busy_pct", "machine % busy")))
              + f"; {statistics.median(r['rate'] for r in rows) / base:.2f}x {counts[0]}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="postgresql://… (default: a SQLite file)")
    parser.add_argument("--payloads", type=int, default=3000)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one run")
    parser.add_argument("--processes", default=None,
                        help="worker process counts to compare, e.g. 1,2 (default: this "
                             "process alone)")
    args = parser.parse_args()
    if args.processes:
        return scale(args)
    rates, cpus = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            url, cleanup = _database(args.db, Path(tmp))
            try:
                if args.profile:
                    import cProfile
                    import pstats
                    profile = cProfile.Profile()
                    profile.enable()
                wall, cpu, incidents = one_run(url, args.payloads, args.groups, args.sources)
                if args.profile:
                    profile.disable()
                    pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
            finally:
                cleanup()
        rates.append(args.payloads / wall)
        cpus.append(cpu / args.payloads * 1e6)
        print(f"run {run + 1}: {args.payloads / wall:,.0f} payloads/s, "
              f"{cpu / args.payloads * 1e6:,.0f} µs CPU per payload, {incidents} incidents")
    print(f"median: {statistics.median(rates):,.0f} payloads/s "
          f"(spread {min(rates):,.0f} to {max(rates):,.0f}); "
          f"{statistics.median(cpus):,.0f} µs CPU per payload "
          f"(spread {min(cpus):,.0f} to {max(cpus):,.0f})")
    return 0


def _database(server: str | None, tmp: Path) -> tuple[str, object]:
    if not server:
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalise_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return server.rsplit("/", 1)[0] + "/" + name, drop


if __name__ == "__main__":
    sys.exit(main())
