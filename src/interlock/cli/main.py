"""``interlock``: serve, migrate, manage keys, look at incidents."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from interlock import config
from interlock.bootstrap import build
from interlock.domain.errors import InterlockError
from interlock.domain.events import Origin, OriginKind
from interlock.domain.incidents import Severity, Status
from interlock.domain.keys import Scope
from interlock.logs import configure as configure_logs
from interlock.ports.store import IncidentFilter
from interlock.services.container import Container
from interlock.services.incidents import Viewer

app = typer.Typer(help="Interlock: bi-directional incident integrations.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
incidents_app = typer.Typer(help="Look at incidents from the terminal.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(incidents_app, name="incidents")

stdout = Console()
stderr = Console(stderr=True)

Db = Annotated[str | None, typer.Option("--db", help="Database URL (INTERLOCK_DATABASE_URL)")]


def _settings(**overrides: object) -> config.Settings:
    try:
        return config.load(dict(overrides))
    except config.ConfigError as error:
        stderr.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error


def _container(db: str | None) -> Container:
    settings = _settings(database_url=db)
    configure_logs("warning", settings.log_format)
    try:
        return build(settings, migrate_schema=settings.auto_migrate)
    except InterlockError as error:
        stderr.print(f"[red]error:[/red] {error.detail}")
        raise typer.Exit(1) from error


@app.command()
def serve(
    db: Db = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
) -> None:
    """Serve the API (and, on first start, print an admin API key)."""
    import uvicorn

    from interlock.api.app import create_app

    settings = _settings(database_url=db, host=host, port=port)
    configure_logs(settings.log_level, settings.log_format)
    try:
        container = build(settings, migrate_schema=settings.auto_migrate)
        secret = container.keys.bootstrap_admin()
    except InterlockError as error:
        stderr.print(f"[red]error:[/red] {error.detail}")
        raise typer.Exit(1) from error
    if secret is not None:
        stdout.print(
            "\n[bold]First start: an admin API key was created. It is shown only now.[/bold]\n"
            f"  export INTERLOCK_KEY={secret}\n"
        )
        sys.stdout.flush()
    stdout.print(f"Interlock serving on {settings.base_url} (database: "
                 f"{_redact(settings.database_url)})")
    uvicorn.run(
        create_app(container), host=settings.host, port=settings.port,
        log_level=settings.log_level, proxy_headers=False, server_header=False,
    )


@app.command()
def migrate(db: Db = None) -> None:
    """Upgrade the database schema to this version of Interlock."""
    from interlock.store.engine import create_engine
    from interlock.store.migrate import current_revision, head_revision, upgrade

    settings = _settings(database_url=db)
    engine = create_engine(settings.database_url)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    stdout.print(f"schema at revision {after} (was {before or 'empty'}; head {head_revision()})")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key")],
    scope: Annotated[list[Scope], typer.Option(help="Repeat for several scopes")],
    db: Db = None,
) -> None:
    """Create a key. Its secret is printed alone on the last line, for scripts."""
    container = _container(db)
    try:
        key, secret = container.keys.create(name, scope)
    except InterlockError as error:
        stderr.print(f"[red]error:[/red] {error.detail}")
        raise typer.Exit(2) from error
    scopes = ", ".join(sorted(item.value for item in key.scopes))
    stdout.print(f"created {key.id} '{key.name}' with scopes {scopes}; the secret follows:",
                 highlight=False, soft_wrap=True)
    print(secret)


@keys_app.command("list")
def keys_list(db: Db = None) -> None:
    """List keys (never their secrets)."""
    container = _container(db)
    # The id is what `keys revoke` takes: never shorten it, however narrow the terminal.
    table = Table(Column("ID", no_wrap=True, min_width=30), "Name", "Prefix", "Scopes",
                  "Created", "Revoked")
    for key in container.keys.list():
        table.add_row(
            key.id, key.name, key.prefix + "…", ", ".join(sorted(s.value for s in key.scopes)),
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "",
        )
    stdout.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, db: Db = None) -> None:
    """Revoke a key at once."""
    container = _container(db)
    try:
        key = container.keys.revoke(key_id)
    except InterlockError as error:
        stderr.print(f"[red]error:[/red] {error.detail}")
        raise typer.Exit(1) from error
    stdout.print(f"revoked {key.id} '{key.name}'", highlight=False)


_STATUS_STYLE = {Status.TRIGGERED: "bold red", Status.ACKNOWLEDGED: "yellow",
                 Status.RESOLVED: "green"}


@incidents_app.command("list")
def incidents_list(
    status: Annotated[list[Status] | None, typer.Option(help="Repeat for several")] = None,
    severity: Annotated[list[Severity] | None, typer.Option(help="Repeat for several")] = None,
    service: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    db: Db = None,
) -> None:
    """The newest incidents, private ones included (this reads the database directly)."""
    container = _container(db)
    viewer = Viewer(Origin(OriginKind.SYSTEM, name="cli"), can_see_private=True)
    where = IncidentFilter(
        statuses=frozenset(status or []), severities=frozenset(severity or []), service=service
    )
    page = container.incidents.list(viewer, where, cursor=None, limit=limit)
    table = Table("Ref", "Status", "Severity", "Service", "Title", "Assignee", "Created (UTC)")
    for incident in page.items:
        table.add_row(
            incident.reference,
            f"[{_STATUS_STYLE[incident.status]}]{incident.status.value}[/]",
            incident.severity.value,
            incident.service or "",
            incident.title + (" [dim](private)[/dim]" if incident.is_private else ""),
            incident.assignee or "",
            incident.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    if not page.items:
        stdout.print("No incidents match.")
        return
    stdout.print(table)


def _redact(url: str) -> str:
    """A database URL without its password, for printing."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"


if __name__ == "__main__":
    app()
