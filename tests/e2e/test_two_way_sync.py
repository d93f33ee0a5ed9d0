"""The two-way sync acceptance scenario, end to end, as one test.

Real peers: Debian's Prometheus Alertmanager (alerts in, silences out) and a real
``interlock serve`` with its embedded worker, on SQLite and on PostgreSQL. Jira Cloud
and Slack are loopback servers speaking their documented APIs; what Interlock sends
them is asserted request by request.

alert from Alertmanager → incident → Jira issue created, Slack card posted →
Slack "Acknowledge" button → silence created, Jira transitioned, card redrawn, nothing
echoed back to Slack → Jira issue moved to Done → incident resolved, silence expired,
card updated.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.alertmanager import RunningAlertmanager, alert
from tests.support.fake_jira import FakeJira
from tests.support.fake_slack import (
    SIGNING_SECRET,
    TOKEN,
    FakeSlack,
    button_payload,
    button_request,
)
from tests.support.server import KEY_LINE, serving
from tests.support.waiting import eventually

SETTINGS = {"INTERLOCK_ALLOWED_TARGETS": "127.0.0.0/8",
            "INTERLOCK_SECRET_KEY": "acceptance-secret",
            "INTERLOCK_WORKER_POLL_SECONDS": "0.2"}



def test_alert_to_jira_and_slack_and_back(database_url: str, tmp_path: Path) -> None:
    with (serving(database_url, tmp_path, "interlock", SETTINGS) as server,
          FakeJira() as jira, FakeSlack() as slack):
        (secret,) = KEY_LINE.findall(server.output())
        api = httpx.Client(base_url=server.base_url, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
        source = api.post("/api/v1/sources", json={
            "name": "alertmanager", "kind": "alertmanager"}).json()

        with RunningAlertmanager(source["ingest_url"], username="alertmanager",
                                 password=source["token"]) as alertmanager:
            connectors = _connect(api, alertmanager, jira, slack)

            def active_silences() -> list[dict[str, Any]]:
                return [item for item in alertmanager.silences()
                        if item["status"]["state"] == "active"]

            def idle() -> bool:
                """Every connector's queue is empty (nothing pending)."""
                return all(api.get(f"/api/v1/connectors/{connector['id']}").json()
                           ["queue"]["pending"] == 0 for connector in connectors.values())

            # 1. An alert from Alertmanager declares an incident.
            alertmanager.post_alerts([
                alert("HighErrorRate", service="checkout", severity="critical",
                      instance=instance) for instance in ("web-1", "web-2")])
            incident = eventually(lambda: next(iter(
                api.get("/api/v1/incidents").json()["data"]), None), "incident declared")

            # 2. A Jira issue is created and a Slack card posted.
            eventually(lambda: jira.issues and slack.channels["C0INCIDENT"] and idle(),
                       "issue created and card posted")
            [issue] = jira.issues.values()
            assert issue.fields["summary"] == incident["title"]
            assert issue.fields["priority"] == "Highest"
            [card] = slack.channels["C0INCIDENT"]
            assert incident["reference"] in card.text
            links = api.get(f"/api/v1/incidents/{incident['id']}/links").json()["data"]
            assert {link["kind"]: link["external_id"] for link in links} == {
                "jira_issue": issue.key, "slack_message": f"C0INCIDENT:{card.ts}"}

            # 3. Someone presses "Acknowledge" on the card; Slack wants an answer in 3 s.
            slack.clear()
            jira.forget_requests()
            headers, body = button_request(
                button_payload("interlock.acknowledge", incident["id"], username="alice"),
                timestamp=int(time.time()))
            started = time.monotonic()
            pressed = httpx.post(f"{server.base_url}/hooks/{connectors['slack']['id']}",
                                 headers=headers, content=body, timeout=10)
            assert pressed.status_code == 200, pressed.text
            assert time.monotonic() - started < 3.0
            assert pressed.content == b""

            acked = eventually(lambda: (lambda current: current if current["status"] ==
                                        "acknowledged" else None)(
                api.get(f"/api/v1/incidents/{incident['id']}").json()), "acknowledged")
            assert acked["status"] == "acknowledged"
            # → the Alertmanager silence is created, the Jira issue transitioned …
            [silence] = eventually(active_silences, "silence created")
            assert {m["name"]: m["value"] for m in silence["matchers"]} == {
                "alertname": "HighErrorRate", "service": "checkout", "severity": "critical"}
            eventually(lambda: jira.status_of(issue.key) == "In Progress", "Jira in progress")
            eventually(idle, "queues drained")
            # … and the card redrawn in place, with no message echoed back to Slack.
            assert [method for method, _ in slack.calls()] == ["chat.update"]
            [(_, update)] = slack.calls()
            assert update["ts"] == card.ts and "acknowledged" in update["text"]
            assert not any(reply for message in slack.channels["C0INCIDENT"]
                           for reply in message.replies
                           if "cknowledged" in reply.text)
            timeline = api.get(f"/api/v1/incidents/{incident['id']}/timeline").json()["data"]
            ack = next(entry for entry in timeline if entry["kind"] == "incident.acknowledged")
            assert ack["origin"]["kind"] == "connector"
            assert ack["origin"]["id"] == connectors["slack"]["id"]
            assert ack["origin"]["actor"] == "alice"

            # 4. The Jira issue is moved to Done by a person in Jira.
            slack.clear()
            jira.forget_requests()
            webhook = jira.transition_as(issue.key, "Done")
            delivered = httpx.post(f"{server.base_url}/hooks/{connectors['jira']['id']}",
                                   headers=webhook.headers, content=webhook.body)
            assert delivered.status_code == 200, delivered.text

            # → the incident is resolved, the silence expired, the card updated.
            eventually(lambda: api.get(f"/api/v1/incidents/{incident['id']}").json()
                       ["status"] == "resolved", "resolved from Jira")
            eventually(lambda: alertmanager.silence(silence["id"])["status"]["state"]
                       == "expired", "silence expired")
            eventually(idle, "queues drained")
            methods = [method for method, _ in slack.calls()]
            assert methods == ["chat.update", "chat.postMessage"]  # card, then thread
            assert "resolved" in slack.calls()[0][1]["text"]
            assert slack.calls()[1][1]["thread_ts"] == card.ts
            # Jira was read (its current state), never written back to: no echo.
            assert all(method == "GET" for method, _ in jira.calls()), jira.calls()
            assert jira.status_of(issue.key) == "Done"

            # The same webhook again (Jira retries) changes nothing.
            again = httpx.post(f"{server.base_url}/hooks/{connectors['jira']['id']}",
                               headers=webhook.headers, content=webhook.body)
            assert again.status_code == 200
            activity = api.get(f"/api/v1/connectors/{connectors['jira']['id']}/activity"
                               ).json()["data"]
            assert "duplicate delivery" in activity[0]["summary"]
        server.stop()


def _connect(api: httpx.Client, alertmanager: RunningAlertmanager, jira: FakeJira,
             slack: FakeSlack) -> dict[str, dict[str, Any]]:
    bodies: dict[str, dict[str, Any]] = {
        "alertmanager": {"settings": {"url": alertmanager.url, "duration_minutes": 120}},
        "jira": {"settings": {"base_url": jira.url, "project_key": "OPS"},
                 "credentials": {"email": jira.email, "api_token": jira.api_token,
                                 "webhook_secret": jira.webhook_secret}},
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
