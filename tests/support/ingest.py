"""Sending alerts to a source the way monitoring tools do, and processing them."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from interlock.services.container import Container


def create_source(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "prometheus", "kind": "alertmanager", **fields}
    response = client.post("/api/v1/sources", headers=headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    created["path"] = "/ingest/" + created["id"]
    return created


def basic(token: str, user: str = "alertmanager") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def process_all(container: Container) -> int:
    processed = 0
    while made := container.alerts.process("test"):
        processed += made
    return processed


def am_alert(name: str, *, service: str = "checkout", status: str = "firing",
             severity: str = "critical", fingerprint: str | None = None,
             **labels: str) -> dict[str, Any]:
    """One alert as Alertmanager's webhook carries it."""
    all_labels = {"alertname": name, "service": service, "severity": severity, **labels}
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{name} on {service}"},
        "startsAt": "2026-11-23T10:00:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-23T10:30:00.000Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fingerprint or hashlib.sha256(
            json.dumps(all_labels, sort_keys=True).encode()).hexdigest()[:16],
    }


def am_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    """An Alertmanager webhook body (version 4) around some alerts."""
    firing = any(alert["status"] == "firing" for alert in alerts)
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "interlock",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": list(alerts),
    }


def pagerduty(action: str, dedup_key: str, summary: str = "Disk full on db-1",
              severity: str = "critical") -> dict[str, Any]:
    body: dict[str, Any] = {"routing_key": "R0UT1NGK3Y", "event_action": action,
                            "dedup_key": dedup_key}
    if action == "trigger":
        body["payload"] = {"summary": summary, "source": "db-1", "severity": severity,
                           "component": "postgres", "group": "storage",
                           "timestamp": datetime.now(UTC).isoformat()}
    return body
