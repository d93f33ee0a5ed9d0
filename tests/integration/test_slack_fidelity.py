"""The Slack driver where the real Slack differs from a kind imitation: Block Kit
limits measured on the escaped text, a post whose answer is lost, the error codes a
real workspace answers, and its rate limit per channel.

Against FakeSlack (tests/support/fake_slack.py), checked against Slack's own Web API
description, which refuses what Slack refuses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import pytest

from interlock.connectors.slack.cards import SECTION_MAX, card, fit
from interlock.connectors.slack.web_api import SlackWebApi
from interlock.domain.errors import ToolCredentialsRefused, ToolFailed
from interlock.domain.events import EventType
from interlock.domain.targets import parse_allowed_networks
from interlock.ports.connector import PushResult
from interlock.services.connectors import ConnectorSpec
from interlock.services.container import Container
from interlock.worker.sync import SyncSettings, SyncWorker
from interlock.worker.tool_http import AiohttpToolHttp
from interlock.worker.wakeup import Wakeup
from tests.integration.test_slack_driver import (
    DRIVER,
    URL,
    connector,
    context,
    event,
    incident,
    push,
)
from tests.integration.test_worker import declare_many
from tests.support.fake_slack import SIGNING_SECRET, TOKEN, FakeSlack, block_kit_problems

CHANNEL = "C0INCIDENT"


def test_a_long_summary_full_of_ampersands_still_fits_a_section(slack: FakeSlack) -> None:
    summary = "p99 > 2s & errors <5% " * 140  # 3,080 characters, 3,780 once escaped
    current = incident(summary=summary)

    result = push(connector(slack), current, event(EventType.INCIDENT_CREATED, current))

    assert result.link is not None
    [message] = slack.channels[CHANNEL]
    section = message.blocks[1]["text"]["text"] if message.blocks else ""
    assert len(section) <= SECTION_MAX and section.endswith("…")
    assert "&amp;" in section and "&lt;5%" in section
    assert block_kit_problems(message.blocks) == []


def test_cutting_escaped_text_never_leaves_half_an_escape() -> None:
    for limit in range(2, 12):
        cut = fit("ab&amp;&lt;&gt;cd", limit)
        assert len(cut) <= limit
        body = cut.removesuffix("…")
        assert "&" not in body.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")


def test_slack_refuses_an_oversized_section_with_invalid_blocks(slack: FakeSlack) -> None:
    current = incident()
    drawn = card(current, URL)
    drawn.blocks[1]["text"]["text"] = "x" * (SECTION_MAX + 1)

    async def post() -> None:
        http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"))
        try:
            await SlackWebApi(http, slack.api_base, TOKEN).post_message(
                CHANNEL, drawn.text, blocks=drawn.blocks)
        finally:
            await http.close()

    with pytest.raises(ToolFailed) as refused:
        asyncio.run(post())
    assert "invalid_blocks" in refused.value.detail and not refused.value.retryable


def test_a_message_over_slacks_length_is_refused_not_retried(slack: FakeSlack) -> None:
    async def post() -> None:
        http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"))
        try:
            await SlackWebApi(http, slack.api_base, TOKEN).post_message(CHANNEL, "x" * 40_001)
        finally:
            await http.close()

    with pytest.raises(ToolFailed) as refused:
        asyncio.run(post())
    assert "msg_too_long" in refused.value.detail and not refused.value.retryable
    assert slack.channels[CHANNEL] == []


@pytest.mark.parametrize(("trouble", "hint"), [
    ("not_in_channel", "invite the Slack app"),
    ("is_archived", "archived"),
    ("missing_scope", "lacks a scope"),
])
def test_configuration_errors_say_what_to_fix(slack: FakeSlack, trouble: str, hint: str
                                              ) -> None:
    if trouble == "not_in_channel":
        slack.joined.clear()
    elif trouble == "is_archived":
        slack.archived.add(CHANNEL)
    else:
        slack.scopes.discard("chat:write")
    with pytest.raises(ToolFailed) as refused:
        push(connector(slack), incident(), None)
    assert trouble in refused.value.detail and hint in refused.value.detail
    assert not refused.value.retryable


@pytest.mark.parametrize("refusal", ["invalid_auth", "token_expired", "token_revoked"])
def test_a_refused_token_is_a_credentials_failure(slack: FakeSlack, refusal: str) -> None:
    slack.token, slack.refusal = "xoxb-rotated", refusal
    with pytest.raises(ToolCredentialsRefused) as refused:
        push(connector(slack), incident(), None)
    assert refusal in refused.value.detail


def _push_attempt(slack: FakeSlack, attempt: int, timeout: float) -> PushResult:
    current = incident()
    conn = connector(slack)

    async def main() -> PushResult:
        http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"),
                               timeout=timeout)
        try:
            ctx = dataclasses.replace(
                context(conn, current, http, pushed=event(EventType.INCIDENT_CREATED,
                                                          current)), attempt=attempt)
            return await DRIVER.push(ctx)
        finally:
            await http.close()
    return asyncio.run(main())


def test_a_retry_after_a_lost_post_answer_finds_the_card(slack: FakeSlack) -> None:
    slack.slow_post = 1.3  # Slack posts the card; its answer comes after our timeout
    with pytest.raises(ToolFailed) as lost:
        _push_attempt(slack, 1, timeout=1.0)
    assert lost.value.retryable
    [posted] = slack.channels[CHANNEL]
    slack.clear()

    result = _push_attempt(slack, 2, timeout=5.0)

    assert [method for method, _ in slack.calls()] == ["conversations.history",
                                                       "chat.update"]
    assert [message.ts for message in slack.channels[CHANNEL]] == [posted.ts]
    assert result.link is not None and result.link.external_id == f"{CHANNEL}:{posted.ts}"


def test_without_channels_history_a_retry_posts_again(slack: FakeSlack) -> None:
    slack.scopes.discard("channels:history")

    result = _push_attempt(slack, 2, timeout=5.0)

    assert [method for method, _ in slack.calls()] == ["conversations.history",
                                                       "chat.postMessage"]
    assert result.link is not None


def test_a_storm_is_posted_at_slacks_pace_without_rate_limits(
        hub: Container, slack: FakeSlack) -> None:
    """Nine new incidents at once: the worker posts their cards a second apart, so
    Slack (one message a second per channel, short bursts) never answers 429."""
    made = hub.connectors.create(ConnectorSpec(
        name="slack", kind="slack",
        settings={"channel": CHANNEL, "api_base": slack.api_base},
        credentials={"bot_token": TOKEN, "signing_secret": SIGNING_SECRET}))
    assert made.id
    declare_many(hub, 9)
    while hub.deliveries.dispatch():
        pass

    started = time.monotonic()
    _run_sync_worker(hub, lambda: len(slack.channels[CHANNEL]) == 9, deadline=30)

    assert len(slack.channels[CHANNEL]) == 9
    assert slack.rate_limited_answers == 0
    assert time.monotonic() - started >= 7  # about one a second


def _run_sync_worker(hub: Container, done: Callable[[], bool], deadline: float) -> float:
    """The real sync worker on its own event loop until ``done()`` or the deadline; the
    seconds it took to stop."""
    async def main() -> float:
        http = AiohttpToolHttp(allowed_networks=parse_allowed_networks("127.0.0.0/8"),
                               timeout=5)
        stop = asyncio.Event()
        worker = SyncWorker(hub.sync, http, Wakeup(), "test-sync",
                            SyncSettings(poll_interval=0.1))
        running = asyncio.create_task(worker.run(stop))
        give_up = time.monotonic() + deadline
        while not done() and time.monotonic() < give_up:
            await asyncio.sleep(0.1)
        stopping = time.monotonic()
        stop.set()
        await asyncio.wait_for(running, 30)
        stopped_in = time.monotonic() - stopping
        await http.close()
        return stopped_in
    return asyncio.run(main())


def test_stopping_does_not_wait_for_a_paced_lane(hub: Container, slack: FakeSlack) -> None:
    """Jobs waiting their turn in Slack's lane are left to their leases at a stop, so
    the worker stops at once instead of after a second per queued job."""
    hub.connectors.create(ConnectorSpec(
        name="slack", kind="slack", settings={"channel": CHANNEL, "api_base": slack.api_base},
        credentials={"bot_token": TOKEN, "signing_secret": SIGNING_SECRET}))
    declare_many(hub, 8)
    while hub.deliveries.dispatch():
        pass

    stopped_in = _run_sync_worker(hub, lambda: len(slack.channels[CHANNEL]) >= 1,
                                  deadline=10)

    assert len(slack.channels[CHANNEL]) < 8
    assert stopped_in < 3, f"the sync worker took {stopped_in:.1f} s to stop"
