"""The ``interlock`` command, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

from interlock.domain.incidents import Severity, Visibility
from interlock.domain.keys import Scope
from interlock.services.container import Container
from interlock.services.incidents import Declaration
from interlock.store.migrate import head_revision
from tests.integration.test_concurrency import VIEWER


def interlock(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.cli.main", *args, "--db", database_url],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "160", "INTERLOCK_CONFIG": "/nonexistent"},
    )


def test_keys_create_prints_the_secret_alone_on_the_last_line(
    database_url: str, container: Container
) -> None:
    result = interlock("keys", "create", "--name", "deploy-bot", "--scope", "incidents:read",
                       "--scope", "incidents:write", database_url=database_url)
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("ilk_") and " " not in secret
    key = container.keys.authenticate(secret)
    assert key.name == "deploy-bot"
    assert key.scopes == {Scope.INCIDENTS_READ, Scope.INCIDENTS_WRITE}

    listed = interlock("keys", "list", database_url=database_url)
    assert "deploy-bot" in listed.stdout
    assert secret not in listed.stdout

    revoked = interlock("keys", "revoke", key.id, database_url=database_url)
    assert revoked.returncode == 0
    assert container.keys.list()[0].revoked_at is not None


def test_keys_create_refuses_unknown_scopes(database_url: str) -> None:
    result = interlock("keys", "create", "--name", "x", "--scope", "everything",
                       database_url=database_url)
    assert result.returncode == 2
    assert "everything" in result.stderr


def test_incidents_list_shows_a_table(database_url: str, container: Container) -> None:
    container.incidents.declare(VIEWER, Declaration("Checkout 500s", Severity.CRITICAL,
                                                    service="checkout"))
    container.incidents.declare(VIEWER, Declaration("Audit", Severity.LOW,
                                                    visibility=Visibility.PRIVATE))
    result = interlock("incidents", "list", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "INC-1" in result.stdout and "Checkout 500s" in result.stdout
    assert "critical" in result.stdout and "checkout" in result.stdout
    assert "(private)" in result.stdout
    filtered = interlock("incidents", "list", "--severity", "low", database_url=database_url)
    assert "Checkout" not in filtered.stdout and "INC-2" in filtered.stdout
    empty = interlock("incidents", "list", "--status", "resolved", database_url=database_url)
    assert "No incidents match" in empty.stdout


def test_migrate_reports_the_revision(database_url: str) -> None:
    result = interlock("migrate", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert f"schema at revision {head_revision()}" in result.stdout


def test_alerts_send_processes_a_payload_and_names_the_incident(
    database_url: str, container: Container
) -> None:
    from pathlib import Path

    from interlock.domain.alerts import SourceKind
    from interlock.services.sources import SourceSpec

    source, _ = container.sources.create(SourceSpec(name="pd", kind=SourceKind.PAGERDUTY))
    fixture = Path(__file__).parent.parent / "fixtures" / "sources" / "pagerduty-docs-trigger.json"
    result = interlock("alerts", "send", "--source", source.id, "--file", str(fixture),
                       database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "1 alerts" in result.stdout
    assert "INC-1 triggered" in result.stdout
    broken = subprocess.run(
        [sys.executable, "-m", "interlock.cli.main", "alerts", "send", "--source", source.id,
         "--file", "-", "--db", database_url],
        input='{"event_action": "trigger"}', capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "160", "INTERLOCK_CONFIG": "/nonexistent"},
    )
    assert broken.returncode == 1
    assert "failed" in broken.stdout
