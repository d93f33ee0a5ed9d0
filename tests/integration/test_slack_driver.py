"""The Slack driver against a Slack Web API on loopback, through the real tool HTTP client.

Each test asserts the exact requests Interlock made to Slack (what a channel would
show) or what it made of a signed request from Slack (what a button or ``/incident``
does), with payload shapes copied from Slack's documentation in tests/fixtures/slack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from interlock.connectors.slack import SlackDriver
from interlock.connectors.slack.cards import card, thread_line
from interlock.connectors.slack.plugin import PLUGIN
from interlock.domain import incidents as rules
from interlock.domain.connectors import Connector, Link
from interlock.domain.errors import InvalidInput, ToolFailed, Unauthenticated
from interlock.domain.events import SYSTEM, Event, EventType, Origin, OriginKind
from interlock.domain.incidents import Incident, Severity, Transition, Visibility
from interlock.domain.targets import parse_allowed_networks
from interlock.ports.connector import (
    LinkWrite,
    PullResult,
    PushResult,
    SyncContext,
    ToolHttp,
)
from interlock.worker.tool_http import AiohttpToolHttp
from tests.support.fake_slack import (
    SIGNING_SECRET,
    TOKEN,
    FakeSlack,
    button_payload,
    button_request,
    slash_command_fields,
    slash_command_request,
)

NOW = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # unix 1700000000
STAMP = int(NOW.timestamp())
URL = "https://interlock.example/incidents/INC-4"
INCIDENT_ID = "inc_01hzy4checkout"
ALICE = Origin(kind=OriginKind.API_KEY, id="key_1", name="alice")
CARD_TS = "1700000000.000100"
T = TypeVar("T")

DRIVER = SlackDriver()



def connector(slack: FakeSlack, **settings: Any) -> Connector:
    return Connector(
        id="con_slack", name="Slack", kind="slack",
        settings={**PLUGIN.default_settings(), "channel": "C0INCIDENT",
                  "api_base": slack.api_base,
                  **settings},
        credentials={"bot_token": TOKEN, "signing_secret": SIGNING_SECRET},
        mapping=PLUGIN.default_mapping, filter=None, enabled=True,
        created_at=NOW, updated_at=NOW)


def incident(**changes: Any) -> Incident:
    declared = rules.declare(
        incident_id=INCIDENT_ID, title="Checkout database down", severity=Severity.HIGH,
        now=NOW, summary="Primary is not accepting writes", service="checkout-db",
        labels={"env": "prod", "team": "payments"})
    return dataclasses.replace(declared, number=4, **changes)


def event(kind: EventType, current: Incident, origin: Origin = ALICE,
          changes: dict[str, Any] | None = None, **data: Any) -> Event:
    return Event(id=f"evt_{kind.value}", type=kind, occurred_at=NOW, origin=origin,
                 incident_id=current.id, incident_version=current.version,
                 data={"incident": rules.to_dict(current), "changes": changes or {}, **data})


def happened(transition: Transition | None, origin: Origin = ALICE,
             **data: Any) -> tuple[Incident, Event]:
    assert transition is not None
    return transition.incident, event(transition.event_type, transition.incident, origin,
                                      transition.changes, **data)


def context(conn: Connector, current: Incident, http: ToolHttp, *,
            link: LinkWrite | None = None, pushed: Event | None = None) -> SyncContext:
    return SyncContext(connector=conn, incident=current, link=_link(link), http=http,
                       now=NOW, incident_url=URL, event=pushed)


def _link(written: LinkWrite | None) -> Link | None:
    if written is None:
        return None
    return Link(id="lnk_1", connector_id="con_slack", incident_id=INCIDENT_ID,
                kind=written.kind, external_id=written.external_id, url=written.url,
                state=written.state, created_at=NOW, updated_at=NOW)


def run(body: Callable[[AiohttpToolHttp], Awaitable[T]]) -> T:
    async def main() -> T:
        http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"))
        try:
            return await body(http)
        finally:
            await http.close()
    return asyncio.run(main())


def push(conn: Connector, current: Incident, pushed: Event | None,
         link: LinkWrite | None = None) -> PushResult:
    return run(lambda http: DRIVER.push(context(conn, current, http, link=link,
                                                pushed=pushed)))


def posted_card(slack: FakeSlack, conn: Connector, current: Incident) -> LinkWrite:
    result = push(conn, current, event(EventType.INCIDENT_CREATED, current))
    assert result.link is not None
    slack.clear()
    return result.link


def button(action_id: str) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id,
            "text": {"type": "plain_text", "text": action_id.split(".")[1].capitalize()},
            "value": INCIDENT_ID}


ACKNOWLEDGE = {**button("interlock.acknowledge"), "style": "primary"}
RESOLVE = button("interlock.resolve")
REOPEN = button("interlock.reopen")


# Pushing: the card, then updates in place with one thread reply each.


def test_first_push_posts_the_card_and_links_the_message(slack: FakeSlack) -> None:
    conn, current = connector(slack), incident()
    result = push(conn, current, event(EventType.INCIDENT_CREATED, current))

    assert slack.calls() == [("chat.postMessage", {
        "channel": "C0INCIDENT",
        "text": "INC-4: Checkout database down (triggered, high)",
        "blocks": [
            {"type": "header",
             "text": {"type": "plain_text", "text": "INC-4: Checkout database down"}},
            {"type": "section",
             "text": {"type": "mrkdwn", "text": "Primary is not accepting writes"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Status*\n:red_circle: Triggered"},
                {"type": "mrkdwn", "text": "*Severity*\nHigh"},
                {"type": "mrkdwn", "text": "*Service*\ncheckout-db"},
                {"type": "mrkdwn", "text": "*Assignee*\n_nobody_"},
            ]},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": "Labels: `env=prod`  `team=payments`"}]},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"<{URL}|Open INC-4 in Interlock>"}]},
            {"type": "actions", "elements": [ACKNOWLEDGE, RESOLVE]},
        ],
        "metadata": {"event_type": "interlock_incident",
                     "event_payload": {"incident_id": INCIDENT_ID}},
    })]
    request = slack.requests[0]
    assert request.method == "POST"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert result.link == LinkWrite(
        kind="slack_message", external_id=f"C0INCIDENT:{CARD_TS}", url=None,
        state={"channel": "C0INCIDENT", "ts": CARD_TS})
    assert result.notes == ("Posted to Slack channel C0INCIDENT",)
    assert [message.ts for message in slack.channels["C0INCIDENT"]] == [CARD_TS]


def test_buttons_follow_the_status() -> None:
    triggered = incident()
    acknowledged = rules.acknowledge(triggered, NOW)
    assert acknowledged is not None
    resolved = rules.resolve(acknowledged.incident, NOW)
    assert resolved is not None
    for current, buttons in ((triggered, [ACKNOWLEDGE, RESOLVE]),
                             (acknowledged.incident, [RESOLVE]),
                             (resolved.incident, [REOPEN])):
        assert card(current, URL).blocks[-1] == {"type": "actions", "elements": buttons}


def test_text_from_people_cannot_ping_or_link() -> None:
    current = incident(title="<!channel> db & <https://evil.example|login>",
                       summary="ping <@U0BOSS>", assignee="<!here>")
    drawn = card(current, URL)
    assert drawn.text == ("INC-4: &lt;!channel&gt; db &amp; "
                          "&lt;https://evil.example|login&gt; (triggered, high)")
    assert drawn.blocks[1]["text"]["text"] == "ping &lt;@U0BOSS&gt;"
    assert drawn.blocks[2]["fields"][3]["text"] == "*Assignee*\n&lt;!here&gt;"


def test_each_change_updates_the_card_in_place_and_replies_once(slack: FakeSlack) -> None:
    slack.burst = 20  # nine changes back to back, faster than the worker would send them
    conn = connector(slack)
    current = incident()
    link = posted_card(slack, conn, current)
    bob_in_jira = Origin(kind=OriginKind.CONNECTOR, id="con_jira", name="Jira", actor="bob")
    alertmanager = Origin(kind=OriginKind.SOURCE, id="src_1", name="prod-alertmanager")
    expected_lines = []

    def step(transition: Transition | None, line: str, origin: Origin = ALICE,
             **data: Any) -> None:
        nonlocal current
        current, pushed = happened(transition, origin, **data)
        slack.clear()
        result = push(conn, current, pushed, link)
        drawn = card(current, URL)
        assert slack.calls() == [
            ("chat.update", {"channel": "C0INCIDENT", "ts": CARD_TS, "text": drawn.text,
                             "blocks": drawn.blocks}),
            ("chat.postMessage", {"channel": "C0INCIDENT", "text": line, "thread_ts": CARD_TS}),
        ]
        assert result.link is not None
        assert result.link.external_id == f"C0INCIDENT:{CARD_TS}"
        expected_lines.append(line)

    step(rules.acknowledge(current, NOW), "Acknowledged by alice (via API)")
    step(rules.update(current, {"severity": Severity.CRITICAL}, NOW),
         "Severity changed from high to critical by alice (via API)")
    step(rules.update(current, {"assignee": "carol"}, NOW),
         "Assigned to carol by alice (via API)")
    step(rules.comment(current, "Rolled back <the> deploy", NOW),
         "bob: Rolled back &lt;the&gt; deploy", bob_in_jira,
         comment={"id": "tle_1", "body": "Rolled back <the> deploy", "actor": "bob"})
    step(rules.attach_alert(current, Severity.CRITICAL, NOW), "3 alerts attached",
         alertmanager, alerts=[], alert_count=3)
    step(rules.resolve(current, NOW), "Resolved (via prod-alertmanager)", alertmanager)
    step(rules.reopen(current, NOW), "Reopened", SYSTEM)
    step(rules.acknowledge(current, NOW), "Acknowledged by bob (via Jira)", bob_in_jira)

    [message] = slack.channels["C0INCIDENT"]
    assert message.ts == CARD_TS
    assert message.blocks == card(current, URL).blocks
    assert [reply.text for reply in message.replies] == expected_lines


def test_an_update_that_is_a_creation_posts_no_thread_reply(slack: FakeSlack) -> None:
    conn, current = connector(slack), incident()
    link = posted_card(slack, conn, current)
    push(conn, current, event(EventType.INCIDENT_CREATED, current), link)
    assert [name for name, _ in slack.calls()] == ["chat.update"]


def test_refresh_redraws_the_card_without_a_thread_reply(slack: FakeSlack) -> None:
    conn = connector(slack)
    link = posted_card(slack, conn, incident())
    current, _ = happened(rules.acknowledge(incident(), NOW),
                          Origin(kind=OriginKind.CONNECTOR, id="con_slack", name="Slack",
                                 actor="alice"))

    result = run(lambda http: DRIVER.refresh(context(conn, current, http, link=link)))

    drawn = card(current, URL)
    assert slack.calls() == [("chat.update", {"channel": "C0INCIDENT", "ts": CARD_TS,
                                              "text": drawn.text, "blocks": drawn.blocks})]
    assert drawn.blocks[-1]["elements"] == [RESOLVE]
    assert slack.message("C0INCIDENT", CARD_TS).replies == []
    assert result.link is not None and result.link.external_id == f"C0INCIDENT:{CARD_TS}"


def test_a_card_deleted_in_slack_is_posted_again(slack: FakeSlack) -> None:
    conn, current = connector(slack), incident()
    link = posted_card(slack, conn, current)
    slack.delete("C0INCIDENT", CARD_TS)
    current, pushed = happened(rules.acknowledge(current, NOW))

    result = push(conn, current, pushed, link)

    assert [name for name, _ in slack.calls()] == ["chat.update", "chat.postMessage"]
    assert result.link is not None
    assert result.link.external_id == "C0INCIDENT:1700000000.000200"
    assert result.notes == ("The Slack card was deleted; posted a new one to Slack channel "
                            "C0INCIDENT",)


def test_a_private_incident_is_redacted_in_every_request(slack: FakeSlack) -> None:
    conn = connector(slack)
    current = incident(visibility=Visibility.PRIVATE, assignee="mallory")
    link = push(conn, current, event(EventType.INCIDENT_CREATED, current)).link
    secret_comment = {"comment": {"id": "tle_2", "body": "the secret body", "actor": "alice"}}
    steps: list[tuple[Callable[[Incident], Transition | None], dict[str, Any]]] = [
        (lambda it: rules.acknowledge(it, NOW), {}),
        (lambda it: rules.update(it, {"title": "CFO laptop stolen"}, NOW), {}),
        (lambda it: rules.comment(it, "the secret body", NOW), secret_comment),
        (lambda it: rules.resolve(it, NOW), {}),
    ]
    for change, data in steps:
        current, pushed = happened(change(current), **data)
        push(conn, current, pushed, link)

    calls = slack.calls()
    assert [name for name, _ in calls] == ["chat.postMessage"] + [
        "chat.update", "chat.postMessage"] * 4
    assert [body["text"] for _, body in calls if "thread_ts" in body] == [
        "Acknowledged", "Updated", "Comment added", "Resolved"]
    sent = json.dumps(calls)
    for secret in ("Checkout", "CFO", "Primary is not", "checkout-db", "payments", "prod",
                   "secret body", "alice", "mallory", "High", "high"):
        assert secret not in sent
    [message] = slack.channels["C0INCIDENT"]
    assert message.text == "INC-4: private incident (resolved)"
    assert message.blocks is not None
    assert message.blocks[0]["text"]["text"] == "INC-4: private incident"
    assert message.blocks[1] == {"type": "section", "fields": [
        {"type": "mrkdwn", "text": "*Status*\n:white_check_mark: Resolved"}]}
    assert all(block["type"] != "actions" for block in message.blocks)  # no buttons


def test_an_event_from_when_it_was_private_stays_redacted() -> None:
    now_public = incident()
    then = event(EventType.INCIDENT_COMMENT_ADDED,
                 dataclasses.replace(now_public, visibility=Visibility.PRIVATE),
                 comment={"id": "tle_3", "body": "the secret body", "actor": "alice"})
    assert thread_line(then, now_public) == "Comment added"


# Failures: Slack's ok=false answers, rate limits, outages.


def test_unknown_channel_is_a_failure_not_worth_retrying(slack: FakeSlack) -> None:
    with pytest.raises(ToolFailed) as caught:
        push(connector(slack, channel="C999"), incident(), None)
    assert not caught.value.retryable
    assert "channel_not_found" in caught.value.detail
    assert "settings.channel" in caught.value.detail


def test_a_wrong_token_is_a_failure_not_worth_retrying(slack: FakeSlack) -> None:
    conn = dataclasses.replace(connector(slack), credentials={
        "bot_token": "xoxb-revoked", "signing_secret": SIGNING_SECRET})
    with pytest.raises(ToolFailed) as caught:
        push(conn, incident(), None)
    assert not caught.value.retryable
    assert "invalid_auth" in caught.value.detail


def test_rate_limited_is_retried_after_what_slack_says(slack: FakeSlack) -> None:
    slack.rate_limited(retry_after=30)
    with pytest.raises(ToolFailed) as caught:
        push(connector(slack), incident(), None)
    assert caught.value.retryable
    assert caught.value.retry_after == 30
    assert caught.value.status_code == 429


def test_slack_unavailable_is_retried(slack: FakeSlack) -> None:
    conn, current = connector(slack), incident()
    link = posted_card(slack, conn, current)
    slack.unavailable()
    with pytest.raises(ToolFailed) as caught:
        push(conn, current, event(EventType.INCIDENT_UPDATED, current), link)
    assert caught.value.retryable
    assert caught.value.status_code == 503
    slack.healthy()
    push(conn, current, event(EventType.INCIDENT_UPDATED, current), link)


# Configuration, pull, and what is pushed at all.


def test_check_names_each_unusable_field() -> None:
    PLUGIN.validated({"channel": "C0INCIDENT", "api_base": "https://slack.com/api"},
                     {"bot_token": TOKEN, "signing_secret": SIGNING_SECRET})
    with pytest.raises(InvalidInput) as caught:
        PLUGIN.validated({"channel": " ", "api_base": "ftp://slack.com"},
                         {"bot_token": TOKEN})
    assert [error["field"] for error in caught.value.errors or []] == [
        "settings.channel", "settings.api_base", "credentials.signing_secret"]


def test_there_is_nothing_to_pull_and_every_incident_event_is_pushed(
        slack: FakeSlack) -> None:
    current = incident()
    result = run(lambda http: DRIVER.pull(context(connector(slack), current, http)))
    assert result == PullResult(summary="nothing to pull from Slack")
    assert slack.calls() == []
    assert all(DRIVER.wants(event(kind, current))
               for kind in EventType if kind.value.startswith("incident.")
               and kind is not EventType.INCIDENT_ALERT_ATTACHED
               and kind is not EventType.INCIDENT_PUBLIC_UPDATE)
    # Public updates are for status pages: the card shows nothing of them.
    assert not DRIVER.wants(event(EventType.INCIDENT_PUBLIC_UPDATE, current))
    # Alerts joining: only when they raise the severity (a storm is not a line per alert).
    assert not DRIVER.wants(event(EventType.INCIDENT_ALERT_ATTACHED, current))
    assert DRIVER.wants(event(EventType.INCIDENT_ALERT_ATTACHED, current, changes={
        "severity": {"from": "high", "to": "critical"}}))
    assert not DRIVER.wants(event(EventType.ENDPOINT_DISABLED, current))


# Requests from Slack: signatures, buttons, /incident.


def read(conn: Connector, headers: dict[str, str], body: bytes,
         now: datetime = NOW) -> Any:
    return DRIVER.read_hook(conn, headers, body, now)


def test_a_button_press_becomes_a_command(slack: FakeSlack) -> None:
    payload = button_payload("interlock.acknowledge", INCIDENT_ID, username="alice")
    headers, body = button_request(payload, timestamp=STAMP)
    notice = read(connector(slack), headers, body)
    assert notice.command is not None
    assert (notice.command.action, notice.command.incident, notice.command.actor,
            notice.command.body) == ("acknowledge", INCIDENT_ID, "alice", None)
    assert notice.delivery_id == f"slack-action:{payload['trigger_id']}"
    assert notice.ignored is None
    assert DRIVER.answer(notice, "INC-4 acknowledged", True) == (200, None)
    assert DRIVER.answer(notice, "INC-4 is resolved", False) == (200, None)

    for action_id, action in (("interlock.resolve", "resolve"),
                              ("interlock.reopen", "reopen")):
        headers, body = button_request(button_payload(action_id, INCIDENT_ID),
                                       timestamp=STAMP)
        assert read(connector(slack), headers, body).command.action == action


def test_a_button_without_trigger_id_gets_a_stable_delivery_id(slack: FakeSlack) -> None:
    payload = button_payload("interlock.resolve", INCIDENT_ID)
    del payload["trigger_id"]
    first = read(connector(slack), *button_request(payload, timestamp=STAMP))
    again = read(connector(slack), *button_request(payload, timestamp=STAMP + 1))
    assert first.delivery_id == again.delivery_id
    assert first.delivery_id.startswith("slack-action:")


def test_other_interactions_are_ignored(slack: FakeSlack) -> None:
    other = button_payload("somebody.else", INCIDENT_ID)
    notice = read(connector(slack), *button_request(other, timestamp=STAMP))
    assert notice.command is None and notice.ignored
    modal = {**button_payload("interlock.resolve", INCIDENT_ID), "type": "view_submission"}
    notice = read(connector(slack), *button_request(modal, timestamp=STAMP))
    assert notice.command is None
    assert notice.ignored == "Slack interactions of type 'view_submission' are not used"
    assert DRIVER.answer(notice, "ignored", True) == (200, None)


@pytest.mark.parametrize(("text", "action", "reference", "comment"), [
    ("ack INC-4", "acknowledge", "INC-4", None),
    ("acknowledge inc-4", "acknowledge", "INC-4", None),
    ("  resolve   INC-4 ", "resolve", "INC-4", None),
    ("reopen INC-4", "reopen", "INC-4", None),
    ("comment INC-4 rolled back  the deploy", "comment", "INC-4",
     "rolled back  the deploy"),
    (f"ack {INCIDENT_ID}", "acknowledge", INCIDENT_ID, None),
])
def test_slash_commands_become_commands(slack: FakeSlack, text: str, action: str,
                                        reference: str, comment: str | None) -> None:
    fields = slash_command_fields(text, user_name="alice")
    notice = read(connector(slack), *slash_command_request(fields, timestamp=STAMP))
    assert notice.command is not None
    assert (notice.command.action, notice.command.incident, notice.command.actor,
            notice.command.body) == (action, reference, "alice", comment)
    assert notice.delivery_id == f"slack-command:{fields['trigger_id']}"
    assert DRIVER.answer(notice, "INC-4 acknowledged", True) == (
        200, {"response_type": "ephemeral", "text": "INC-4 acknowledged"})
    assert DRIVER.answer(notice, "INC-4 is resolved; reopen it first", False) == (
        200, {"response_type": "ephemeral", "text": "INC-4 is resolved; reopen it first"})


@pytest.mark.parametrize("text", [
    "", "help", "ack", "dance INC-4", "ack INC-x", "ack 4", "comment INC-4",
    "ack INC-4 right now",
])
def test_unreadable_slash_commands_get_the_usage(slack: FakeSlack, text: str) -> None:
    fields = slash_command_fields(text)
    notice = read(connector(slack), *slash_command_request(fields, timestamp=STAMP))
    usage = "usage: /incident ack|resolve|reopen|comment INC-<n> [text]"
    assert notice.command is None
    assert notice.ignored == usage
    assert DRIVER.answer(notice, "ignored", True) == (
        200, {"response_type": "ephemeral", "text": usage})


def test_a_signed_request_is_accepted_within_five_minutes(slack: FakeSlack) -> None:
    headers, body = slash_command_request(slash_command_fields("ack INC-4"),
                                          timestamp=STAMP - 299)
    assert read(connector(slack), headers, body).command is not None
    lower = {name.lower(): value for name, value in headers.items()}
    assert read(connector(slack), lower, body).command is not None


def test_forged_missing_or_stale_signatures_are_refused(slack: FakeSlack) -> None:
    conn = connector(slack)
    fields = slash_command_fields("resolve INC-4")
    forged, body = slash_command_request(fields, timestamp=STAMP, secret="not-the-secret")
    with pytest.raises(Unauthenticated, match="does not match"):
        read(conn, forged, body)

    headers, body = slash_command_request(fields, timestamp=STAMP)
    with pytest.raises(Unauthenticated, match="does not match"):
        read(conn, headers, body.replace(b"resolve", b"reopen"))
    for missing in ("X-Slack-Signature", "X-Slack-Request-Timestamp"):
        partial = {name: value for name, value in headers.items() if name != missing}
        with pytest.raises(Unauthenticated, match="missing"):
            read(conn, partial, body)

    stale, body = slash_command_request(fields, timestamp=STAMP - 360)
    with pytest.raises(Unauthenticated, match="replays"):
        read(conn, stale, body)
    with pytest.raises(Unauthenticated, match="replays"):
        read(conn, headers, body, now=NOW + timedelta(minutes=6))
