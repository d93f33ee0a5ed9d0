"""Two-way sync with PagerDuty and ServiceNow, end to end, as one test.

Real peers: Debian's Prometheus Alertmanager (alerts in) and a real ``interlock serve``
with its embedded worker, on SQLite and on PostgreSQL. PagerDuty, ServiceNow and Slack
are loopback servers speaking their documented APIs. Both fakes send their webhooks
for *every* change, Interlock's own included, the way PagerDuty's v3 subscription and
the README's ServiceNow Business Rule do: Interlock has to recognise its own changes.

alert from Alertmanager → incident → PagerDuty incident opened, ServiceNow record
created, Slack card posted → a person acknowledges in PagerDuty (signed webhook) →
incident, ServiceNow record and Slack card acknowledged, nothing written back to
PagerDuty → a person resolves the record in ServiceNow (Business Rule call) →
incident, PagerDuty incident and card resolved, nothing written back to ServiceNow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.alertmanager import RunningAlertmanager, alert
from tests.support.fake_pagerduty import ALICE, BOT, SERVICE_ID, WEBHOOK_SECRET, FakePagerDuty
from tests.support.fake_servicenow import BETH, HOOK_SECRET, INTEGRATION, FakeServiceNow
from tests.support.fake_slack import SIGNING_SECRET, TOKEN, FakeSlack
from tests.support.server import KEY_LINE, serving
from tests.support.waiting import eventually

SETTINGS = {"INTERLOCK_ALLOWED_TARGETS": "127.0.0.0/8",
            "INTERLOCK_SECRET_KEY": "acceptance-secret",
            "INTERLOCK_WORKER_POLL_SECONDS": "0.2"}


def test_alert_to_pagerduty_and_servicenow_and_back(database_url: str, tmp_path: Path) -> None:
    with (serving(database_url, tmp_path, "interlock", SETTINGS) as server,
          FakePagerDuty() as pagerduty, FakeServiceNow() as servicenow, FakeSlack() as slack):
        (secret,) = KEY_LINE.findall(server.output())
        api = httpx.Client(base_url=server.base_url, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
        source = api.post("/api/v1/sources", json={
            "name": "alertmanager", "kind": "alertmanager"}).json()
        connectors = _connect(api, pagerduty, servicenow, slack)
        pagerduty.subscribe(f"{server.base_url}/hooks/{connectors['pagerduty']['id']}")
        servicenow.subscribe(f"{server.base_url}/hooks/{connectors['servicenow']['id']}")

        def idle() -> bool:
            return all(api.get(f"/api/v1/connectors/{connector['id']}").json()
                       ["queue"]["pending"] == 0 for connector in connectors.values())

        def incident_now() -> dict[str, Any]:
            found: dict[str, Any] = api.get(f"/api/v1/incidents/{incident['id']}").json()
            return found

        def timeline(kind: str) -> list[dict[str, Any]]:
            entries = api.get(f"/api/v1/incidents/{incident['id']}/timeline").json()["data"]
            return [entry for entry in entries if entry["kind"] == kind]

        def activity(kind: str) -> list[str]:
            rows = api.get(f"/api/v1/connectors/{connectors[kind]['id']}/activity",
                           params={"limit": 100}).json()["data"]
            return [row["summary"] for row in rows]

        with RunningAlertmanager(source["ingest_url"], username="alertmanager",
                                 password=source["token"]) as alertmanager:
            # 1. An alert from Alertmanager declares an incident …
            alertmanager.post_alerts([alert("HighErrorRate", service="checkout",
                                            severity="critical", instance="web-1")])
            incident = eventually(lambda: next(iter(
                api.get("/api/v1/incidents").json()["data"]), None), "incident declared")

        # 2. … which appears in PagerDuty, ServiceNow and Slack, once each.
        eventually(lambda: pagerduty.incidents and servicenow.records
                   and slack.channels["C0INCIDENT"] and idle(), "incident everywhere")
        eventually(lambda: len(pagerduty.deliveries) >= 1 and len(servicenow.deliveries) >= 1
                   and idle(), "the tools' own webhooks answered")
        opened = pagerduty.only()
        record = servicenow.only()
        assert opened.title == f"[{incident['reference']}] {incident['title']}"
        assert (opened.urgency, opened.incident_key, opened.status) == (
            "high", incident["id"], "triggered")
        assert (record["correlation_id"], record["urgency"], record["impact"]) == (
            incident["id"], "1", "1")
        assert record["short_description"] == opened.title
        links = api.get(f"/api/v1/incidents/{incident['id']}/links").json()["data"]
        assert {link["kind"]: link["external_id"] for link in links} == {
            "pagerduty_incident": opened.id, "servicenow_incident": record["sys_id"],
            "slack_message": f"C0INCIDENT:{slack.channels['C0INCIDENT'][0].ts}"}

        # 3. A person acknowledges it in PagerDuty; PagerDuty sends a signed webhook.
        pagerduty.forget_requests()
        servicenow.forget_requests()
        slack.clear()
        acknowledged_hook = pagerduty.acknowledge_as(opened.id, by=ALICE)

        acked = eventually(lambda: (lambda now: now if now["status"] == "acknowledged"
                                    else None)(incident_now()), "acknowledged from PagerDuty")
        eventually(lambda: servicenow.only()["state"] == "2" and idle(),
                   "ServiceNow in progress")
        eventually(lambda: servicenow.deliveries and idle(), "ServiceNow's echo answered")
        assert acked["assignee"] == ALICE.name  # PagerDuty owns the assignee
        [ack] = timeline("incident.acknowledged")
        assert ack["origin"]["id"] == connectors["pagerduty"]["id"]
        # PagerDuty was read, never written: its own change is not sent back to it.
        assert all(item.method == "GET" for item in pagerduty.requests), pagerduty.calls()
        assert pagerduty.deliveries == [("incident.acknowledged", 200)]
        # ServiceNow got one PATCH, and its Business Rule's call about it was an echo.
        patches = [body for method, _, _, body in servicenow.requests if method == "PATCH"]
        assert patches == [{"state": "2"}]
        assert any("made by Interlock itself" in line for line in activity("servicenow"))
        assert any(method == "chat.update" and "acknowledged" in call["text"]
                   for method, call in slack.calls())

        # 4. A person resolves the record in ServiceNow; its Business Rule calls the hook.
        pagerduty.forget_requests()
        servicenow.forget_requests()
        slack.clear()
        resolved_call = servicenow.update_as(record["sys_id"], by=BETH, state="6",
                                             close_code="Solution provided",
                                             close_notes="Rolled back v42")

        eventually(lambda: incident_now()["status"] == "resolved", "resolved from ServiceNow")
        eventually(lambda: pagerduty.only().status == "resolved" and idle(),
                   "PagerDuty resolved")
        eventually(lambda: pagerduty.deliveries and idle(), "PagerDuty's echo answered")
        [resolved] = timeline("incident.resolved")
        resolved_version = incident_now()["version"]
        assert resolved["origin"]["id"] == connectors["servicenow"]["id"]
        assert all(method == "GET" for method, _, _, _ in servicenow.requests)
        assert servicenow.only()["state"] == "6"
        puts = [item.json for item in pagerduty.requests if item.method == "PUT"]
        assert puts == [{"incident": {"type": "incident_reference", "status": "resolved"}}]
        assert pagerduty.deliveries == [("incident.resolved", 200)]
        assert any("made by Interlock itself" in line for line in activity("pagerduty"))
        assert any(method == "chat.update" and "resolved" in call["text"]
                   for method, call in slack.calls())

        # No duplicates anywhere: one incident in each tool, one of each status change.
        assert len(pagerduty.incidents) == 1 and len(servicenow.records) == 1
        assert len(slack.channels["C0INCIDENT"]) == 1
        assert len(api.get("/api/v1/incidents").json()["data"]) == 1
        assert len(timeline("incident.acknowledged")) == 1
        assert servicenow.violations == [] and pagerduty.violations == []

        # The same deliveries again (PagerDuty retries; an outbound message is resent)
        # are recognised as duplicates and change nothing.
        for kind, again in (("pagerduty", acknowledged_hook), ("servicenow", resolved_call)):
            answer = httpx.post(f"{server.base_url}/hooks/{connectors[kind]['id']}",
                                headers=again.headers, content=again.body, timeout=10)
            assert answer.status_code == 200, answer.text
            assert "duplicate delivery" in activity(kind)[0]
        assert incident_now()["version"] == resolved_version
        server.stop()


def _connect(api: httpx.Client, pagerduty: FakePagerDuty, servicenow: FakeServiceNow,
             slack: FakeSlack) -> dict[str, dict[str, Any]]:
    bodies: dict[str, dict[str, Any]] = {
        "pagerduty": {"settings": {"api_base": pagerduty.url, "service_id": SERVICE_ID,
                                   "from_email": BOT.email},
                      "credentials": {"api_key": pagerduty.api_key,
                                      "webhook_secret": WEBHOOK_SECRET}},
        "servicenow": {"settings": {"base_url": servicenow.url,
                                    "username": INTEGRATION.user_name},
                       "credentials": {"secret": INTEGRATION.password,
                                       "hook_secret": HOOK_SECRET}},
        "slack": {"settings": {"channel": "C0INCIDENT", "api_base": slack.api_base},
                  "credentials": {"bot_token": TOKEN, "signing_secret": SIGNING_SECRET}},
    }
    made = {}
    for kind, body in bodies.items():
        response = api.post("/api/v1/connectors", json={"name": kind, "kind": kind, **body})
        assert response.status_code == 201, response.text
        made[kind] = response.json()
        assert "credentials" not in made[kind]
    return made
