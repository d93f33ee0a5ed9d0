"""``interlock keys``: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column, Table

from interlock.cli.common import Db, container, fail, stdout
from interlock.domain.errors import InterlockError
from interlock.domain.keys import Scope

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key")],
    scope: Annotated[list[Scope], typer.Option(help="Repeat for several scopes")],
    db: Db = None,
) -> None:
    """Create a key. Its secret is printed alone on the last line, for scripts."""
    app = container(db)
    try:
        key, secret = app.keys.create(name, scope)
    except InterlockError as error:
        raise fail(error, 2) from error
    scopes = ", ".join(sorted(item.value for item in key.scopes))
    stdout.print(f"created {key.id} '{key.name}' with scopes {scopes}; the secret follows:",
                 highlight=False, soft_wrap=True)
    print(secret)


@keys_app.command("list")
def keys_list(db: Db = None) -> None:
    """List keys (never their secrets)."""
    app = container(db)
    # The id is what `keys revoke` takes: never shorten it, however narrow the terminal.
    table = Table(Column("ID", no_wrap=True, min_width=30), "Name", "Prefix", "Scopes",
                  "Created", "Revoked")
    for key in app.keys.list():
        table.add_row(
            key.id, key.name, key.prefix + "…", ", ".join(sorted(s.value for s in key.scopes)),
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "",
        )
    stdout.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, db: Db = None) -> None:
    """Revoke a key at once."""
    app = container(db)
    try:
        key = app.keys.revoke(key_id)
    except InterlockError as error:
        raise fail(error, 1) from error
    stdout.print(f"revoked {key.id} '{key.name}'", highlight=False)
