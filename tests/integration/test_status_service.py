"""Status pages through the services, on SQLite and PostgreSQL: what publishing writes
and what the public side reads back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from interlock.clock import ManualClock
from interlock.domain.errors import Conflict, InvalidInput
from interlock.domain.events import Event, EventType, Origin, OriginKind
from interlock.domain.incidents import Severity, Visibility
from interlock.domain.status_pages import ComponentStatus, UpdateStatus
from interlock.services.container import Container
from interlock.services.incidents import Declaration, Viewer
from interlock.services.status_pages import ComponentSpec, Draft, PageSpec

S = ComponentStatus
RESPONDER = Viewer(Origin(OriginKind.API_KEY, id="key_1", name="alice"), can_see_private=True)


def test_publishing_sets_statuses_history_views_and_an_event(
        hub: Container, manual_clock: ManualClock) -> None:
    pages = hub.status_pages
    page = pages.create_page(PageSpec(name="Acme", slug="acme"))
    api = pages.add_component(page.id, ComponentSpec("API", ["api"]))
    web = pages.add_component(page.id, ComponentSpec("Web", ["web"], group="Frontend"))
    incident = hub.incidents.declare(RESPONDER, Declaration("db-2 disk full on shard 7",
                                                            Severity.CRITICAL, service="api"))
    assert pages.suggestion(RESPONDER, incident.id) == {api.id: S.MAJOR_OUTAGE}

    manual_clock.advance(timedelta(minutes=1))
    first = pages.publish(RESPONDER, incident.reference, Draft(
        UpdateStatus.INVESTIGATING, "Checkout is failing for some customers.",
        {api.id: S.MAJOR_OUTAGE, web.id: S.DEGRADED_PERFORMANCE}, title="Checkout errors"))
    assert first.page_ids == (page.id,)
    snapshot = hub.public_status.snapshot("acme")
    assert snapshot is not None
    assert snapshot.status is S.MAJOR_OUTAGE
    assert [item.title for item in snapshot.open] == ["Checkout errors"]
    assert snapshot.open[0].impact == "critical"
    assert snapshot.token.version > page.version

    manual_clock.advance(timedelta(hours=2))
    pages.publish(RESPONDER, incident.id, Draft(UpdateStatus.RESOLVED, "Fixed.", {}))
    snapshot = hub.public_status.snapshot("acme")
    assert snapshot is not None
    assert snapshot.status is S.OPERATIONAL  # resolving returns affected components
    assert snapshot.open == []
    [past] = snapshot.recent
    assert past.resolved_at is not None and past.title == "Checkout errors"
    assert [update.status for update in past.updates] == [UpdateStatus.RESOLVED,
                                                         UpdateStatus.INVESTIGATING]
    assert snapshot.bars[api.id][-1].worst is S.MAJOR_OUTAGE
    today = snapshot.bars[api.id][-1].uptime
    assert today is not None and today < 1.0

    events = [event for event in _events(hub, incident.id)
              if event.type is EventType.INCIDENT_PUBLIC_UPDATE]
    assert len(events) == 2
    assert events[0].data["public_update"]["body"] == "Checkout is failing for some customers."
    timeline = hub.incidents.timeline(RESPONDER, incident.id, cursor=None, limit=50).items
    assert timeline[-1].message.startswith("Public update published: resolved")


def test_private_incidents_are_refused_and_hidden_once_made_private(hub: Container) -> None:
    pages = hub.status_pages
    page = pages.create_page(PageSpec(name="Acme", slug="acme"))
    api = pages.add_component(page.id, ComponentSpec("API", ["api"]))
    secret = hub.incidents.declare(RESPONDER, Declaration(
        "Breach", Severity.CRITICAL, visibility=Visibility.PRIVATE))
    with pytest.raises(Conflict):
        pages.publish(RESPONDER, secret.id, Draft(UpdateStatus.INVESTIGATING, "x",
                                                  {api.id: S.MAJOR_OUTAGE}))
    public = hub.incidents.declare(RESPONDER, Declaration("Slow API", Severity.HIGH))
    pages.publish(RESPONDER, public.id, Draft(UpdateStatus.IDENTIFIED, "Slow.",
                                              {api.id: S.PARTIAL_OUTAGE}))
    before = hub.public_status.token("acme")
    hub.incidents.update(RESPONDER, public.id, {"visibility": Visibility.PRIVATE})
    assert hub.public_status.token("acme") != before
    snapshot = hub.public_status.snapshot("acme")
    assert snapshot is not None and snapshot.recent == [] and snapshot.open == []


def test_bad_drafts_are_refused(hub: Container) -> None:
    pages = hub.status_pages
    page = pages.create_page(PageSpec(name="Acme", slug="acme"))
    with pytest.raises(Conflict):
        pages.create_page(PageSpec(name="Other", slug="acme"))
    with pytest.raises(InvalidInput):
        pages.add_component(page.id, ComponentSpec("API", []))
    incident = hub.incidents.declare(RESPONDER, Declaration("x", Severity.LOW))
    with pytest.raises(InvalidInput, match="at least one component"):
        pages.publish(RESPONDER, incident.id, Draft(UpdateStatus.INVESTIGATING, "x", {}))
    with pytest.raises(InvalidInput, match="no component"):
        pages.publish(RESPONDER, incident.id, Draft(UpdateStatus.INVESTIGATING, "x",
                                                    {"cmp_nope": S.MAJOR_OUTAGE}))


def _events(hub: Container, incident_id: str) -> list[Event]:
    with hub.store.transaction() as tx:
        return list(tx.events.for_incident(incident_id))
