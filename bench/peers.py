"""The loopback peers a benchmark's Interlock talks to, in a process of their own so
they take no CPU from the bench's clients: a webhook receiver that notes when each
message arrived, and the test suite's fake Slack and Jira (they speak those tools'
documented APIs).

    .venv/bin/python bench/peers.py OUT.jsonl

prints one JSON line with the ports, then serves until SIGTERM/SIGINT. Each webhook
received becomes a line of OUT.jsonl: arrival time (unix seconds), type, incident id,
version and title; the Slack and Jira calls are counted in a last line.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.fake_jira import FakeJira
from tests.support.fake_slack import FakeSlack


async def main(out_path: Path) -> None:
    out = out_path.open("w")

    async def receive(request: web.Request) -> web.Response:
        body: dict[str, Any] = json.loads(await request.read())
        incident = body.get("data", {}).get("incident", {})
        out.write(json.dumps([time.time(), body.get("type"), incident.get("id"),
                              incident.get("version"), incident.get("title")]) + "\n")
        return web.Response(status=204)

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with FakeSlack() as slack, FakeJira() as jira:
        print(json.dumps({"receiver": f"http://127.0.0.1:{port}/hook",
                          "slack_api": slack.api_base,
                          "slack_channel": next(iter(slack.channels)), "jira": jira.url,
                          "jira_email": jira.email, "jira_token": jira.api_token,
                          "jira_secret": jira.webhook_secret}), flush=True)
        await stop.wait()
        out.write(json.dumps({"slack_calls": len(slack.calls()),
                              "slack_rate_limited": slack.rate_limited_answers,
                              "jira_calls": len(jira.calls())}) + "\n")
    await runner.cleanup()
    out.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
