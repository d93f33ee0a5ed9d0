"""Driving the Jira driver directly, as the sync service does, against FakeJira.

``Harness`` plays the sync service's part: a SyncContext from domain objects, the
LinkWrite's state merged over the old link state and then the service's own bookkeeping
(domain.ownership.state_after_push: ``seen`` and written comment ids), ``learned``
merged into the connector's state. Each call runs its own event loop with asyncio.run.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from interlock.connectors.jira import JiraDriver
from interlock.connectors.jira.plugin import PLUGIN
from interlock.domain import incidents as rules
from interlock.domain.connectors import Connector, Link
from interlock.domain.events import Event, EventType, Origin, OriginKind
from interlock.domain.incidents import Incident, Severity
from interlock.domain.ownership import state_after_push
from interlock.domain.targets import parse_allowed_networks
from interlock.ports.connector import ConnectorDriver, PullResult, PushResult, SyncContext
from interlock.worker.tool_http import AiohttpToolHttp
from tests.support.fake_jira import FakeJira

T = TypeVar("T")
NOW = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
INCIDENT_URL = "https://interlock.example/incidents/INC-7"
LINK_PARAGRAPH = {"type": "paragraph", "content": [
    {"type": "text", "text": "Open INC-7 in Interlock",
     "marks": [{"type": "link", "attrs": {"href": INCIDENT_URL}}]}]}
PULL_PATH = "/rest/api/3/issue/OPS-1"
PULL_QUERY = {"fields": "status,assignee,comment,summary"}


class Harness:
    """Plays the sync service's part: keeps the connector and link state between calls."""

    def __init__(self, jira: FakeJira, **settings: Any) -> None:
        self.jira = jira
        #: The attempt the next call is (SyncContext.attempt), and the HTTP timeout.
        self.attempt = 1
        self.timeout = 5.0
        self.driver: ConnectorDriver = JiraDriver()  # mypy checks it fits the port
        self.connector = Connector(
            id="con_jira", name="Jira", kind="jira",
            settings={**PLUGIN.default_settings(), "base_url": jira.url, "project_key": "OPS",
                      **settings},
            credentials={"email": jira.email, "api_token": jira.api_token,
                         "webhook_secret": jira.webhook_secret},
            mapping=PLUGIN.default_mapping, filter=None, enabled=True,
            created_at=NOW, updated_at=NOW)
        self.link: Link | None = None

    def push(self, incident: Incident, event: Event | None = None) -> PushResult:
        result = self._run(lambda ctx: self.driver.push(ctx), incident, event)
        self._remember(result, incident)
        return result

    def refresh(self, incident: Incident) -> PushResult:
        result = self._run(lambda ctx: self.driver.refresh(ctx), incident, None)
        self._remember(result, incident)
        return result

    def pull(self, incident: Incident) -> PullResult:
        return self._run(lambda ctx: self.driver.pull(ctx), incident, None)

    def _run(self, step: Callable[[SyncContext], Awaitable[T]], incident: Incident,
             event: Event | None) -> T:
        async def main() -> T:
            http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"),
                                   timeout=self.timeout)
            try:
                return await step(SyncContext(
                    connector=self.connector, incident=incident, link=self.link, http=http,
                    now=NOW, incident_url=INCIDENT_URL, event=event,
                    attempt=self.attempt))
            finally:
                await http.close()
        return asyncio.run(main())

    def _remember(self, result: PushResult, incident: Incident) -> None:
        if result.learned:
            self.connector = dataclasses.replace(
                self.connector, state={**self.connector.state, **result.learned})
        written = result.link
        if written is None:
            return
        old = self.link.state if self.link else {}
        state = {**old, **written.state}
        if not result.skipped:  # as services.sync.SyncService._apply does
            state = state_after_push(self.connector.mapping, state, incident,
                                     result.comment_ids, shown=result.status_shown,
                                     succeeded=result.failed is None)
        self.link = Link(id="lnk_1", connector_id=self.connector.id, incident_id=incident.id,
                         kind=written.kind, external_id=written.external_id, url=written.url,
                         state=state, created_at=NOW, updated_at=NOW)



def incident(**changes: Any) -> Incident:
    declared = rules.declare(
        incident_id="inc_1", title="Checkout is failing", severity=Severity.HIGH, now=NOW,
        summary="Error rate above 5% on /pay.",
        labels={"service": "checkout", "team": "payments squad"})
    return dataclasses.replace(declared, number=7, **changes)


def comment_event(body: str, actor: str = "Dana") -> Event:
    return Event(id="evt_1", type=EventType.INCIDENT_COMMENT_ADDED, occurred_at=NOW,
                 origin=Origin(kind=OriginKind.API_KEY, name="ops", actor=actor),
                 incident_id="inc_1", incident_version=2,
                 data={"comment": {"id": "tle_1", "body": body, "actor": actor}})


def resolved_event() -> Event:
    return Event(id="evt_2", type=EventType.INCIDENT_RESOLVED, occurred_at=NOW,
                 origin=Origin(kind=OriginKind.API_KEY, name="ops", actor="Dana"),
                 incident_id="inc_1", incident_version=3, data={})


def acknowledged(current: Incident) -> Incident:
    transition = rules.acknowledge(current, NOW)
    assert transition is not None
    return transition.incident


def resolved(current: Incident) -> Incident:
    transition = rules.resolve(current, NOW)
    assert transition is not None
    return transition.incident


def sent(jira: FakeJira) -> list[tuple[str, str, Any]]:
    return [(item.method, item.path, item.json) for item in jira.requests]


