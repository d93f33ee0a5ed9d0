"""What every ``interlock`` subcommand shares: consoles, settings, the container."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from interlock import config
from interlock.bootstrap import build
from interlock.domain.errors import InterlockError
from interlock.logs import configure as configure_logs
from interlock.services.container import Container

stdout = Console()
stderr = Console(stderr=True)

Db = Annotated[str | None, typer.Option("--db", help="Database URL (INTERLOCK_DATABASE_URL)")]


def settings(**overrides: object) -> config.Settings:
    try:
        return config.load(dict(overrides))
    except config.ConfigError as error:
        stderr.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error


def container(db: str | None, **overrides: object) -> Container:
    loaded = settings(database_url=db, **overrides)
    configure_logs("warning", loaded.log_format)
    try:
        return build(loaded, migrate_schema=loaded.auto_migrate)
    except InterlockError as error:
        raise fail(error, 1) from error


def fail(error: InterlockError, code: int) -> typer.Exit:
    """Print the error for a person; the caller raises the answer to exit with ``code``."""
    stderr.print(f"[red]error:[/red] {error.detail}")
    return typer.Exit(code)


def redact(url: str) -> str:
    """A database URL without its password, for printing."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"


