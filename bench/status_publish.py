"""Benchmark of a public update's way out: the time from publishing it (the API's 201)
to it showing in the page's JSON, reaching a webhook subscriber, and reaching the
SMTP server as a subscriber's mail. Not a test: it prints figures.

    .venv/bin/python bench/status_publish.py                 # SQLite, about 30 s
    .venv/bin/python bench/status_publish.py --updates 40 --db postgresql://…/postgres

Everything runs on this machine, on 127.0.0.1, as real processes and servers:

* ``interlock serve`` (API and its worker processes), sending mail to
* an SMTP server (aiosmtpd, in this process) that records when each message arrives;
* a webhook receiver (aiohttp, in this process) that verifies each signature with the
  ``standardwebhooks`` reference library and records when it arrives;
* this process polls ``/status/{slug}/api/v2/incidents/unresolved.json`` every 5 ms
  until the update's text is in it.

One page, one component, one confirmed email subscriber (confirmed through the link
of its real confirmation mail) and one webhook subscriber; then ``--updates`` public
updates, one every ``--gap`` seconds. Each figure is the time from the moment the
publishing request was sent; the target is the issue's: within 1 s.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiosmtpd.controller import Controller
from standardwebhooks import Webhook

import harness

TARGET_MS = 1000.0
POLL = 0.005


@dataclass
class Arrivals:
    """When each marker (a unique word in an update's text) arrived, per channel."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    mail: dict[str, float] = field(default_factory=dict)
    hook: dict[str, float] = field(default_factory=dict)
    page: dict[str, float] = field(default_factory=dict)
    mail_bodies: list[str] = field(default_factory=list)
    bad_signatures: int = 0

    def note(self, channel: str, text: str) -> None:
        now = time.monotonic()
        with self.lock:
            for marker in re.findall(r"mark-[0-9a-f]{12}", text):
                getattr(self, channel).setdefault(marker, now)


class SmtpHandler:
    def __init__(self, arrivals: Arrivals) -> None:
        self._arrivals = arrivals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        with self._arrivals.lock:
            self._arrivals.mail_bodies.append(text)
        self._arrivals.note("mail", text)
        return "250 OK"


class Context(harness.Context):
    pass


async def receiver(arrivals: Arrivals, secret: list[str]) -> tuple[web.AppRunner, str]:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        arrivals.note("hook", body.decode())
        try:
            Webhook(secret[0]).verify(body, dict(request.headers))
        except Exception:
            with arrivals.lock:
                arrivals.bad_signatures += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = harness.free_port()
    await web.TCPSite(runner, harness.HOST, port).start()
    return runner, f"http://{harness.HOST}:{port}/hook"


async def wait_for(probe: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise harness.Failed(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)


async def run(ctx: Context, results: dict[str, list[float]], errors: list[str]) -> None:
    args = ctx.args
    arrivals = Arrivals()
    smtp_port = harness.free_port()
    smtp = Controller(SmtpHandler(arrivals), hostname=harness.HOST, port=smtp_port)
    smtp.start()
    secret: list[str] = [""]
    runner, hook_url = await receiver(arrivals, secret)
    ctx.extra_env.update(
        INTERLOCK_SMTP_HOST=harness.HOST, INTERLOCK_SMTP_PORT=str(smtp_port),
        INTERLOCK_SMTP_FROM="Status <status@example.com>", INTERLOCK_SMTP_STARTTLS="false",
        INTERLOCK_ALLOWED_TARGETS="127.0.0.0/8")
    try:
        interlock = await harness.start_interlock(ctx, "status")
        try:
            await measure(interlock, arrivals, secret, hook_url, args, results)
        finally:
            await harness.stop_interlock(ctx, interlock)
    finally:
        await runner.cleanup()
        smtp.stop()
    if arrivals.bad_signatures:
        errors.append(f"{arrivals.bad_signatures} webhook(s) with a bad signature")


async def measure(interlock: harness.Interlock, arrivals: Arrivals, secret: list[str],
                  hook_url: str, args: Any, results: dict[str, list[float]]) -> None:
    call = interlock.call
    page = await call("POST", "/api/v1/status-pages", {"name": "Bench", "slug": "bench"}, 201)
    component = await call("POST", f"/api/v1/status-pages/{page['id']}/components",
                           {"name": "API", "services": ["api"]}, 201)
    incident = await call("POST", "/api/v1/incidents",
                          {"title": "bench", "severity": "high", "service": "api"}, 201)
    hook = await call("POST", f"/api/v1/status-pages/{page['id']}/subscribers",
                      {"url": hook_url}, 201)
    secret[0] = hook["secret"]
    await call("POST", f"/api/v1/status-pages/{page['id']}/subscribers",
               {"email": "bench@example.com"}, 201)
    body = await wait_for(lambda: arrivals.mail_bodies and arrivals.mail_bodies[0],
                          "the confirmation mail")
    confirm = re.search(r"/status/bench/subscribe/confirm\?token=\S+", body)
    if confirm is None:
        raise harness.Failed("no confirmation link in the confirmation mail")
    async with interlock.api.post(interlock.base + confirm.group(0)) as response:
        if response.status != 200:
            raise harness.Failed(f"confirming: {response.status}")
    print(f"    {args.updates} public updates, one every {args.gap} s", flush=True)
    statuses = ("investigating", "identified", "monitoring")
    async with aiohttp.ClientSession() as public:
        for index in range(args.updates):
            marker = f"mark-{secrets.token_hex(6)}"
            sent = time.monotonic()
            await call("POST", f"/api/v1/incidents/{incident['id']}/public-updates", {
                "status": statuses[index % 3], "body": f"Update {index}: {marker}",
                "components": {component["id"]: "partial_outage"}}, 201)
            await poll_page(public, interlock.base, marker, arrivals)
            await wait_for(lambda m=marker: m in arrivals.hook and m in arrivals.mail,
                           f"update {index} at the webhook and the SMTP server")
            for channel in ("page", "hook", "mail"):
                results[channel].append(getattr(arrivals, channel)[marker] - sent)
            await asyncio.sleep(args.gap)


async def poll_page(session: aiohttp.ClientSession, base: str, marker: str,
                    arrivals: Arrivals) -> None:
    url = f"{base}/status/bench/api/v2/incidents/unresolved.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with session.get(url) as response:
            text = await response.text()
        if marker in text:
            arrivals.note("page", marker)
            return
        await asyncio.sleep(POLL)
    raise harness.Failed(f"{marker} never reached the page JSON")


def main() -> int:
    parser = harness.argument_parser(__doc__ or "")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.3,
                        help="seconds between one update's last arrival and the next")
    args = harness.parse_arguments(parser, ())
    harness.check_db(parser, args)
    ctx = Context(args, harness.temp_dir("interlock-status-bench-"),
                  db_prefix="interlock_status_bench", clear_proxy_env=True)
    print(harness.setup_line(ctx))
    results: dict[str, list[float]] = {"page": [], "hook": [], "mail": []}
    errors: list[str] = []

    def body() -> None:
        asyncio.run(harness.phase("publish → page JSON, webhook subscriber, SMTP server",
                                  lambda: run(ctx, results, errors), errors))

    def summary() -> None:
        rows = []
        names = {"page": "page JSON", "hook": "webhook subscriber", "mail": "SMTP server"}
        for channel, name in names.items():
            if not results[channel]:
                continue
            figures = harness.percentiles_ms(results[channel])
            worst = figures["max"]
            rows.append((f"{name} p50 / p95 / max ms",
                         f"{figures['p50']:.0f} / {figures['p95']:.0f} / {worst:.0f}",
                         f"< {TARGET_MS:.0f} ms", harness.verdict(worst < TARGET_MS)))
        if rows:
            harness.print_table(f"A public update's way out ({len(results['page'])} updates, "
                                f"{ctx.database})", rows, errors, 20)

    return harness.run_bench(ctx, body, summary, errors)


if __name__ == "__main__":
    sys.exit(main())
