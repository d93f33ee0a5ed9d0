"""Schema upgrades with Alembic, safe to run from several processes at once."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from interlock.domain.errors import DatabaseUnusable, StoreUnavailable
from interlock.store.engine import WRITE_OPTION

_MIGRATIONS = Path(__file__).parent / "migrations"
#: Arbitrary, fixed key for pg_advisory_xact_lock: one migrator at a time.
_LOCK_KEY = 7_470_317_241


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def check_usable(engine: Engine, *, migrating: bool, shown: str | None = None) -> None:
    """Refuse, saying what to do, a database Interlock cannot use, before anything else
    touches it: a file that is not a database, another application's database (which a
    migration would fill with Interlock's tables), or, when not ``migrating``, a schema
    other than this version's. ``shown`` is the URL as the user wrote it, to name it."""
    where = shown or engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            revision = (MigrationContext.configure(connection).get_current_revision()
                        if "alembic_version" in tables else None)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
        raise StoreUnavailable(f"cannot reach the database at {where}: {_reason(error)}"
                               ) from error
    except sa.exc.DatabaseError as error:
        raise DatabaseUnusable(f"{where} is not a database Interlock can open "
                               f"({_reason(error)}); check --db") from error
    if revision is None and tables:
        names = ", ".join(sorted(tables)[:3]) + (", …" if len(tables) > 3 else "")
        raise DatabaseUnusable(
            f"{where} holds another application's tables ({names}) and no Interlock "
            "schema; give Interlock a database of its own")
    if revision is not None and revision not in _known_revisions():
        raise DatabaseUnusable(f"the database at {where} is at schema revision {revision}, "
                               "which this version of Interlock does not know (upgraded "
                               "by a newer one?)")
    head = head_revision()
    if migrating or revision == head:
        return
    if revision is None:
        raise DatabaseUnusable(f"the database at {where} has no Interlock tables; run "
                               f"`interlock migrate --db {where}`")
    raise DatabaseUnusable(f"the database at {where} is at schema revision {revision}, "
                           f"this version needs {head}; run `interlock migrate --db {where}`")


def _reason(error: Exception) -> str:
    return str(getattr(error, "orig", error)).strip().splitlines()[0]


def _known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}


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
