"""The generic HTTP driver against loopback tools (tests/support/fake_helpdesk.py and
fake_github.py), configured with the README's examples, through the real tool HTTP
client: the requests its templates make, what it reads back, and its webhooks.

The driver is driven directly, the way the sync service does (see test_jira_driver.py):
LinkWrite.state is merged over the old link state between calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from interlock.connectors.http import HttpDriver
from interlock.connectors.http.plugin import PLUGIN
from interlock.domain import incidents as rules
from interlock.domain.connectors import Connector, Link, parse_mapping
from interlock.domain.errors import BadRequest, NotFound, ToolFailed, Unauthenticated
from interlock.domain.events import Event, EventType, Origin, OriginKind
from interlock.domain.incidents import Incident, Severity, Visibility
from interlock.domain.ownership import is_unset
from interlock.domain.targets import parse_allowed_networks
from interlock.ports.connector import ConnectorDriver, PullResult, PushResult, SyncContext
from interlock.worker.tool_http import AiohttpToolHttp
from tests.support import fake_github, fake_helpdesk
from tests.support.fake_github import FakeGitHub
from tests.support.fake_helpdesk import INTEGRATION, FakeHelpdesk
from tests.support.http_examples import GITHUB, HELPDESK, pointed_at, readme_example

T = TypeVar("T")
NOW = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
INCIDENT_URL = "https://interlock.example/incidents/INC-7"


@pytest.fixture
def helpdesk() -> Iterator[FakeHelpdesk]:
    with FakeHelpdesk() as running:
        yield running


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as running:
        yield running


class Harness:
    """Plays the sync service's part: keeps the connector and link state between calls."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.driver: ConnectorDriver = HttpDriver()  # mypy checks it fits the port
        self.driver.check({**PLUGIN.default_settings(), **body["settings"]}, body["credentials"])
        self.connector = Connector(
            id="con_http", name=body["name"], kind="http",
            settings={**PLUGIN.default_settings(), **body["settings"]},
            credentials=body["credentials"],
            mapping=parse_mapping(body.get("mapping") or {}, base=PLUGIN.default_mapping),
            filter=None, enabled=True, created_at=NOW, updated_at=NOW)
        self.link: Link | None = None

    def push(self, incident: Incident, event: Event | None = None) -> PushResult:
        result = self._run(lambda ctx: self.driver.push(ctx), incident, event)
        self._remember(result, incident)
        return result

    def pull(self, incident: Incident) -> PullResult:
        return self._run(lambda ctx: self.driver.pull(ctx), incident, None)

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

    def _remember(self, result: PushResult, incident: Incident) -> None:
        written = result.link
        if written is None:
            return
        old = self.link.state if self.link else {}
        self.link = Link(id="lnk_1", connector_id=self.connector.id, incident_id=incident.id,
                         kind=written.kind, external_id=written.external_id, url=written.url,
                         state={**old, **written.state}, created_at=NOW, updated_at=NOW)


def helpdesk_harness(helpdesk: FakeHelpdesk, **changes: Any) -> Harness:
    """The README's example; ``changes`` replace settings (without ``hmac``, no
    ``hmac_secret`` is given)."""
    body = pointed_at(readme_example(HELPDESK), helpdesk.url, api_key=fake_helpdesk.API_KEY,
                      hmac_secret=fake_helpdesk.WEBHOOK_SECRET)
    body["settings"].update(changes)
    if body["settings"].get("hmac") is None:
        del body["credentials"]["hmac_secret"]
    return Harness(body)


def github_harness(github: FakeGitHub) -> Harness:
    return Harness(pointed_at(readme_example(GITHUB), github.url,
                              bearer_token=fake_github.TOKEN,
                              hmac_secret=fake_github.WEBHOOK_SECRET))


def incident(**changes: Any) -> Incident:
    declared = rules.declare(
        incident_id="inc_1", title="Checkout is failing", severity=Severity.HIGH, now=NOW,
        summary="Error rate above 5% on /pay.", labels={"team": "payments"})
    return dataclasses.replace(declared, number=7, **changes)


def event(kind: EventType, **data: Any) -> Event:
    return Event(id="evt_1", type=kind, occurred_at=NOW,
                 origin=Origin(kind=OriginKind.API_KEY, name="ops", actor="dana"),
                 incident_id="inc_1", incident_version=2, data=data)


def moved(current: Incident, command: Callable[[Incident, datetime], Any]) -> Incident:
    transition = command(current, NOW)
    assert transition is not None
    changed: Incident = transition.incident
    return changed


def sent(tool: FakeHelpdesk | FakeGitHub) -> list[tuple[str, str, Any]]:
    return [(item.method, item.path, item.json) for item in tool.requests]


# -- push -----------------------------------------------------------------------------

def test_the_first_push_creates_the_ticket_from_the_templates(helpdesk: FakeHelpdesk
                                                              ) -> None:
    harness = helpdesk_harness(helpdesk)
    result = harness.push(incident(), event(EventType.INCIDENT_CREATED))

    assert sent(helpdesk) == [("POST", "/api/tickets", {
        "subject": "Checkout is failing", "priority": "high",
        "description": f"Error rate above 5% on /pay.\n{INCIDENT_URL}"})]
    assert result.link is not None
    assert (result.link.kind, result.link.external_id, result.link.url) == (
        "http_object", "T-1001", "https://helpdesk.example.com/t/T-1001")
    assert result.link.state["seen"] == {"status": "triggered", "assignee": None}
    assert result.summary == "created T-1001"
    assert result.notes == ["Helpdesk: created T-1001 (https://helpdesk.example.com/t/T-1001)"]


def test_status_requests_follow_the_incident_and_never_repeat(helpdesk: FakeHelpdesk
                                                              ) -> None:
    harness = helpdesk_harness(helpdesk)
    current = incident()
    harness.push(current, event(EventType.INCIDENT_CREATED))
    helpdesk.forget_requests()

    current = moved(current, rules.acknowledge)
    harness.push(current, event(EventType.INCIDENT_ACKNOWLEDGED))
    current = moved(current, rules.resolve)
    result = harness.push(current, event(EventType.INCIDENT_RESOLVED))
    # The same push again (a retry, a replayed event): the ticket is already closed.
    again = harness.push(current, event(EventType.INCIDENT_RESOLVED))

    assert sent(helpdesk) == [
        ("PATCH", "/api/tickets/T-1001", {"status": "in_progress"}),
        ("PATCH", "/api/tickets/T-1001", {"status": "closed"}),
    ]
    assert result.summary == "moved T-1001 to closed"
    assert again.skipped and again.link is None
    assert helpdesk.tickets["T-1001"].status == "closed"


def test_a_tool_without_an_acknowledged_status_is_sent_nothing_for_it(
        github: FakeGitHub) -> None:
    harness = github_harness(github)
    current = incident()
    harness.push(current, event(EventType.INCIDENT_CREATED))
    github.forget_requests()

    current = moved(current, rules.acknowledge)
    acked = harness.push(current, event(EventType.INCIDENT_ACKNOWLEDGED))
    current = moved(current, rules.resolve)
    harness.push(current, event(EventType.INCIDENT_RESOLVED))

    assert acked.skipped
    assert sent(github) == [("PATCH", "/repos/acme/ops/issues/1",
                             {"state": "closed", "state_reason": "completed"})]
    assert github.issues[1].state == "closed"


def test_an_incident_first_seen_resolved_is_created_and_closed(helpdesk: FakeHelpdesk
                                                               ) -> None:
    harness = helpdesk_harness(helpdesk)
    harness.push(moved(incident(), rules.resolve), event(EventType.INCIDENT_UPDATED))

    assert [(method, path) for method, path, _ in sent(helpdesk)] == [
        ("POST", "/api/tickets"), ("PATCH", "/api/tickets/T-1001")]
    assert helpdesk.tickets["T-1001"].status == "closed"


def test_updates_and_comments_send_their_requests(helpdesk: FakeHelpdesk) -> None:
    harness = helpdesk_harness(helpdesk)
    harness.push(incident(), event(EventType.INCIDENT_CREATED))
    helpdesk.forget_requests()

    harness.push(incident(title="Checkout fails for EU cards", severity=Severity.CRITICAL),
                 event(EventType.INCIDENT_UPDATED, changes={"title": {}}))
    result = harness.push(incident(), event(
        EventType.INCIDENT_COMMENT_ADDED,
        comment={"id": "tle_1", "body": "Rolled back to v412.", "actor": "dana"}))

    assert sent(helpdesk) == [
        ("PATCH", "/api/tickets/T-1001",
         {"subject": "Checkout fails for EU cards", "priority": "urgent"}),
        ("POST", "/api/tickets/T-1001/notes", {"text": "dana: Rolled back to v412."}),
    ]
    assert result.link is not None
    assert result.link.state["comments"] == ["N-1"]


def test_a_private_incident_gives_the_tool_only_its_reference(helpdesk: FakeHelpdesk
                                                              ) -> None:
    harness = helpdesk_harness(helpdesk)
    private = incident(visibility=Visibility.PRIVATE)
    harness.push(private, event(EventType.INCIDENT_CREATED))
    harness.push(private, event(EventType.INCIDENT_COMMENT_ADDED, comment={
        "id": "tle_1", "body": "customer data leaked", "actor": "dana"}))

    assert sent(helpdesk) == [("POST", "/api/tickets", {
        "subject": "INC-7: private incident", "priority": None,
        "description": f"\n{INCIDENT_URL}"})]


def test_credentials_are_sent_as_configured(github: FakeGitHub) -> None:
    harness = github_harness(github)
    harness.push(incident(), event(EventType.INCIDENT_CREATED))
    assert github.issues[1].title == "Checkout is failing"  # a wrong token is a 401

    wrong = github_harness(github)
    wrong.connector = dataclasses.replace(wrong.connector, credentials={
        **wrong.connector.credentials, "bearer_token": "github_pat_wrong"})
    with pytest.raises(ToolFailed) as failed:
        wrong.push(incident(), event(EventType.INCIDENT_CREATED))
    assert not failed.value.retryable
    assert "HTTP 401" in failed.value.detail and "Bad credentials" in failed.value.detail


def test_a_tool_that_is_down_is_a_retryable_failure(helpdesk: FakeHelpdesk) -> None:
    harness = helpdesk_harness(helpdesk)
    harness.connector = dataclasses.replace(harness.connector, settings={
        **harness.connector.settings, "base_url": helpdesk.url + "/down"})
    with pytest.raises(ToolFailed) as refused:
        harness.push(incident(), event(EventType.INCIDENT_CREATED))
    assert not refused.value.retryable  # a 404 will not pass by itself

    harness.connector = dataclasses.replace(harness.connector, settings={
        **harness.connector.settings, "base_url": "http://127.0.0.1:9"})
    with pytest.raises(ToolFailed) as down:
        harness.push(incident(), event(EventType.INCIDENT_CREATED))
    assert down.value.retryable


def test_a_template_url_to_a_forbidden_address_is_blocked(helpdesk: FakeHelpdesk) -> None:
    """The URL a template makes goes through the same target guard as webhooks, when
    it is called: the cloud metadata address is never connected to."""
    harness = helpdesk_harness(helpdesk)
    requests = dict(harness.connector.settings["requests"])
    requests["incident.created"] = {**requests["incident.created"],
                                    "url": "http://169.254.169.254/latest/meta-data/"}
    harness.connector = dataclasses.replace(harness.connector, settings={
        **harness.connector.settings, "requests": requests})
    with pytest.raises(ToolFailed) as blocked:
        harness.push(incident(), event(EventType.INCIDENT_CREATED))
    assert "blocked: 169.254.169.254 is a cloud metadata service address" in \
        blocked.value.detail
    assert sent(helpdesk) == []


def test_a_template_that_fails_for_one_incident_fails_its_job_for_good(
        helpdesk: FakeHelpdesk) -> None:
    harness = helpdesk_harness(helpdesk)
    requests = dict(harness.connector.settings["requests"])
    requests["incident.created"] = {**requests["incident.created"],
                                    "body": {"subject": "{{ incident.labels.team }}"}}
    harness.connector = dataclasses.replace(harness.connector, settings={
        **harness.connector.settings, "requests": requests})
    with pytest.raises(ToolFailed) as failed:
        harness.push(incident(labels={}), event(EventType.INCIDENT_CREATED))
    assert not failed.value.retryable
    assert "settings.requests.incident.created.body.subject" in failed.value.detail
    assert "'dict object' has no attribute 'team'" in failed.value.detail


def test_rendering_never_stalls_the_event_loop(helpdesk: FakeHelpdesk) -> None:
    """A template that runs to its budget renders in a thread: other connectors' calls
    on the same loop go on meanwhile."""
    harness = helpdesk_harness(helpdesk)
    requests = dict(harness.connector.settings["requests"])
    requests["incident.created"] = {**requests["incident.created"], "body": {
        "subject": '{% for i in range(100) %}{% for c in "x" * 5000 %}'
                   '{% set s = ("y" * 20000) | replace("y", "zz") %}{% endfor %}{% endfor %}'}}
    harness.connector = dataclasses.replace(harness.connector, settings={
        **harness.connector.settings, "requests": requests})
    gaps: list[float] = []

    async def main() -> None:
        async def tick(stop: asyncio.Event) -> None:
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        stop = asyncio.Event()
        ticker = asyncio.create_task(tick(stop))
        http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"))
        try:
            with pytest.raises(ToolFailed, match="longer than 2 s"):
                await harness.driver.push(SyncContext(
                    connector=harness.connector, incident=incident(), link=None, http=http,
                    now=NOW, incident_url=INCIDENT_URL, event=None))
        finally:
            stop.set()
            await ticker
            await http.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert gaps, "the event loop never ran while the template rendered"
    assert max(gaps) < 0.5, max(gaps)


# -- pull -----------------------------------------------------------------------------

def test_pull_maps_status_assignee_and_peoples_notes(helpdesk: FakeHelpdesk) -> None:
    harness = helpdesk_harness(helpdesk)
    harness.push(incident(), event(EventType.INCIDENT_CREATED))
    harness.push(incident(), event(EventType.INCIDENT_COMMENT_ADDED, comment={
        "id": "tle_1", "body": "Rolled back.", "actor": "dana"}))
    helpdesk.move_as("T-1001", "in_progress")
    helpdesk.assign_as("T-1001", "Carol")
    helpdesk.note_as("T-1001", "Looking at the load balancer.", by="Carol")

    pulled = harness.pull(incident())

    assert pulled.status is not None and pulled.status.value == "acknowledged"
    assert pulled.assignee == "Carol"
    assert [(item.id, item.author, item.body) for item in pulled.comments] == [
        ("N-2", "Carol", "Looking at the load balancer.")]
    assert pulled.summary == "T-1001 is in_progress, assigned to Carol, 1 comment from people"
    assert sent(helpdesk)[-1][:2] == ("GET", "/api/tickets/T-1001")


def test_pull_reads_comments_with_a_request_of_their_own(github: FakeGitHub) -> None:
    harness = github_harness(github)
    harness.push(incident(), event(EventType.INCIDENT_CREATED))
    harness.push(incident(), event(EventType.INCIDENT_COMMENT_ADDED, comment={
        "id": "tle_1", "body": "Rolled back.", "actor": "dana"}))
    github.close_as(1)
    github.assign_as(1, "carol")
    github.comment_as(1, "Closing: fixed by the rollback.", by="carol")
    github.forget_requests()

    pulled = harness.pull(incident())

    assert [(method, path) for method, path, _ in sent(github)] == [
        ("GET", "/repos/acme/ops/issues/1"),
        ("GET", "/repos/acme/ops/issues/1/comments?per_page=100")]
    assert pulled.status is not None and pulled.status.value == "resolved"
    assert pulled.assignee == "carol"
    assert [(item.author, item.body) for item in pulled.comments] == [
        ("carol", "Closing: fixed by the rollback.")]


def test_pull_without_a_fetch_request_reads_nothing(helpdesk: FakeHelpdesk) -> None:
    harness = helpdesk_harness(helpdesk, fetch=None, hook=None, hmac=None)
    harness.push(incident(), event(EventType.INCIDENT_CREATED))
    helpdesk.forget_requests()

    pulled = harness.pull(incident())

    assert pulled.summary == "" and pulled.status is None and is_unset(pulled.assignee)
    assert sent(helpdesk) == []


# -- webhooks -------------------------------------------------------------------------

def read(harness: Harness, headers: dict[str, str], body: bytes) -> Any:
    driver = HttpDriver()
    return driver.read_hook(harness.connector, headers, body, datetime.now(UTC))


def test_a_signed_webhook_names_the_ticket_and_the_delivery(helpdesk: FakeHelpdesk
                                                            ) -> None:
    harness = helpdesk_harness(helpdesk)
    webhook = helpdesk.webhook("ticket.updated", "T-1001", {"name": "Bob", "type": "agent"})

    notice = read(harness, webhook.headers, webhook.body)

    assert notice.external_id == "T-1001"
    assert notice.delivery_id == webhook.headers["X-Helpdesk-Delivery"]
    assert not notice.from_interlock


def test_forged_stale_or_unsigned_webhooks_are_refused(helpdesk: FakeHelpdesk) -> None:
    harness = helpdesk_harness(helpdesk)
    actor = {"name": "Bob", "type": "agent"}
    forged = helpdesk.webhook("ticket.updated", "T-1001", actor, secret="guessed")
    stale = helpdesk.webhook("ticket.updated", "T-1001", actor,
                             timestamp=int(time.time()) - 3600)
    good = helpdesk.webhook("ticket.updated", "T-1001", actor)
    unsigned = {name: value for name, value in good.headers.items()
                if name != "X-Helpdesk-Signature"}
    tampered = good.body.replace(b"T-1001", b"T-1002")

    for headers, body, reason in ((forged.headers, forged.body, "does not match"),
                                  (stale.headers, stale.body, "away from now"),
                                  (unsigned, good.body, "no X-Helpdesk-Signature"),
                                  (good.headers, tampered, "does not match")):
        with pytest.raises(Unauthenticated, match=reason):
            read(harness, headers, body)


def test_github_signatures_are_checked_as_github_documents(github: FakeGitHub) -> None:
    harness = github_harness(github)
    github.issues[7] = fake_github.Issue(id=1, number=7, title="t", body=None,
                                         author="alice", labels=[])
    webhook = github.close_as(7)

    notice = read(harness, webhook.headers, webhook.body)
    assert (notice.external_id, notice.from_interlock) == ("7", False)
    assert notice.delivery_id == webhook.headers["X-GitHub-Delivery"]
    sha1_only = {name: value for name, value in webhook.headers.items()
                 if name != "X-Hub-Signature-256"}
    with pytest.raises(Unauthenticated, match="no X-Hub-Signature-256"):
        read(harness, sha1_only, webhook.body)


def test_changes_by_interlocks_own_account_are_flagged(helpdesk: FakeHelpdesk) -> None:
    harness = helpdesk_harness(helpdesk)
    webhook = helpdesk.webhook("ticket.updated", "T-1001", INTEGRATION)
    assert read(harness, webhook.headers, webhook.body).from_interlock


def test_pings_are_ignored_and_bad_json_is_a_bad_request(helpdesk: FakeHelpdesk) -> None:
    harness = helpdesk_harness(helpdesk)
    ping = helpdesk.webhook("ping", None, {"name": "Helpdesk", "type": "system"})
    notice = read(harness, ping.headers, ping.body)
    assert notice.external_id is None and "hook.when" in (notice.ignored or "")

    unsigned = helpdesk_harness(helpdesk, hmac=None)
    with pytest.raises(BadRequest):
        read(unsigned, {}, b"{not json")
    without_hook = helpdesk_harness(helpdesk, hmac=None, hook=None)
    with pytest.raises(NotFound, match="takes no webhooks"):
        read(without_hook, ping.headers, ping.body)
