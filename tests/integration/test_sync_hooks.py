"""Inbound tool webhooks and two-way field ownership, through the API and the sync
queue, against the loopback Jira and Slack.

Forged or stale signatures are refused before anything is recorded; duplicates and
changes made by Interlock's own account are not applied again; arrival order does not
matter because the current state is fetched; each side owns its fields; a tool down
for an hour catches up without holding up another connector.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.conftest import make_key
from tests.support.fake_jira import ALICE, BOT, FakeJira, Webhook
from tests.support.fake_slack import (
    SIGNING_SECRET,
    TOKEN,
    FakeSlack,
    button_payload,
    button_request,
    slash_command_fields,
    slash_command_request,
)
from tests.support.ingest import am_alert, am_payload, basic, create_source, process_all
from tests.support.sync import sync_all


@pytest.fixture
def admin(hub: Container) -> dict[str, str]:
    return make_key(hub, Scope.ADMIN, name="admin")


def _connector(client: TestClient, admin: dict[str, str], kind: str, **body: Any
               ) -> dict[str, Any]:
    response = client.post("/api/v1/connectors", headers=admin,
                           json={"name": kind, "kind": kind, **body})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _jira(client: TestClient, admin: dict[str, str], jira: FakeJira, **extra: Any
          ) -> dict[str, Any]:
    return _connector(client, admin, "jira", settings={"base_url": jira.url,
                                                       "project_key": "OPS"},
                      credentials={"email": jira.email, "api_token": jira.api_token,
                                   "webhook_secret": jira.webhook_secret}, **extra)


def _slack(client: TestClient, admin: dict[str, str], slack: FakeSlack) -> dict[str, Any]:
    return _connector(client, admin, "slack",
                      settings={"channel": "C0INCIDENT", "api_base": slack.api_base},
                      credentials={"bot_token": TOKEN, "signing_secret": SIGNING_SECRET})


def _declare(client: TestClient, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/incidents", headers=admin,
                           json={"title": "Checkout is failing", "severity": "high", **fields})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _incident(client: TestClient, admin: dict[str, str], key: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/api/v1/incidents/{key}", headers=admin).json()
    return found


def _deliver(client: TestClient, connector: dict[str, Any], webhook: Webhook
             ) -> dict[str, Any]:
    response = client.post(f"/hooks/{connector['id']}", headers=webhook.headers,
                           content=webhook.body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _activity(client: TestClient, admin: dict[str, str], connector: dict[str, Any]
              ) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(
        f"/api/v1/connectors/{connector['id']}/activity", headers=admin).json()["data"]
    return found


def test_forged_and_unsigned_jira_webhooks_are_refused_and_not_recorded(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        jira: FakeJira) -> None:
    connector = _jira(hub_client, admin, jira)
    incident = _declare(hub_client, admin)
    sync_all(hub)
    [issue] = jira.issues.values()
    honest = jira.transition_as(issue.key, "Done")
    forged = jira.signed({"webhookEvent": "jira:issue_updated",
                          "issue": {"key": issue.key}}, secret="not-the-secret")
    for headers in (forged.headers,
                    {k: v for k, v in honest.headers.items() if k != "X-Hub-Signature"}):
        response = hub_client.post(f"/hooks/{connector['id']}", headers=headers,
                                   content=honest.body)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    assert sync_all(hub) == 0
    assert _incident(hub_client, admin, incident["id"])["status"] == "triggered"
    assert not any(item["action"] == "webhook" for item in _activity(hub_client, admin,
                                                                        connector))
    missing = hub_client.post("/hooks/con_nope", headers=honest.headers, content=honest.body)
    assert missing.status_code == 404


def test_duplicate_and_out_of_order_webhooks_end_in_jiras_current_state(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        jira: FakeJira) -> None:
    connector = _jira(hub_client, admin, jira)
    incident = _declare(hub_client, admin)
    sync_all(hub)
    [issue] = jira.issues.values()
    in_progress = jira.transition_as(issue.key, "In Progress")
    done = jira.transition_as(issue.key, "Done")
    # Delivered newest first, and the newest twice (Jira retries).
    assert _deliver(hub_client, connector, done)["ok"]
    assert "duplicate" in _deliver(hub_client, connector, done)["message"]
    sync_all(hub)
    assert _incident(hub_client, admin, incident["id"])["status"] == "resolved"
    version = _incident(hub_client, admin, incident["id"])["version"]
    _deliver(hub_client, connector, in_progress)  # late: Jira is Done by now
    sync_all(hub)
    after = _incident(hub_client, admin, incident["id"])
    assert after["status"] == "resolved" and after["version"] == version
    # One resolve, attributed to the connector; never pushed back to Jira.
    timeline = hub_client.get(f"/api/v1/incidents/{incident['id']}/timeline",
                              headers=admin).json()["data"]
    resolves = [entry for entry in timeline if entry["kind"] == "incident.resolved"]
    assert len(resolves) == 1 and resolves[0]["origin"]["id"] == connector["id"]
    assert not any(method == "POST" and path.endswith("/transitions")
                   for method, path in jira.calls()[-3:])


def test_changes_made_by_interlocks_own_jira_account_are_not_applied(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        jira: FakeJira) -> None:
    connector = _jira(hub_client, admin, jira)
    incident = _declare(hub_client, admin)
    hub_client.post(f"/api/v1/incidents/{incident['id']}/acknowledge", headers=admin)
    sync_all(hub)
    [issue] = jira.issues.values()
    assert jira.status_of(issue.key) == "In Progress"
    # The webhook Jira sends for Interlock's own transition comes back in:
    echo = jira.transition_as(issue.key, "In Progress", by=BOT)
    answer = _deliver(hub_client, connector, echo)
    assert "made by Interlock" in answer["message"]
    assert sync_all(hub) == 0


def test_each_side_owns_its_fields_and_comments_go_both_ways(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        jira: FakeJira) -> None:
    connector = _jira(hub_client, admin, jira)
    incident = _declare(hub_client, admin)
    key = incident["id"]
    sync_all(hub)
    [issue] = jira.issues.values()

    # Jira owns the assignee: a person assigns the issue, the incident follows.
    _deliver(hub_client, connector, jira.assign_as(issue.key, ALICE))
    sync_all(hub)
    assert _incident(hub_client, admin, key)["assignee"] == "Alice Example"
    # Interlock owns the title: a change here reaches Jira …
    hub_client.patch(f"/api/v1/incidents/{key}", headers=admin,
                     json={"title": "Checkout is failing for EU customers"})
    sync_all(hub)
    assert jira.issues[issue.key].fields["summary"] == "Checkout is failing for EU customers"
    # … but the assignee set in Interlock is not pushed over Jira's.
    jira.forget_requests()
    hub_client.patch(f"/api/v1/incidents/{key}", headers=admin, json={"assignee": "bob"})
    sync_all(hub)
    assert jira.issues[issue.key].assignee == ALICE
    assert not any(method == "PUT" for method, _ in jira.calls())

    # Comments both ways, each once.
    hub_client.post(f"/api/v1/incidents/{key}/comments", headers=admin,
                    json={"body": "Rolling back the deploy"})
    sync_all(hub)
    assert [c.author for c in jira.issues[issue.key].comments] == [BOT]
    _deliver(hub_client, connector, jira.comment_as(issue.key, "Rollback done, errors gone"))
    sync_all(hub)
    timeline = hub_client.get(f"/api/v1/incidents/{key}/timeline",
                              headers=admin).json()["data"]
    comments = [(entry["body"], entry["origin"].get("actor"))
                for entry in timeline if entry["kind"] == "incident.comment_added"]
    assert comments == [("Rolling back the deploy", None),
                        ("Rollback done, errors gone", "Alice Example")]
    # The comment that came from Jira is not posted back to Jira.
    assert len(jira.issues[issue.key].comments) == 2


def test_jira_down_for_an_hour_catches_up_and_slack_is_not_held_up(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira,
        slack: FakeSlack, manual_clock: ManualClock) -> None:
    jira_connector = _jira(hub_client, admin, jira)
    _slack(hub_client, admin, slack)
    jira.down = True
    incident = _declare(hub_client, admin)
    hub_client.post(f"/api/v1/incidents/{incident['id']}/acknowledge", headers=admin)
    sync_all(hub)
    assert slack.channels["C0INCIDENT"]  # Slack went on without waiting for Jira
    for _ in range(12):  # an hour, five minutes at a time
        manual_clock.advance(timedelta(minutes=5))
        sync_all(hub)
    failures = _activity(hub_client, admin, jira_connector)
    assert failures and all(item["outcome"] == "failed" for item in failures)
    assert "503" in failures[0]["error"]
    assert not jira.issues

    jira.down = False
    manual_clock.advance(timedelta(hours=3))  # past the next retry (2 h ± 20 %)
    sync_all(hub)
    [issue] = jira.issues.values()
    assert jira.status_of(issue.key) == "In Progress"  # it caught up to the current state
    health = hub_client.get(f"/api/v1/connectors/{jira_connector['id']}",
                            headers=admin).json()
    assert health["failing_since"] is None and health["queue"]["pending"] == 0


def test_slack_buttons_and_slash_commands(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        slack: FakeSlack) -> None:
    connector = _slack(hub_client, admin, slack)
    incident = _declare(hub_client, admin)
    sync_all(hub)
    now = int(time.time())

    # A button press answers with an empty 200 and redraws the card, nothing more.
    slack.clear()
    headers, body = button_request(button_payload("interlock.acknowledge", incident["id"],
                                                  username="carol"), timestamp=now)
    pressed = hub_client.post(f"/hooks/{connector['id']}", headers=headers, content=body)
    assert pressed.status_code == 200 and pressed.content == b""
    assert _incident(hub_client, admin, incident["id"])["status"] == "acknowledged"
    sync_all(hub)
    assert [method for method, _ in slack.calls()] == ["chat.update"]

    # A slash command answers the person who typed it, only them.
    fields = slash_command_fields(f"comment {incident['reference']} Paging the DB team")
    headers, body = slash_command_request(fields, timestamp=now)
    answer = hub_client.post(f"/hooks/{connector['id']}", headers=headers, content=body)
    assert answer.json()["response_type"] == "ephemeral"
    assert incident["reference"] in answer.json()["text"]
    usage = hub_client.post(f"/hooks/{connector['id']}", content=slash_command_request(
        slash_command_fields("dance INC-1"), timestamp=now)[1],
        headers=slash_command_request(slash_command_fields("dance INC-1"), timestamp=now)[0])
    assert "usage" in usage.json()["text"]

    # Replayed after Slack's five-minute window, or forged: refused.
    stale_headers, stale_body = button_request(
        button_payload("interlock.resolve", incident["id"]), timestamp=now - 360)
    assert hub_client.post(f"/hooks/{connector['id']}", headers=stale_headers,
                           content=stale_body).status_code == 401
    forged_headers, forged_body = button_request(
        button_payload("interlock.resolve", incident["id"]), timestamp=now, secret="nope")
    assert hub_client.post(f"/hooks/{connector['id']}", headers=forged_headers,
                           content=forged_body).status_code == 401
    assert _incident(hub_client, admin, incident["id"])["status"] == "acknowledged"


def test_private_incidents_reach_tools_as_reference_and_redacted_title(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira,
        slack: FakeSlack) -> None:
    _jira(hub_client, admin, jira)
    _slack(hub_client, admin, slack)
    incident = _declare(hub_client, admin, visibility="private",
                        title="Payroll export leaked", summary="Names and salaries")
    hub_client.post(f"/api/v1/incidents/{incident['id']}/comments", headers=admin,
                    json={"body": "HR informed"})
    sync_all(hub)
    sent = repr([request.json for request in jira.requests]) + repr(slack.calls())
    for secret_text in ("Payroll", "salaries", "HR informed"):
        assert secret_text not in sent
    [issue] = jira.issues.values()
    assert issue.fields["summary"] == f"{incident['reference']}: private incident"


def test_a_jira_webhook_that_never_arrived_is_healed_by_reconciliation(
        hub: Container, hub_client: TestClient, admin: dict[str, str], jira: FakeJira,
        manual_clock: ManualClock) -> None:
    _jira(hub_client, admin, jira)
    incident = _declare(hub_client, admin)
    sync_all(hub)
    [issue] = jira.issues.values()
    jira.transition_as(issue.key, "Done")  # its webhook is lost on the way
    assert hub.sync.reconcile() == 0  # pulled at creation; not due again yet
    manual_clock.advance(timedelta(minutes=6))
    assert hub.sync.reconcile() == 1
    sync_all(hub)
    assert _incident(hub_client, admin, incident["id"])["status"] == "resolved"
    assert hub.sync.reconcile() == 0  # resolved incidents are still watched, not spammed


def test_a_storm_into_one_incident_does_not_post_a_slack_line_per_alert(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        slack: FakeSlack) -> None:
    _slack(hub_client, admin, slack)
    source = create_source(hub_client, admin)

    def fire(*alerts: dict[str, Any]) -> None:
        for alert in alerts:
            response = hub_client.post(source["path"], headers=basic(source["token"]),
                                       json=am_payload(alert))
            assert response.status_code == 202, response.text
        process_all(hub)

    for batch in range(5):  # five rounds of processing, each with alerts joining
        fire(*(am_alert("QueueBacklog", severity="warning", instance=f"w{batch}-{i}")
               for i in range(10)))
    sync_all(hub)
    posted = [body for method, body in slack.calls() if method == "chat.postMessage"]
    card, *lines = posted
    assert "QueueBacklog" in str(card)
    assert lines == [], "alerts that change nothing on the card post nothing"
    # One that raises the severity changes the card: redrawn, with one line saying so.
    slack.clear()
    fire(am_alert("QueueBacklog", severity="critical", instance="w9"))
    sync_all(hub)
    methods = [method for method, _ in slack.calls()]
    assert methods == ["chat.update", "chat.postMessage"], methods
    assert "critical" in str(slack.calls()[1][1])


def test_slack_acts_only_on_incidents_shared_with_it_and_never_on_private_ones(
        hub: Container, hub_client: TestClient, admin: dict[str, str],
        slack: FakeSlack) -> None:
    """A signed command or button press could act on any incident, private ones
    included, and "no incident INC-99999" against success told which ones exist."""
    connector = _connector(
        hub_client, admin, "slack", filter={"service": ["checkout"]},
        settings={"channel": "C0INCIDENT", "api_base": slack.api_base},
        credentials={"bot_token": TOKEN, "signing_secret": SIGNING_SECRET})
    shared = _declare(hub_client, admin, service="checkout")
    private = _declare(hub_client, admin, service="checkout", visibility="private",
                       title="Payroll export leaked")
    elsewhere = _declare(hub_client, admin, service="payroll")
    sync_all(hub)
    now = int(time.time())
    hook = f"/hooks/{connector['id']}"

    sent = iter(range(1000))

    def command(text: str) -> str:
        fields = {**slash_command_fields(text), "trigger_id": f"trigger-{next(sent)}"}
        headers, body = slash_command_request(fields, timestamp=now)
        answer = hub_client.post(hook, headers=headers, content=body)
        assert answer.status_code == 200, answer.text
        text_shown: str = answer.json()["text"]
        return text_shown

    templates = ("comment {} Rotating keys", "ack {}", "reopen {}")
    missing = {template: command(template.format("INC-99999")).replace("INC-99999", "?")
               for template in templates}
    assert "no incident" in missing["ack {}"]
    for refused in (private, elsewhere):
        for template in templates:
            for key in (refused["reference"], refused["id"]):
                answer = command(template.format(key)).replace(key, "?")
                assert answer == missing[template], (template, key)
        headers, body = button_request(button_payload(
            "interlock.resolve", refused["id"], trigger_id=f"trigger-{next(sent)}"),
            timestamp=now)
        pressed = hub_client.post(hook, headers=headers, content=body)
        assert (pressed.status_code, pressed.content) == (200, b"")
        after = _incident(hub_client, admin, refused["id"])
        assert (after["status"], after["version"]) == ("triggered", 1), refused["title"]
    assert shared["reference"] in command(f"ack {shared['reference']}")
    assert _incident(hub_client, admin, shared["id"])["status"] == "acknowledged"
