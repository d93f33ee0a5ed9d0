"""Datadog Webhooks integration payloads: the default one and the recommended one."""

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


def test_documented_default_payload() -> None:
    # Datadog's default webhook payload (body, last_updated, event_type, title, date,
    # org.id, org.name, id), filled with the example values of its variable list:
    # https://docs.datadoghq.com/integrations/webhooks/ ($EVENT_TITLE "[Triggered]
    # [Memory Alert]", $DATE 1406662672000, $ID 1234567, $ORG_ID 11023, …).
    [signal] = parse(SourceKind.DATADOG, load("datadog-docs-default.json"))
    assert signal.action is SignalAction.FIRING  # from the [Triggered] prefix
    assert signal.title == "[Memory Alert]"
    assert signal.name == "[Memory Alert]"
    assert signal.severity is Severity.MEDIUM
    assert signal.summary == "@webhook-url Sending to the webhook"
    assert signal.starts_at == datetime(2014, 7, 29, 19, 37, 52, tzinfo=UTC)
    assert signal.annotations["org.name"] == "Datadog"
    # $ID names one event, not the alert: the fingerprint is a hash of the title.
    assert signal.fingerprint != "1234567" and len(signal.fingerprint) == 64


def test_default_payload_recovery_resolves_the_same_alert() -> None:
    triggered = load("datadog-docs-default.json")
    recovered = triggered | {"title": "[Recovered] [Memory Alert]", "id": "1234999"}
    [first] = parse(SourceKind.DATADOG, triggered)
    [second] = parse(SourceKind.DATADOG, recovered)
    assert second.action is SignalAction.RESOLVED
    assert second.fingerprint == first.fingerprint
    assert second.ends_at is not None and second.starts_at is None


def test_documented_variables_in_the_recommended_payload() -> None:
    # The default payload plus $AGGREG_KEY, $ALERT_ID, $ALERT_TRANSITION, $ALERT_TYPE,
    # $ALERT_PRIORITY, $ALERT_SCOPE, $ALERT_STATUS, $HOSTNAME, $LINK, $TAGS, filled with
    # the examples of https://docs.datadoghq.com/integrations/webhooks/#variables
    [signal] = parse(SourceKind.DATADOG, load("datadog-docs-extended.json"))
    assert signal.fingerprint == "9bd4ac313a4d1e8fae2482df7b77628"
    assert signal.action is SignalAction.FIRING
    assert signal.title == "[Memory Alert]"
    assert signal.severity is Severity.CRITICAL  # P1
    assert signal.labels == {"monitor": "", "name": "myService", "role": "computing-node",
                             "availability-zone": "us-east-1a", "host": "my-host"}
    assert signal.url == "https://app.datadoghq.com/event/jump_to?event_id=123456"
    assert signal.annotations["alert_status"].startswith("system.load.1 over host:my-host")


@pytest.mark.parametrize(("transition", "action"), [
    ("Triggered", SignalAction.FIRING), ("Re-Triggered", SignalAction.FIRING),
    ("Warn", SignalAction.FIRING), ("Re-Warn", SignalAction.FIRING),
    ("No Data", SignalAction.FIRING), ("Renotify", SignalAction.FIRING),
    ("Recovered", SignalAction.RESOLVED), ("Warn Recovered", SignalAction.RESOLVED),
])
def test_transitions(transition: str, action: SignalAction) -> None:
    payload = load("datadog-docs-extended.json") | {"alert_transition": transition}
    assert parse(SourceKind.DATADOG, payload)[0].action is action


def test_an_unknown_transition_is_refused() -> None:
    payload = load("datadog-docs-extended.json") | {"alert_transition": "Exploded"}
    with pytest.raises(ParseError, match="alert_transition: expected Triggered"):
        parse(SourceKind.DATADOG, payload)


@pytest.mark.parametrize(("alert_type", "severity"), [
    ("error", Severity.HIGH), ("warning", Severity.MEDIUM), ("info", Severity.INFO),
])
def test_alert_type_gives_the_severity_without_a_priority(
    alert_type: str, severity: Severity
) -> None:
    payload = load("datadog-docs-extended.json") | {"alert_type": alert_type}
    del payload["alert_priority"]
    payload["title"] = "[Triggered] [Memory Alert]"
    assert parse(SourceKind.DATADOG, payload)[0].severity is severity


def test_a_severity_tag_wins() -> None:
    payload = load("datadog-docs-extended.json")
    payload["tags"] += ",severity:low,service:checkout"
    [signal] = parse(SourceKind.DATADOG, payload)
    assert signal.severity is Severity.LOW
    assert signal.service == "checkout"


def test_user_written_templates_are_read_leniently() -> None:
    payload = {
        "EVENT_TITLE": "[Re-Triggered on {host:web-1}] Checkout latency high",
        "alert": {"id": 42, "transition": "Re-Triggered", "scope": "host:web-1"},
        "tags": ["service:checkout", "env:prod", "team:payments", "team:sre"],
        "alertPriority": "P2",
        "link": "$LINK",  # a variable Datadog left unfilled
    }
    [signal] = parse(SourceKind.DATADOG, payload)
    assert signal.title == "Checkout latency high"
    assert signal.action is SignalAction.FIRING
    assert signal.severity is Severity.HIGH
    assert signal.service == "checkout"
    assert signal.labels["team"] == "payments,sre"
    assert signal.url is None
    # Monitor 42 on host:web-1: the same identity on every notification of that group.
    again = payload | {"EVENT_TITLE": "[Recovered on {host:web-1}] Checkout latency high",
                       "alert": {"id": 42, "transition": "Recovered", "scope": "host:web-1"}}
    [recovery] = parse(SourceKind.DATADOG, again)
    assert recovery.action is SignalAction.RESOLVED
    assert recovery.fingerprint == signal.fingerprint


def test_fingerprint_fields_pick_tags_when_datadog_gives_no_key() -> None:
    payload = {"title": "[Triggered] Disk full on host:db-1", "tags": "host:db-1,env:prod"}
    options = ParseOptions(fingerprint_fields=("host",))
    first = parse(SourceKind.DATADOG, payload, options)[0].fingerprint
    renamed = payload | {"title": "[Triggered] Disk almost full on host:db-1"}
    assert parse(SourceKind.DATADOG, renamed, options)[0].fingerprint == first


@pytest.mark.parametrize(("payload", "message"), [
    (["title"], "payload: expected an object, got array"),
    ({"body": "no title"}, "title: missing"),
    ({"title": "x", "tags": {"env": "prod"}}, "tags: expected a comma-separated string"),
    ({"title": "x", "tags": ["env:prod", 3]}, "tags\\[1\\]: expected a string, got number"),
    ({"title": ["x"]}, None),
    ({"title": "x", "body": "b" * 70_000}, "body: 70000 characters"),
    ({"title": "x", "aggreg_key": "k" * 2000}, "aggreg_key: 2000 characters"),
])
def test_malformed_payloads(payload: Any, message: str | None) -> None:
    with pytest.raises(ParseError, match=message or "title"):
        parse(SourceKind.DATADOG, payload)
