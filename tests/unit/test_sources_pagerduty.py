"""PagerDuty Events API v2 events, as any tool that pages PagerDuty sends them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from interlock.domain.alerts import ParseError, ParseOptions, SignalAction
from interlock.domain.incidents import Severity
from interlock.sources import SourceKind, parse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sources"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_documented_trigger() -> None:
    # The "Example Event Body" of PagerDuty's Events API v2 schema,
    # https://github.com/PagerDuty/api-schema/blob/main/reference/events-v2/openapiv3.json
    # (rendered at https://developer.pagerduty.com/api-reference/ "Send an event").
    [signal] = parse(SourceKind.PAGERDUTY, load("pagerduty-docs-trigger.json"))
    assert signal.fingerprint == "srv01/mysql"
    assert signal.action is SignalAction.FIRING
    assert signal.title == "DISK at 99% on machine prod-datapipe03.example.com"
    assert signal.severity is Severity.CRITICAL
    assert signal.name == "disk"
    assert signal.service == "prod-datapipe"  # group, never source (a host)
    assert signal.labels == {"source": "prod-datapipe03.example.com", "component": "mysql",
                             "group": "prod-datapipe", "class": "disk", "severity": "critical"}
    assert signal.annotations == {"free space": "1%", "ping time": "1500ms", "load avg": "0.75",
                                  "client": "Sample Monitoring Service"}
    assert signal.url == "https://monitoring.service.com"
    # "+0000", as PagerDuty's example writes the offset.
    assert signal.starts_at == datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)
    assert "e93facc04764012d7bfb002500d5d1a6" not in repr(signal)  # the routing key


def test_documented_resolve_matches_its_trigger() -> None:
    # https://developer.pagerduty.com/docs/events-api-v2/resolve-alert/ : routing_key,
    # dedup_key and event_action "resolve", no payload.
    [trigger] = parse(SourceKind.PAGERDUTY, load("pagerduty-docs-trigger.json"))
    [resolve] = parse(SourceKind.PAGERDUTY, load("pagerduty-docs-resolve.json"))
    assert resolve.action is SignalAction.RESOLVED
    assert resolve.fingerprint == trigger.fingerprint


def test_acknowledge() -> None:
    event = load("pagerduty-docs-resolve.json") | {"event_action": "acknowledge"}
    [signal] = parse(SourceKind.PAGERDUTY, event)
    assert signal.action is SignalAction.ACKNOWLEDGE
    assert signal.fingerprint == "srv01/mysql"


@pytest.mark.parametrize(("word", "severity"), [
    ("critical", Severity.CRITICAL), ("error", Severity.HIGH),
    ("warning", Severity.MEDIUM), ("info", Severity.INFO),
])
def test_severities(word: str, severity: Severity) -> None:
    event = load("pagerduty-docs-trigger.json")
    event["payload"]["severity"] = word
    assert parse(SourceKind.PAGERDUTY, event)[0].severity is severity


def test_a_severity_in_custom_details_wins_when_configured() -> None:
    event = load("pagerduty-docs-trigger.json")
    event["payload"]["custom_details"]["priority"] = "P4"
    options = ParseOptions(severity_label="priority")
    assert parse(SourceKind.PAGERDUTY, event, options)[0].severity is Severity.LOW


def test_a_trigger_without_dedup_key_gets_a_stable_one() -> None:
    event = load("pagerduty-docs-trigger.json")
    del event["dedup_key"]
    [first] = parse(SourceKind.PAGERDUTY, event)
    assert len(first.fingerprint) == 64
    event["routing_key"] = "another-integration-key"
    event["payload"]["custom_details"]["free space"] = "0.5%"
    event["payload"]["timestamp"] = "2015-07-17T08:47:58.315+0000"
    assert parse(SourceKind.PAGERDUTY, event)[0].fingerprint == first.fingerprint
    event["payload"]["source"] = "prod-datapipe04.example.com"
    assert parse(SourceKind.PAGERDUTY, event)[0].fingerprint != first.fingerprint


def test_service_falls_back_to_component_then_nothing() -> None:
    event = load("pagerduty-docs-trigger.json")
    del event["payload"]["group"]
    assert parse(SourceKind.PAGERDUTY, event)[0].service == "mysql"
    del event["payload"]["component"]
    assert parse(SourceKind.PAGERDUTY, event)[0].service is None
    event["payload"]["custom_details"]["service"] = "datapipe"
    assert parse(SourceKind.PAGERDUTY, event)[0].service == "datapipe"


def test_the_first_link_is_the_url_without_client_url() -> None:
    event = load("pagerduty-docs-trigger.json")
    del event["client_url"]
    assert parse(SourceKind.PAGERDUTY, event)[0].url == "http://pagerduty.example.com"


@pytest.mark.parametrize(("change", "message"), [
    (lambda e: e.pop("event_action"), "event_action: missing"),
    (lambda e: e.__setitem__("event_action", "escalate"),
     "event_action: expected trigger, acknowledge or resolve, got 'escalate'"),
    (lambda e: e.__setitem__("event_action", ["trigger"]),
     "event_action: expected a string, got array"),
    (lambda e: e.pop("payload"), "payload: missing"),
    (lambda e: e.__setitem__("payload", ["summary"]), "payload: expected an object, got array"),
    (lambda e: e["payload"].pop("summary"), "payload.summary: missing"),
    (lambda e: e["payload"].pop("source"), "payload.source: missing"),
    (lambda e: e["payload"].__setitem__("severity", "apocalyptic"),
     "payload.severity: expected critical, error, warning or info"),
    (lambda e: e["payload"].__setitem__("timestamp", "soon"), "payload.timestamp: not an RFC"),
    (lambda e: e.__setitem__("dedup_key", {"k": 1}), "dedup_key: expected a string"),
    (lambda e: e.__setitem__("links", {"href": "x"}), "links: expected an array"),
    (lambda e: e.__setitem__("client_url", None) or e.__setitem__("links", [3]),
     "links\\[0\\]: expected an object"),
    (lambda e: e["payload"].__setitem__("summary", "s" * 70_000),
     "payload.summary: 70000 characters"),
])
def test_malformed_events(change: Any, message: str) -> None:
    event = load("pagerduty-docs-trigger.json")
    change(event)
    with pytest.raises(ParseError, match=message):
        parse(SourceKind.PAGERDUTY, event)


def test_resolve_needs_the_dedup_key() -> None:
    with pytest.raises(ParseError, match="dedup_key: missing"):
        parse(SourceKind.PAGERDUTY, {"routing_key": "k", "event_action": "resolve"})
