"""The PagerDuty driver against a loopback PagerDuty (tests/support/fake_pagerduty.py),
through the real tool HTTP client: what Interlock sends, request by request, checked
against PagerDuty's OpenAPI description by the fake, and what it reads back from
PagerDuty's answers and v3 webhooks.

The driver is driven the way the sync service drives it (as test_jira_driver.py does):
a SyncContext from domain objects, the LinkWrite state merged over the old one,
``learned`` merged into the connector state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from interlock.connectors.pagerduty import PagerDutyDriver
from interlock.connectors.pagerduty.hooks import sign
from interlock.connectors.pagerduty.plugin import PLUGIN
from interlock.domain import incidents as rules
from interlock.domain.connectors import Connector, Link
from interlock.domain.errors import InvalidInput, ToolFailed, Unauthenticated
from interlock.domain.events import Event, EventType, Origin, OriginKind
from interlock.domain.incidents import Incident, Severity, Status, Visibility
from interlock.domain.targets import parse_allowed_networks
from interlock.ports.connector import ConnectorDriver, PullResult, PushResult, SyncContext
from interlock.worker.tool_http import AiohttpToolHttp
from tests.support.fake_pagerduty import (
    ACCEPT,
    ALICE,
    BOB,
    BOT,
    SERVICE_ID,
    WEBHOOK_SECRET,
    FakePagerDuty,
)

T = TypeVar("T")
NOW = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
INCIDENT_URL = "https://interlock.example/incidents/INC-7"


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    with FakePagerDuty() as fake:
        yield fake
    assert fake.violations == [], "requests or answers that PagerDuty's spec refuses"


class Harness:
    """Plays the sync service's part: keeps the connector and link state between calls."""

    def __init__(self, pagerduty: FakePagerDuty, **settings: Any) -> None:
        self.driver: ConnectorDriver = PagerDutyDriver()  # mypy checks it fits the port
        self.connector = Connector(
            id="con_pd", name="PagerDuty", kind="pagerduty",
            settings={**PLUGIN.default_settings(), "api_base": pagerduty.url,
                      "service_id": SERVICE_ID, "from_email": BOT.email, **settings},
            credentials={"api_key": pagerduty.api_key, "webhook_secret": WEBHOOK_SECRET},
            mapping=PLUGIN.default_mapping, filter=None, enabled=True,
            created_at=NOW, updated_at=NOW)
        self.link: Link | None = None

    def push(self, incident: Incident, event: Event | None = None) -> PushResult:
        result = self._run(lambda ctx: self.driver.push(ctx), incident, event)
        self.remember(result, incident)
        return result

    def pull(self, incident: Incident) -> PullResult:
        return self._run(lambda ctx: self.driver.pull(ctx), incident, None)

    def hook(self, headers: dict[str, str], body: bytes) -> Any:
        reader: Any = self.driver
        return reader.read_hook(self.connector, headers, body, NOW)

    def _run(self, step: Callable[[SyncContext], Awaitable[T]], incident: Incident,
             event: Event | None) -> T:
        async def main() -> T:
            http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"),
                                   timeout=5)
            try:
                return await step(SyncContext(
                    connector=self.connector, incident=incident, link=self.link, http=http,
                    now=NOW, incident_url=INCIDENT_URL, event=event))
            finally:
                await http.close()
        return asyncio.run(main())

    def remember(self, result: PushResult, incident: Incident) -> None:
        if result.learned:
            self.connector = dataclasses.replace(
                self.connector, state={**self.connector.state, **result.learned})
        if result.link is None:
            return
        old = self.link.state if self.link else {}
        self.link = Link(id="lnk_1", connector_id=self.connector.id, incident_id=incident.id,
                         kind=result.link.kind, external_id=result.link.external_id,
                         url=result.link.url, state={**old, **result.link.state},
                         created_at=NOW, updated_at=NOW)


def incident(**changes: Any) -> Incident:
    declared = rules.declare(incident_id="inc_1", title="Checkout is failing",
                             severity=Severity.CRITICAL, now=NOW,
                             summary="Error rate above 5% on /pay.")
    return dataclasses.replace(declared, number=7, **changes)


def moved(current: Incident, command: Any) -> Incident:
    transition = command(current, NOW)
    assert transition is not None
    return transition.incident


def comment_event(body: str, actor: str = "Dana") -> Event:
    return Event(id="evt_1", type=EventType.INCIDENT_COMMENT_ADDED, occurred_at=NOW,
                 origin=Origin(kind=OriginKind.API_KEY, name="ops", actor=actor),
                 incident_id="inc_1", incident_version=2,
                 data={"comment": {"id": "tle_1", "body": body, "actor": actor}})


def writes(pagerduty: FakePagerDuty) -> list[tuple[str, str, Any]]:
    return [(item.method, item.path, item.json) for item in pagerduty.requests
            if item.method != "GET"]


# -- push -----------------------------------------------------------------------------

def test_push_opens_an_incident_on_the_service_as_the_from_user(
        pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty)
    result = harness.push(incident())

    lookup, create = pagerduty.requests
    assert (lookup.method, lookup.path, lookup.query) == ("GET", "/users",
                                                          {"query": BOT.email})
    assert (create.method, create.path) == ("POST", "/incidents")
    assert create.json == {"incident": {
        "type": "incident", "title": "[INC-7] Checkout is failing",
        "service": {"id": SERVICE_ID, "type": "service_reference"},
        "incident_key": "inc_1", "urgency": "high",
        "body": {"type": "incident_body",
                 "details": f"Error rate above 5% on /pay.\n\nOpen INC-7 in Interlock: "
                            f"{INCIDENT_URL}"}}}
    assert create.headers["From"] == BOT.email
    assert create.headers["Accept"] == ACCEPT
    assert create.headers["Authorization"] == f"Token token={pagerduty.api_key}"
    made = pagerduty.only()
    assert result.link is not None
    assert (result.link.kind, result.link.external_id, result.link.url) == (
        "pagerduty_incident", made.id, f"{pagerduty.url}/web/incidents/{made.id}")
    assert result.learned == {"user_id": BOT.id}
    assert result.notes == [f"PagerDuty incident #1 ({made.id}) opened"]
    assert result.link.state["seen"] == {"status": "triggered", "assignee": None}


def test_low_severity_is_low_urgency_and_a_private_incident_says_nothing(
        pagerduty: FakePagerDuty) -> None:
    Harness(pagerduty, user_id=BOT.id).push(incident(severity=Severity.LOW))
    Harness(pagerduty, user_id=BOT.id).push(
        dataclasses.replace(incident(visibility=Visibility.PRIVATE), id="inc_2"))

    (_, _, low), (_, _, private) = writes(pagerduty)
    assert low["incident"]["urgency"] == "low"
    assert private["incident"]["title"] == "INC-7: private incident"
    assert private["incident"]["body"]["details"] == f"Open INC-7 in Interlock: {INCIDENT_URL}"
    assert "urgency" not in private["incident"]
    assert "Checkout" not in json.dumps(private) and "Error rate" not in json.dumps(private)


def test_acknowledge_and_resolve_are_one_put_each_and_nothing_when_nothing_changed(
        pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty)
    opened = incident()
    harness.push(opened)
    incident_id = pagerduty.only().id
    pagerduty.forget_requests()

    assert harness.push(opened).summary == f"PagerDuty incident {incident_id} already matches"
    assert pagerduty.requests == []

    acked = moved(opened, rules.acknowledge)
    harness.push(acked)
    resolved = moved(acked, rules.resolve)
    harness.push(resolved)
    assert writes(pagerduty) == [
        ("PUT", f"/incidents/{incident_id}",
         {"incident": {"type": "incident_reference", "status": "acknowledged"}}),
        ("PUT", f"/incidents/{incident_id}",
         {"incident": {"type": "incident_reference", "status": "resolved"}}),
    ]
    assert all(item.headers["From"] == BOT.email for item in pagerduty.requests)
    assert pagerduty.only().status == "resolved"
    assert pagerduty.only().acknowledged_by is None


def test_a_title_change_and_reopening_go_in_one_put(pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty)
    resolved = moved(incident(), rules.resolve)
    harness.push(resolved)
    incident_id = pagerduty.only().id
    pagerduty.forget_requests()

    harness.push(dataclasses.replace(moved(resolved, rules.reopen), title="Checkout is down"))

    assert writes(pagerduty) == [("PUT", f"/incidents/{incident_id}", {"incident": {
        "type": "incident_reference", "title": "[INC-7] Checkout is down",
        "status": "triggered"}})]
    assert pagerduty.only().status == "triggered"


def test_comments_become_notes_and_private_ones_never_leave(pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty)
    harness.push(incident())
    incident_id = pagerduty.only().id
    pagerduty.forget_requests()

    result = harness.push(incident(), comment_event("rolled back to v41"))

    assert writes(pagerduty) == [("POST", f"/incidents/{incident_id}/notes",
                                  {"note": {"content": "Dana: rolled back to v41"}})]
    [note] = pagerduty.only().notes
    assert (note.user, note.content) == (BOT, "Dana: rolled back to v41")
    assert result.link is not None and result.link.state["comments"] == [note.id]

    private = Harness(pagerduty, user_id=BOT.id)
    secret = dataclasses.replace(incident(visibility=Visibility.PRIVATE), id="inc_9")
    private.push(secret)
    pagerduty.forget_requests()
    private.push(secret, comment_event("customer data in bucket x"))
    assert pagerduty.requests == []


def test_a_create_retried_after_a_lost_answer_adopts_the_open_incident(
        pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty, user_id=BOT.id)
    harness.push(incident())
    first = pagerduty.only()
    harness.link = None  # the answer was lost: Interlock never wrote the link

    result = harness.push(incident())

    assert len(pagerduty.incidents) == 1
    assert result.link is not None and result.link.external_id == first.id
    assert result.summary.startswith("found the open PagerDuty incident")


# -- rate limits ----------------------------------------------------------------------

def test_a_short_rate_limit_is_waited_out_once(pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty, user_id=BOT.id)
    pagerduty.rate_limit(1, reset=0.3)

    started = time.monotonic()
    harness.push(incident())

    assert time.monotonic() - started >= 0.3
    assert [item.method for item in pagerduty.requests] == ["POST", "POST"]
    assert len(pagerduty.incidents) == 1


def test_a_long_rate_limit_fails_the_job_with_the_reset_as_retry_after(
        pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty, user_id=BOT.id)
    pagerduty.rate_limit(1, reset=30)

    started = time.monotonic()
    with pytest.raises(ToolFailed) as failed:
        harness.push(incident())

    assert time.monotonic() - started < 5
    assert failed.value.retryable and failed.value.retry_after == 30
    assert failed.value.status_code == 429
    assert pagerduty.incidents == {}


# -- pull -----------------------------------------------------------------------------

def test_pull_reads_status_assignee_and_notes_from_people(pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty)
    harness.push(incident())
    harness.push(incident(), comment_event("rolled back"))
    incident_id = pagerduty.only().id
    pagerduty.acknowledge_as(incident_id, by=ALICE)
    pagerduty.reassign_as(incident_id, to=BOB)
    pagerduty.note_as(incident_id, "DB failover done", by=ALICE)

    pulled = harness.pull(incident())

    assert pulled.status is Status.ACKNOWLEDGED
    assert pulled.assignee == BOB.name
    [note] = pulled.comments
    assert (note.author, note.body) == (ALICE.name, "DB failover done")
    assert pulled.summary == (f"PagerDuty incident #1 ({incident_id}) is acknowledged, assigned "
                              f"to {BOB.name}, 1 note from people")


# -- webhooks -------------------------------------------------------------------------

def test_a_signed_webhook_names_the_incident_and_its_delivery(pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty, user_id=BOT.id)
    harness.push(incident())
    incident_id = pagerduty.only().id
    webhook = pagerduty.acknowledge_as(incident_id, by=ALICE)

    notice = harness.hook(webhook.headers, webhook.body)

    assert notice.external_id == incident_id
    assert notice.delivery_id == webhook.headers["X-Webhook-Id"]
    assert not notice.from_interlock
    assert notice.description == f"incident.acknowledged {incident_id} by {ALICE.name}"
    note = pagerduty.note_as(incident_id, "looking", by=ALICE)
    assert harness.hook(note.headers, note.body).external_id == incident_id


def test_any_of_the_rotated_signatures_may_match(pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty, user_id=BOT.id)
    harness.push(incident())
    webhook = pagerduty.acknowledge_as(pagerduty.only().id)
    rotating = {**webhook.headers,
                "X-PagerDuty-Signature": sign(webhook.body, "the-new-secret", WEBHOOK_SECRET)}
    assert harness.hook(rotating, webhook.body).external_id == pagerduty.only().id

    old_only = {**webhook.headers,
                "X-PagerDuty-Signature": sign(webhook.body, "an-old-secret")}
    with pytest.raises(Unauthenticated, match="does not match"):
        harness.hook(old_only, webhook.body)
    with pytest.raises(Unauthenticated, match="does not match"):
        harness.hook(webhook.headers, webhook.body.replace(b"acknowledged", b"resolved"))
    unsigned = {name: value for name, value in webhook.headers.items()
                if name != "X-PagerDuty-Signature"}
    with pytest.raises(Unauthenticated, match="no X-PagerDuty-Signature"):
        harness.hook(unsigned, webhook.body)


def test_interlock_own_changes_come_back_as_echoes(pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty)
    opened = incident()
    harness.push(opened)  # learns the From user's id
    harness.push(moved(opened, rules.acknowledge))

    own = pagerduty.emitted[-1]  # what PagerDuty sends for Interlock's acknowledgement
    assert own.event_type == "incident.acknowledged"
    notice = harness.hook(own.headers, own.body)
    assert notice.from_interlock
    assert notice.description.endswith(f"by {BOT.name}")
    person = pagerduty.resolve_as(pagerduty.only().id, by=ALICE)
    assert not harness.hook(person.headers, person.body).from_interlock


def test_events_interlock_does_not_use_are_ignored(pagerduty: FakePagerDuty) -> None:
    harness = Harness(pagerduty, user_id=BOT.id)
    ping = pagerduty.signed("pagey.ping", {"event": {
        "id": "01", "event_type": "pagey.ping", "resource_type": "pagey",
        "occurred_at": "2024-01-15T10:00:00Z", "agent": None, "client": None, "data": {
            "message": "Hello from your friend Pagey!", "type": "ping"}}})
    notice = harness.hook(ping.headers, ping.body)
    assert notice.external_id is None
    assert notice.ignored == "PagerDuty event pagey.ping is not one Interlock uses"


# -- configuration --------------------------------------------------------------------

def test_check_names_every_bad_field_and_never_echoes_a_secret() -> None:
    with pytest.raises(InvalidInput) as refused:
        PLUGIN.validated({**PLUGIN.default_settings(), "service_id": "not an id",
                      "from_email": "nobody", "api_base": "ftp://x"},
                     {"api_key": "sekrit-value", "webhook_secret": ""})
    fields = {error["field"] for error in refused.value.errors or []}
    assert fields == {"settings.service_id", "settings.from_email", "settings.api_base",
                      "credentials.webhook_secret"}
    assert "sekrit-value" not in json.dumps(refused.value.errors)
    assert PLUGIN.required_credentials() == ("api_key", "webhook_secret")
    assert PLUGIN.default_settings()["api_base"] == "https://api.pagerduty.com"
