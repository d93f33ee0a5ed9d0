"""Benchmark of a public status page's ``summary.json``: requests per second from a page
with 50 components and 1,000 past incidents, against a static file served by the same
server in the same run. Not a test: it prints figures.

    .venv/bin/python bench/status_page.py                 # SQLite, about a minute
    .venv/bin/python bench/status_page.py --db postgresql://postgres@127.0.0.1:54329/postgres

Everything runs on this machine, on 127.0.0.1: one ``interlock serve --no-worker``
process (so one Python process answers; the ratio says what the page costs beyond
serving any file) on a fresh database. Through the API the bench creates a page with 50
components (five groups), then 1,000 incidents, each with a public update that
resolves it (naming one component), and one open incident with an ``investigating``
update (so ``summary.json`` carries an unresolved incident). Then wrk (Debian's, from
``scripts/wrk.sh ensure``; ``-t1``, a C client that is not the bottleneck) GETs, for
``--seconds`` each, after a warm-up: ``/static/console.css`` (the console's stylesheet,
read from the package on every request), then ``/status/{slug}/api/v2/summary.json``.
It prints both rates, their ratio and the body sizes, and checks that every answer was
a 200. Last, it publishes 20 updates one by one and times each from its POST until both
``summary.json`` and the Atom feed show it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass, field

import aiohttp

from harness import (
    Context,
    Failed,
    argument_parser,
    check_db,
    parse_arguments,
    phase,
    run_bench,
    setup_line,
    start_interlock,
    stop_interlock,
    temp_dir,
    wrk_binary,
)

COMPONENTS = 50
INCIDENTS = 1000
SLUG = "bench"
#: Public updates timed from POST to visible.
UPDATES = 20


@dataclass
class Rate:
    requests: int
    seconds: float
    non_2xx: int
    errors: int
    size: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Results:
    static: Rate | None = None
    summary: Rate | None = None
    visible: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def seed(api: aiohttp.ClientSession, base: str) -> None:
    async def call(method: str, path: str, body: object, expect: int = 201) -> dict[str, str]:
        async with api.request(method, base + path, json=body) as response:
            if response.status != expect:
                raise Failed(f"{method} {path}: {response.status} {await response.text()}")
            found: dict[str, str] = await response.json()
            return found

    page = await call("POST", "/api/v1/status-pages", {"name": "Bench", "slug": SLUG})
    components = []
    for number in range(COMPONENTS):
        components.append((await call(
            "POST", f"/api/v1/status-pages/{page['id']}/components",
            {"name": f"Component {number}", "services": [f"service-{number}"],
             "group": f"Group {number % 5}"}))["id"])
    limit = asyncio.Semaphore(8)

    async def past(number: int) -> None:
        async with limit:
            incident = await call("POST", "/api/v1/incidents", {
                "title": f"Past incident {number}", "service": f"service-{number % 50}"})
            await call("POST", f"/api/v1/incidents/{incident['id']}/public-updates", {
                "status": "resolved", "title": f"Errors on component {number % 50}",
                "body": "Requests failed for a while; all is well again. " * 3,
                "components": {components[number % COMPONENTS]: "operational"}})

    await asyncio.gather(*(past(number) for number in range(INCIDENTS)))
    incident = await call("POST", "/api/v1/incidents", {"title": "Open incident"})
    await call("POST", f"/api/v1/incidents/{incident['id']}/public-updates", {
        "status": "investigating", "body": "Some requests fail; we are on it.",
        "components": {components[0]: "partial_outage"}})


async def wrk(binary: str, url: str, seconds: float) -> Rate:
    process = await asyncio.create_subprocess_exec(
        binary, "-t1", "-c16", f"-d{seconds:g}s", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await process.communicate())[0].decode()
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s), ([\d.]+)(\w+) read", output)
    if process.returncode != 0 or not found:
        raise Failed(f"wrk failed ({process.returncode}):\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                       r"timeout (\d+)", output)
    took = float(found.group(2)) / (1000 if found.group(3) == "ms" else 1)
    return Rate(int(found.group(1)), took, int(non_2xx.group(1)) if non_2xx else 0,
                sum(int(x) for x in errors.groups()) if errors else 0, 0)


async def run(ctx: Context, binary: str, results: Results) -> None:
    interlock = await start_interlock(ctx, "status", worker=False, connections=8)
    try:
        async def seeding() -> None:
            await seed(interlock.api, interlock.base)

        await phase(f"seeding: {COMPONENTS} components, {INCIDENTS} past incidents",
                    seeding, results.errors)
        urls = {"static": interlock.base + "/static/console.css",
                "summary": f"{interlock.base}/status/{SLUG}/api/v2/summary.json"}
        sizes = {}
        async with aiohttp.ClientSession() as plain:
            for name, url in urls.items():
                async with plain.get(url) as response:
                    sizes[name] = len(await response.read())
                    if response.status != 200:
                        raise Failed(f"GET {url}: {response.status}")

        async def measuring() -> None:
            for name, url in urls.items():
                await wrk(binary, url, 2)  # warm-up
                rate = await wrk(binary, url, ctx.args.seconds)
                rate.size = sizes[name]
                setattr(results, name, rate)
                print(f"    {name}: {rate.per_second:,.0f} requests/s ({rate.requests:,} in "
                      f"{rate.seconds:.1f} s; {rate.non_2xx} non-2xx, {rate.errors} socket "
                      f"errors; body {rate.size:,} bytes)", flush=True)
                if rate.non_2xx or rate.errors:
                    results.errors.append(f"{name}: {rate.non_2xx} non-2xx, "
                                          f"{rate.errors} socket errors")

        await phase("wrk -t1 -c16: the static file, then summary.json", measuring,
                    results.errors)

        async def publishing() -> None:
            results.visible = await publish_to_visible(interlock.api, interlock.base)
            print(f"    publish → visible in summary.json and feed.atom: p50 "
                  f"{_ms(results.visible, 0.5)} ms, max {_ms(results.visible, 1.0)} ms "
                  f"over {len(results.visible)} updates", flush=True)

        await phase("publishing: from POST to what a visitor reads", publishing,
                    results.errors)
    finally:
        await stop_interlock(ctx, interlock)


async def publish_to_visible(api: aiohttp.ClientSession, base: str) -> list[float]:
    """Seconds from the start of each POST of a public update until both summary.json
    and the Atom feed show it (this process's change: no recheck delay)."""
    async with api.post(base + "/api/v1/incidents", json={"title": "Latency probe"}) as made:
        incident = await made.json()
    async with api.get(f"{base}/status/{SLUG}/api/v2/components.json") as listed:
        component = (await listed.json())["components"][1]["id"]
    took = []
    async with aiohttp.ClientSession() as visitor:
        for number in range(UPDATES):
            body = f"Probe {number}: requests are slow."
            started = time.perf_counter()
            async with api.post(f"{base}/api/v1/incidents/{incident['id']}/public-updates",
                                json={"status": "investigating", "body": body,
                                      "components": {component: "degraded_performance"}}
                                ) as response:
                if response.status != 201:
                    raise Failed(f"publish: {response.status} {await response.text()}")
            for path in (f"/status/{SLUG}/api/v2/summary.json", f"/status/{SLUG}/feed.atom"):
                while True:
                    async with visitor.get(base + path) as answer:
                        if body in await answer.text():
                            break
                    if time.perf_counter() - started > 5:
                        raise Failed(f"{path} did not show update {number} within 5 s")
                    await asyncio.sleep(0.005)
            took.append(time.perf_counter() - started)
    return took


def _ms(values: list[float], quantile: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(quantile * (len(ordered) - 1)))] * 1000:.0f}"


def print_summary(results: Results) -> None:
    if results.static is None or results.summary is None:
        print("\nno figures (see above)")
        return
    ratio = results.summary.per_second / results.static.per_second
    print(f"\nsummary.json {results.summary.per_second:,.0f} requests/s, static file "
          f"{results.static.per_second:,.0f} requests/s: ratio {ratio:.2f}")


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--seconds", type=float, default=10,
                        help="seconds wrk GETs each URL (default 10)")
    args = parse_arguments(parser, [])
    check_db(parser, args)
    ctx = Context(args, temp_dir("interlock-status-bench-"),
                  db_prefix="interlock_status_bench", clear_proxy_env=True)
    binary = wrk_binary()
    results = Results()

    def body() -> None:
        print(setup_line(ctx), flush=True)
        asyncio.run(run(ctx, binary, results))

    return run_bench(ctx, body, lambda: print_summary(results), results.errors)


if __name__ == "__main__":
    sys.exit(main())
