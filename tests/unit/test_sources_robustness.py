"""Whatever arrives, a parser answers with signals or a ParseError, and a big
Alertmanager group is parsed quickly."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.domain.alerts import ParseError, ParseOptions, Signal, SignalAction
from interlock.sources import SourceKind, parse, plugins

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sources"
FIXTURE_OF = {
    SourceKind.ALERTMANAGER: "alertmanager-docs-v4.json",
    SourceKind.GRAFANA: "grafana-docs-firing.json",
    SourceKind.DATADOG: "datadog-docs-extended.json",
    SourceKind.PAGERDUTY: "pagerduty-docs-trigger.json",
    SourceKind.GENERIC: "alertmanager-docs-v4.json",
}
GENERIC = ParseOptions(mapping={
    "alerts": "alerts", "title": "annotations.summary || labels.alertname",
    "status": "status", "fingerprint": "fingerprint", "labels": "labels",
    "annotations": "annotations", "severity": "labels.severity", "service": "labels.service",
    "summary": "annotations.description", "url": "generatorURL", "starts_at": "startsAt",
    "ends_at": "endsAt", "name": "to_string(labels.alertname)",
})
OPTIONS = {kind: GENERIC if kind == SourceKind.GENERIC else ParseOptions() for kind in plugins()}

#: Keys and words of the formats, so random payloads reach past the first check.
KEYS = ["alerts", "status", "labels", "annotations", "startsAt", "endsAt", "fingerprint",
        "generatorURL", "summary", "alertname", "severity", "service", "state", "silenceURL",
        "panelURL", "event_action", "dedup_key", "payload", "source", "component", "group",
        "class", "custom_details", "links", "href", "client_url", "timestamp", "title",
        "alert_transition", "aggreg_key", "alert_id", "alert_scope", "alert_type",
        "alert_priority", "tags", "date", "alert", "org", "body", "link", "ruleName"]
WORDS = ["firing", "resolved", "alerting", "pending", "trigger", "resolve", "acknowledge",
         "critical", "error", "warning", "info", "P1", "Triggered", "Recovered",
         "[Triggered] x", "0001-01-01T00:00:00Z", "2023-02-06T13:08:45.828Z",
         "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+05:00", "1406662672000",
         "$ALERT_ID", "env:prod,service:a", "\ud800", "a\x00b", ""]
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
           | st.sampled_from(WORDS))
JSON = st.recursive(
    SCALARS,
    lambda inner: (st.lists(inner, max_size=4)
                   | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner,
                                     max_size=6)),
    max_leaves=40,
)


def only_signals_or_parse_errors(kind: SourceKind, payload: Any) -> None:
    try:
        signals = parse(kind, payload, OPTIONS[kind])
    except ParseError as exc:
        assert str(exc)
        return
    assert isinstance(signals, list)
    for signal in signals:
        assert isinstance(signal, Signal)
        assert isinstance(signal.fingerprint, str) and signal.fingerprint
        assert isinstance(signal.title, str) and signal.title.strip()
        assert isinstance(signal.action, SignalAction)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in signal.labels.items())
        for when in (signal.starts_at, signal.ends_at):
            assert when is None or when.utcoffset() is not None


def mutated(document: Any, path: list[int], replacement: Any) -> Any:
    """``document`` with the subtree reached by following ``path`` (indexes into each
    container's children) replaced."""
    result = copy.deepcopy(document)
    parent: Any = None
    key: Any = None
    node = result
    for step in path:
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) \
            if isinstance(node, list) else []
        if not children:
            break
        key, child = children[step % len(children)]
        parent, node = node, child
    if parent is None:
        return replacement
    parent[key] = replacement
    return result


#: More examples for a longer hunt: INTERLOCK_FUZZ_EXAMPLES=5000 pytest -k random
FUZZ = settings(max_examples=int(os.environ.get("INTERLOCK_FUZZ_EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("kind", list(plugins()))
@FUZZ
@given(payload=JSON)
def test_random_json_is_signals_or_a_parse_error(kind: SourceKind, payload: Any) -> None:
    only_signals_or_parse_errors(kind, payload)


@pytest.mark.parametrize("kind", list(FIXTURE_OF))  # the kinds with documented payloads
@FUZZ
@given(path=st.lists(st.integers(min_value=0, max_value=50), max_size=6), replacement=JSON)
def test_documented_payloads_with_one_part_replaced(
    kind: SourceKind, path: list[int], replacement: Any
) -> None:
    document = json.loads((FIXTURES / FIXTURE_OF[kind]).read_text())
    only_signals_or_parse_errors(kind, mutated(document, path, replacement))


@pytest.mark.parametrize("kind", list(FIXTURE_OF))
def test_deeply_nested_values_are_parse_errors(kind: SourceKind) -> None:
    deep: Any = "bottom"
    for _ in range(100_000):
        deep = {"custom_details": deep, "labels": deep, "alert": deep}
    document = json.loads((FIXTURES / FIXTURE_OF[kind]).read_text())
    for path in ([0], [0, 0], [0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0, 0]):
        only_signals_or_parse_errors(kind, mutated(document, path, deep))
    only_signals_or_parse_errors(kind, deep)


def alertmanager_group(size: int) -> dict[str, Any]:
    template = json.loads((FIXTURES / "alertmanager-observed-firing.json").read_text())
    alert = template["alerts"][0]
    alerts = []
    for index in range(size):
        item = copy.deepcopy(alert)
        item["labels"]["instance"] = f"checkout-{index}:8080"
        item["fingerprint"] = f"{index:016x}"
        alerts.append(item)
    return template | {"alerts": alerts}


def test_a_group_of_10000_alerts_parses_quickly() -> None:
    payload = alertmanager_group(10_000)
    started = time.perf_counter()
    signals = parse(SourceKind.ALERTMANAGER, payload)
    elapsed = time.perf_counter() - started
    assert len(signals) == 10_000
    assert len({signal.fingerprint for signal in signals}) == 10_000
    print(f"10,000 Alertmanager alerts parsed in {elapsed * 1000:.0f} ms")
    assert elapsed < 2.0  # 80 to 120 ms on the development machine; room for slow CI
