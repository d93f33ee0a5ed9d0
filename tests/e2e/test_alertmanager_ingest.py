"""Prometheus Alertmanager, unchanged, pointed at Interlock: one incident per group,
repeats deduplicated, incidents resolved when Alertmanager says so.

Real peers on loopback: Debian's prometheus-alertmanager with a webhook receiver using
basic auth, and `interlock serve` (with its embedded worker) on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.alertmanager import RunningAlertmanager, alert
from tests.support.server import KEY_LINE, serving
from tests.support.waiting import eventually


def test_alertmanager_groups_become_incidents_and_resolve(
    database_url: str, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path, "interlock") as server:
        (secret,) = KEY_LINE.findall(server.output())
        api = httpx.Client(base_url=server.base_url, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
        source = api.post("/api/v1/sources", json={
            "name": "alertmanager", "kind": "alertmanager"}).json()

        def incidents() -> list[dict[str, Any]]:
            return list(reversed(api.get("/api/v1/incidents").json()["data"]))

        def alerts_of(incident: dict[str, Any]) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = api.get(
                f"/api/v1/incidents/{incident['id']}/alerts").json()["data"]
            return found

        with RunningAlertmanager(source["ingest_url"], username="alertmanager",
                                 password=source["token"],
                                 group_by=("alertname", "service")) as alertmanager:
            latency = [alert("HighLatency", service="checkout", severity="warning",
                             instance=f"web-{n}") for n in (1, 2)]
            disk = [alert("DiskFull", service="db", severity="critical", instance="db-1")]
            alertmanager.post_alerts(latency + disk)
            found = eventually(lambda: (lambda i: i if len(i) == 2 else None)(incidents()))
            titles = sorted(incident["title"] for incident in found)
            assert titles == ["DiskFull is firing", "HighLatency is firing"]
            by_title = {incident["title"]: incident for incident in found}
            assert len(alerts_of(by_title["HighLatency is firing"])) == 2
            assert by_title["DiskFull is firing"]["severity"] == "critical"

            # A third alert joins the group: Alertmanager resends the whole group, and
            # the two known alerts are counted again, not duplicated.
            alertmanager.post_alerts([alert("HighLatency", service="checkout",
                                            severity="warning", instance="web-3")])
            grown = eventually(lambda: (lambda a: a if len(a) == 3 else None)(
                alerts_of(by_title["HighLatency is firing"])))
            assert {item["labels"]["instance"]: item["count"] for item in grown} == {
                "web-1": 2, "web-2": 2, "web-3": 1}
            assert len(incidents()) == 2

            alertmanager.resolve([*latency, alert("HighLatency", service="checkout",
                                                  severity="warning", instance="web-3")])

            def latency_resolved() -> dict[str, Any] | None:
                current = api.get(f"/api/v1/incidents/{by_title['HighLatency is firing']['id']}")
                return current.json() if current.json()["status"] == "resolved" else None

            resolved = eventually(latency_resolved)
            timeline = api.get(f"/api/v1/incidents/{resolved['id']}/timeline").json()["data"]
            assert timeline[-1]["message"] == (
                "Resolved automatically: all 3 alerts resolved in alertmanager")
            assert timeline[-1]["origin"]["kind"] == "source"
            current = api.get(f"/api/v1/incidents/{by_title['DiskFull is firing']['id']}")
            assert current.json()["status"] == "triggered"

        payloads = api.get(f"/api/v1/sources/{source['id']}/payloads").json()["data"]
        assert payloads and {item["status"] for item in payloads} == {"processed"}
        server.stop()
