"""The ServiceNow driver against a loopback instance (tests/support/fake_servicenow.py)
through the real tool HTTP client: what Interlock writes to the incident table,
request by request, and what it reads back from records, journal entries and the
Business Rule's calls."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from interlock.connectors.servicenow import ServiceNowDriver
from interlock.connectors.servicenow.plugin import PLUGIN
from interlock.domain import incidents as rules
from interlock.domain.connectors import Connector, Link
from interlock.domain.errors import BadRequest, InvalidInput, ToolFailed, Unauthenticated
from interlock.domain.events import Event, EventType, Origin, OriginKind
from interlock.domain.incidents import Incident, Severity, Status, Visibility
from interlock.domain.targets import parse_allowed_networks
from interlock.ports.connector import ConnectorDriver, PullResult, PushResult, SyncContext
from interlock.worker.tool_http import AiohttpToolHttp
from tests.support.fake_servicenow import (
    BETH,
    CLIENT_ID,
    CLIENT_SECRET,
    DAVID,
    HOOK_SECRET,
    INTEGRATION,
    FakeServiceNow,
)

T = TypeVar("T")
NOW = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
INCIDENT_URL = "https://interlock.example/incidents/INC-7"
DESCRIPTION = f"Error rate above 5% on /pay.\n\nOpen INC-7 in Interlock: {INCIDENT_URL}"


@pytest.fixture
def servicenow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow() as fake:
        yield fake
    assert fake.violations == [], "writes the incident table would not take"


class Harness:
    """Plays the sync service's part: keeps the link state between calls."""

    def __init__(self, servicenow: FakeServiceNow, driver: ServiceNowDriver | None = None,
                 credentials: dict[str, str] | None = None, **settings: Any) -> None:
        self.driver: ConnectorDriver = driver or ServiceNowDriver()
        self.connector = Connector(
            id="con_sn", name="ServiceNow", kind="servicenow",
            settings={**PLUGIN.default_settings(), "base_url": servicenow.url,
                      "username": INTEGRATION.user_name, **settings},
            credentials=credentials or {"secret": INTEGRATION.password,
                                        "hook_secret": HOOK_SECRET},
            mapping=PLUGIN.default_mapping, filter=None, enabled=True,
            created_at=NOW, updated_at=NOW)
        self.link: Link | None = None

    def push(self, incident: Incident, event: Event | None = None) -> PushResult:
        result = self._run(lambda ctx: self.driver.push(ctx), incident, event)
        if result.link is not None:
            old = self.link.state if self.link else {}
            self.link = Link(id="lnk_1", connector_id="con_sn", incident_id=incident.id,
                             kind=result.link.kind, external_id=result.link.external_id,
                             url=result.link.url, state={**old, **result.link.state},
                             created_at=NOW, updated_at=NOW)
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


def writes(servicenow: FakeServiceNow) -> list[tuple[str, str, Any]]:
    return [(method, path, body) for method, path, _, body in servicenow.requests
            if method != "GET"]


# -- push -----------------------------------------------------------------------------

def test_push_creates_the_record_with_a_correlation_id(servicenow: FakeServiceNow) -> None:
    harness = Harness(servicenow, caller_id=BETH.sys_id, assignment_group="Service Desk")
    result = harness.push(incident())

    (find_method, find_path, find_query, _), create = servicenow.requests
    assert (find_method, find_path) == ("GET", "/api/now/table/incident")
    assert find_query["sysparm_query"] == "correlation_id=inc_1"
    assert create[:3] == ("POST", "/api/now/table/incident",
                          {"sysparm_fields": "sys_id,number,state",
                           "sysparm_exclude_reference_link": "true"})
    assert create[3] == {
        "short_description": "[INC-7] Checkout is failing", "description": DESCRIPTION,
        "urgency": "1", "impact": "1", "correlation_id": "inc_1",
        "correlation_display": "Interlock", "caller_id": BETH.sys_id,
        "assignment_group": "Service Desk"}
    record = servicenow.only()
    assert (record["priority"], record["state"], record["sys_created_by"]) == (
        "1", "1", INTEGRATION.user_name)
    assert result.link is not None
    assert (result.link.kind, result.link.external_id, result.link.url) == (
        "servicenow_incident", record["sys_id"],
        f"{servicenow.url}/incident.do?sys_id={record['sys_id']}")
    assert result.notes == [f"ServiceNow incident {record['number']} created"]
    assert result.link.state["seen"] == {"status": "triggered", "assignee": None}


def test_severity_sets_urgency_and_impact_and_a_private_incident_says_nothing(
        servicenow: FakeServiceNow) -> None:
    Harness(servicenow).push(incident(severity=Severity.MEDIUM))
    Harness(servicenow).push(dataclasses.replace(
        incident(visibility=Visibility.PRIVATE), id="inc_2"))

    (_, _, medium), (_, _, private) = writes(servicenow)
    assert (medium["urgency"], medium["impact"]) == ("2", "2")
    assert private == {"short_description": "INC-7: private incident",
                       "description": f"Open INC-7 in Interlock: {INCIDENT_URL}",
                       "correlation_id": "inc_2", "correlation_display": "Interlock"}


def test_acknowledge_and_resolve_move_the_state_with_close_code_and_notes(
        servicenow: FakeServiceNow) -> None:
    harness = Harness(servicenow)
    opened = incident()
    harness.push(opened)
    sys_id = servicenow.only()["sys_id"]
    servicenow.forget_requests()

    harness.push(opened)
    assert servicenow.requests == []
    acked = moved(opened, rules.acknowledge)
    harness.push(acked)
    harness.push(moved(acked, rules.resolve))

    path = f"/api/now/table/incident/{sys_id}"
    assert writes(servicenow) == [
        ("PATCH", path, {"state": "2"}),
        ("PATCH", path, {"state": "6", "close_code": "Solution provided",
                         "close_notes": "Resolved in Interlock (INC-7)."}),
    ]
    assert servicenow.only()["state"] == "6"
    assert servicenow.only()["active"] == "false"


def test_state_values_are_the_instance_own() -> None:
    renumbered = {"10": "New", "20": "In Progress", "30": "On Hold", "60": "Resolved",
                  "70": "Closed", "80": "Canceled"}
    with FakeServiceNow(states=renumbered) as servicenow:
        harness = Harness(servicenow, state_new=10, state_in_progress=20, state_on_hold=30,
                          state_resolved=60, state_closed=70, state_canceled=80)
        harness.push(incident())
        harness.push(moved(incident(), rules.acknowledge))
        assert servicenow.only()["state"] == "20"
        servicenow.update_as(servicenow.only()["sys_id"], state="30")
        assert harness.pull(incident()).status is Status.ACKNOWLEDGED
        servicenow.update_as(servicenow.only()["sys_id"], state="70",
                             close_code="Duplicate", close_notes="dup")
        assert harness.pull(incident()).status is Status.RESOLVED
        assert servicenow.violations == []


def test_comments_go_to_the_configured_journal(servicenow: FakeServiceNow) -> None:
    harness = Harness(servicenow)
    harness.push(incident())
    harness.push(incident(), comment_event("rolled back to v41"))
    sys_id = servicenow.only()["sys_id"]
    assert servicenow.notes_of(sys_id) == [(INTEGRATION.user_name, "Dana: rolled back to v41")]

    public = Harness(servicenow, comment_field="comments")
    public.link = harness.link
    public.push(incident(), comment_event("customers see this"))
    assert servicenow.notes_of(sys_id, "comments") == [
        (INTEGRATION.user_name, "Dana: customers see this")]

    private = Harness(servicenow)
    secret = dataclasses.replace(incident(visibility=Visibility.PRIVATE), id="inc_9")
    private.push(secret)
    servicenow.forget_requests()
    private.push(secret, comment_event("customer data in bucket x"))
    assert servicenow.requests == []


def test_a_create_retried_after_a_lost_answer_finds_the_record(
        servicenow: FakeServiceNow) -> None:
    harness = Harness(servicenow)
    harness.push(incident())
    harness.link = None

    result = harness.push(incident())

    assert len(servicenow.records) == 1
    assert result.link is not None and result.link.external_id == servicenow.only()["sys_id"]
    assert result.summary.startswith("found ServiceNow incident")


def test_servicenow_refusals_are_said_in_its_words(servicenow: FakeServiceNow) -> None:
    harness = Harness(servicenow, close_code="")
    opened = incident()
    harness.push(opened)

    with pytest.raises(ToolFailed) as failed:
        harness.push(moved(opened, rules.resolve))
    assert not failed.value.retryable
    assert "Data Policy Exception" in failed.value.detail
    assert "Resolution code" in failed.value.detail


def test_a_rate_limit_fails_the_job_with_its_retry_after(servicenow: FakeServiceNow) -> None:
    harness = Harness(servicenow)
    servicenow.rate_limit(1, retry_after=7)

    with pytest.raises(ToolFailed) as failed:
        harness.push(incident())
    assert failed.value.retryable and failed.value.retry_after == 7
    assert servicenow.records == {}


def test_oauth_signs_in_once_and_again_when_the_token_is_refused(
        servicenow: FakeServiceNow) -> None:
    driver = ServiceNowDriver()
    harness = Harness(servicenow, driver, {"secret": CLIENT_SECRET, "hook_secret": HOOK_SECRET},
                      auth="oauth", client_id=CLIENT_ID, username="",
                      integration_user=INTEGRATION.user_name)
    harness.push(incident())
    harness.push(moved(incident(), rules.acknowledge))
    assert servicenow.token_requests == 1

    servicenow.tokens.clear()  # revoked in ServiceNow
    harness.push(moved(moved(incident(), rules.acknowledge), rules.resolve))
    assert servicenow.token_requests == 2
    assert servicenow.only()["state"] == "6"

    wrong = Harness(servicenow, ServiceNowDriver(), {"secret": "nope", "hook_secret": "x"},
                    auth="oauth", client_id=CLIENT_ID, integration_user="someone")
    with pytest.raises(ToolFailed, match="refused the OAuth client credentials"):
        wrong.push(dataclasses.replace(incident(), id="inc_5"))


# -- pull -----------------------------------------------------------------------------

def test_pull_reads_state_assignee_and_work_notes_from_people(
        servicenow: FakeServiceNow) -> None:
    harness = Harness(servicenow)
    harness.push(incident())
    harness.push(incident(), comment_event("rolled back"))
    sys_id = servicenow.only()["sys_id"]
    servicenow.update_as(sys_id, state="2", assigned_to=DAVID.user_name)
    servicenow.work_note_as(sys_id, "restarted the pods", by=BETH)

    pulled = harness.pull(incident())

    assert pulled.status is Status.ACKNOWLEDGED
    assert pulled.assignee == DAVID.name
    [note] = pulled.comments
    assert (note.author, note.body) == (BETH.user_name, "restarted the pods")
    number = servicenow.only()["number"]
    assert pulled.summary == (f"ServiceNow {number} is In Progress, assigned to David Loo, "
                              "1 work notes from people")
    record_read = next(query for method, path, query, _ in servicenow.requests
                       if path.endswith(sys_id) and method == "GET")
    assert record_read == {"sysparm_fields": "sys_id,number,state,assigned_to,sys_updated_by",
                           "sysparm_display_value": "all",
                           "sysparm_exclude_reference_link": "true"}


# -- the Business Rule's calls ----------------------------------------------------------

def test_a_business_rule_call_names_the_record_and_the_change(
        servicenow: FakeServiceNow) -> None:
    harness = Harness(servicenow)
    harness.push(incident())
    sys_id = servicenow.only()["sys_id"]
    call = servicenow.update_as(sys_id, state="2")

    notice = harness.hook(call.headers, call.body)

    assert notice.external_id == sys_id
    assert notice.delivery_id == f"{sys_id}:1"
    assert not notice.from_interlock
    assert notice.description == f"ServiceNow {servicenow.only()['number']} updated by " \
                                 f"{BETH.user_name}"


def test_interlock_own_updates_are_echoes_and_the_secret_is_checked(
        servicenow: FakeServiceNow) -> None:
    harness = Harness(servicenow)
    harness.push(incident())
    sys_id = servicenow.only()["sys_id"]
    own = json.dumps({"table": "incident", "sys_id": sys_id, "sys_mod_count": "0",
                      "sys_updated_by": INTEGRATION.user_name}).encode()
    headers = {"X-Interlock-Secret": HOOK_SECRET}
    assert harness.hook(headers, own).from_interlock

    with pytest.raises(Unauthenticated, match="does not match"):
        harness.hook({"X-Interlock-Secret": "guess"}, own)
    with pytest.raises(Unauthenticated, match="no X-Interlock-Secret"):
        harness.hook({}, own)
    with pytest.raises(BadRequest, match="sys_id"):
        harness.hook(headers, b'{"sys_id": "1^ORDERBYx"}')


# -- configuration --------------------------------------------------------------------

def test_check_names_what_each_auth_needs() -> None:
    with pytest.raises(InvalidInput) as basic:
        PLUGIN.validated({**PLUGIN.default_settings(), "base_url": "https://acme.service-now.com"},
                     {"secret": "pw", "hook_secret": "h"})
    assert basic.value.errors == [{"field": "settings",
                                   "message": "username is required with basic auth"}]
    with pytest.raises(InvalidInput) as oauth:
        PLUGIN.validated({**PLUGIN.default_settings(), "base_url": "nope", "auth": "oauth",
                      "comment_field": "worknotes"}, {"secret": "s3cret-value"})
    fields = {error["field"] for error in oauth.value.errors or []}
    assert fields == {"settings.base_url", "settings.comment_field",
                      "credentials.hook_secret"}
    assert "s3cret-value" not in json.dumps(oauth.value.errors)
    assert PLUGIN.required_credentials() == ("secret", "hook_secret")
