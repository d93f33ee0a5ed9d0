"""The Jira driver against a loopback Jira Cloud (tests/support/fake_jira.py), through
the real tool HTTP client: what Interlock sends to Jira, request by request, and what
it reads back from Jira's answers and webhooks.

The driver is driven directly, the way the sync service does: a SyncContext from
domain objects, LinkWrite.state merged over the old link state, ``learned`` merged into
the connector's state. Each call runs its own event loop with asyncio.run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import pytest

from interlock.connectors.jira import JiraDriver, adf
from interlock.connectors.jira.hooks import sign
from interlock.connectors.jira.plugin import PLUGIN
from interlock.domain.errors import BadRequest, InvalidInput, ToolFailed, Unauthenticated
from interlock.domain.incidents import Severity, Status, Visibility
from tests.support.fake_jira import ALICE, BOB, BOT, FakeJira, Transition
from tests.support.jira_harness import (
    LINK_PARAGRAPH,
    NOW,
    PULL_PATH,
    PULL_QUERY,
    Harness,
    acknowledged,
    comment_event,
    incident,
    resolved,
    resolved_event,
    sent,
)

# -- push: creating the issue ---------------------------------------------------------

def test_push_creates_the_issue_with_exactly_the_owned_fields(jira: FakeJira) -> None:
    harness = Harness(jira)
    result = harness.push(incident())

    assert sent(jira) == [
        ("GET", "/rest/api/3/myself", None),
        ("POST", "/rest/api/3/issue", {"fields": {
            "project": {"key": "OPS"},
            "issuetype": {"name": "Task"},
            "summary": "Checkout is failing",
            "description": {"type": "doc", "version": 1, "content": [
                {"type": "paragraph",
                 "content": [{"type": "text", "text": "Error rate above 5% on /pay."}]},
                LINK_PARAGRAPH]},
            "priority": {"name": "High"},
            "labels": ["interlock", "interlock-inc_1", "service:checkout",
                       "team:payments_squad"],
        }}),
        ("GET", "/rest/api/3/issue/OPS-1", None),
    ]
    assert result.link is not None
    assert (result.link.kind, result.link.external_id, result.link.url) == (
        "jira_issue", "OPS-1", f"{jira.url}/browse/OPS-1")
    assert result.notes == ["Jira issue OPS-1 created"]
    assert result.learned == {"account_id": BOT.account_id}
    # seen and comments are the sync service's: it records the status the issue shows.
    assert not {"seen", "comments"} & set(result.link.state)
    assert harness.link is not None and harness.link.state["seen"] == {"status": "triggered"}
    assert jira.status_of("OPS-1") == "To Do"


def test_a_private_incident_gives_jira_only_its_reference(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident(visibility=Visibility.PRIVATE))

    assert sent(jira) == [("POST", "/rest/api/3/issue", {"fields": {
        "project": {"key": "OPS"},
        "issuetype": {"name": "Task"},
        "summary": "INC-7: private incident",
        "description": {"type": "doc", "version": 1, "content": [LINK_PARAGRAPH]},
        "labels": ["interlock", "interlock-inc_1"],
    }}), ("GET", "/rest/api/3/issue/OPS-1", None)]
    everything = json.dumps(sent(jira))
    for secret in ("Checkout", "Error rate", "payments", "High"):
        assert secret not in everything


def test_a_private_incident_never_mirrors_comments(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    private = incident(visibility=Visibility.PRIVATE)
    harness.push(private)
    jira.forget_requests()

    harness.push(private, comment_event("customer data leaked from bucket x"))

    assert sent(jira) == []


# -- push: updating the issue ---------------------------------------------------------

def test_update_sends_only_owned_fields_that_changed(jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.push(incident())
    jira.forget_requests()

    again = harness.push(incident())
    assert sent(jira) == []  # the account is known now, and nothing differs
    assert again.summary == "Jira issue OPS-1 already matches the incident"

    harness.push(incident(title="Checkout fails for EU cards"))
    assert sent(jira) == [("PUT", "/rest/api/3/issue/OPS-1",
                           {"fields": {"summary": "Checkout fails for EU cards"}})]
    jira.forget_requests()

    result = harness.push(incident(title="Checkout fails for EU cards",
                                   severity=Severity.CRITICAL, labels={"service": "checkout"}))
    assert sent(jira) == [("PUT", "/rest/api/3/issue/OPS-1", {"fields": {
        "priority": {"name": "Highest"},
        "labels": ["interlock", "interlock-inc_1", "service:checkout"]}})]
    assert result.summary == "updated priority, labels of Jira issue OPS-1"


def test_update_leaves_the_tool_owned_assignee_alone(jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.push(incident())
    jira.assign_as("OPS-1", BOB)
    jira.forget_requests()

    harness.push(incident(assignee="dana", summary="Rolled back."))

    assert [(method, path) for method, path, _ in sent(jira)] == [
        ("PUT", "/rest/api/3/issue/OPS-1")]
    assert "assignee" not in sent(jira)[0][2]["fields"]


def test_making_an_incident_private_redacts_the_issue(jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.push(incident())
    jira.forget_requests()

    harness.push(incident(visibility=Visibility.PRIVATE))

    assert sent(jira) == [("PUT", "/rest/api/3/issue/OPS-1", {"fields": {
        "summary": "INC-7: private incident",
        "description": {"type": "doc", "version": 1, "content": [LINK_PARAGRAPH]},
        "labels": ["interlock", "interlock-inc_1"]}})]


# -- push: status ---------------------------------------------------------------------

def test_acknowledge_then_resolve_walks_the_workflow(jira: FakeJira) -> None:
    harness = Harness(jira)
    opened = incident()
    harness.push(opened)
    jira.forget_requests()

    taken = acknowledged(opened)
    result = harness.push(taken)
    assert sent(jira) == [
        ("GET", "/rest/api/3/issue/OPS-1", None),
        ("GET", "/rest/api/3/issue/OPS-1/transitions", None),
        ("POST", "/rest/api/3/issue/OPS-1/transitions", {"transition": {"id": "21"}}),
    ]
    assert jira.status_of("OPS-1") == "In Progress"
    assert result.summary == "moved Jira issue OPS-1 to In Progress"
    assert harness.link is not None
    assert harness.link.state["seen"]["status"] == "acknowledged"
    jira.forget_requests()

    harness.push(resolved(taken))
    assert sent(jira) == [
        ("GET", "/rest/api/3/issue/OPS-1", None),
        ("GET", "/rest/api/3/issue/OPS-1/transitions", None),
        ("POST", "/rest/api/3/issue/OPS-1/transitions", {"transition": {"id": "31"}}),
    ]
    assert jira.status_of("OPS-1") == "Done"
    assert harness.link.state["seen"]["status"] == "resolved"


def test_a_retried_push_finds_the_issue_already_moved(jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.push(incident())
    jira.transition_as("OPS-1", "Done", by=BOT)  # the first attempt moved it, then failed
    jira.forget_requests()

    harness.push(resolved(incident()))

    assert sent(jira) == [("GET", "/rest/api/3/issue/OPS-1", None)]
    assert jira.requests[0].query == {"fields": "status"}
    assert jira.status_of("OPS-1") == "Done"


def test_no_way_into_the_category_fails_once_and_does_not_block_comments(
        jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.push(incident())
    jira.workflow = {"21": Transition("In Progress", "10001")}  # no way to any done status

    result = harness.push(resolved(incident()), resolved_event())

    assert result.failed is not None and result.failed.retryable is False
    assert "category 'done'" in result.failed.detail
    assert result.notes == [f"Jira issue OPS-1 was not moved: {result.failed.detail}"]
    jira.forget_requests()
    # The next push (a comment) is not held up, and does not try the same move again.
    later = harness.push(resolved(incident()), comment_event("Root cause found."))
    assert later.failed is None
    assert [(method, path) for method, path, _ in sent(jira)] == [
        ("POST", "/rest/api/3/issue/OPS-1/comment")]


def test_a_new_issue_that_cannot_move_keeps_its_link(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    del jira.workflow["21"]

    result = harness.push(acknowledged(incident()))

    assert result.link is not None and result.link.external_id == "OPS-1"
    assert harness.link is not None and harness.link.state["seen"]["status"] == "triggered"
    assert result.notes[0] == "Jira issue OPS-1 created"
    # The job still fails, so it is retried (and a fixed workflow moves the issue).
    assert result.failed is not None and "category 'indeterminate'" in result.failed.detail


# -- push: comments -------------------------------------------------------------------

def test_a_comment_is_mirrored_as_an_adf_comment(jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.push(incident())
    jira.forget_requests()

    result = harness.push(incident(), comment_event("Rolled back the deploy.\nWatching."))

    assert sent(jira) == [("POST", "/rest/api/3/issue/OPS-1/comment", {"body": {
        "type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
            {"type": "text", "text": "Dana: Rolled back the deploy."},
            {"type": "hardBreak"},
            {"type": "text", "text": "Watching."}]}]}})]
    comment_id = jira.issues["OPS-1"].comments[0].id
    assert harness.link is not None
    assert harness.link.state["comments"] == [comment_id]
    assert result.summary == "commented on Jira issue OPS-1"


def test_refresh_syncs_fields_but_never_comments(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())
    jira.forget_requests()

    harness.refresh(incident(title="Checkout is down"))

    assert [(method, path) for method, path, _ in sent(jira)] == [
        ("PUT", "/rest/api/3/issue/OPS-1")]


# -- pull -----------------------------------------------------------------------------

def test_pull_maps_status_assignee_and_human_comments(jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.push(incident())
    harness.push(incident(), comment_event("Paging the payments team."))
    jira.transition_as("OPS-1", "Done")
    jira.assign_as("OPS-1", ALICE)
    jira.comment_as("OPS-1", "Fixed by reverting the cache change.")
    jira.forget_requests()

    result = harness.pull(incident())

    assert [(item.method, item.path, item.query) for item in jira.requests] == [
        ("GET", PULL_PATH, PULL_QUERY)]
    assert result.status is Status.RESOLVED
    assert result.assignee == "Alice Example"
    human = jira.issues["OPS-1"].comments[1]
    assert [(item.id, item.author, item.body) for item in result.comments] == [
        (human.id, "Alice Example", "Fixed by reverting the cache change.")]
    assert result.link is None  # the sync service keeps seen and known comments itself
    assert result.summary == "Jira issue OPS-1 is Done, assigned to Alice Example, " \
                             "1 comment from people"


def test_pull_reads_every_page_of_comments(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())
    for number in range(5):
        jira.comment_as("OPS-1", f"note {number}", by=ALICE if number % 2 else BOB)
    jira.comment_page = 2
    jira.forget_requests()

    result = harness.pull(incident())

    assert [(item.path, item.query) for item in jira.requests] == [
        (PULL_PATH, PULL_QUERY),
        (f"{PULL_PATH}/comment", {"startAt": "2", "maxResults": "100"}),
        (f"{PULL_PATH}/comment", {"startAt": "4", "maxResults": "100"}),
    ]
    assert [item.body for item in result.comments] == [f"note {n}" for n in range(5)]
    assert result.status is Status.TRIGGERED
    assert result.assignee is None


def test_pull_learns_its_own_account_before_filtering_comments(jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.push(incident())
    harness.connector = dataclasses.replace(harness.connector, state={})  # not learned yet
    jira.comment_as("OPS-1", "from the bot", by=BOT)
    jira.forget_requests()

    result = harness.pull(incident())

    assert [item.path for item in jira.requests] == ["/rest/api/3/myself", PULL_PATH]
    assert result.comments == []


# -- webhooks -------------------------------------------------------------------------

def test_a_signed_webhook_names_the_issue_and_the_delivery(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())
    hook = jira.transition_as("OPS-1", "Done", by=ALICE)
    lowered = {name.lower(): value for name, value in hook.headers.items()}

    for headers in (hook.headers, lowered):
        notice = harness.driver.read_hook(harness.connector, headers, hook.body, NOW)
        assert notice.external_id == "OPS-1"
        assert notice.delivery_id == hook.headers["X-Atlassian-Webhook-Identifier"]
        assert notice.from_interlock is False
        assert notice.ignored is None
        assert notice.description == "jira:issue_updated OPS-1 by Alice Example"


def test_forged_or_unsigned_webhooks_are_rejected(jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.push(incident())
    hook = jira.comment_as("OPS-1", "hello")
    forged = jira.signed(json.loads(hook.body), secret="guessed")
    unsigned = {name: value for name, value in hook.headers.items()
                if name != "X-Hub-Signature"}
    cases: list[tuple[Mapping[str, str], bytes]] = [
        (forged.headers, forged.body), (unsigned, hook.body),
        (hook.headers, hook.body.replace(b"hello", b"HELLO"))]

    for headers, body in cases:
        with pytest.raises(Unauthenticated):
            harness.driver.read_hook(harness.connector, headers, body, NOW)


def test_changes_made_by_interlocks_own_account_are_flagged(jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.push(incident())  # learns the account from /myself
    by_bot = jira.comment_as("OPS-1", "Dana: mirrored", by=BOT)
    by_alice = jira.comment_as("OPS-1", "a person", by=ALICE)
    moved_by_bot = jira.transition_as("OPS-1", "In Progress", by=BOT)

    read = harness.driver.read_hook
    assert read(harness.connector, by_bot.headers, by_bot.body, NOW).from_interlock is True
    assert read(harness.connector, by_alice.headers, by_alice.body, NOW).from_interlock is False
    assert read(harness.connector, moved_by_bot.headers, moved_by_bot.body,
                NOW).from_interlock is True


def test_other_events_are_ignored_and_bad_json_is_a_bad_request(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    deleted = jira.signed({"webhookEvent": "worklog_created", "issue": {"key": "OPS-9"}})
    notice = harness.driver.read_hook(harness.connector, deleted.headers, deleted.body, NOW)
    assert notice.external_id is None and notice.ignored

    garbage = b"{not json"
    headers = {"X-Hub-Signature": sign(garbage, jira.webhook_secret)}
    with pytest.raises(BadRequest):
        harness.driver.read_hook(harness.connector, headers, garbage, NOW)


def test_without_a_delivery_header_the_body_hash_deduplicates(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())
    hook = jira.assign_as("OPS-1", ALICE)
    headers = {name: value for name, value in hook.headers.items()
               if name != "X-Atlassian-Webhook-Identifier"}

    first = harness.driver.read_hook(harness.connector, headers, hook.body, NOW)
    second = harness.driver.read_hook(harness.connector, headers, hook.body, NOW)

    assert first.delivery_id and first.delivery_id == second.delivery_id
    assert harness.driver.answer(first, "done", True) == (200, {"ok": True, "message": "done"})


# -- failures -------------------------------------------------------------------------

def test_jira_down_is_a_retryable_failure(jira: FakeJira) -> None:
    jira.down = True
    with pytest.raises(ToolFailed) as failure:
        Harness(jira, account_id=BOT.account_id).push(incident())
    assert failure.value.retryable is True
    assert failure.value.status_code == 503


def test_a_request_jira_refuses_is_a_final_failure(jira: FakeJira) -> None:
    with pytest.raises(ToolFailed) as failure:
        Harness(jira, account_id=BOT.account_id, project_key="NOPE").push(incident())
    assert failure.value.retryable is False
    assert failure.value.status_code == 400
    assert failure.value.detail.startswith("creating the Jira issue: HTTP 400")
    assert "valid project" in failure.value.detail


def test_a_wrong_api_token_is_a_final_failure(jira: FakeJira) -> None:
    harness = Harness(jira)
    harness.connector = dataclasses.replace(
        harness.connector, credentials={**harness.connector.credentials, "api_token": "x"})
    with pytest.raises(ToolFailed) as failure:
        harness.push(incident())
    assert (failure.value.retryable, failure.value.status_code) == (False, 401)


# -- configuration and text -----------------------------------------------------------

def test_check_names_each_unusable_setting() -> None:
    driver = JiraDriver()
    assert driver.wants(comment_event("hello"))
    good = {"email": "a@example.com", "api_token": "t", "webhook_secret": "s"}
    PLUGIN.validated({"base_url": "https://example.atlassian.net", "project_key": "OPS"},
                     good)

    with pytest.raises(InvalidInput) as failure:
        PLUGIN.validated({"base_url": "ftp://example", "project_key": "not a key"},
                         {"email": "a@example.com"})
    assert [error["field"] for error in failure.value.errors or []] == [
        "settings.base_url", "settings.project_key", "credentials.api_token",
        "credentials.webhook_secret"]


def test_adf_round_trips_plain_text() -> None:
    text = "First line\nsecond line\n\nNew paragraph"
    assert adf.to_text(adf.from_text(text)) == text
    mention = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "mention", "attrs": {"id": ALICE.account_id, "text": "@Alice"}},
        {"type": "text", "text": " please look"}]},
        {"type": "bulletList", "content": [{"type": "listItem", "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "item"}]}]}]}]}
    assert adf.to_text(mention) == "@Alice please look\n\nitem"
