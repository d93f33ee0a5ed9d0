"""Benchmark of the API's own cost: CPU of the API process per request, by kind of
request, over loopback HTTP. Not a test: it prints figures.

    .venv/bin/python bench/api.py [--requests 2000] [--concurrency 4] [--runs 3]
    .venv/bin/python bench/api.py --baseline /path/to/other/checkout   # in turns

``interlock serve --no-worker`` on a fresh SQLite database (no worker: nothing but the
API uses the CPU), 20 incidents, then for each kind of request ``--requests`` of them,
``--concurrency`` at a time, and the server's CPU time (user + system, from /proc)
divided by the requests answered. A person's requests in a storm and the changes of
bench/delivery.py's latency run are these requests; their CPU is what the API process
needs per person, and it travels between machines better than a rate. With
``--baseline`` the same runs alternate with another checkout's code (its ``src`` on
PYTHONPATH), and the ratio of the medians is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Context,
    Interlock,
    argument_parser,
    cpu_seconds,
    parse_arguments,
    run_bench,
    setup_line,
    start_interlock,
    stop_interlock,
    temp_dir,
)
from ingest import Alerts, webhook_body

#: One Alertmanager webhook of one alert, as the ingest kind posts it.
_ALERT = json.loads(webhook_body([Alerts().new(0)]))

#: (label, method, path with {incident} or {source}, JSON body, expected status)
KINDS: list[tuple[str, str, str, Any, int]] = [
    ("ingest one alert (202)", "POST", "/ingest/{source}", _ALERT, 202),
    ("read an incident", "GET", "/api/v1/incidents/{incident}", None, 200),
    ("list incidents (20)", "GET", "/api/v1/incidents?limit=20", None, 200),
    ("comment on an incident", "POST", "/api/v1/incidents/{incident}/comments",
     {"body": "Rolled back the deploy; error rate falling."}, 201),
    ("an unknown path (404)", "GET", "/api/v1/no-such-thing", None, 404),
    ("/healthz", "GET", "/healthz", None, 200),
]


@dataclass
class Results:
    #: By code ("this" or "baseline"), by kind: CPU µs per request, one per run.
    cpu: dict[str, dict[str, list[float]]] = field(default_factory=dict)


async def one_run(ctx: Context, code: str, run: int, results: Results) -> None:
    args = ctx.args
    interlock = await start_interlock(ctx, f"api-{code}-{run}", worker=False, connections=64)
    try:
        incidents = [
            (await interlock.call("POST", "/api/v1/incidents", {
                "title": f"Checkout returns 502 (bench #{i})", "severity": "high",
                "service": "checkout", "labels": {"team": "payments"}}, expect=201))["id"]
            for i in range(20)]
        source = await interlock.call("POST", "/api/v1/sources",
                                      {"name": "bench", "kind": "alertmanager"}, expect=201)
        for label, method, path, body, status in KINDS:
            cpu, rate = await drive(interlock, method, path, body, status, incidents,
                                    args.requests, args.concurrency, source)
            results.cpu.setdefault(code, {}).setdefault(label, []).append(cpu)
            print(f"    {code:8s} {label:24s} {cpu:7,.0f} µs of the API's CPU per request, "
                  f"{rate:,.0f}/s", flush=True)
    finally:
        await stop_interlock(ctx, interlock)


async def drive(interlock: Interlock, method: str, path: str, body: Any, status: int,
                incidents: list[str], requests: int, concurrency: int,
                source: dict[str, Any]) -> tuple[float, float]:
    """CPU µs per request and requests/s for ``requests`` of one kind, ``concurrency``
    at a time. Ingest requests carry the source's token instead of the admin key."""
    todo = iter(range(requests))
    headers = ({"Authorization": f"Bearer {source['token']}"} if "{source}" in path
               else None)

    async def one(i: int) -> None:
        await interlock.call(method, path.format(incident=incidents[i % len(incidents)],
                                                 source=source["id"]),
                             body, expect=status, headers=headers)

    async def client() -> None:
        for i in todo:
            await one(i)

    for i in range(50):  # warm up: caches, the thread pool, the key's check
        await one(i)
    before, started = cpu_seconds(interlock.proc.popen.pid) or 0.0, time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    used = (cpu_seconds(interlock.proc.popen.pid) or 0.0) - before
    return used / requests * 1e6, requests / elapsed


def summary(args: argparse.Namespace, results: Results) -> Callable[[], None]:
    def show() -> None:
        codes = list(results.cpu)
        print(f"\nSummary: the API process's CPU per request, median (range) of {args.runs} "
              f"runs, {args.requests:,} requests each, {args.concurrency} at a time")
        header = f"  {'request':26s}" + "".join(f"{code:>26s}" for code in codes)
        print(header + ("   this / baseline" if len(codes) > 1 else ""))
        for label, *_ in KINDS:
            cells = []
            for code in codes:
                values = results.cpu[code][label]
                cells.append(f"{statistics.median(values):,.0f} µs "
                             f"({min(values):,.0f}-{max(values):,.0f})")
            line = f"  {label:26s}" + "".join(f"{cell:>26s}" for cell in cells)
            if len(codes) > 1:
                ratio = (statistics.median(results.cpu["this"][label])
                         / statistics.median(results.cpu["baseline"][label]))
                line += f"   {ratio:.2f}"
            print(line)
    return show


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests of each kind per run (default 2000)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="requests in flight at once (default 4)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each code (default 3)")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout of Interlock: its code is run in turns with "
                             "this one's (its src/ on PYTHONPATH)")
    args = parse_arguments(parser, [])
    if args.db:
        parser.error("bench/api.py runs on SQLite only")
    if args.baseline and not (args.baseline / "src" / "interlock").is_dir():
        parser.error(f"--baseline: no src/interlock in {args.baseline}")
    ctx = Context(args=args, tmp=temp_dir("interlock-api-bench-"), clear_proxy_env=True)
    results = Results()
    errors: list[str] = []
    print(setup_line(ctx), flush=True)

    def body() -> None:
        for run in range(args.runs):
            print(f"== run {run + 1} of {args.runs}", flush=True)
            for code in (["this", "baseline"] if args.baseline else ["this"]):
                checkout = args.baseline if code == "baseline" else Path(__file__).parent.parent
                ctx.extra_env["PYTHONPATH"] = str(checkout.resolve() / "src")
                asyncio.run(one_run(ctx, code, run, results))

    return run_bench(ctx, body, summary(args, results), errors)


if __name__ == "__main__":
    raise SystemExit(main())
