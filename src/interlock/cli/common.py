"""What every ``interlock`` subcommand shares: consoles, settings, the container."""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from interlock import config
from interlock.bootstrap import build
from interlock.domain.errors import InterlockError
from interlock.logs import configure as configure_logs
from interlock.services.container import Container
from interlock.store.engine import create_engine
from interlock.store.locks import Role
from interlock.store.migrate import check_usable

# soft_wrap: a line longer than the terminal (or than 80 columns, when not a terminal)
# is left for the terminal to wrap, never broken by us: a log file or `grep` sees one
# line per message.
stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

Db = Annotated[str | None, typer.Option(
    "--db", metavar="URL", help="Database URL (else INTERLOCK_DATABASE_URL, else ./interlock.db)")]


def settings(**overrides: object) -> config.Settings:
    try:
        return config.load(dict(overrides))
    except config.ConfigError as error:
        stderr.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from error


def container(db: str | None, **overrides: object) -> Container:
    loaded = settings(database_url=db, **overrides)
    configure_logs("warning", loaded.log_format)
    return open_container(loaded)


def open_container(loaded: config.Settings, role: Role = Role.PEOPLE) -> Container:
    """The wired services, once the database is known to be one Interlock can use (else
    one line saying why and what to do, and exit status 1). ``role``: a worker process
    lets people's writes go first (SQLite)."""
    try:
        engine = create_engine(loaded.database_url)
        try:
            check_usable(engine, migrating=loaded.auto_migrate,
                         shown=redact(loaded.database_url))
        finally:
            engine.dispose()
        return build(loaded, migrate_schema=loaded.auto_migrate, role=role)
    except InterlockError as error:
        raise fail(error, 1) from error


def check_port_free(host: str, port: int) -> None:
    """Fail before anything starts (a migration, a worker on the same database) when
    ``host:port`` cannot be listened on, e.g. because another ``interlock serve`` is."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn does, so a port whose last connections are in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = ("is in use (another `interlock serve`?); stop that process or "
                      "choose another port with --port"
                      if error.errno == errno.EADDRINUSE else f"cannot be used: {error.strerror}")
            stderr.print(f"[red]error:[/red] {host}:{port} {reason}", highlight=False)
            raise typer.Exit(1) from error


def fail(error: InterlockError, code: int) -> typer.Exit:
    """Print the error for a person; the caller raises the answer to exit with ``code``."""
    stderr.print(f"[red]error:[/red] {escape(error.detail)}", highlight=False)
    return typer.Exit(code)


def redact(url: str) -> str:
    """A database URL without its password, for printing."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"


