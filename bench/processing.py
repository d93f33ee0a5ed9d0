"""Benchmark of alert processing alone: CPU per single-alert payload in the worker.

    .venv/bin/python bench/processing.py [--db URL] [--payloads 3000] [--groups 1000]

Stores N single-alert Alertmanager payloads (as the ingest URL would) into a fresh
database, then runs the alert processor in this process until all are processed, and
prints payloads/s and the CPU time per payload. No HTTP and no other process: this is
the cost of parse, dedup, correlation and writes, which travels between machines better
than a rate. Repeat it (``--runs``) and read the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa

from ingest import Alerts, webhook_body
from interlock.bootstrap import build
from interlock.config import Settings
from interlock.domain.alerts import SourceKind
from interlock.services.sources import SourceSpec
from interlock.store.engine import normalise_url


def one_run(url: str, payloads: int, groups: int, sources: int) -> tuple[float, float, int]:
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
    for start in range(0, len(received), 500):
        container.intake.store(received[start:start + 500])
    wall, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < payloads:
        claimed = container.alerts.process("bench")
        if not claimed:
            break
        done += claimed
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with container.store.transaction() as tx:
        incidents = tx.connection.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
    container.close()
    return wall, cpu, incidents


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="postgresql://… (default: a SQLite file)")
    parser.add_argument("--payloads", type=int, default=3000)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one run")
    args = parser.parse_args()
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
