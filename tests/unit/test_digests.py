"""The digest rule: when alerts joining an incident are told, and what the telling says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from interlock.domain.digests import Digest, Joined, join, tell_waiting

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=10)


def _joined(*names: str, raises: bool = False, source: str = "src_a") -> Joined:
    return Joined("inc_1", source, list(names), count=len(names),
                  raises_severity=raises)


def test_the_first_alerts_of_an_incident_are_told_at_once() -> None:
    telling, digest = join(None, _joined("a", "b"), T0, WINDOW)
    assert telling is not None and telling.count == 2
    assert digest == Digest("inc_1", last_event_at=T0)


def test_alerts_within_the_window_wait_and_are_counted() -> None:
    _, digest = join(None, _joined("a"), T0, WINDOW)
    telling, digest = join(digest, _joined("b", "c"), T0 + timedelta(seconds=3), WINDOW)
    assert telling is None
    telling, digest = join(digest, _joined("d", source="src_b"), T0 + timedelta(seconds=4),
                           WINDOW)
    assert telling is None
    assert (digest.waiting, digest.due_at, digest.source_id) == (3, T0 + WINDOW, "src_a")
    told, after = tell_waiting(digest, T0 + WINDOW)
    assert told is not None and told.count == 3 and told.source_id == "src_a"
    assert told.alert_ids == ("b", "c", "d")
    assert after == Digest("inc_1", last_event_at=T0 + WINDOW)


def test_a_window_old_telling_lets_the_next_alerts_through_with_those_waiting() -> None:
    digest = Digest("inc_1", last_event_at=T0, waiting=2, alert_ids=("x",),
                    source_id="src_a", due_at=T0 + WINDOW)
    telling, after = join(digest, _joined("y"), T0 + WINDOW, WINDOW)
    assert telling is not None and telling.count == 3
    assert telling.alert_ids == ("x", "y")
    assert after.waiting == 0 and after.due_at is None


def test_raising_the_severity_is_told_at_once() -> None:
    _, digest = join(None, _joined("a"), T0, WINDOW)
    telling, _ = join(digest, _joined("b", raises=True), T0 + timedelta(seconds=1), WINDOW)
    assert telling is not None and telling.count == 1


def test_the_listed_alerts_are_capped_but_all_are_counted() -> None:
    _, digest = join(None, _joined("first"), T0, WINDOW)
    for second in range(1, 6):
        _, digest = join(digest, _joined(*[f"s{second}-{i}" for i in range(10)]),
                         T0 + timedelta(seconds=second), WINDOW)
    told, _ = tell_waiting(digest, T0 + WINDOW)
    assert told is not None and told.count == 50 and len(told.alert_ids) == 20


def test_no_window_tells_every_batch() -> None:
    _, digest = join(None, _joined("a"), T0, timedelta(0))
    telling, _ = join(digest, _joined("b"), T0, timedelta(0))
    assert telling is not None
