"""Alert digests through a real ``interlock serve``: an incident hears of its first
alert at once and of the alerts that follow within the window in one event, written by
the worker process when the window has passed, with nobody asking."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.ingest import am_alert, am_payload
from tests.support.server import KEY_LINE, serving
from tests.support.waiting import eventually

WINDOW = 2.0


def test_alerts_following_the_first_are_told_in_one_digest(
        database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path, "interlock",
                 {"INTERLOCK_ALERT_DIGEST_SECONDS": str(WINDOW)}) as server:
        (secret,) = KEY_LINE.findall(server.output())
        api = httpx.Client(base_url=server.base_url, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
        source = api.post("/api/v1/sources", json={
            "name": "prometheus", "kind": "alertmanager"}).json()
        ingest = httpx.Client(timeout=10, auth=("prometheus", source["token"]))

        def send(instance: str) -> None:
            answer = ingest.post(source["ingest_url"], json=am_payload(
                am_alert("QueueBacklog", severity="warning", instance=instance)))
            assert answer.status_code == 202, answer.text

        def timeline(incident_id: str) -> list[str]:
            entries = api.get(f"/api/v1/incidents/{incident_id}/timeline").json()["data"]
            return [entry["message"] for entry in entries
                    if entry["kind"] == "incident.alert_attached"]

        send("w-0")
        incident: dict[str, Any] = eventually(
            lambda: next(iter(api.get("/api/v1/incidents").json()["data"]), None),
            "the incident", timeout=20)
        assert eventually(lambda: timeline(incident["id"]), "the first alert told",
                          timeout=20) == ["Alert attached: QueueBacklog on checkout"]
        started = time.monotonic()
        for n in (1, 2, 3):
            send(f"w-{n}")
        # All three are on the incident at once; the event waits for the window.
        eventually(lambda: len(api.get(f"/api/v1/incidents/{incident['id']}/alerts")
                              .json()["data"]) == 4, "the alerts on the incident", timeout=20)
        told = eventually(lambda: (lambda lines: lines if len(lines) == 2 else None)(
            timeline(incident["id"])), "the digest", timeout=20)
        assert time.monotonic() - started >= WINDOW * 0.5, "told before its window passed"
        assert told[1].startswith("3 alerts attached: QueueBacklog on checkout (instance=w-1)")
        server.stop()
