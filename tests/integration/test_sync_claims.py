"""Claiming connector jobs takes the write lock only when there is a job to take.

The sync loop looks for jobs on every commit of an event, which in a storm is many
times a second, while a paced tool (Slack, one message a second) keeps its jobs leased
and waiting in its lane for a long while. On SQLite a write transaction that claims
nothing still queues behind, and in front of, the writes of people's API requests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.conftest import make_key
from tests.integration.test_worker import declare_many
from tests.support.fake_jira import FakeJira


@contextmanager
def write_transactions(container: Container, monkeypatch: pytest.MonkeyPatch
                       ) -> Iterator[list[bool]]:
    """One entry for each write transaction the store opens meanwhile."""
    store = container.store
    opened: list[bool] = []
    original = store.transaction

    def counted(*args: Any, write: bool = False, **kwargs: Any) -> Any:
        if write:
            opened.append(True)
        return original(*args, write=write, **kwargs)

    monkeypatch.setattr(store, "transaction", counted)
    yield opened
    monkeypatch.setattr(store, "transaction", original)


def queue_jobs(hub: Container, incidents: int) -> None:
    """Declare incidents and fan their events out: a job per incident and connector."""
    declare_many(hub, incidents)
    while hub.deliveries.dispatch():
        pass


def assert_nothing_claimed_without_a_write(hub: Container, monkeypatch: pytest.MonkeyPatch,
                                           owner: str, exclude: list[str] | None = None
                                           ) -> None:
    with write_transactions(hub, monkeypatch) as writes:
        assert hub.sync.claim(owner, 10, exclude or []) == []
    assert writes == []


@pytest.fixture
def jira_connector(hub: Container, hub_client: TestClient) -> Iterator[str]:
    admin = make_key(hub, Scope.ADMIN, name="admin")
    with FakeJira() as jira:
        created = hub_client.post("/api/v1/connectors", headers=admin, json={
            "name": "jira", "kind": "jira",
            "settings": {"base_url": jira.url, "project_key": "OPS"},
            "credentials": {"email": jira.email, "api_token": jira.api_token,
                            "webhook_secret": jira.webhook_secret}})
        assert created.status_code == 201, created.text
        yield created.json()["id"]


def test_jobs_leased_and_waiting_in_their_lane_cost_no_write_to_look_for_more(
    hub: Container, jira_connector: str, monkeypatch: pytest.MonkeyPatch,
    manual_clock: ManualClock,
) -> None:
    queue_jobs(hub, 2)
    assert len(hub.sync.claim("worker", 10)) == 2
    assert_nothing_claimed_without_a_write(hub, monkeypatch, "worker")
    # Once their lease lapses (the worker died), they are claimed again.
    manual_clock.advance(hub.sync.lease + timedelta(seconds=1))
    assert len(hub.sync.claim("other-worker", 10)) == 2


def test_jobs_of_a_full_lane_alone_cost_no_write_to_look_for_more(
    hub: Container, jira_connector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_jobs(hub, 2)
    assert_nothing_claimed_without_a_write(hub, monkeypatch, "worker", [jira_connector])
    assert len(hub.sync.claim("worker", 10)) == 2


def jira_for(hub: Container, client: TestClient, jira: FakeJira, name: str) -> str:
    admin = make_key(hub, Scope.ADMIN, name=f"admin-{name}")
    created = client.post("/api/v1/connectors", headers=admin, json={
        "name": name, "kind": "jira",
        "settings": {"base_url": jira.url, "project_key": "OPS"},
        "credentials": {"email": jira.email, "api_token": jira.api_token,
                        "webhook_secret": jira.webhook_secret}})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_a_job_due_for_another_connector_is_found_past_a_full_lanes_many(
    hub: Container, hub_client: TestClient
) -> None:
    """A storm leaves thousands of jobs for a paced tool whose lane is full; a job for
    another tool is still found, and only its jobs are claimed."""
    with FakeJira() as jira:
        paced = jira_for(hub, hub_client, jira, "paced")
        declare_many(hub, 30)
        while hub.deliveries.dispatch():
            pass
        other = jira_for(hub, hub_client, jira, "other")  # its jobs come after all of those
        declare_many(hub, 1)
        while hub.deliveries.dispatch():
            pass
        claimed = hub.sync.claim("worker", 50, [paced])
        assert [work.connector.id for work in claimed] == [other]
        assert hub.sync.claim("worker", 50, [paced]) == []  # that one is leased now
        assert len(hub.sync.claim("worker", 50)) == 31  # the full lane's, once it is not


def test_jobs_of_a_disabled_connector_cost_no_write_to_look_for_more(
    hub: Container, hub_client: TestClient, jira_connector: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = make_key(hub, Scope.ADMIN, name="admin-disable")
    queue_jobs(hub, 2)
    changed = hub_client.patch(f"/api/v1/connectors/{jira_connector}", headers=admin,
                               json={"enabled": False})
    assert changed.status_code == 200, changed.text
    assert_nothing_claimed_without_a_write(hub, monkeypatch, "worker")
    changed = hub_client.patch(f"/api/v1/connectors/{jira_connector}", headers=admin,
                               json={"enabled": True})
    assert changed.status_code == 200, changed.text
    assert len(hub.sync.claim("worker", 10)) == 2


def test_a_paced_tools_jobs_are_run_by_one_worker_at_a_time(
    hub: Container, jira_connector: str, monkeypatch: pytest.MonkeyPatch,
    manual_clock: ManualClock,
) -> None:
    """Each worker keeps a paced tool's pace in its own lane, so two workers running its
    jobs at once called it twice as fast (Slack answered 429). Another worker leaves
    the lane to the one holding a job of it, without a write to look, and takes it over
    once the holder has none leased (it finished them, or died and their leases
    lapsed)."""
    queue_jobs(hub, 3)
    assert len(hub.sync.claim("worker-1", 1)) == 1
    assert_nothing_claimed_without_a_write(hub, monkeypatch, "worker-2")
    assert len(hub.sync.claim("worker-1", 10)) == 2  # the holder goes on
    manual_clock.advance(hub.sync.lease + timedelta(seconds=1))  # and dies
    assert len(hub.sync.claim("worker-2", 10)) == 3
