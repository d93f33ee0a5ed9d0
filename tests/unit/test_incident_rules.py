"""The rules for changing incidents, without any storage."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from interlock.domain import incidents as rules
from interlock.domain.errors import Conflict, InvalidInput
from interlock.domain.events import EventType
from interlock.domain.incidents import Severity, Status, Visibility

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def fresh(**overrides: object) -> rules.Incident:
    incident = rules.declare(
        incident_id="inc_TEST", title="Checkout 500s", severity=Severity.HIGH, now=T0,
        service="checkout",
    )
    return dataclasses.replace(incident, number=7, **overrides)  # type: ignore[arg-type]


def test_declared_incident_is_triggered_at_version_one() -> None:
    incident = fresh()
    assert incident.status is Status.TRIGGERED
    assert incident.version == 1
    assert incident.reference == "INC-7"
    assert incident.created_at == incident.updated_at == T0


def test_acknowledge_bumps_version_and_records_what_changed() -> None:
    transition = rules.acknowledge(fresh(), T1)
    assert transition is not None
    assert transition.event_type is EventType.INCIDENT_ACKNOWLEDGED
    assert transition.incident.status is Status.ACKNOWLEDGED
    assert transition.incident.version == 2
    assert transition.incident.acknowledged_at == T1
    assert transition.incident.updated_at == T1
    assert transition.changes["status"] == {"from": "triggered", "to": "acknowledged"}


def test_acknowledging_twice_is_a_no_op() -> None:
    acknowledged = rules.acknowledge(fresh(), T1)
    assert acknowledged is not None
    assert rules.acknowledge(acknowledged.incident, T1 + timedelta(seconds=1)) is None


def test_acknowledging_a_resolved_incident_is_refused() -> None:
    resolved = rules.resolve(fresh(), T1)
    assert resolved is not None
    with pytest.raises(Conflict, match="reopen"):
        rules.acknowledge(resolved.incident, T1)


def test_resolve_then_reopen_clears_the_timestamps() -> None:
    acknowledged = rules.acknowledge(fresh(), T1)
    assert acknowledged is not None
    resolved = rules.resolve(acknowledged.incident, T1)
    assert resolved is not None
    assert resolved.incident.resolved_at == T1
    assert rules.resolve(resolved.incident, T1) is None
    reopened = rules.reopen(resolved.incident, T1 + timedelta(hours=1))
    assert reopened is not None
    assert reopened.event_type is EventType.INCIDENT_REOPENED
    assert reopened.incident.status is Status.TRIGGERED
    assert reopened.incident.resolved_at is None
    assert reopened.incident.acknowledged_at is None
    assert reopened.incident.version == 4


def test_reopening_an_open_incident_changes_nothing() -> None:
    assert rules.reopen(fresh(), T1) is None


def test_update_lists_only_fields_that_differ() -> None:
    transition = rules.update(
        fresh(), {"title": "Checkout 500s", "severity": Severity.CRITICAL, "assignee": "ana"}, T1
    )
    assert transition is not None
    assert transition.event_type is EventType.INCIDENT_UPDATED
    assert transition.changes == {
        "severity": {"from": "high", "to": "critical"},
        "assignee": {"from": None, "to": "ana"},
    }
    assert transition.incident.version == 2


def test_update_with_the_same_values_is_a_no_op() -> None:
    incident = fresh(labels={"team": "payments"})
    assert rules.update(
        incident, {"service": "checkout", "labels": {"team": "payments"}}, T1
    ) is None


def test_update_refuses_status_and_unknown_fields() -> None:
    with pytest.raises(InvalidInput, match="status"):
        rules.update(fresh(), {"status": Status.RESOLVED}, T1)


@pytest.mark.parametrize("title", ["", "   ", "x" * (rules.TITLE_MAX + 1)])
def test_titles_must_be_present_and_bounded(title: str) -> None:
    with pytest.raises(InvalidInput):
        rules.declare(incident_id="inc_X", title=title, severity=Severity.LOW, now=T0)


def test_a_comment_bumps_the_version_but_changes_no_field() -> None:
    transition = rules.comment(fresh(), "Rolling back", T1)
    assert transition.incident.version == 2
    assert transition.changes == {}
    with pytest.raises(InvalidInput):
        rules.comment(fresh(), "  ", T1)


def test_to_dict_shows_rfc3339_utc_times_and_plain_values() -> None:
    data = rules.to_dict(fresh(visibility=Visibility.PRIVATE))
    assert data["created_at"] == "2026-03-01T12:00:00Z"
    assert data["visibility"] == "private"
    assert data["reference"] == "INC-7"
    assert data["acknowledged_at"] is None


def test_severity_rank_orders_worst_last() -> None:
    ordered = sorted(Severity, key=lambda severity: severity.rank)
    assert [s.value for s in ordered] == ["info", "low", "medium", "high", "critical"]
