"""Fanning an event out to connectors looks for sync jobs already queued for its
incident (a new one waits behind them). That lookup must not grow with what is pending:
a paced tool (Slack, a message a second) has thousands of jobs waiting in a storm. So it
searches the (connector, incident) index; it never walks every pending job, as it did
when it asked by incident alone. Only a walk that stops after a LIMIT (claiming the
oldest due) may scan. (Deliveries are looked up by incident alone, walking the partial
index of pending deliveries: with 10 endpoints, an index search per endpoint and
incident measured slower; see store.deliveries.)

The plans are SQLite's own (EXPLAIN QUERY PLAN) for the very statements and parameters
that Interlock ran."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from interlock.services.container import Container
from tests.integration.test_sync_claims import jira_connector
from tests.integration.test_worker import declare_many

__all__ = ["jira_connector"]  # a fixture the tests here take

@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "interlock.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def statements(hub: Container) -> Iterator[list[tuple[str, Any]]]:
    """Every single statement (not executemany) run on the hub's database meanwhile."""
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
             executemany: bool) -> None:
        if not executemany:
            seen.append((statement, parameters))

    sa.event.listen(hub.store.engine, "before_cursor_execute", note)
    yield seen
    sa.event.remove(hub.store.engine, "before_cursor_execute", note)


def test_fanning_out_searches_for_queued_jobs_instead_of_walking_every_pending_one(
        hub: Container, jira_connector: str, statements: list[tuple[str, Any]],
        database_url: str) -> None:
    declare_many(hub, 3)
    while hub.deliveries.dispatch():
        pass
    declare_many(hub, 3)  # the second time, with jobs pending
    while hub.deliveries.dispatch():
        pass

    database = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    walks = []
    looked_at = 0
    for statement, parameters in statements:
        words = statement.split()
        if (not words or words[0].upper() != "SELECT" or " LIMIT " in statement
                or "FROM sync_jobs" not in statement):
            continue
        looked_at += 1
        plan = [row[3] for row in
                database.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]
        walks += [(statement, line) for line in plan if line.startswith("SCAN sync_jobs")]
    database.close()
    assert looked_at >= 2, "the fan-outs looked for queued jobs"
    assert walks == []
