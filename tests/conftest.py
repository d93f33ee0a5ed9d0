"""Fixtures shared by every test: databases (SQLite and PostgreSQL), a wired container,
an API client, and API keys.

``database_url`` is parametrised, so a test that uses it (directly or through
``container``/``client``) runs once on SQLite and once on a real PostgreSQL server.
``scripts/test.sh`` starts that server; without it PostgreSQL cases are skipped, unless
INTERLOCK_REQUIRE_POSTGRES is set (as ``make test`` does), where they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from interlock import config
from interlock.asgi import create_app
from interlock.bootstrap import build
from interlock.clock import ManualClock, SystemClock
from interlock.domain.keys import Scope
from interlock.services.container import Container
from interlock.store import migrate
from interlock.store.engine import create_engine, normalise_url
from interlock.store.tables import metadata
from tests.support.fake_jira import FakeJira
from tests.support.fake_slack import FakeSlack
from tests.support.smtp import smtp_server, smtp_sink  # noqa: F401  (fixtures)

#: Encrypts connector credentials in tests (never a key file in the working tree).
TEST_SECRET_KEY = "interlock-test-secret"
POSTGRES_URL = os.environ.get("INTERLOCK_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("INTERLOCK_REQUIRE_POSTGRES") == "1"


def _postgres_or_skip() -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    if REQUIRE_POSTGRES:
        pytest.fail("INTERLOCK_TEST_POSTGRES_URL is not set; run the tests with `make test`")
    pytest.skip("no PostgreSQL (set INTERLOCK_TEST_POSTGRES_URL or run `make test`)")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "interlock.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database for this test session on the test server, migrated once."""
    server = _postgres_or_skip()
    name = f"interlock_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture
def postgres_hub(postgres_database: str) -> Iterator[Container]:
    """Interlock on the session's PostgreSQL database, emptied first, on the system
    clock: for tests of what the server itself does (plans, storage)."""
    _truncate_postgres(postgres_database)
    built = build(config.load({"database_url": postgres_database,
                               "secret_key": TEST_SECRET_KEY}, environ={}),
                  clock=SystemClock())
    yield built
    built.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "interlock.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    _truncate_postgres(url)
    return url


@pytest.fixture
def clock() -> SystemClock:
    return SystemClock()


@pytest.fixture
def manual_clock() -> ManualClock:
    """Starts at the real time (receivers check webhook timestamps against it)."""
    return ManualClock(SystemClock().now())


@pytest.fixture
def settings(database_url: str) -> config.Settings:
    return config.load({"database_url": database_url, "secret_key": TEST_SECRET_KEY},
                       environ={})


@pytest.fixture
def container(settings: config.Settings, clock: SystemClock) -> Iterator[Container]:
    built = build(settings, clock=clock)
    yield built
    built.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as test_client:
        yield test_client


def make_key(container: Container, *scopes: Scope, name: str = "test") -> dict[str, str]:
    """Authorization headers for a new key with ``scopes``."""
    _, secret = container.keys.create(name, scopes)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin(container: Container) -> dict[str, str]:
    return make_key(container, Scope.ADMIN, name="admin")


@pytest.fixture
def writer(container: Container) -> dict[str, str]:
    """incidents:write (which implies read), but not private."""
    return make_key(container, Scope.INCIDENTS_WRITE, name="writer")


@pytest.fixture
def reader(container: Container) -> dict[str, str]:
    return make_key(container, Scope.INCIDENTS_READ, name="reader")


@pytest.fixture
def hub(database_url: str, manual_clock: ManualClock) -> Iterator[Container]:
    """A container on a clock the test moves, allowed to deliver to loopback."""
    settings = config.load(
        {"database_url": database_url, "allowed_targets": "127.0.0.0/8",
         "secret_key": TEST_SECRET_KEY}, environ={}
    )
    built = build(settings, clock=manual_clock)
    yield built
    built.close()


@pytest.fixture
def hub_client(hub: Container) -> Iterator[TestClient]:
    with TestClient(create_app(hub), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    """A loopback server speaking Jira Cloud's REST API (tests/support/fake_jira.py)."""
    with FakeJira() as running:
        yield running


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A loopback server speaking Slack's Web API (tests/support/fake_slack.py)."""
    with FakeSlack() as running:
        yield running
