"""``interlock alerts send``: try a source from the terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from interlock.cli.common import Db, container, stdout
from interlock.domain.alerts import PayloadStatus
from interlock.domain.events import Origin, OriginKind
from interlock.services.incidents import Viewer

alerts_app = typer.Typer(help="Send alerts to a source from the terminal.",
                         no_args_is_help=True)


@alerts_app.command("send")
def send(
    source: Annotated[str, typer.Option(metavar="SRC_ID", help="The source id (src_…)")],
    file: Annotated[Path, typer.Option(
        metavar="FILE", help="A JSON payload in the source's format; - for standard input",
        allow_dash=True)],
    db: Db = None,
) -> None:
    """Process a payload as if the source's tool had sent it, and show what it did."""
    app = container(db)
    found = app.intake.source(source)
    if found is None:
        stdout.print(f"[red]error:[/red] no source {source}")
        raise typer.Exit(1)
    body = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    payload, touched = app.alerts.process_now(app.intake.received(found, body,
                                                                  "application/json"))
    if payload.status is PayloadStatus.FAILED:
        stdout.print(f"[red]{payload.id} failed:[/red] {payload.error}", highlight=False)
        raise typer.Exit(1)
    stdout.print(f"{payload.id}: {payload.alerts} alerts ({payload.dropped} dropped, "
                 f"{payload.suppressed} suppressed)", highlight=False)
    viewer = Viewer(Origin(OriginKind.SYSTEM, name="cli"), can_see_private=True)
    for incident_id in touched:
        incident = app.incidents.get(viewer, incident_id)
        stdout.print(f"  {incident.reference} {incident.status.value} {incident.severity.value}"
                     f" {incident.title}", highlight=False)
