"""``interlock deliveries``: watch webhook attempts as they happen."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from interlock.cli.common import Db, container, stdout
from interlock.domain.delivery import Attempt

deliveries_app = typer.Typer(help="Watch webhook deliveries.", no_args_is_help=True)


@deliveries_app.command("tail")
def tail(
    endpoint: Annotated[str | None, typer.Option(
        metavar="EP_ID", help="Only this endpoint's attempts")] = None,
    last: Annotated[int, typer.Option(metavar="N", min=0, max=500,
                                      help="Attempts to show first")] = 20,
    follow: Annotated[bool, typer.Option("--follow/--no-follow",
                                         help="Keep printing new attempts")] = True,
    interval: Annotated[float, typer.Option(metavar="SECONDS", min=0.1,
                                            help="Seconds between looks")] = 1.0,
    db: Db = None,
) -> None:
    """Print delivery attempts, newest last, and keep following (Ctrl-C to stop)."""
    app = container(db)
    position: int | None = None
    rows = app.endpoints.follow_attempts(after=None, limit=last, endpoint_id=endpoint)
    try:
        while True:
            for position, attempt in rows:  # noqa: B007 - the last position is kept
                stdout.print(line(attempt), highlight=False, soft_wrap=True)
            if not follow:
                return
            time.sleep(interval)
            after = position if position is not None else 0
            rows = app.endpoints.follow_attempts(after=after, endpoint_id=endpoint)
    except KeyboardInterrupt:
        return


def line(attempt: Attempt) -> str:
    if attempt.status_code is not None and 200 <= attempt.status_code < 300:
        outcome = f"[green]{attempt.status_code}[/green]"
    elif attempt.status_code is not None:
        outcome = f"[red]{attempt.status_code}[/red]"
    else:
        outcome = f"[red]{attempt.failure.value if attempt.failure else 'failed'}[/red]"
    retry = (f" retry at {attempt.next_attempt_at:%H:%M:%S}" if attempt.next_attempt_at
             else "")
    return (f"{attempt.at:%Y-%m-%d %H:%M:%S} {attempt.endpoint_id} {attempt.event_type} "
            f"{attempt.event_id} #{attempt.number} {attempt.trigger.value} {outcome} "
            f"{attempt.duration_ms:.0f} ms{retry}")
