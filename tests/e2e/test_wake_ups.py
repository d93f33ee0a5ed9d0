"""``interlock serve``'s worker processes hear of every wave of work from the API
process and from each other, with their polling all but off: a process tells each
worker of a kind of work once until that worker looks for it (store.signals), so a
wake-up lost between the two would leave a wave waiting a minute. So would one sent
while a worker was still starting: the delivery worker binds its socket a moment
after the alert worker first finds nobody there, and the next second's new incidents
were not told to it (this test failed in 3 or 4 runs of 15, three at a time, before)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.support.ingest import am_alert, am_payload
from tests.support.receiver import Receiver
from tests.support.server import KEY_LINE, serving

#: Longer than any wave may take: a wave that waits for polling fails the test.
POLL_SECONDS = 60
WAVE_SECONDS = 8.0


def test_every_wave_of_alerts_and_changes_is_taken_at_once(tmp_path: Path) -> None:
    with Receiver() as receiver, serving(
            f"sqlite:///{tmp_path / 'interlock.db'}", tmp_path, "serve",
            {"INTERLOCK_ALLOWED_TARGETS": "127.0.0.0/8",
             "INTERLOCK_WORKER_POLL_SECONDS": str(POLL_SECONDS)}) as server:
        (secret,) = KEY_LINE.findall(server.output())
        api = httpx.Client(base_url=server.base_url, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
        assert api.post("/api/v1/endpoints", json={"url": receiver.url}).status_code == 201
        source = api.post("/api/v1/sources", json={
            "name": "prometheus", "kind": "alertmanager"}).json()
        ingest = httpx.Client(timeout=10, auth=("prometheus", source["token"]))
        received = 0

        def wait_for(kind: str) -> dict[str, object]:
            nonlocal received
            started = time.monotonic()
            [*_, last] = receiver.wait_for(received + 1, timeout=WAVE_SECONDS)
            received += 1
            event = json.loads(last.body)
            assert event["type"] == kind, event
            assert time.monotonic() - started < WAVE_SECONDS
            return event

        for wave, pause in enumerate((0.0, 0.3, 0.0, 1.5, 0.05, 0.0)):
            time.sleep(pause)
            answer = ingest.post(source["ingest_url"], json=am_payload(
                am_alert(f"Wave{wave}", severity="critical")))
            assert answer.status_code == 202, answer.text
            created = wait_for("incident.created")
            incident = created["data"]["incident"]  # type: ignore[index]
            assert api.post(f"/api/v1/incidents/{incident['id']}/comments",
                            json={"body": f"wave {wave}"}).status_code == 201
            wait_for("incident.comment_added")
        server.stop()
