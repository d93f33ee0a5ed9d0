"""The API process's CPU per request, several checkouts side by side, driven by wrk in
turns. Not a test: it prints figures.

    .venv/bin/python bench/api_turns.py ../base .    # the first is the base; . is this one
    .venv/bin/python bench/api_turns.py --rounds 8 --kinds ingest,read ../base ../other .

Each checkout (its ``src`` on PYTHONPATH, this interpreter) runs ``interlock serve
--no-worker`` on a SQLite file of its own, all at once, started as every benchmark
starts it (``harness.start_interlock``); then, round after round, wrk
(one C thread, 16 connections: a client that is not the bottleneck) drives each server
in turn, for each kind of request, and the server's CPU (user + system, from /proc) is
divided by the requests it answered. The order rotates every round, so no checkout
always goes first. Against ``bench/api.py`` (a Python client, one server at a time) the
servers run together, so a change of the machine's speed falls on all of them within
seconds; the ratio to the first checkout and how many rounds were lower are printed.
Kinds: ``ingest`` (a single-alert POST), ``healthz``, ``read`` (one incident),
``comment``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Context,
    Interlock,
    cpu_seconds,
    start_interlock,
    stop_interlock,
    temp_dir,
    wrk_binary,
)
from ingest import Alerts, webhook_body

ROOT = Path(__file__).resolve().parent.parent
#: One Alertmanager webhook of one alert, as bench/api.py posts it.
SINGLE_ALERT = webhook_body([Alerts().new(0)]).decode()


@dataclass
class Server:
    """One checkout's ``interlock serve --no-worker`` (started by the harness, with the
    checkout's ``src`` on PYTHONPATH) and the requests wrk sends it."""

    name: str
    ctx: Context
    interlock: Interlock | None = None
    requests: dict[str, tuple[str, str, dict[str, str], str | None]] = field(
        default_factory=dict)

    async def start(self) -> None:
        self.interlock = interlock = await start_interlock(self.ctx, self.name, worker=False)
        source = await interlock.call("POST", "/api/v1/sources",
                                      {"name": "bench", "kind": "alertmanager"}, expect=201)
        incident = (await interlock.call("POST", "/api/v1/incidents",
                                         {"title": "Bench", "severity": "high"},
                                         expect=201))["id"]
        bearer = {"authorization": interlock.api.headers["Authorization"]}
        as_json = {"content-type": "application/json"}
        self.requests = {
            "ingest": ("POST", f"/ingest/{source['id']}",
                       {"authorization": f"Bearer {source['token']}", **as_json},
                       SINGLE_ALERT),
            "healthz": ("GET", "/healthz", {}, None),
            "read": ("GET", f"/api/v1/incidents/{incident}", bearer, None),
            "comment": ("POST", f"/api/v1/incidents/{incident}/comments",
                        {**bearer, **as_json}, json.dumps({"body": "a bench comment"})),
        }

    def script(self, kind: str) -> Path:
        method, path, headers, body = self.requests[kind]
        lines = [f'wrk.method = "{method}"', f'wrk.path = "{path}"',
                 *(f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items())]
        if body is not None:
            lines.append(f"wrk.body = {json.dumps(body)}")
        script = self.ctx.tmp / f"{self.name}-{kind}.lua"
        script.write_text("\n".join(lines) + "\n")
        return script

    async def stop(self) -> None:
        if self.interlock is not None:
            await stop_interlock(self.ctx, self.interlock)


def drive(wrk: str, server: Server, kind: str, seconds: float) -> tuple[float, float]:
    """wrk against ``server`` for ``seconds``: (requests/s, µs of CPU per request)."""
    assert server.interlock is not None
    pid = server.interlock.proc.popen.pid
    before = cpu_seconds(pid) or 0.0
    output = subprocess.run(
        [wrk, "-t1", "-c16", f"-d{seconds:g}s", "-s", str(server.script(kind)),
         server.interlock.base], capture_output=True, text=True, check=True).stdout
    used = (cpu_seconds(pid) or 0.0) - before
    answered = int(output.split(" requests in")[0].split()[-1])
    if "Non-2xx" in output:
        raise SystemExit(f"{server.name}: {kind} answered errors:\n{output}")
    return answered / seconds, used / max(answered, 1) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="+", type=Path,
                        help="checkouts to compare; the first is the base (. is this one)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0, help="wrk's run, each time")
    parser.add_argument("--kinds", default="ingest,healthz,read,comment")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    checkouts = [path.resolve() for path in args.checkouts]
    wrk = wrk_binary()
    workdir = temp_dir("interlock-api-turns-")
    names = ["this" if path == ROOT else path.name for path in checkouts]
    # SQLite files in workdir (no --db), each server with its checkout's code.
    servers = [Server(name, Context(argparse.Namespace(db=None), workdir,
                                    extra_env={"PYTHONPATH": str(path / "src")}))
               for name, path in zip(names, checkouts, strict=True)]
    cpu: dict[tuple[str, str], list[float]] = {(s.name, k): [] for s in servers for k in kinds}
    try:
        for server in servers:
            await server.start()
        for round_ in range(args.rounds):
            turn = servers[round_ % len(servers):] + servers[:round_ % len(servers)]
            for kind in kinds:
                for server in turn:
                    rate, per_request = drive(wrk, server, kind, args.seconds)
                    cpu[(server.name, kind)].append(per_request)
                    print(f"round {round_ + 1} {kind:8s} {server.name:>12s}: {rate:7,.0f}/s, "
                          f"{per_request:6,.0f} µs of CPU per request", flush=True)
    finally:
        for server in servers:
            await server.stop()
            server.ctx.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    base = servers[0].name
    print(f"\nSummary: the API process's CPU per request, median (range) of {args.rounds} "
          f"rounds; ratio to {base}'s median, and the rounds in which it was lower")
    for kind in kinds:
        line = f"  {kind:8s}"
        for server in servers:
            values = cpu[(server.name, kind)]
            ratio = statistics.median(values) / statistics.median(cpu[(base, kind)])
            lower = sum(v < b for v, b in zip(values, cpu[(base, kind)], strict=True))
            line += (f"  {server.name} {statistics.median(values):,.0f} µs "
                     f"({min(values):,.0f}-{max(values):,.0f})")
            if server.name != base:
                line += f" {ratio:.2f}x, lower in {lower} of {args.rounds}"
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
