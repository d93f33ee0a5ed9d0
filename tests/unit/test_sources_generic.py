"""Generic JSON sources: a mapping of JMESPath expressions, checked when it is saved."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from interlock.domain.alerts import ParseError, ParseOptions, SignalAction
from interlock.domain.errors import InvalidInput
from interlock.domain.incidents import Severity
from interlock.sources import SourceKind, check_mapping, parse, parse_options
from interlock.sources.options import SourceParsers

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sources"

CHECK = {
    "title": "check.name",
    "status": "state",
    "severity": "priority",
    "fingerprint": "id",
    "service": "tags.service",
    "summary": "output",
    "name": "check.id",
    "labels": "tags",
    "annotations": "{runbook: runbook_url}",
    "url": "links.self",
    "starts_at": "started",
}
EVENT = {
    "id": 9182, "state": "open", "priority": "critical",
    "check": {"id": "checkout-latency", "name": "Checkout p99 above 2 s"},
    "output": "p99 2.4 s over 5 min", "runbook_url": "https://runbooks.example.com/latency",
    "tags": {"service": "checkout", "env": "prod", "replicas": 3, "canary": False, "x": None},
    "links": {"self": "https://checks.example.com/9182"}, "started": 1767225600,
}


def generic(mapping: dict[str, str], **options: Any) -> ParseOptions:
    return ParseOptions(mapping=mapping, **options)


def test_one_alert_per_payload() -> None:
    [signal] = parse(SourceKind.GENERIC, EVENT, generic(CHECK))
    assert signal.fingerprint == "9182"
    assert signal.action is SignalAction.FIRING
    assert signal.title == "Checkout p99 above 2 s"
    assert signal.severity is Severity.CRITICAL
    assert signal.name == "checkout-latency"
    assert signal.service == "checkout"
    assert signal.summary == "p99 2.4 s over 5 min"
    assert signal.labels == {"service": "checkout", "env": "prod", "replicas": "3",
                             "canary": "false"}
    assert signal.annotations == {"runbook": "https://runbooks.example.com/latency"}
    assert signal.url == "https://checks.example.com/9182"
    assert signal.starts_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_computed_status() -> None:
    mapping = {"title": "name", "status": "resolved && 'resolved' || 'firing'"}
    [fired] = parse(SourceKind.GENERIC, {"name": "x", "resolved": False}, generic(mapping))
    [ended] = parse(SourceKind.GENERIC, {"name": "x", "resolved": True}, generic(mapping))
    assert (fired.action, ended.action) == (SignalAction.FIRING, SignalAction.RESOLVED)
    assert fired.fingerprint == ended.fingerprint


def test_several_alerts_per_payload_from_a_documented_alertmanager_body() -> None:
    # Alertmanager's documented webhook body (see test_sources_alertmanager) read
    # generically: the generic source can take any tool that batches alerts.
    payload = json.loads((FIXTURES / "alertmanager-observed-resolved.json").read_text())
    mapping = {"alerts": "alerts", "title": "annotations.summary", "status": "status",
               "fingerprint": "fingerprint", "labels": "labels", "severity": "labels.severity",
               "name": "labels.alertname", "ends_at": "endsAt"}
    first, second = parse(SourceKind.GENERIC, payload, generic(mapping))
    native = parse(SourceKind.ALERTMANAGER, payload)
    for mine, theirs in zip((first, second), native, strict=True):
        assert (mine.fingerprint, mine.action, mine.title, mine.severity, mine.service,
                mine.labels, mine.ends_at) == (
            theirs.fingerprint, theirs.action, theirs.title, theirs.severity, theirs.service,
            theirs.labels, theirs.ends_at)


def test_without_a_fingerprint_the_labels_are_hashed() -> None:
    mapping = {key: value for key, value in CHECK.items() if key != "fingerprint"}
    [signal] = parse(SourceKind.GENERIC, EVENT, generic(mapping))
    assert len(signal.fingerprint) == 64
    moved = EVENT | {"id": 1, "output": "p99 3.1 s"}
    assert parse(SourceKind.GENERIC, moved, generic(mapping))[0].fingerprint == signal.fingerprint
    only_env = generic(mapping, fingerprint_fields=("env", "name"))
    staging = EVENT | {"tags": {**EVENT["tags"], "replicas": 5}}
    assert (parse(SourceKind.GENERIC, EVENT, only_env)[0].fingerprint
            == parse(SourceKind.GENERIC, staging, only_env)[0].fingerprint)


@pytest.mark.parametrize(("payload", "mapping", "message"), [
    ({"id": 1}, {"title": "check.name"}, "title \\(mapping 'check.name'\\): matched nothing"),
    ({"name": "x", "state": "melted"}, {"title": "name", "status": "state"},
     "status \\(mapping 'state'\\): 'melted' is neither a firing nor a resolved word"),
    ({"name": "x", "tags": ["a"]}, {"title": "name", "labels": "tags"},
     "labels \\(mapping 'tags'\\): expected an object, got array"),
    ({"name": "x", "tags": {"a": {"b": 1}}}, {"title": "name", "labels": "tags"},
     "labels \\(mapping 'tags'\\).a: expected a string, got object"),
    ({"items": {"name": "x"}}, {"alerts": "items", "title": "name"},
     "alerts \\(mapping 'items'\\): expected an array, got object"),
    ({"items": [{"name": "x"}, {"name": 5, "at": "whenever"}]},
     {"alerts": "items", "title": "name", "starts_at": "at"},
     "alerts\\[1\\]: starts_at \\(mapping 'at'\\): not a time"),
    ({"name": "x"}, {"title": "length(name) && abs(name)"},
     "title \\(mapping 'length\\(name\\) && abs\\(name\\)'\\): "),
    ({"name": "x" * 70_000}, {"title": "name"}, "title \\(mapping 'name'\\): 70000 characters"),
])
def test_payloads_the_mapping_cannot_read(payload: Any, mapping: dict[str, str],
                                          message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse(SourceKind.GENERIC, payload, generic(mapping))


def test_an_invalid_stored_mapping_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(ParseError, match=r"mapping is invalid: mapping\.title"):
        parse(SourceKind.GENERIC, {"a": 1}, generic({}))


def test_check_mapping_accepts_a_good_mapping() -> None:
    check_mapping(CHECK)
    check_mapping({"alerts": "events[?level != 'debug']", "title": "join(' ', [host, check])"})


@pytest.mark.parametrize(("mapping", "field", "message"), [
    ({"status": "state"}, "mapping.title", "required"),
    ({"title": "check.name", "status": "state["}, "mapping.status", "not a valid JMESPath"),
    ({"title": "a", "color": "b"}, "mapping.color", "unknown field"),
    ({"title": ""}, "mapping.title", "non-empty string"),
    ({"title": 3}, "mapping.title", "non-empty string"),
    ({"title": "a" * 1001}, "mapping.title", "longer than 1000"),
    ({"title": "(" * 500 + "a" + ")" * 500}, "mapping.title", None),
])
def test_check_mapping_names_the_bad_field(
    mapping: dict[str, Any], field: str, message: str | None
) -> None:
    try:
        check_mapping(mapping)
    except InvalidInput as exc:
        assert exc.errors is not None
        fields = {error["field"]: error["message"] for error in exc.errors}
        assert field in fields
        assert message is None or message in fields[field]
        assert exc.detail.startswith("mapping.")
    else:
        assert message is None  # deep nesting within the length limit is fine


def test_check_mapping_wants_an_object() -> None:
    with pytest.raises(InvalidInput, match="mapping must be an object"):
        check_mapping(["title"])


def test_parse_options_from_what_a_user_saves() -> None:
    options = parse_options(SourceKind.GENERIC, {"mapping": CHECK, "service_label": "app",
                                                 "fingerprint_fields": ["env"]})
    assert options.mapping == CHECK
    assert options.service_label == "app"
    assert options.fingerprint_fields == ("env",)
    assert parse_options(SourceKind.ALERTMANAGER, {}) == ParseOptions()


@pytest.mark.parametrize(("kind", "raw", "field"), [
    (SourceKind.GENERIC, {}, "mapping.title"),
    (SourceKind.GENERIC, {"mapping": {"title": "a", "status": "]"}}, "mapping.status"),
    (SourceKind.ALERTMANAGER, {"mapping": {"title": "a"}}, "mapping"),
    (SourceKind.GRAFANA, {"service_label": 3}, "service_label"),
    (SourceKind.DATADOG, {"fingerprint_fields": "host"}, "fingerprint_fields"),
    (SourceKind.PAGERDUTY, {"colour": "red"}, "colour"),
])
def test_parse_options_refuses_bad_options(kind: SourceKind, raw: dict[str, Any],
                                           field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_options(kind, raw)
    assert field in {error["field"] for error in caught.value.errors or []}


def test_the_parser_port_stores_options_and_names_bad_ones_under_options() -> None:
    parsers = SourceParsers()
    stored = parsers.check_options(SourceKind.GENERIC, {"mapping": {"title": "check.name"},
                                                        "service_label": "app"})
    assert stored == {"mapping": {"title": "check.name"}, "service_label": "app"}
    assert parsers.check_options(SourceKind.ALERTMANAGER, None) == {}
    with pytest.raises(InvalidInput) as caught:
        parsers.check_options(SourceKind.GENERIC, {"mapping": {"title": "a", "status": "["}})
    assert [e["field"] for e in caught.value.errors or []] == ["options.mapping.status"]
    [signal] = parsers(SourceKind.GENERIC, EVENT, stored)
    assert signal.title == "Checkout p99 above 2 s"
    with pytest.raises(ParseError, match="options are invalid"):
        parsers(SourceKind.GENERIC, EVENT, {"mapping": {"status": "state"}})
