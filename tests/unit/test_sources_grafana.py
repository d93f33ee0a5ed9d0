"""Grafana Alerting webhook contact point payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from interlock.domain.alerts import ParseError, SignalAction
from interlock.domain.incidents import Severity
from interlock.sources import SourceKind, parse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sources"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_documented_payload() -> None:
    # The example JSON body of
    # https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/
    # (version "1", orgId, title "[FIRING:2]  (blue)", state "alerting", two alerts with
    # fingerprint, silenceURL, dashboardURL, panelURL, values).
    memory, cpu = parse(SourceKind.GRAFANA, load("grafana-docs-firing.json"))
    assert (memory.fingerprint, cpu.fingerprint) == ("c6eadffa33fcdf37", "bc97ff14869b13e3")
    assert memory.action is SignalAction.FIRING and cpu.action is SignalAction.FIRING
    # In Grafana, alertname is the rule's human title.
    assert (memory.title, cpu.title) == ("High memory usage", "High CPU usage")
    assert memory.name == "High memory usage"
    assert memory.summary == "This alert was triggered for zone us-1"
    assert memory.severity is Severity.MEDIUM
    assert memory.service is None
    assert memory.labels == {"alertname": "High memory usage", "team": "blue", "zone": "us-1"}
    assert memory.url == "https://play.grafana.org/alerting/1afz29v7z/edit"
    assert memory.annotations["silenceURL"].startswith("https://play.grafana.org/alerting/silence")
    assert "dashboardURL" not in memory.annotations  # sent empty
    assert memory.annotations["runbook_url"] == "https://myrunbook.com/runbook/1234"
    assert memory.starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert memory.ends_at is None


def test_resolved_alert() -> None:
    payload = load("grafana-docs-firing.json")
    payload["status"] = "resolved"
    payload["state"] = "ok"
    payload["alerts"][0].update(status="resolved", endsAt="2021-10-12T10:01:03.157076+02:00")
    memory, _ = parse(SourceKind.GRAFANA, payload)
    assert memory.action is SignalAction.RESOLVED
    assert memory.fingerprint == "c6eadffa33fcdf37"
    assert memory.ends_at == datetime(2021, 10, 12, 8, 1, 3, 157076, tzinfo=UTC)


@pytest.mark.parametrize(("status", "action"), [
    ("firing", SignalAction.FIRING),
    ("alerting", SignalAction.FIRING),
    ("no_data", SignalAction.FIRING),
    ("Resolved", SignalAction.RESOLVED),
    ("ok", SignalAction.RESOLVED),
    ("normal", SignalAction.RESOLVED),
])
def test_grafana_state_words(status: str, action: SignalAction) -> None:
    payload = load("grafana-docs-firing.json")
    payload["alerts"][0]["status"] = status
    assert parse(SourceKind.GRAFANA, payload)[0].action is action


def test_pending_and_paused_alerts_are_not_signals() -> None:
    payload = load("grafana-docs-firing.json")
    payload["alerts"][0]["status"] = "pending"
    payload["alerts"][1]["status"] = "paused"
    assert parse(SourceKind.GRAFANA, payload) == []


def test_severity_and_service_labels() -> None:
    payload = load("grafana-docs-firing.json")
    payload["alerts"][1]["labels"].update(severity="critical", service="checkout")
    cpu = parse(SourceKind.GRAFANA, payload)[1]
    assert cpu.severity is Severity.CRITICAL
    assert cpu.service == "checkout"


def test_panel_url_when_there_is_no_rule_url() -> None:
    payload = load("grafana-docs-firing.json")
    del payload["alerts"][0]["generatorURL"]
    payload["alerts"][0]["panelURL"] = "https://play.grafana.org/d/abc?viewPanel=2"
    assert parse(SourceKind.GRAFANA, payload)[0].url == "https://play.grafana.org/d/abc?viewPanel=2"


def test_missing_fingerprint_falls_back_to_a_label_hash() -> None:
    payload = load("grafana-docs-firing.json")
    del payload["alerts"][0]["fingerprint"]
    first = parse(SourceKind.GRAFANA, payload)[0].fingerprint
    assert len(first) == 64
    assert parse(SourceKind.GRAFANA, payload)[0].fingerprint == first


def test_legacy_grafana_alerting_is_reported_as_unsupported() -> None:
    legacy = {"title": "[Alerting] Test", "ruleId": 1, "ruleName": "Test", "state": "alerting",
              "evalMatches": [], "message": "Someone is testing"}
    with pytest.raises(ParseError, match="legacy Grafana alerting"):
        parse(SourceKind.GRAFANA, legacy)


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p["alerts"].__setitem__(0, "alert"), "alerts\\[0\\]: expected an object"),
    (lambda p: p["alerts"][1].__setitem__("status", "exploded"), "alerts\\[1\\].status"),
    (lambda p: p["alerts"][0]["labels"].__setitem__("zone", ["us-1"]),
     "alerts\\[0\\].labels.zone: expected a string, got array"),
    (lambda p: p["alerts"][0].__setitem__("silenceURL", {"href": "x"}),
     "alerts\\[0\\].silenceURL: expected a string, got object"),
    (lambda p: p.__setitem__("alerts", None), "alerts: expected an array, got null"),
])
def test_malformed_payloads(change: Any, message: str) -> None:
    payload = load("grafana-docs-firing.json")
    change(payload)
    with pytest.raises(ParseError, match=message):
        parse(SourceKind.GRAFANA, payload)
