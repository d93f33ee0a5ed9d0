"""People's changes that arrive together are committed together, and each still gets
its own answer: a refused change is undone alone, a failed transaction is retried
change by change, and nothing is written twice or lost."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from interlock.domain.errors import NotFound, PreconditionFailed, StoreUnavailable
from interlock.domain.events import Origin, OriginKind
from interlock.domain.incidents import Severity
from interlock.ports.store import Transaction
from interlock.services.container import Container
from interlock.services.incidents import Declaration, Viewer
from interlock.services.writes import WriteBatches

VIEWER = Viewer(Origin(OriginKind.SYSTEM, name="test"), can_see_private=True)


def _incident(container: Container) -> str:
    declaration = Declaration(title="Checkout is down", severity=Severity.HIGH)
    return container.incidents.declare(VIEWER, declaration).id


@contextlib.contextmanager
def _counting_commits(container: Container) -> Iterator[list[int]]:
    commits: list[int] = []

    def count(_connection: Any) -> None:
        commits.append(1)

    engine = container.store.engine  # type: ignore[attr-defined]
    sa.event.listen(engine, "commit", count)
    try:
        yield commits
    finally:
        sa.event.remove(engine, "commit", count)


async def _together(writes: WriteBatches, first: Callable[[Transaction], Any],
                    others: list[Callable[[Transaction], Any]]) -> list[Any]:
    """Run ``first``, and ``others`` while it is being written (so they wait together
    for the next transaction); each one's answer or exception, in order."""
    started, go = threading.Event(), threading.Event()

    def held(tx: Transaction) -> Any:
        started.set()
        assert go.wait(10)
        return first(tx)

    leading = asyncio.ensure_future(writes.run(held))
    await asyncio.to_thread(started.wait, 10)
    rest: list[Awaitable[Any]] = [writes.run(operation) for operation in others]
    waiting = asyncio.gather(*rest, return_exceptions=True)
    await asyncio.sleep(0.05)  # all of them queued behind the one being written
    go.set()
    return [await leading, *await waiting]


def test_changes_arriving_together_share_one_commit(container: Container) -> None:
    incident = _incident(container)
    incidents = container.incidents

    def comment(text: str) -> Callable[[Transaction], Any]:  # binds text now
        return lambda tx: incidents.comment_in(tx, VIEWER, incident, text)

    with _counting_commits(container) as commits:
        answers = asyncio.run(_together(container.writes, comment("first"),
                                        [comment(f"note {i}") for i in range(20)]))
    assert all(not isinstance(answer, BaseException) for answer in answers)
    assert len(commits) == 2  # the first alone, the twenty that waited in one
    timeline = incidents.timeline(VIEWER, incident, cursor=None, limit=100).items
    bodies = [entry.body for entry in timeline if entry.body]
    assert bodies == ["first", *(f"note {i}" for i in range(20))]
    assert incidents.get(VIEWER, incident).version == 1 + 21


def test_a_refused_change_is_undone_alone(container: Container) -> None:
    incident = _incident(container)
    incidents = container.incidents
    answers = asyncio.run(_together(container.writes,
        lambda tx: incidents.comment_in(tx, VIEWER, incident, "before"), [
            lambda tx: incidents.comment_in(tx, VIEWER, incident, "kept"),
            # Refused after it has written: its timeline entry must go too.
            lambda tx: (incidents.comment_in(tx, VIEWER, incident, "undone"),
                        incidents.change_status_in(tx, VIEWER, incident, "resolve",
                                                   expected_version=1)),
            lambda tx: incidents.comment_in(tx, VIEWER, "INC-404", "nowhere"),
            lambda tx: incidents.change_status_in(tx, VIEWER, incident, "acknowledge"),
        ]))
    assert isinstance(answers[2], PreconditionFailed)
    assert isinstance(answers[3], NotFound)
    assert answers[4].status.value == "acknowledged"
    bodies = [entry.body for entry in
              incidents.timeline(VIEWER, incident, cursor=None, limit=100).items if entry.body]
    assert bodies == ["before", "kept"]
    now = incidents.get(VIEWER, incident)
    assert (now.status.value, now.version) == ("acknowledged", 4)


def test_a_failed_transaction_is_retried_change_by_change(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    incident = _incident(container)
    incidents = container.incidents
    store = container.store
    real = store.transaction
    writes_seen = []

    @contextlib.contextmanager
    def failing_once(**kwargs: Any) -> Iterator[Transaction]:
        """The second write transaction (the three that waited) fails to commit."""
        with real(**kwargs) as tx:
            yield tx
            writes_seen.append(1)
            if len(writes_seen) == 2:  # undone: the commit never happens
                raise StoreUnavailable("the database failed: disk I/O error")

    writes = WriteBatches(store)
    first = lambda tx: incidents.comment_in(tx, VIEWER, incident, "first")  # noqa: E731
    monkeypatch.setattr(store, "transaction", failing_once)
    answers = asyncio.run(_together(writes, first, [
        lambda tx, i=i: incidents.comment_in(tx, VIEWER, incident, f"note {i}")
        for i in range(3)]))
    monkeypatch.undo()
    assert len(writes_seen) == 1 + 1 + 3  # the first; the three, failed; each alone
    assert all(not isinstance(answer, BaseException) for answer in answers)
    bodies = [entry.body for entry in
              incidents.timeline(VIEWER, incident, cursor=None, limit=100).items if entry.body]
    assert bodies == ["first", "note 0", "note 1", "note 2"]  # each once, none lost


def test_a_database_error_in_one_change_fails_only_that_change(container: Container) -> None:
    incident = _incident(container)
    incidents = container.incidents

    def broken(tx: Transaction) -> None:
        incidents.comment_in(tx, VIEWER, incident, "broken")
        tx.connection.execute(sa.text("SELECT * FROM no_such_table"))  # type: ignore[attr-defined]

    answers = asyncio.run(_together(container.writes,
        lambda tx: incidents.comment_in(tx, VIEWER, incident, "first"), [
            lambda tx: incidents.comment_in(tx, VIEWER, incident, "before it"),
            broken,
            lambda tx: incidents.comment_in(tx, VIEWER, incident, "after it"),
        ]))
    assert isinstance(answers[2], Exception)
    assert not any(isinstance(answer, Exception) for answer in (answers[:2] + answers[3:]))
    bodies = [entry.body for entry in
              incidents.timeline(VIEWER, incident, cursor=None, limit=100).items if entry.body]
    assert bodies == ["first", "before it", "after it"]
