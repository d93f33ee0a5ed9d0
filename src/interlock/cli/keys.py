"""``interlock keys``: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from interlock.cli.common import Db, container, fail, stdout
from interlock.cli.output import Column, OutputOption, Value, show
from interlock.domain.errors import InterlockError
from interlock.domain.keys import ApiKey, Scope

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(metavar="NAME", help="Who or what uses the key")],
    scope: Annotated[list[Scope], typer.Option(
        metavar="SCOPE", show_choices=False,
        help=f"Repeat for several: {', '.join(item.value for item in Scope)}")],
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
def keys_list(db: Db = None, output: OutputOption = None) -> None:
    """List keys (never their secrets)."""
    app = container(db)
    show(_KEY_COLUMNS, [_key_row(key) for key in app.keys.list()], output, empty="No keys.")


_KEY_COLUMNS = (Column("id", "ID"), Column("name", "Name"),
                Column("prefix", "Prefix"), Column("scopes", "Scopes"),
                Column("created", "Created"), Column("revoked", "Revoked"))


def _key_row(key: ApiKey) -> dict[str, Value]:
    return {
        "id": key.id, "name": key.name, "prefix": key.prefix + "…",
        "scopes": sorted(scope.value for scope in key.scopes),
        "created": key.created_at.strftime("%Y-%m-%d %H:%M"),
        "revoked": key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else None,
    }


@keys_app.command("revoke")
def keys_revoke(key_id: str, db: Db = None) -> None:
    """Revoke a key at once."""
    app = container(db)
    try:
        key = app.keys.revoke(key_id)
    except InterlockError as error:
        raise fail(error, 1) from error
    stdout.print(f"revoked {key.id} '{key.name}'", highlight=False)
