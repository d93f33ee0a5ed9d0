"""The Jira driver where a real Jira Cloud differs from a kind imitation: workflows
that need several hops, summaries Jira refuses, a create whose answer is lost, an
issue moved to another project or deleted, an API token that expired.

Each runs against FakeJira (tests/support/fake_jira.py), which is checked against
Atlassian's own REST API description and refuses what Jira refuses.
"""

from __future__ import annotations

import dataclasses

import pytest

from interlock.domain.connectors import FieldMapping, Owner
from interlock.domain.errors import ToolCredentialsRefused, ToolFailed
from interlock.domain.incidents import Status
from interlock.domain.ownership import PulledState, decide_pull
from tests.support.fake_jira import BOT, CLASSIC_WORKFLOW, FakeJira
from tests.support.jira_harness import (
    NOW,
    Harness,
    acknowledged,
    comment_event,
    incident,
    resolved,
    resolved_event,
    sent,
)

ISSUE = "/rest/api/3/issue/OPS-1"
TRANSITIONS = f"{ISSUE}/transitions"


# -- workflows ----------------------------------------------------------------------

def test_resolving_walks_two_hops_to_done_rather_than_wont_do(jira: FakeJira) -> None:
    jira.workflow = dict(CLASSIC_WORKFLOW)  # To Do offers only "Start progress", "Won't do"
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())
    jira.forget_requests()

    result = harness.push(resolved(incident()), resolved_event())

    assert [(method, path, body) for method, path, body in sent(jira)] == [
        ("GET", ISSUE, None),
        ("GET", TRANSITIONS, None),
        ("POST", TRANSITIONS, {"transition": {"id": "21"}}),  # Start progress
        ("GET", TRANSITIONS, None),
        ("POST", TRANSITIONS, {"transition": {"id": "31"}}),  # Done
    ]
    assert jira.status_of("OPS-1") == "Done"
    assert result.summary == "moved Jira issue OPS-1 to Done"
    assert result.failed is None


def test_a_status_named_in_the_mapping_is_the_one_reached(jira: FakeJira) -> None:
    jira.workflow = dict(CLASSIC_WORKFLOW)
    harness = Harness(jira, account_id=BOT.account_id)
    harness.connector = dataclasses.replace(harness.connector, mapping=FieldMapping(
        owners=harness.connector.mapping.owners,
        status_out={**harness.connector.mapping.status_out, "resolved": "Won't Do"},
        status_in=harness.connector.mapping.status_in,
        severity_out=harness.connector.mapping.severity_out))
    harness.push(incident())

    harness.push(resolved(incident()), resolved_event())

    assert jira.status_of("OPS-1") == "Won't Do"


def test_acknowledging_takes_the_one_hop_it_needs(jira: FakeJira) -> None:
    jira.workflow = dict(CLASSIC_WORKFLOW)
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())

    harness.push(acknowledged(incident()))

    assert jira.status_of("OPS-1") == "In Progress"


# -- field limits -------------------------------------------------------------------

def test_a_long_title_with_newlines_becomes_a_summary_jira_takes(jira: FakeJira) -> None:
    title = "Checkout is failing\nfor EU cards " + "x" * 300
    harness = Harness(jira, account_id=BOT.account_id)

    result = harness.push(incident(title=title))

    summary = jira.issues["OPS-1"].fields["summary"]
    assert len(summary) == 255 and "\n" not in summary
    assert summary.startswith("Checkout is failing for EU cards xxx") and summary[-1] == "…"
    assert ("The title was shortened to 255 characters on one line for the Jira issue's "
            "summary (Jira allows one line of at most 255 characters)") in result.notes
    jira.forget_requests()
    again = harness.push(incident(title=title))  # said once, not on every push
    assert sent(jira) == [] and again.notes == []


# -- a create whose answer is lost --------------------------------------------------

def test_a_retry_after_a_lost_create_answer_finds_the_issue(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.timeout = 1.0
    jira.slow_create = 1.3  # Jira creates the issue; its answer comes after our timeout

    with pytest.raises(ToolFailed) as lost:
        harness.push(incident())
    assert lost.value.retryable is True
    assert list(jira.issues) == ["OPS-1"]

    harness.attempt = 2
    jira.forget_requests()
    result = harness.push(incident())

    assert list(jira.issues) == ["OPS-1"]  # not a second issue
    search = next(item for item in jira.requests if item.path == "/rest/api/3/search/jql")
    assert search.json == {"jql": 'project = "OPS" AND labels = "interlock-inc_1"',
                           "fields": ["status"], "maxResults": 2}
    assert result.link is not None and result.link.external_id == "OPS-1"
    assert result.link.state["issue_id"] == jira.issues["OPS-1"].id
    assert result.summary.startswith("found Jira issue OPS-1")


def test_a_retry_after_a_failure_before_the_create_still_creates(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.attempt = 3

    result = harness.push(incident())

    assert [path for _, path, _ in sent(jira)][:2] == ["/rest/api/3/search/jql",
                                                       "/rest/api/3/issue"]
    assert result.link is not None and result.link.external_id == "OPS-1"


# -- identity and lifecycle ---------------------------------------------------------

def test_a_moved_issue_is_still_found_and_its_link_follows_the_new_key(
        jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())
    hook = jira.move_as("OPS-1", "SEC")

    notice = harness.driver.read_hook(harness.connector, hook.headers, hook.body, NOW)
    assert notice.external_id == "OPS-1"  # the key the link knows
    pulled = harness.pull(incident())

    assert pulled.link is not None
    assert (pulled.link.external_id, pulled.link.url) == ("SEC-2", f"{jira.url}/browse/SEC-2")
    assert pulled.link.state == {}  # the service keeps its own seen state
    assert "now SEC-2 (moved from OPS-1)" in pulled.summary


def test_a_deleted_issue_breaks_the_link_and_nothing_more_is_sent(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())
    hook = jira.delete_as("OPS-1")

    notice = harness.driver.read_hook(harness.connector, hook.headers, hook.body, NOW)
    assert notice.external_id == "OPS-1" and notice.ignored is None
    pulled = harness.pull(incident())
    assert pulled.link is not None and pulled.link.state["broken"]
    assert pulled.notes == ["Jira issue OPS-1 was deleted in Jira, or no longer visible to "
                            "Interlock's account; changes are no longer sent to it"]
    harness.link = dataclasses.replace(harness.link or _never(),
                                       state={**pulled.link.state})
    jira.forget_requests()

    pushed = harness.push(acknowledged(incident()), comment_event("still there?"))

    assert sent(jira) == []
    assert pushed.skipped is True and "is gone" in pushed.summary


def test_a_push_that_meets_a_deleted_issue_breaks_the_link(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())
    jira.delete_as("OPS-1")

    result = harness.push(incident(title="Checkout is down"))

    assert result.link is not None and result.link.state["broken"]
    assert result.failed is not None and result.failed.retryable is False
    assert result.notes[-1].startswith("Jira issue OPS-1 was deleted")


def test_an_expired_api_token_is_a_credentials_failure(jira: FakeJira) -> None:
    harness = Harness(jira)
    jira.expire_token()

    with pytest.raises(ToolCredentialsRefused) as refused:
        harness.push(incident())

    assert refused.value.retryable is False and refused.value.status_code == 401
    assert "API tokens expire" in refused.value.detail


def test_a_workflow_that_starts_in_progress_is_read_not_assumed(jira: FakeJira) -> None:
    jira.initial_status = "10004"  # "Waiting for support", in the indeterminate category
    harness = Harness(jira, account_id=BOT.account_id)

    result = harness.push(incident())

    assert result.status_shown is Status.ACKNOWLEDGED
    assert jira.status_of("OPS-1") == "Waiting for support"  # not moved for a new incident
    # The sync service records what the issue shows, so its next pull is no change.
    assert harness.link is not None
    assert harness.link.state["seen"]["status"] == "acknowledged"
    pulled = harness.pull(incident())
    assert pulled.status is Status.ACKNOWLEDGED
    assert decide_pull(harness.connector.mapping, harness.link.state,
                       PulledState(status=pulled.status)).status is None


def test_an_unrelated_push_does_not_undo_a_move_made_in_jira(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())
    taken = acknowledged(incident())
    harness.push(taken)
    assert jira.status_of("OPS-1") == "In Progress"
    jira.transition_as("OPS-1", "To Do")  # a person moves it back
    assert harness.link is not None
    # What the sync service records after pulling that change (nothing takes an
    # acknowledged incident back to triggered, but the issue is seen in To Do).
    decision = decide_pull(harness.connector.mapping, harness.link.state,
                           PulledState(status=harness.pull(taken).status))
    harness.link = dataclasses.replace(harness.link, state={
        **harness.link.state, "seen": dict(decision.seen)})
    jira.forget_requests()

    result = harness.push(taken, comment_event("Looking at the database."))

    assert jira.status_of("OPS-1") == "To Do"
    assert [(method, path) for method, path, _ in sent(jira)] == [
        ("POST", f"{ISSUE}/comment")]
    # The service goes on knowing the issue is in To Do, and knows the comment is its own.
    assert result.status_shown is Status.TRIGGERED
    assert harness.link.state["seen"]["status"] == "triggered"
    assert harness.link.state["comments"] == [jira.issues["OPS-1"].comments[-1].id]


def _never() -> object:
    raise AssertionError("no link")


def test_a_new_issue_carries_interlocks_labels_even_when_jira_owns_labels(
        jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    mapping = harness.connector.mapping
    harness.connector = dataclasses.replace(harness.connector, mapping=FieldMapping(
        owners={**mapping.owners, "labels": Owner.TOOL}, status_out=mapping.status_out,
        status_in=mapping.status_in, severity_out=mapping.severity_out))

    harness.push(incident())

    assert jira.issues["OPS-1"].fields["labels"] == ["interlock", "interlock-inc_1"]


def test_a_pull_reads_a_large_issue_that_arrives_in_pieces(jira: FakeJira) -> None:
    harness = Harness(jira, account_id=BOT.account_id)
    harness.push(incident())
    for number in range(40):
        jira.comment_as("OPS-1", f"note {number}: " + "details " * 300)

    pulled = harness.pull(incident())  # the answer is over 100 KB, sent 16 KB at a time

    assert len(pulled.comments) == 40
    assert pulled.comments[-1].body.startswith("note 39: details")
