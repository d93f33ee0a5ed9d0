"""A sync loop that fails is restarted by its supervisor and goes on syncing; before,
a failing round left it waiting forever on its own result writer, so connectors
stopped syncing and nothing said so."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.testclient import TestClient

from interlock.domain.keys import Scope
from interlock.domain.targets import parse_allowed_networks
from interlock.services.container import Container
from interlock.services.workers import TaskStates
from interlock.worker.supervisor import supervise
from interlock.worker.sync import SyncSettings, SyncWorker
from interlock.worker.tool_http import AiohttpToolHttp
from interlock.worker.wakeup import Wakeup
from tests.conftest import make_key
from tests.support.receiver import Receiver

DEADLINE = 20.0


def test_a_failing_sync_round_is_restarted_and_syncing_goes_on(
        hub: Container, hub_client: TestClient) -> None:
    admin = make_key(hub, Scope.ADMIN)
    with Receiver() as tool:
        made = hub_client.post("/api/v1/connectors", headers=admin, json={
            "name": "ops room", "kind": "webhook_card", "settings": {"url": tool.url}})
        assert made.status_code == 201, made.text
        hub_client.post("/api/v1/incidents", headers=admin, json={"title": "Disk full"})
        while hub.deliveries.dispatch():
            pass  # the events fanned out to sync jobs

        claim = hub.sync.claim
        calls: list[str] = []

        def claim_failing_once(*args: Any, **kwargs: Any) -> Any:
            calls.append("claim")
            if len(calls) == 1:
                raise RuntimeError("a bug in one round")
            return claim(*args, **kwargs)

        hub.sync.claim = claim_failing_once  # type: ignore[method-assign]
        states = TaskStates()

        async def main() -> None:
            stop = asyncio.Event()
            http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"),
                                   timeout=5)
            worker = SyncWorker(hub.sync, http, Wakeup(), "test-sync",
                                SyncSettings(poll_interval=0.1))
            task = asyncio.create_task(supervise("sync", lambda: worker.run(stop), stop,
                                                 states))
            try:
                async with asyncio.timeout(DEADLINE):
                    while not tool.received:
                        await asyncio.sleep(0.05)
            finally:
                stop.set()
                async with asyncio.timeout(DEADLINE):
                    await task
                await http.close()

        asyncio.run(main())
        assert len(calls) >= 2  # restarted after the failure
        [card] = tool.received
        assert json.loads(card.body)["event"] == "incident.created"


def test_a_failing_delivery_round_is_restarted_and_delivery_goes_on(
        hub: Container, hub_client: TestClient) -> None:
    from interlock.worker.engine import DeliveryWorker, WorkerSettings
    from interlock.worker.sender import WebhookSender

    admin = make_key(hub, Scope.ADMIN)
    with Receiver() as receiver:
        made = hub_client.post("/api/v1/endpoints", headers=admin, json={"url": receiver.url})
        assert made.status_code == 201, made.text
        hub_client.post("/api/v1/incidents", headers=admin, json={"title": "Disk full"})

        claim = hub.deliveries.dispatch_and_claim
        calls: list[str] = []

        def claim_failing_once(*args: Any, **kwargs: Any) -> Any:
            calls.append("claim")
            if len(calls) == 1:
                raise RuntimeError("a bug in one round")
            return claim(*args, **kwargs)

        hub.deliveries.dispatch_and_claim = claim_failing_once  # type: ignore[method-assign]
        states = TaskStates()

        async def main() -> None:
            stop = asyncio.Event()
            sender = WebhookSender(allowed_networks=parse_allowed_networks("127.0.0.0/8"))
            worker = DeliveryWorker(hub.deliveries, sender, Wakeup(),
                                    WorkerSettings(poll_interval=0.1))
            task = asyncio.create_task(supervise("deliveries", lambda: worker.run(stop),
                                                 stop, states))
            try:
                async with asyncio.timeout(DEADLINE):
                    while not receiver.received:
                        await asyncio.sleep(0.05)
            finally:
                stop.set()
                async with asyncio.timeout(DEADLINE):
                    await task
                await sender.close()

        asyncio.run(main())
        assert len(calls) >= 2
        assert json.loads(receiver.received[0].body)["type"] == "incident.created"
