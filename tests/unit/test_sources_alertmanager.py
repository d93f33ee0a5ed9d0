"""Alertmanager webhook payloads, as a user's Alertmanager sends them."""

from __future__ import annotations

import copy
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


def test_documented_v4_payload() -> None:
    # Shape: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
    # ("version": "4", groupKey, truncatedAlerts, status, receiver, groupLabels,
    # commonLabels, commonAnnotations, externalURL, alerts[] with fingerprint). Values:
    # the sample v4 payload of alertmanager-webhook-types,
    # https://docs.rs/crate/alertmanager-webhook-types/latest/source/assets/sample-v4-payload.json
    [signal] = parse(SourceKind.ALERTMANAGER, load("alertmanager-docs-v4.json"))
    assert signal.fingerprint == "1a30ba71cca2921f"
    assert signal.action is SignalAction.FIRING
    assert signal.title == "BlackBox Probe Failure: https://server.example.org"
    assert signal.severity is Severity.CRITICAL
    assert signal.name == "ProbeFailure"
    assert signal.service is None  # job=http_checks is a scrape job, not a service
    assert signal.summary.startswith("Instance https://server.example.org has been down")
    assert signal.labels["instance"] == "https://server.example.org"
    assert signal.annotations["summary"] == signal.title
    assert signal.starts_at == datetime(2023, 2, 6, 13, 8, 45, 828000, tzinfo=UTC)
    assert signal.ends_at is None  # 0001-01-01T00:00:00Z: not set
    assert signal.url == ("http://prometheus.example.org:9090/graph"
                          "?g0.expr=probe_success+%3D%3D+0&g0.tab=1")


def test_an_older_alertmanager_without_fingerprints_gets_a_label_hash() -> None:
    # Payload of an Alertmanager before 0.19 (no per-alert fingerprint), as published in
    # https://gist.github.com/mobeigi/5a96f326bc06c7d6f283ecb7cb083f2b
    payload = load("alertmanager-gist-no-fingerprint.json")
    [signal] = parse(SourceKind.ALERTMANAGER, payload)
    assert len(signal.fingerprint) == 64
    assert signal.title == "Test (instance=localhost:9090, job=prometheus24)"
    assert signal.summary == "some description"
    assert signal.severity is Severity.MEDIUM  # no severity label
    # Nanosecond precision and a +02:00 offset, as Go writes them, become UTC.
    assert signal.starts_at == datetime(2018, 8, 3, 7, 52, 26, 739266, tzinfo=UTC)

    reordered = copy.deepcopy(payload)
    reordered["alerts"][0]["labels"] = dict(reversed(list(payload["alerts"][0]["labels"]
                                                          .items())))
    reordered["alerts"][0]["annotations"]["description"] = "changed wording"
    assert parse(SourceKind.ALERTMANAGER, reordered)[0].fingerprint == signal.fingerprint

    other = copy.deepcopy(payload)
    other["alerts"][0]["labels"]["instance"] = "localhost:9091"
    assert parse(SourceKind.ALERTMANAGER, other)[0].fingerprint != signal.fingerprint


def test_fingerprint_fields_choose_which_labels_identify_an_alert() -> None:
    payload = load("alertmanager-gist-no-fingerprint.json")
    options = ParseOptions(fingerprint_fields=("alertname", "instance"))
    first = parse(SourceKind.ALERTMANAGER, payload, options)[0].fingerprint
    payload["alerts"][0]["labels"]["dc"] = "us-east-1"
    assert parse(SourceKind.ALERTMANAGER, payload, options)[0].fingerprint == first
    payload["alerts"][0]["labels"]["instance"] = "elsewhere:9090"
    assert parse(SourceKind.ALERTMANAGER, payload, options)[0].fingerprint != first


def test_fingerprint_fields_that_match_nothing_are_refused() -> None:
    payload = load("alertmanager-gist-no-fingerprint.json")
    with pytest.raises(ParseError, match=r"alerts\[0\]\.labels: none of the fingerprint"):
        parse(SourceKind.ALERTMANAGER, payload, ParseOptions(fingerprint_fields=("team",)))


def test_a_real_alertmanager_firing_then_resolving_keeps_each_alerts_identity() -> None:
    # Recorded from Alertmanager itself by tests/e2e/test_alertmanager_harness.py.
    firing = parse(SourceKind.ALERTMANAGER, load("alertmanager-observed-firing.json"))
    resolved = parse(SourceKind.ALERTMANAGER, load("alertmanager-observed-resolved.json"))
    assert [s.fingerprint for s in firing] == [s.fingerprint for s in resolved]
    assert {s.action for s in firing} == {SignalAction.FIRING}
    assert {s.action for s in resolved} == {SignalAction.RESOLVED}
    assert {s.service for s in firing} == {"checkout"}
    assert all(s.ends_at is not None and s.starts_at is not None and s.ends_at > s.starts_at
               for s in resolved)


def test_the_service_label_is_configurable() -> None:
    payload = load("alertmanager-docs-v4.json")
    [signal] = parse(SourceKind.ALERTMANAGER, payload, ParseOptions(service_label="job"))
    assert signal.service == "http_checks"


def test_the_severity_label_is_configurable() -> None:
    payload = load("alertmanager-docs-v4.json")
    payload["alerts"][0]["labels"]["priority"] = "P4"
    options = ParseOptions(severity_label="priority")
    assert parse(SourceKind.ALERTMANAGER, payload, options)[0].severity is Severity.LOW


def test_an_alert_without_status_takes_the_groups() -> None:
    payload = load("alertmanager-docs-v4.json")
    del payload["alerts"][0]["status"]
    payload["status"] = "resolved"
    assert parse(SourceKind.ALERTMANAGER, payload)[0].action is SignalAction.RESOLVED


def test_without_a_summary_the_title_is_the_alertname_and_key_labels() -> None:
    payload = load("alertmanager-observed-firing.json")
    del payload["alerts"][0]["annotations"]["summary"]
    signal = parse(SourceKind.ALERTMANAGER, payload)[0]
    assert signal.title == ("HighErrorRate "
                            "(service=checkout, instance=checkout-1:8080, job=checkout)")
    assert signal.summary.startswith("More than 5%")


def test_unicode_labels_pass_through() -> None:
    payload = load("alertmanager-docs-v4.json")
    payload["alerts"][0]["labels"].update({"service": "支払い", "équipe": "café 🔥"})
    payload["alerts"][0]["annotations"]["summary"] = "Ошибка: сервис недоступен"
    [signal] = parse(SourceKind.ALERTMANAGER, payload)
    assert signal.service == "支払い"
    assert signal.labels["équipe"] == "café 🔥"
    assert signal.title == "Ошибка: сервис недоступен"


def test_an_empty_group_is_no_signals() -> None:
    payload = load("alertmanager-docs-v4.json")
    payload["alerts"] = []
    assert parse(SourceKind.ALERTMANAGER, payload) == []


def _set(path: list[Any], value: Any) -> Any:
    payload = load("alertmanager-docs-v4.json")
    target = payload
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


@pytest.mark.parametrize(("payload", "message"), [
    ([], "payload: expected an object, got array"),
    ("firing", "payload: expected an object, got string"),
    (_set(["alerts"], KeyError), "alerts: missing"),
    (_set(["alerts"], {"0": {}}), "alerts: expected an array, got object"),
    (_set(["alerts", 0], ["firing"]), "alerts\\[0\\]: expected an object, got array"),
    (_set(["alerts", 0, "labels"], KeyError), "alerts\\[0\\].labels: missing"),
    (_set(["alerts", 0, "labels"], ["a", "b"]), "alerts\\[0\\].labels: expected an object"),
    (_set(["alerts", 0, "labels", "severity"], 3), "alerts\\[0\\].labels.severity: expected "
                                                    "a string, got number"),
    (_set(["alerts", 0, "annotations", "summary"], None), "annotations.summary: expected a "
                                                          "string, got null"),
    (_set(["alerts", 0, "status"], "exploded"), "alerts\\[0\\].status: expected firing or "
                                                "resolved"),
    (_set(["alerts", 0, "startsAt"], "yesterday"), "alerts\\[0\\].startsAt: not an RFC 3339"),
    (_set(["alerts", 0, "endsAt"], 1675688925), "alerts\\[0\\].endsAt: expected an RFC 3339"),
    (_set(["alerts", 0, "fingerprint"], 12345), "alerts\\[0\\].fingerprint: expected a string"),
    (_set(["alerts", 0, "labels", "instance"], "x" * 100_000), "alerts\\[0\\].labels.instance: "
                                                               "100000 characters"),
    (_set(["alerts", 0, "labels", "job"], "a\x00b"), "labels.job: contains a NUL"),
    (_set(["alerts", 0, "labels", "job"], "\ud800"), "labels.job: not valid Unicode"),
])
def test_malformed_payloads_are_parse_errors_naming_the_field(payload: Any, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse(SourceKind.ALERTMANAGER, payload)
