"""The endpoint filter language: what it lets through, and how it names mistakes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from interlock.domain import incidents
from interlock.domain.errors import InvalidInput
from interlock.domain.filters import Filter
from interlock.domain.incidents import Severity, Visibility

NOW = datetime(2026, 1, 1, tzinfo=UTC)
REDACTED = {"id": "inc_1", "version": 3}


def incident(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "incident_id": "inc_1", "title": "Checkout down", "severity": Severity.CRITICAL,
        "now": NOW, "service": "checkout", "labels": {"team": "payments"},
    }
    return incidents.to_dict(incidents.declare(**{**fields, **overrides}))


def matches(raw: object, subject: dict[str, Any] | None) -> bool:
    return Filter.parse(raw).matches(subject)


def errors_of(raw: object) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        Filter.parse(raw)
    return {error["field"]: error["message"] for error in caught.value.errors or []}


def test_a_list_means_one_of() -> None:
    wanted = {"severity": ["critical", "high"]}
    assert matches(wanted, incident(severity=Severity.CRITICAL))
    assert matches(wanted, incident(severity=Severity.HIGH))
    assert not matches(wanted, incident(severity=Severity.LOW))


def test_a_string_means_equals_and_all_conditions_must_hold() -> None:
    wanted = {"severity": ["critical", "high"], "service": "checkout"}
    assert matches(wanted, incident())
    assert not matches(wanted, incident(service="search"))
    assert not matches(wanted, incident(service=None))
    assert not matches({"service": "Checkout"}, incident())  # identifiers are exact


def test_labels_are_addressed_by_name() -> None:
    assert matches({"labels.team": "payments"}, incident())
    assert matches({"labels.team": ["search", "payments"]}, incident())
    assert not matches({"labels.team": "search"}, incident())
    assert not matches({"labels.region": "eu"}, incident())
    assert matches({"labels.region": {"exists": False}}, incident())
    assert matches({"labels.team": {"not": "search"}}, incident(labels={}))


def test_not_excludes_values_and_lets_missing_ones_through() -> None:
    assert not matches({"status": {"not": "triggered"}}, incident())
    assert matches({"status": {"not": ["acknowledged", "resolved"]}}, incident())
    assert matches({"assignee": {"not": "ana"}}, incident(assignee=None))
    assert not matches({"assignee": {"not": "ana"}}, incident(assignee="ana"))


def test_exists_tells_set_from_unset() -> None:
    assert matches({"assignee": {"exists": False}}, incident())
    assert not matches({"assignee": {"exists": True}}, incident())
    assert matches({"assignee": {"exists": True}}, incident(assignee="ana"))


def test_contains_is_a_case_insensitive_substring() -> None:
    assert matches({"title": {"contains": "CHECKOUT"}}, incident())
    assert matches({"title": {"contains": "down"}}, incident(title="Payments DOWN in EU"))
    assert not matches({"title": {"contains": "database"}}, incident())
    assert not matches({"assignee": {"contains": "a"}}, incident(assignee=None))


@pytest.mark.parametrize("raw", [None, {}])
def test_an_empty_filter_matches_everything(raw: object) -> None:
    assert matches(raw, incident())
    assert matches(raw, REDACTED)
    assert matches(raw, None)


def test_a_redacted_private_incident_matches_only_visibility_conditions() -> None:
    assert matches({"visibility": "private"}, REDACTED)
    assert not matches({"visibility": "public"}, REDACTED)
    assert not matches({"visibility": "private", "severity": "critical"}, REDACTED)
    assert not matches({"service": {"not": "checkout"}}, REDACTED)
    assert not matches({"assignee": {"exists": False}}, REDACTED)
    assert not matches({"labels.team": {"not": "x"}}, REDACTED)


def test_a_full_private_incident_is_filtered_on_its_fields() -> None:
    private = incident(visibility=Visibility.PRIVATE)
    assert matches({"visibility": "private", "service": "checkout"}, private)
    assert not matches({"visibility": {"not": "private"}}, private)


def test_events_about_no_incident_go_through() -> None:
    assert matches({"severity": "critical"}, None)


@pytest.mark.parametrize("raw", [
    {"severity": ["critical", "high"], "service": "checkout"},
    {"status": {"not": "resolved"}, "labels.team": "payments"},
    {"assignee": {"exists": False}, "title": {"contains": "Database"}},
    {"labels.env": {"not": ["staging", "dev"]}, "visibility": "public"},
])
def test_to_json_gives_back_what_the_user_wrote(raw: dict[str, object]) -> None:
    parsed = Filter.parse(raw)
    assert parsed.to_json() == raw
    assert Filter.parse(parsed.to_json()) == parsed


def test_a_one_item_list_comes_back_as_a_string() -> None:
    assert Filter.parse({"severity": ["critical"]}).to_json() == {"severity": "critical"}
    assert Filter.parse(None).to_json() == {}


@pytest.mark.parametrize(("raw", "field", "words"), [
    ({"priority": "p1"}, "filter.priority", "unknown field"),
    ({"labels": {"team": "x"}}, "filter.labels", "labels.<name>"),
    ({"labels.": "x"}, "filter.labels.", "unknown field"),
    ({"severity": "urgent"}, "filter.severity", "unknown value urgent"),
    ({"status": ["triggered", "open"]}, "filter.status", "unknown value open"),
    ({"visibility": "secret"}, "filter.visibility", "public, private"),
    ({"severity": []}, "filter.severity", "empty list"),
    ({"service": 3}, "filter.service", "must be a string"),
    ({"service": ["checkout", 3]}, "filter.service", "non-empty strings"),
    ({"service": ""}, "filter.service", "non-empty strings"),
    ({"title": {"contains": "x" * 501}}, "filter.title", "at most 500 characters"),
    ({"service": ["s"] * 101}, "filter.service", "at most 100 values"),
    ({"service": {"not": "a", "exists": True}}, "filter.service", "exactly one of"),
    ({"service": {"equals": "a"}}, "filter.service", "exactly one of"),
    ({"assignee": {"exists": "yes"}}, "filter.assignee", "true or false"),
    ({"title": {"exists": True}}, "filter.title", "service, assignee and labels"),
    ({"severity": {"contains": "crit"}}, "filter.severity", "list the values"),
    ({"severity": {"not": ["critical", "bad"]}}, "filter.severity", "unknown value bad"),
    (["severity", "critical"], "filter", "must be an object"),
    ({f"labels.l{n}": "x" for n in range(33)}, "filter", "at most 32 conditions"),
])
def test_mistakes_are_named_by_field(raw: object, field: str, words: str) -> None:
    errors = errors_of(raw)
    assert list(errors) == [field]
    assert words in errors[field]


def test_every_bad_key_is_reported_at_once() -> None:
    errors = errors_of({"severity": "urgent", "service": "checkout", "colour": "red"})
    assert set(errors) == {"filter.severity", "filter.colour"}


def test_32_conditions_are_allowed() -> None:
    assert matches({f"labels.l{n}": {"exists": False} for n in range(32)}, incident())
