"""The Alertmanager harness against a real Prometheus Alertmanager (Debian's 0.25).

Two alerts in one group reach a loopback receiver as one webhook in Alertmanager's own
format (version "4"), with basic auth when configured; resolving them sends a
"resolved" webhook; silences can be created, listed, and expired. The live payloads
must have the same shape as tests/fixtures/sources/alertmanager-observed-*.json, which
were copied from this test's receiver.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.alertmanager import RunningAlertmanager, alert
from tests.support.receiver import Received, Receiver

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sources"
WAIT = 10.0  # group_wait and group_interval are 1 s; a notification takes ~1-2 s
USERNAME, PASSWORD = "alertmanager", "s3cret-hook"


def _header(received: Received, name: str) -> str | None:
    return next((v for k, v in received.headers.items() if k.lower() == name.lower()), None)


def _body(received: Received) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(received.body)
    return body


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def _checkout_alerts() -> list[dict[str, Any]]:
    annotations = {
        "summary": "Checkout 5xx ratio above 5%",
        "description": "More than 5% of checkout requests failed in the last 5 minutes.",
        "runbook_url": "https://runbooks.example.com/checkout/high-error-rate",
    }
    return [
        alert("HighErrorRate", service="checkout", severity="critical", instance=instance,
              job="checkout", annotations=annotations,
              generator_url="http://prometheus.example.com:9090/graph?g0.expr="
                            "job%3A5xx_ratio%3Arate5m%7Bjob%3D%22checkout%22%7D+%3E+0.05")
        for instance in ("checkout-1:8080", "checkout-2:8080")
    ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def test_firing_then_resolved_webhooks(receiver: Receiver) -> None:
    alerts = _checkout_alerts()
    with RunningAlertmanager(receiver.url, username=USERNAME, password=PASSWORD) as am:
        am.post_alerts(alerts)
        assert len(am.alerts(active="true")) == 2

        firing_request = receiver.wait_for(1, timeout=WAIT)[0]
        firing = _body(firing_request)
        expected_auth = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        assert _header(firing_request, "Authorization") == expected_auth
        assert _header(firing_request, "Content-Type") == "application/json"
        assert firing_request.path == "/hook"
        assert firing["version"] == "4"
        assert firing["status"] == "firing"
        assert firing["receiver"] == "interlock"
        assert firing["groupLabels"] == {"alertname": "HighErrorRate", "service": "checkout"}
        assert firing["commonLabels"]["severity"] == "critical"
        assert "instance" not in firing["commonLabels"]
        assert firing["commonAnnotations"] == alerts[0]["annotations"]
        assert firing["truncatedAlerts"] == 0
        assert len(firing["alerts"]) == 2
        assert {a["labels"]["instance"] for a in firing["alerts"]} == {
            "checkout-1:8080", "checkout-2:8080"}
        for sent in firing["alerts"]:
            assert sent["status"] == "firing"
            assert len(sent["fingerprint"]) == 16
            assert sent["endsAt"] == "0001-01-01T00:00:00Z"
            assert sent["generatorURL"] == alerts[0]["generatorURL"]
        assert len({a["fingerprint"] for a in firing["alerts"]}) == 2

        am.resolve(alerts)
        received = receiver.wait_for(2, timeout=WAIT)
        assert len(received) == 2, "one group, one firing notification"
        resolved_request = received[1]
        resolved = _body(resolved_request)
        assert _header(resolved_request, "Authorization") == expected_auth
        assert resolved["status"] == "resolved"
        assert resolved["groupKey"] == firing["groupKey"]
        assert len(resolved["alerts"]) == 2
        assert {a["fingerprint"] for a in resolved["alerts"]} == {
            a["fingerprint"] for a in firing["alerts"]}
        for sent in resolved["alerts"]:
            assert sent["status"] == "resolved"
            assert sent["endsAt"] != "0001-01-01T00:00:00Z"
        assert firing["externalURL"] == am.url
        assert am.alerts() == [], "the API lists no resolved alerts"

    # The fixtures parser tests use were copied from this receiver: same shape.
    for live, name in ((firing, "alertmanager-observed-firing.json"),
                       (resolved, "alertmanager-observed-resolved.json")):
        observed = _fixture(name)
        assert live.keys() == observed.keys(), name
        assert live["alerts"][0].keys() == observed["alerts"][0].keys(), name
        assert live["status"] == observed["status"]


def test_without_credentials_sends_no_authorization(receiver: Receiver) -> None:
    with RunningAlertmanager(receiver.url) as am:
        am.post_alerts([alert("Watchdog", service="monitoring")])
        request = receiver.wait_for(1, timeout=WAIT)[0]
    assert _header(request, "Authorization") is None
    assert _body(request)["status"] == "firing"


def test_silence_created_listed_and_expired(receiver: Receiver) -> None:
    with RunningAlertmanager(receiver.url) as am:
        silence_id = am.create_silence({"alertname": "NoisyAlert", "service": "batch"},
                                       comment="maintenance window")
        listed = {s["id"]: s for s in am.silences()}
        assert listed[silence_id]["status"]["state"] == "active"
        assert listed[silence_id]["comment"] == "maintenance window"
        assert {(m["name"], m["value"]) for m in listed[silence_id]["matchers"]} == {
            ("alertname", "NoisyAlert"), ("service", "batch")}

        am.post_alerts([alert("NoisyAlert", service="batch")])
        (muted,) = am.alerts()
        assert muted["status"]["state"] == "suppressed"
        assert muted["status"]["silencedBy"] == [silence_id]

        am.expire_silence(silence_id)
        assert am.silence(silence_id)["status"]["state"] == "expired"
        # Once the silence has expired the alert is active and notified.
        request = receiver.wait_for(1, timeout=WAIT)[0]
        assert _body(request)["groupLabels"] == {"alertname": "NoisyAlert", "service": "batch"}
        assert am.alerts()[0]["status"]["state"] == "active"
