"""``interlock incidents``: look at incidents from the terminal."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from interlock.cli.common import Db, container, stdout
from interlock.domain.events import Origin, OriginKind
from interlock.domain.incidents import Severity, Status
from interlock.ports.store import IncidentFilter
from interlock.services.incidents import Viewer

incidents_app = typer.Typer(help="Look at incidents from the terminal.", no_args_is_help=True)

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
    app = container(db)
    viewer = Viewer(Origin(OriginKind.SYSTEM, name="cli"), can_see_private=True)
    where = IncidentFilter(
        statuses=frozenset(status or []), severities=frozenset(severity or []), service=service
    )
    page = app.incidents.list(viewer, where, cursor=None, limit=limit)
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
