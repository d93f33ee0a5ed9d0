"""Cursors, ids, key scopes and settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from interlock import config
from interlock.domain.errors import BadRequest
from interlock.domain.ids import has_prefix, new_id
from interlock.domain.keys import ApiKey, Scope, digest, display_prefix, generate_secret
from interlock.domain.pagination import decode_cursor, encode_cursor
from interlock.store.engine import normalise_url

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(1234)) == 1234


@pytest.mark.parametrize("cursor", ["", "!!!", "eyJ4IjoxfQ", "bm90IGpzb24", "eyJwIjotMX0",
                                    "eyJwIjoiMSJ9", "eyJwIjp0cnVlfQ"])
def test_foreign_cursors_are_bad_requests(cursor: str) -> None:
    with pytest.raises(BadRequest):
        decode_cursor(cursor)


def test_ids_carry_their_prefix_and_sort_by_time() -> None:
    first = new_id("inc", NOW)
    later = new_id("inc", datetime(2026, 1, 2, tzinfo=UTC))
    assert has_prefix(first, "inc")
    assert first < later
    assert new_id("inc", NOW) != first


def test_keys_store_only_a_digest_and_show_only_a_prefix() -> None:
    secret = generate_secret()
    assert secret.startswith("ilk_")
    assert len(digest(secret)) == 64
    assert secret not in digest(secret)
    assert secret.startswith(display_prefix(secret))
    assert len(display_prefix(secret)) < len(secret) // 3


def test_scopes_admin_grants_all_and_write_implies_read() -> None:
    def key(*scopes: Scope) -> ApiKey:
        return ApiKey("key_X", "k", frozenset(scopes), "ilk_abc", NOW)

    assert all(key(Scope.ADMIN).allows(scope) for scope in Scope)
    assert key(Scope.INCIDENTS_WRITE).allows(Scope.INCIDENTS_READ)
    assert not key(Scope.INCIDENTS_READ).allows(Scope.INCIDENTS_WRITE)
    assert not key(Scope.INCIDENTS_WRITE).allows(Scope.INCIDENTS_PRIVATE)


def test_settings_layer_toml_then_environment_then_flags(tmp_path: Path) -> None:
    toml = tmp_path / "interlock.toml"
    toml.write_text('port = 9000\nlog_level = "debug"\ndatabase_url = "sqlite:///a.db"\n')
    environ = {"INTERLOCK_CONFIG": str(toml), "INTERLOCK_PORT": "9100"}
    settings = config.load({"database_url": "sqlite:///b.db"}, environ=environ)
    assert settings.port == 9100
    assert settings.log_level == "debug"
    assert settings.database_url == "sqlite:///b.db"


def test_bad_settings_say_which_one(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="port"):
        config.load(environ={"INTERLOCK_PORT": "eighty", "INTERLOCK_CONFIG": str(tmp_path / "x")})


def test_postgres_urls_get_the_psycopg_driver() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_a_tiny_retry_after_falls_back_to_the_schedule() -> None:
    from datetime import UTC, datetime, timedelta

    from interlock.domain.retry import RetryPolicy

    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = RetryPolicy(jitter=0.0)
    assert policy.after_failure(1, now, 0.0).next_attempt_at == now + timedelta(seconds=5)
    assert policy.after_failure(3, now, 0.2).next_attempt_at == now + timedelta(minutes=30)
    assert policy.after_failure(3, now, 120.0).next_attempt_at == now + timedelta(seconds=120)
    assert policy.after_failure(1, now, 1e9).next_attempt_at == now + timedelta(days=1)


def test_tools_hear_of_alerts_joining_an_incident_only_when_they_raise_its_severity() -> None:
    from datetime import UTC, datetime

    from interlock.domain.connectors import shows_in_tools
    from interlock.domain.events import Event, EventType, Origin, OriginKind

    def event(kind: EventType, **data: object) -> Event:
        return Event(id="evt_1", type=kind, occurred_at=datetime(2026, 11, 30, tzinfo=UTC),
                     origin=Origin(OriginKind.SYSTEM), incident_id="inc_1",
                     incident_version=2, data=data)

    assert shows_in_tools(event(EventType.INCIDENT_ACKNOWLEDGED, changes={}))
    assert not shows_in_tools(event(EventType.INCIDENT_ALERT_ATTACHED, changes={}))
    assert shows_in_tools(event(EventType.INCIDENT_ALERT_ATTACHED,
                                changes={"severity": {"from": "medium", "to": "critical"}}))
    assert not shows_in_tools(event(EventType.ENDPOINT_DISABLED))
