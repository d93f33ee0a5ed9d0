"""Schema upgrades with Alembic, safe to run from several processes at once."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from interlock.domain.errors import StoreUnavailable
from interlock.store.engine import WRITE_OPTION

_MIGRATIONS = Path(__file__).parent / "migrations"
#: Arbitrary, fixed key for pg_advisory_xact_lock: one migrator at a time.
_LOCK_KEY = 7_470_317_241


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    try:
        _upgrade(engine, revision)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise StoreUnavailable(f"cannot reach the database to migrate it: {reason}") from error


def _upgrade(engine: Engine, revision: str) -> None:
    config = _config()
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
            config.attributes["connection"] = connection
            command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()
