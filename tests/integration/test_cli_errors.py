"""The ``interlock`` command when something is wrong, and its lists when piped: what a
user sees is one line on standard error saying what to do (never a traceback), and a
list ``grep`` can search."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from interlock.domain.keys import Scope
from interlock.services.container import Container
from interlock.store.migrate import head_revision


def run(*args: str, cwd: Path | None = None, extra: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "80", "INTERLOCK_CONFIG": "/nonexistent",
           **(extra or {})}
    if "PYTHONPATH" in os.environ:  # lets this file be run against another checkout
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run([sys.executable, "-m", "interlock.cli.main", *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "╭" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database\n" * 100)
    line = one_line_error(run("keys", "list", "--db", "sqlite:///notes.db", cwd=tmp_path))
    assert "sqlite:///notes.db is not a database" in line and "check --db" in line


def test_another_applications_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    for command in (("keys", "list"), ("migrate",)):
        line = one_line_error(run(*command, "--db", f"sqlite:///{path}"))
        assert "another application's tables (customers)" in line
        assert "cannot reach" not in line
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert tables == {"customers"}  # no Interlock table was created in it


def test_a_database_without_tables_says_to_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = run("keys", "list", "--db", url, extra={"INTERLOCK_AUTO_MIGRATE": "false"})
    line = one_line_error(result)
    assert "no such table" not in line
    assert f"has no Interlock tables; run `interlock migrate --db {url}`" in line
    assert run("migrate", "--db", url).returncode == 0
    assert run("keys", "list", "--db", url,
               extra={"INTERLOCK_AUTO_MIGRATE": "false"}).returncode == 0


def test_serve_on_a_busy_port_fails_before_it_starts_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--db", "sqlite:///interlock.db", "--port", str(port),
                     cwd=tmp_path)
    line = one_line_error(result)
    assert f"127.0.0.1:{port} is in use" in line and "--port" in line
    # Nothing started: no database migrated, no worker, no admin key printed.
    assert not (tmp_path / "interlock.db").exists()
    assert "INTERLOCK_KEY" not in result.stdout


@pytest.fixture
def keys(database_url: str, container: Container) -> str:
    container.keys.create("bootstrap admin", [Scope.ADMIN])
    container.keys.create("status-page", [Scope.INCIDENTS_READ])
    container.keys.create("deploy-bot", [Scope.INCIDENTS_WRITE, Scope.INCIDENTS_PRIVATE,
                                         Scope.WEBHOOKS_MANAGE])
    return database_url


def test_keys_list_piped_is_one_full_line_per_key(keys: str, container: Container) -> None:
    result = run("keys", "list", "--db", keys)
    assert result.returncode == 0, result.stderr
    by_id = {key.id: key for key in container.keys.list()}
    rows = [line for line in result.stdout.splitlines() if "status-page" in line]
    assert len(rows) == 1  # what `interlock keys list | grep status-page` finds
    assert rows[0].split()[0] in by_id and by_id[rows[0].split()[0]].name == "status-page"
    deploy = next(line for line in result.stdout.splitlines() if "deploy-bot" in line)
    assert "incidents:private,incidents:write,webhooks:manage" in deploy
    assert not any(char in result.stdout for char in "┃│━")


def test_keys_list_as_json(keys: str) -> None:
    listed = json.loads(run("keys", "list", "--db", keys, "--output", "json").stdout)
    assert [key["name"] for key in listed] == ["bootstrap admin", "status-page", "deploy-bot"]
    assert listed[2]["scopes"] == ["incidents:private", "incidents:write", "webhooks:manage"]


def test_keys_table_at_80_columns_keeps_every_value_whole(keys: str,
                                                          container: Container) -> None:
    table = run("keys", "list", "--db", keys, "--output", "table").stdout
    assert max(len(line) for line in table.splitlines()) <= 80, table
    for key in container.keys.list():
        assert key.id in table and key.name in table  # never cut, never wrapped
    for scope in ("incidents:private", "incidents:write", "webhooks:manage"):
        assert scope in table, table


def test_help_shows_flags_cleanly() -> None:
    for command in (("serve",), ("keys", "create"), ("incidents", "list"),
                    ("deliveries", "tail")):
        shown = run(*command, "--help")
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout
        assert "<bool>" not in text and "<str>" not in text and "<int>" not in text, text
        assert "╭" not in text
    scopes = run("keys", "create", "--help").stdout
    for scope in Scope:  # every choice whole, none wrapped mid-word
        assert scope.value in scopes, scopes
    assert "--db URL" in scopes


def test_migrate_still_reports_the_revision(tmp_path: Path) -> None:
    result = run("migrate", "--db", f"sqlite:///{tmp_path / 'new.db'}")
    assert result.returncode == 0, result.stderr
    assert f"schema at revision {head_revision()}" in result.stdout
