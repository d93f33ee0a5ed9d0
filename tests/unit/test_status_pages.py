"""The rules of status pages and uptime bars, without any storage."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from interlock.domain import status_pages as rules
from interlock.domain import uptime
from interlock.domain.errors import Conflict, InvalidInput
from interlock.domain.events import EventType
from interlock.domain.incidents import Severity, Visibility, declare
from interlock.domain.status_pages import Component, ComponentStatus, StatusChange

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
S = ComponentStatus


def component(component_id: str, *services: str, status: S = S.OPERATIONAL) -> Component:
    return Component(id=component_id, page_id="spg_1", name=component_id.upper(),
                     services=services, status=status, position=0, created_at=T0,
                     updated_at=T0)


def incident(**overrides: object) -> rules.Incident:
    made = declare(incident_id="inc_1", title="db-2 disk full", severity=Severity.CRITICAL,
                   now=T0, service="checkout")
    return dataclasses.replace(made, number=3, **overrides)  # type: ignore[arg-type]


def test_a_page_shows_its_worst_component_status() -> None:
    assert rules.worst([]) is S.OPERATIONAL
    assert rules.worst([S.OPERATIONAL, S.PARTIAL_OUTAGE, S.DEGRADED_PERFORMANCE]) \
        is S.PARTIAL_OUTAGE
    assert rules.worst([S.UNDER_MAINTENANCE, S.OPERATIONAL]) is S.UNDER_MAINTENANCE
    assert rules.worst([S.UNDER_MAINTENANCE, S.MAJOR_OUTAGE]) is S.MAJOR_OUTAGE
    assert rules.indicator(S.OPERATIONAL) == ("none", "All Systems Operational")
    assert rules.indicator(S.MAJOR_OUTAGE) == ("critical", "Major System Outage")
    assert rules.impact([S.DEGRADED_PERFORMANCE, S.OPERATIONAL]) == "minor"


def test_a_component_mapped_to_no_service_is_refused() -> None:
    for services in ([], ["", "  "]):
        with pytest.raises(InvalidInput) as raised:
            rules.check_services(services)
        assert raised.value.errors == [{"field": "services", "message": "at least one service"}]
    assert rules.check_services([" checkout", "checkout", "api"]) == ("checkout", "api")


def test_update_bodies_have_a_limit_and_cannot_be_blank() -> None:
    assert rules.check_body("x" * rules.BODY_MAX)
    with pytest.raises(InvalidInput, match="at most 4096"):
        rules.check_body("x" * (rules.BODY_MAX + 1))
    with pytest.raises(InvalidInput):
        rules.check_body("  \n")


@pytest.mark.parametrize("slug", ["Status", "-a", "a-", "a b", "é", "x" * 65, ""])
def test_slugs_are_url_safe(slug: str) -> None:
    with pytest.raises(InvalidInput):
        rules.check_slug(slug)


def test_logo_and_link_are_web_urls_only() -> None:
    assert rules.check_url("https://example.com/logo.svg", "logo_url")
    assert rules.check_url("", "logo_url") is None
    with pytest.raises(InvalidInput):
        rules.check_url("javascript:alert(1)", "link_url")


def test_private_incidents_are_never_publishable() -> None:
    rules.check_publishable(incident())
    with pytest.raises(Conflict, match="private"):
        rules.check_publishable(incident(visibility=Visibility.PRIVATE))


def test_the_suggestion_follows_severity_for_the_components_of_the_service() -> None:
    parts = [component("cmp_a", "checkout", "cart"), component("cmp_b", "search")]
    assert rules.suggest(incident(), parts) == {"cmp_a": S.MAJOR_OUTAGE}
    assert rules.suggest(incident(severity=Severity.MEDIUM), parts) == {
        "cmp_a": S.DEGRADED_PERFORMANCE}
    assert rules.suggest(incident(service=None), parts) == {}


def test_resolving_returns_affected_components_to_operational_unless_held() -> None:
    result = rules.statuses_on_resolve(
        affected=["cmp_a", "cmp_b", "cmp_c"], given={"cmp_c": S.DEGRADED_PERFORMANCE},
        held_elsewhere=["cmp_b"])
    assert result == {"cmp_a": S.OPERATIONAL, "cmp_c": S.DEGRADED_PERFORMANCE}


def test_publishing_bumps_the_incident_version_with_its_own_event() -> None:
    transition = rules.published(incident(), T0 + timedelta(minutes=1))
    assert transition.event_type is EventType.INCIDENT_PUBLIC_UPDATE
    assert transition.incident.version == 2


# -- uptime bars --------------------------------------------------------------------------


def test_ninety_bars_with_no_data_before_the_component_existed() -> None:
    now = T0 + timedelta(days=100, hours=12)
    created = now - timedelta(days=10)
    bars = uptime.daily_bars([], created, now)
    assert len(bars) == 90
    assert bars[-1].day == now.date()
    assert [bar.uptime for bar in bars[:79]] == [None] * 79
    assert bars[79].uptime == 1.0  # the day it was created, from then on
    assert all(bar.uptime == 1.0 and bar.worst is S.OPERATIONAL for bar in bars[79:])
    assert bars[0].percent == "no data"


def test_a_major_outage_counts_fully_a_partial_one_at_thirty_percent() -> None:
    day = T0 + timedelta(days=1)
    now = day + timedelta(days=1, hours=1)
    history = [
        StatusChange("cmp_a", S.MAJOR_OUTAGE, day + timedelta(hours=6)),
        StatusChange("cmp_a", S.OPERATIONAL, day + timedelta(hours=12)),
        StatusChange("cmp_a", S.PARTIAL_OUTAGE, day + timedelta(hours=18)),
        StatusChange("cmp_a", S.DEGRADED_PERFORMANCE, day + timedelta(hours=23)),
    ]
    bars = uptime.daily_bars(history, T0, now, days=3)
    assert [bar.day for bar in bars] == [T0.date(), day.date(), now.date()]
    assert bars[0].uptime == 1.0
    # 6 h down, 5 h partial at 30 %: (6 + 1.5) / 24 down.
    assert bars[1].uptime == pytest.approx(1 - 7.5 / 24)
    assert bars[1].worst is S.MAJOR_OUTAGE
    assert bars[2].uptime == 1.0  # degraded counts as up, but shows
    assert bars[2].worst is S.DEGRADED_PERFORMANCE
    assert uptime.overall(bars) == pytest.approx((2 + 1 - 7.5 / 24) / 3)


def test_a_status_held_since_before_the_window_colours_the_first_days() -> None:
    now = T0 + timedelta(days=200, hours=6)
    history = [StatusChange("cmp_a", S.MAJOR_OUTAGE, T0 + timedelta(days=50))]
    bars = uptime.daily_bars(history, T0, now)
    assert all(bar.uptime == 0.0 and bar.worst is S.MAJOR_OUTAGE for bar in bars)
