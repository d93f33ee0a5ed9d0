"""Saving a connector resolves its URLs' names (the target guard) before taking the
write lock: on SQLite one slow DNS answer would otherwise stop every other writer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from interlock.connectors import registry
from interlock.crypto import FernetBox
from interlock.services.connectors import ConnectorService, ConnectorSpec
from interlock.services.container import Container

#: How long the probe waits for the write lock before calling it held.
PROBE_WAIT = 2.0


class ProbingGuard:
    """A target guard that, while "resolving", checks whether another thread can write."""

    def __init__(self) -> None:
        self.store: Any = None
        self.blocked: list[str] = []

    def check(self, url: str) -> None:
        done = threading.Event()

        def write() -> None:
            with self.store.transaction(write=True):
                pass
            done.set()

        threading.Thread(target=write, daemon=True).start()
        if not done.wait(PROBE_WAIT):
            self.blocked.append(url)
            done.wait(30)  # let it finish once the lock is free


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_url_check_on_update_runs_outside_the_write_lock(hub: Container) -> None:
    guard = ProbingGuard()
    guard.store = hub.store
    service = ConnectorService(hub.store, hub.clock, registry.plugins(),
                               FernetBox(lambda: "test key"), guard)
    made = service.create(ConnectorSpec(name="silences", kind="alertmanager",
                                        settings={"url": "http://127.0.0.1:9093"},
                                        credentials={}))
    service.update(made.id, {"settings": {"url": "http://127.0.0.1:9094"}})
    assert guard.blocked == []
    assert service.get(made.id).settings["url"] == "http://127.0.0.1:9094"


class HealthWritingGuard:
    """While the update checks URLs, the sync worker records the connector's health."""

    def __init__(self) -> None:
        self.store: Any = None
        self.connector_id: str | None = None

    def check(self, url: str) -> None:
        if self.connector_id is None:
            return
        with self.store.transaction(write=True) as tx:
            tx.connectors.record_health(self.connector_id, at=datetime.now(UTC),
                                        error="HTTP 503 from the tool",
                                        learned={"account_id": "acc-1"})


def test_an_update_keeps_the_health_the_worker_wrote_meanwhile(hub: Container) -> None:
    guard = HealthWritingGuard()
    guard.store = hub.store
    service = ConnectorService(hub.store, hub.clock, registry.plugins(),
                               FernetBox(lambda: "test key"), guard)
    made = service.create(ConnectorSpec(name="silences", kind="alertmanager",
                                        settings={"url": "http://127.0.0.1:9093"},
                                        credentials={}))
    guard.connector_id = made.id
    service.update(made.id, {"name": "silences (prod)"})
    saved = service.get(made.id)
    assert saved.name == "silences (prod)"
    assert saved.last_error == "HTTP 503 from the tool"
    assert saved.state == {"account_id": "acc-1"}
