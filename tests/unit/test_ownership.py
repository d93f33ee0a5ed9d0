"""The conflict rule (domain.ownership): what a pull may change, what a push leaves
remembered, given who owns which field and what Interlock last saw in the tool."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from interlock.domain import incidents as rules
from interlock.domain.connectors import FieldMapping, Owner
from interlock.domain.incidents import Severity, Status
from interlock.domain.ownership import (
    UNSET,
    PulledState,
    decide_pull,
    is_unset,
    state_after_push,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BOTH = FieldMapping(owners={"status": Owner.BOTH, "assignee": Owner.TOOL,
                            "comments": Owner.BOTH})
OURS = FieldMapping(owners={"status": Owner.INTERLOCK, "assignee": Owner.INTERLOCK,
                            "comments": Owner.INTERLOCK})


def incident(status: Status = Status.TRIGGERED) -> rules.Incident:
    made = rules.declare(incident_id="inc_1", title="Disk full", severity=Severity.HIGH,
                         now=NOW)
    return dataclasses.replace(made, status=status)


def test_a_tool_still_showing_what_interlock_wrote_is_no_change() -> None:
    state = {"seen": {"status": "acknowledged", "assignee": "dana"}, "comments": ["1"]}
    decision = decide_pull(BOTH, state, PulledState(
        status=Status.ACKNOWLEDGED, assignee="dana", comment_ids=["1"]))
    assert decision.status is None and is_unset(decision.assignee)
    assert decision.new_comments == ()
    assert not decision.changes_anything


def test_a_change_in_the_tool_is_applied_and_remembered_as_seen() -> None:
    state = {"seen": {"status": "triggered", "assignee": None}, "comments": ["1"]}
    decision = decide_pull(BOTH, state, PulledState(
        status=Status.RESOLVED, assignee="erin", comment_ids=["1", "2", "3"]))
    assert decision.status is Status.RESOLVED
    assert decision.assignee == "erin"
    assert decision.new_comments == ("2", "3")
    assert decision.seen == {"status": "resolved", "assignee": "erin"}
    assert decision.known_comments == ("1", "2", "3")
    # Pulled again, the same state changes nothing.
    again = decide_pull(BOTH, {"seen": decision.seen, "comments": decision.known_comments},
                        PulledState(status=Status.RESOLVED, assignee="erin",
                                    comment_ids=["1", "2", "3"]))
    assert not again.changes_anything


def test_fields_interlock_owns_are_never_pulled() -> None:
    decision = decide_pull(OURS, {}, PulledState(
        status=Status.RESOLVED, assignee="erin", comment_ids=["9"]))
    assert not decision.changes_anything
    assert decision.seen == {}


def test_nobody_is_a_value_but_unset_is_silence() -> None:
    seen = {"seen": {"assignee": "dana"}}
    assert decide_pull(BOTH, seen, PulledState(assignee=None)).assignee is None
    assert is_unset(decide_pull(BOTH, seen, PulledState(assignee=UNSET)).assignee)
    assert is_unset(decide_pull(BOTH, seen, PulledState(assignee=...)).assignee)


def test_after_a_push_the_status_written_is_seen_and_a_pull_of_it_is_no_change() -> None:
    state = state_after_push(BOTH, {"seen": {"status": "triggered", "assignee": "dana"}},
                             incident(Status.ACKNOWLEDGED), ["c1"])
    assert state["seen"] == {"status": "acknowledged", "assignee": "dana"}
    assert state["comments"] == ["c1"]
    decision = decide_pull(BOTH, state, PulledState(status=Status.ACKNOWLEDGED,
                                                    comment_ids=["c1"]))
    assert not decision.changes_anything


def test_a_push_does_not_claim_a_status_the_tool_owns() -> None:
    tool_owned = FieldMapping(owners={"status": Owner.TOOL})
    state = state_after_push(tool_owned, {"seen": {"status": "triggered"}},
                             incident(Status.RESOLVED))
    assert state["seen"] == {"status": "triggered"}
    # So the tool's own status still counts as a change when pulled.
    assert decide_pull(tool_owned, state,
                       PulledState(status=Status.ACKNOWLEDGED)).status is Status.ACKNOWLEDGED


def test_comment_ids_written_twice_are_remembered_once() -> None:
    state = state_after_push(BOTH, {"comments": ["c1"]}, incident(), ["c1", "c2"])
    assert state["comments"] == ["c1", "c2"]


def test_a_status_the_driver_says_the_tool_shows_is_seen_instead_of_the_incidents() -> None:
    # A new Jira issue whose workflow starts in "Waiting for support" (in progress).
    state = state_after_push(BOTH, {}, incident(), shown=Status.ACKNOWLEDGED)
    assert state["seen"] == {"status": "acknowledged"}
    assert decide_pull(BOTH, state, PulledState(status=Status.ACKNOWLEDGED)).status is None


def test_a_push_that_failed_remembers_its_comments_but_claims_no_status() -> None:
    # A refused workflow move, then the comment the same push still wrote.
    state = state_after_push(BOTH, {"seen": {"status": "triggered"}},
                             incident(Status.RESOLVED), ["c9"], succeeded=False)
    assert state == {"seen": {"status": "triggered"}, "comments": ["c9"]}
    decision = decide_pull(BOTH, state, PulledState(comment_ids=["c9"]))
    assert decision.new_comments == ()
