"""Planned maintenance on a status page: its status from the clock, what its window does
to the components shown, and what is refused; without any storage."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from interlock.domain import status_maintenance as rules
from interlock.domain.errors import InvalidInput
from interlock.domain.status_maintenance import MaintenanceStatus, PublicMaintenance
from interlock.domain.status_pages import Component, ComponentStatus

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
S = ComponentStatus


def component(component_id: str, status: S = S.OPERATIONAL) -> Component:
    return Component(id=component_id, page_id="spg_1", name=component_id.upper(),
                     services=("svc",), status=status, position=0, created_at=T0,
                     updated_at=T0)


def planned(**overrides: object) -> PublicMaintenance:
    made = PublicMaintenance(id="smt_1", page_id="spg_1", title="Database upgrade",
                             body="We upgrade the primary database.", components=("db",),
                             scheduled_for=T0, scheduled_until=T0 + 2 * HOUR,
                             created_at=T0 - 24 * HOUR, updated_at=T0 - 24 * HOUR)
    return dataclasses.replace(made, **overrides)  # type: ignore[arg-type]


def test_status_follows_the_clock_with_statuspage_names() -> None:
    item = planned()
    assert item.status(T0 - HOUR) is MaintenanceStatus.SCHEDULED
    assert item.status(T0) is MaintenanceStatus.IN_PROGRESS
    assert item.status(T0 + HOUR) is MaintenanceStatus.IN_PROGRESS
    assert item.status(T0 + 2 * HOUR) is MaintenanceStatus.COMPLETED
    assert [item.shown(at) for at in (T0 - HOUR, T0 + HOUR, T0 + 3 * HOUR)] == [
        True, True, False]


def test_a_cancelled_maintenance_is_never_shown() -> None:
    item = planned(cancelled_at=T0 - HOUR)
    assert item.status(T0 + HOUR) is MaintenanceStatus.COMPLETED
    assert not item.shown(T0 - 2 * HOUR)


def test_components_show_under_maintenance_only_during_the_window() -> None:
    components = [component("db"), component("web")]
    before = rules.during(components, [planned()], T0 - HOUR)
    during = rules.during(components, [planned()], T0 + HOUR)
    after = rules.during(components, [planned()], T0 + 2 * HOUR)
    assert [item.status for item in before] == [S.OPERATIONAL, S.OPERATIONAL]
    assert [item.status for item in during] == [S.UNDER_MAINTENANCE, S.OPERATIONAL]
    assert [item.status for item in after] == [S.OPERATIONAL, S.OPERATIONAL]


def test_an_incident_holding_a_worse_status_wins_over_maintenance() -> None:
    shown = rules.during([component("db", S.PARTIAL_OUTAGE)], [planned()], T0 + HOUR)
    assert shown[0].status is S.PARTIAL_OUTAGE


def test_a_valid_maintenance_is_kept_with_its_components_named_once() -> None:
    checked = rules.check(planned(components=("db", "web", "db"), title=" Upgrade "),
                          ["db", "web"])
    assert checked.components == ("db", "web")
    assert checked.title == "Upgrade"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"components": ("nope",)}, "components"),
    ({"components": ()}, "components"),
    ({"scheduled_until": T0}, "scheduled_until"),
    ({"scheduled_until": T0 - HOUR}, "scheduled_until"),
    ({"scheduled_until": T0 + timedelta(days=7, seconds=1)}, "scheduled_until"),
    ({"title": "   "}, "title"),
    ({"title": "x" * 256}, "title"),
    ({"body": " "}, "body"),
    ({"body": "x" * 4097}, "body"),
])
def test_bad_maintenance_is_refused_naming_the_field(overrides: dict[str, object],
                                                     field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        rules.check(planned(**overrides), ["db"])
    assert field in str(raised.value)


def test_a_window_of_exactly_seven_days_is_allowed() -> None:
    rules.check(planned(scheduled_until=T0 + timedelta(days=7)), ["db"])
