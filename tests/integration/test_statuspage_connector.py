"""The Atlassian Statuspage connector against a loopback Statuspage that follows its REST
API documentation (tests/support/fake_statuspage.py): public updates create and update
the Statuspage incident with mapped component statuses, nothing internal is sent,
updates a person posts there come back onto the timeline once and without echo, a
resolution there resolves the incident, and the connector keeps to 1 request/s."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest

from interlock.clock import ManualClock
from interlock.domain.errors import InvalidInput
from interlock.domain.events import Origin, OriginKind
from interlock.domain.incidents import Incident, Severity, Status
from interlock.domain.status_pages import ComponentStatus, UpdateStatus
from interlock.services.connectors import ConnectorSpec
from interlock.services.container import Container
from interlock.services.incidents import Declaration, Viewer
from interlock.services.status_pages import ComponentSpec, Draft, PageSpec
from tests.support.fake_statuspage import FakeStatuspage
from tests.support.sync import sync_all

S = ComponentStatus
RESPONDER = Viewer(Origin(OriginKind.API_KEY, id="key_1", name="alice"), can_see_private=True)
SP_API, SP_WEB = "ftgks51sfs2d", "bb5w0kc1234x"


@pytest.fixture
def statuspage() -> Iterator[FakeStatuspage]:
    with FakeStatuspage() as running:
        yield running


class World:
    def __init__(self, hub: Container, statuspage: FakeStatuspage) -> None:
        pages = hub.status_pages
        self.page = pages.create_page(PageSpec(name="Acme", slug="acme"))
        self.api = pages.add_component(self.page.id, ComponentSpec("API", ["api"]))
        self.web = pages.add_component(self.page.id, ComponentSpec("Web", ["web"]))
        self.unmapped = pages.add_component(self.page.id, ComponentSpec("Batch", ["batch"]))
        self.connector = hub.connectors.create(ConnectorSpec(
            name="statuspage", kind="statuspage",
            settings={"base_url": statuspage.url, "page_id": statuspage.page_id,
                      "component_map": {self.api.id: SP_API, self.web.id: SP_WEB},
                      "deliver_notifications": False},
            credentials={"api_key": statuspage.api_key}))
        self.incident = hub.incidents.declare(RESPONDER, Declaration(
            "db-2 disk full on shard 7 (internal)", Severity.CRITICAL, service="api"))
        hub.incidents.comment(RESPONDER, self.incident.id, "internal: it was Bob's deploy")


def _incident(hub: Container, key: str) -> Incident:
    return hub.incidents.get(RESPONDER, key)


def _timeline(hub: Container, key: str) -> list[str]:
    page = hub.incidents.timeline(RESPONDER, key, cursor=None, limit=200)
    return [f"{entry.message} {entry.body or ''}".strip() for entry in page.items]


def test_public_updates_create_then_update_the_statuspage_incident(
        hub: Container, statuspage: FakeStatuspage) -> None:
    world = World(hub, statuspage)
    hub.status_pages.publish(RESPONDER, world.incident.id, Draft(
        UpdateStatus.INVESTIGATING, "Checkout is failing for some customers.",
        {world.api.id: S.MAJOR_OUTAGE, world.unmapped.id: S.DEGRADED_PERFORMANCE},
        title="Checkout errors"))
    sync_all(hub)
    incident = statuspage.incident()
    assert incident.name == "Checkout errors" and incident.status == "investigating"
    [first] = incident.updates
    assert first["body"] == "Checkout is failing for some customers."
    assert first["deliver_notifications"] is False
    assert statuspage.component_status(SP_API) == "major_outage"
    assert statuspage.component_status(SP_WEB) == "operational"
    [create] = [item for item in statuspage.requests if item.method == "POST"]
    assert create.json["incident"]["components"] == {SP_API: "major_outage"}
    sent = str([item.json for item in statuspage.requests])
    assert "internal" not in sent and "Bob" not in sent and "db-2" not in sent

    hub.status_pages.publish(RESPONDER, world.incident.id, Draft(
        UpdateStatus.RESOLVED, "Fixed; checkout works again.", {}))
    sync_all(hub)
    incident = statuspage.incident()
    assert incident.status == "resolved"
    assert [item["status"] for item in incident.updates] == ["resolved", "investigating"]
    assert statuspage.component_status(SP_API) == "operational"
    assert len(statuspage.incidents) == 1
    assert any("Statuspage incident" in line for line in _timeline(hub, world.incident.id))


def test_updates_posted_in_statuspage_come_back_once_without_echo(
        hub: Container, statuspage: FakeStatuspage, manual_clock: ManualClock) -> None:
    world = World(hub, statuspage)
    hub.status_pages.publish(RESPONDER, world.incident.id, Draft(
        UpdateStatus.INVESTIGATING, "Checkout is failing.", {world.api.id: S.MAJOR_OUTAGE}))
    sync_all(hub)
    sp_incident = statuspage.incident()
    statuspage.post_update_as_person(sp_incident.id, "identified",
                                     "We found a broken disk and are replacing it.")

    for _ in range(2):  # reconciling twice imports the person's update once
        manual_clock.advance(timedelta(minutes=6))
        assert hub.sync.reconcile() == 1
        sync_all(hub)
    lines = _timeline(hub, world.incident.id)
    came_back = [line for line in lines if "Update posted in Statuspage" in line]
    assert len(came_back) == 1
    assert "(identified): We found a broken disk" in came_back[0]
    # Interlock's own update never came back as a comment, and nothing went out again.
    assert not any("Checkout is failing." in line for line in came_back)
    assert [item.method for item in statuspage.requests].count("PATCH") == 0
    assert _incident(hub, world.incident.id).status is Status.TRIGGERED

    statuspage.resolve_as_person(sp_incident.id, "All good now.")
    manual_clock.advance(timedelta(minutes=6))
    hub.sync.reconcile()
    sync_all(hub)
    assert _incident(hub, world.incident.id).status is Status.RESOLVED
    lines = _timeline(hub, world.incident.id)
    assert any("Status set to resolved in statuspage" in line for line in lines)
    assert any("(resolved): All good now." in line for line in lines)
    assert [item.method for item in statuspage.requests].count("PATCH") == 0


def test_the_connector_keeps_to_one_request_per_second(
        hub: Container, statuspage: FakeStatuspage) -> None:
    world = World(hub, statuspage)
    for text in ("First.", "Second.", "Third."):
        hub.status_pages.publish(RESPONDER, world.incident.id, Draft(
            UpdateStatus.INVESTIGATING, text, {world.api.id: S.PARTIAL_OUTAGE}))
    sync_all(hub)
    requests = statuspage.requests
    assert len(requests) == 3 and statuspage.rate_limited() == []
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert min(gaps) >= 1.0
    assert [item["body"] for item in statuspage.incident().updates] == [
        "Third.", "Second.", "First."]


def test_a_bad_configuration_is_refused_field_by_field(hub: Container) -> None:
    with pytest.raises(InvalidInput) as refused:
        hub.connectors.create(ConnectorSpec(
            name="statuspage", kind="statuspage",
            settings={"page_id": "Not A Page!", "component_map": {"cmp_1": "bad id!"},
                      "base_url": "ftp://nowhere"},
            credentials={"api_key": "k"}))
    fields = {item["field"] for item in refused.value.errors or []}
    assert {"settings.page_id", "settings.component_map", "settings.base_url"} <= fields


def test_a_component_map_to_something_not_a_statuspage_id_is_refused(hub: Container) -> None:
    with pytest.raises(InvalidInput) as refused:
        hub.connectors.create(ConnectorSpec(
            name="statuspage", kind="statuspage",
            settings={"page_id": "kctbh9vrtdwd", "component_map": {"cmp_1": "API=ftgks"}},
            credentials={"api_key": "k"}))
    assert [item["field"] for item in refused.value.errors or []] == [
        "settings.component_map"]
