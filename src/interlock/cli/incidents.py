"""``interlock incidents``: look at incidents from the terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from interlock.cli.common import Db, container
from interlock.cli.output import Column, OutputOption, Value, show
from interlock.domain.events import Origin, OriginKind
from interlock.domain.incidents import Severity, Status
from interlock.ports.store import IncidentFilter
from interlock.services.incidents import Viewer

incidents_app = typer.Typer(help="Look at incidents from the terminal.", no_args_is_help=True)

@incidents_app.command("list")
def incidents_list(
    status: Annotated[list[Status] | None, typer.Option(
        metavar="STATUS", show_choices=False,
        help=f"Repeat for several: {', '.join(item.value for item in Status)}")] = None,
    severity: Annotated[list[Severity] | None, typer.Option(
        metavar="SEVERITY", show_choices=False,
        help=f"Repeat for several: {', '.join(item.value for item in Severity)}")] = None,
    service: Annotated[str | None, typer.Option(metavar="NAME")] = None,
    limit: Annotated[int, typer.Option(metavar="N", min=1, max=200)] = 50,
    db: Db = None,
    output: OutputOption = None,
) -> None:
    """The newest incidents, private ones included (this reads the database directly)."""
    app = container(db)
    viewer = Viewer(Origin(OriginKind.SYSTEM, name="cli"), can_see_private=True)
    where = IncidentFilter(
        statuses=frozenset(status or []), severities=frozenset(severity or []), service=service
    )
    page = app.incidents.list(viewer, where, cursor=None, limit=limit)
    rows: list[dict[str, Value]] = [{
        "reference": incident.reference,
        "status": incident.status.value,
        "severity": incident.severity.value,
        "service": incident.service,
        "title": incident.title + (" (private)" if incident.is_private else ""),
        "assignee": incident.assignee,
        "created": incident.created_at.strftime("%Y-%m-%d %H:%M"),
    } for incident in page.items]
    show(_COLUMNS, rows, output, empty="No incidents match.")


_COLUMNS = (Column("reference", "Ref"), Column("status", "Status"),
            Column("severity", "Severity"), Column("service", "Service"),
            Column("title", "Title"), Column("assignee", "Assignee"),
            Column("created", "Created (UTC)"))
