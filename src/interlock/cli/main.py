"""``interlock``: serve, run workers, migrate; subcommands for keys, incidents and
deliveries live in their own modules."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Collection, Coroutine, Iterator, Sequence
from types import FrameType
from typing import Annotated, Any

import sqlalchemy.exc
import typer
from rich.markup import escape

from interlock.cli.alerts import alerts_app
from interlock.cli.common import (
    Db,
    check_port_free,
    fail,
    open_container,
    redact,
    settings,
    stderr,
    stdout,
)
from interlock.cli.deliveries import deliveries_app
from interlock.cli.incidents import incidents_app
from interlock.cli.keys import keys_app
from interlock.config import Settings
from interlock.domain.errors import InterlockError
from interlock.logs import configure as configure_logs
from interlock.logs import get_logger
from interlock.services.container import Container
from interlock.store.locks import Role

log = get_logger(__name__)

# Plain help (no boxes, no "<str>" after every flag), and errors are ours to print: see
# main().
app = typer.Typer(help="Interlock: bi-directional incident integrations.", no_args_is_help=True,
                  rich_markup_mode=None, pretty_exceptions_enable=False)
app.add_typer(keys_app, name="keys")
app.add_typer(incidents_app, name="incidents")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(alerts_app, name="alerts")


@app.command()
def serve(
    db: Db = None,
    host: Annotated[str | None, typer.Option(metavar="HOST", help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(metavar="PORT", help="Port to listen on")] = None,
    worker: Annotated[bool | None, typer.Option(
        "--worker/--no-worker",
        help="Deliver webhooks in this process too (default); --no-worker for scale-out "
             "next to `interlock worker`")] = None,
) -> None:
    """Serve the API and web console (and, on first start, print an admin API key)."""
    loaded = settings(database_url=db, host=host, port=port, embedded_worker=worker)
    configure_logs(loaded.log_level, loaded.log_format)
    check_port_free(loaded.host, loaded.port)  # before a migration or a worker starts
    container = _start(loaded)
    secret = _bootstrap(container)
    if secret is not None:
        stdout.print(
            "\n[bold]First start: an admin API key was created. It is shown only now.[/bold]\n"
            f"  export INTERLOCK_KEY={secret}\n"
        )
        sys.stdout.flush()
    stdout.print(f"Interlock serving on {loaded.base_url} (database: "
                 f"{redact(loaded.database_url)}; worker: "
                 f"{'embedded' if loaded.embedded_worker else 'off'})", highlight=False)
    sys.stdout.flush()
    _run(_serve(container))


async def _serve(container: Container) -> None:
    import uvicorn

    from interlock.asgi import begin_shutdown, create_app
    from interlock.cli.child import run_child_workers
    from interlock.cli.http_protocol import server_config
    from interlock.store.engine import is_in_memory
    from interlock.worker.runner import run_worker

    class Server(uvicorn.Server):
        """Stops on SIGINT or SIGTERM without raising the signal again afterwards (as
        uvicorn does), which would kill the process before the embedded worker has
        recorded what it has in flight."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, self.handle_exit, signum, None)
            try:
                yield
            finally:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            begin_shutdown(application)  # open console pages must not hold up the stop
            super().handle_exit(sig, frame)

    loaded = container.settings
    application = create_app(container)
    _tune_gc()
    server = Server(server_config(application, loaded.host, loaded.port, loaded.log_level))
    stop = asyncio.Event()
    worker = None
    if loaded.embedded_worker:
        # Its own process, to use another core, unless the database exists only in
        # this one (SQLite in memory).
        in_memory = is_in_memory(loaded.database_url)
        worker = asyncio.create_task(
            run_worker(container, stop) if in_memory
            else run_child_workers(loaded.database_url, stop,
                                   watchdog=loaded.worker_watchdog_seconds,
                                   take_over=container.workers.take_over))
    try:
        await server.serve()  # returns on SIGINT / SIGTERM
    finally:
        stop.set()
        if worker is not None:
            await worker
        container.close()


@app.command("worker")
def worker_command(
    db: Db = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="Print no start line (as the worker `serve` starts)")] = False,
    tasks: Annotated[str, typer.Option(
        "--tasks", metavar="TASKS",
        help="Which parts to run, comma-separated: alerts, deliveries, sync (default all)")
    ] = "alerts,deliveries,sync",
    parent: Annotated[int | None, typer.Option(
        "--parent", hidden=True, metavar="PID",
        help="Stop when process PID is no longer this one's parent (serve's worker)")
    ] = None,
    alive_fd: Annotated[int | None, typer.Option(
        "--alive-fd", hidden=True, metavar="FD",
        help="Write a byte to FD every second while the event loop runs (serve's watchdog)")
    ] = None,
    tag: Annotated[str | None, typer.Option(
        "--tag", hidden=True, metavar="TAG",
        help="The end of this worker's name (serve's worker: serve knows it by it)")
    ] = None,
    split: Annotated[bool, typer.Option(
        "--split",
        help="Run alert processing in a process of its own beside delivery and sync, as "
             "serve does: two cores for one worker")] = False,
) -> None:
    """Process alerts, deliver webhooks and sync connectors, without serving the API
    (run several, on PostgreSQL)."""
    from interlock.cli.child import children_for
    from interlock.store.engine import is_in_memory

    chosen = list(dict.fromkeys(task.strip() for task in tasks.split(",") if task.strip()))
    unknown = sorted(set(chosen) - {"alerts", "deliveries", "sync"})
    if unknown or not chosen:
        raise typer.BadParameter(f"unknown task {', '.join(unknown) or '(none)'}; "
                                 "choose from alerts, deliveries, sync", param_hint="--tasks")
    loaded = settings(database_url=db)
    configure_logs(loaded.log_level, loaded.log_format)
    children = children_for(chosen) if split and parent is None and not is_in_memory(
        loaded.database_url) else ()
    if loaded.worker_batch_scheduling and not children:
        _schedule_as_batch()
    container = _start(loaded, Role.WORKERS)
    if not quiet:
        layout = f" (processes: {'; '.join(children)})" if children else ""
        stdout.print(f"Interlock worker on {redact(loaded.database_url)}{layout}",
                     highlight=False)
        sys.stdout.flush()
    if children:
        _run(_supervise(container, children))
    else:
        _run(_work(container, parent=parent, alive_fd=alive_fd, tasks=chosen, tag=tag))


#: The interpreter's switch interval in Interlock's processes (Python's default 0.005 s).
SWITCH_INTERVAL = 0.0005


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run the server's or the worker's event loop: uvloop's where it is installed
    (``uvicorn[standard]`` brings it). uvicorn picks it only when it creates the loop
    itself, and here the loop is ours. Measured with bench/ingest.py --no-worker (2 runs
    each): 356-370 µs of the API process's CPU per single-alert POST, against 392-424
    on asyncio's own loop.

    Both processes do their database work in threads (requests and the ingest group
    commit; alert processing, claims and records), whose every SQLite call gives up the
    interpreter lock. While the event loop is busy (answering POSTs, sending webhooks)
    each call waited up to the default 5 ms switch interval to get it back, and a
    transaction makes many calls, alert processing's thousands. In the API process,
    bench/storm.py, 6 pairs of runs in turns: POST -> incident.created p99 663 ms
    against 893 ms and the person's API p99 144 ms against 159 ms (medians), each
    lower in 5 pairs of 6."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without it
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _schedule_as_batch() -> None:
    """Put this process (its thread now, and the threads it starts) under Linux's
    SCHED_BATCH policy: the same share of the CPU, but a woken thread does not preempt
    the one running. Every commit of work wakes a worker (a datagram, store.signals);
    with the default policy the woken worker took the core from the API thread that had
    just committed, in the middle of answering its request."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _tune_gc() -> None:
    """Both the API and the worker allocate hundreds of short-lived objects per request
    or delivery; with CPython's default thresholds the cyclic GC ran every 700
    allocations and its full passes walked everything imported at start. In the worker
    that was 90 us of CPU per delivery (gc.callbacks, 8,000 deliveries); in the API a
    full pass over the ~140,000 objects of the app stopped the event loop for 25-125
    ms, a few times a minute under load, which every request then waiting saw in its
    latency. What exists now lives for the whole process, so it is frozen out of
    collections, and collections come less often; cycles are still collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def _work(container: Container, *, parent: int | None = None,
                alive_fd: int | None = None,
                tasks: Collection[str] = ("alerts", "deliveries", "sync"),
                tag: str | None = None) -> None:
    from interlock.services.workers import worker_name
    from interlock.worker.runner import run_worker

    _tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if alive_fd is not None:
        os.set_blocking(alive_fd, False)
    watch = (asyncio.create_task(_answer_to_parent(stop, parent, alive_fd))
             if parent else None)
    try:
        await run_worker(container, stop, tasks, name=worker_name(tag))
    finally:
        if watch is not None:
            watch.cancel()
        container.close()


async def _supervise(container: Container, children: Sequence[str]) -> None:
    """``interlock worker`` as serve runs its workers: a process for each of
    ``children`` (alert processing apart from delivery and sync, so that neither waits
    for the other's interpreter lock), restarted if it dies or is not heard from, what
    it had leased handed back at once, and stopped with this one."""
    from interlock.cli.child import run_child_workers

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loaded = container.settings
    try:
        await run_child_workers(loaded.database_url, stop, children=children,
                                watchdog=loaded.worker_watchdog_seconds,
                                take_over=container.workers.take_over)
    finally:
        container.close()


async def _answer_to_parent(stop: asyncio.Event, parent: int, alive_fd: int | None) -> None:
    """Serve's worker stops when serve is gone (killed, say), instead of living on, and
    tells serve every second that its event loop runs (on ``alive_fd``: serve kills a
    worker it stops hearing from, see cli.child). ``parent`` is serve's pid as serve
    passed it: a serve killed while this process was still starting had left it an
    orphan before it could note who its parent was."""
    while not stop.is_set():
        if os.getppid() != parent:
            log.warning("the process that started this worker is gone; stopping",
                        parent=parent)
            stop.set()
            return
        if alive_fd is not None:
            with contextlib.suppress(OSError):  # a full pipe: serve has heard enough
                os.write(alive_fd, b".")
        await asyncio.sleep(1.0)


@app.command()
def migrate(db: Db = None) -> None:
    """Upgrade the database schema to this version of Interlock."""
    from interlock.store.engine import create_engine
    from interlock.store.migrate import check_usable, current_revision, head_revision, upgrade

    loaded = settings(database_url=db)
    engine = create_engine(loaded.database_url)
    try:
        check_usable(engine, migrating=True, shown=redact(loaded.database_url))
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    except InterlockError as error:
        raise fail(error, 1) from error
    finally:
        engine.dispose()
    stdout.print(f"schema at revision {after} (was {before or 'empty'}; head {head_revision()})")


def _start(loaded: Settings, role: Role = Role.PEOPLE) -> Container:
    return open_container(loaded, role)


def _bootstrap(container: Container) -> str | None:
    try:
        return container.keys.bootstrap_admin()
    except InterlockError as error:
        raise fail(error, 1) from error


def main() -> None:
    """The ``interlock`` command: an error is one line on standard error saying what to
    do, never a traceback (a database that breaks mid-command, say)."""
    try:
        app()
    except InterlockError as error:
        fail(error, 1)
        sys.exit(1)
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        stderr.print(f"[red]error:[/red] the database failed: {escape(reason)}",
                     highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
