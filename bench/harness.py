"""What the benchmarks in this directory share: processes, scratch databases and
temporary files that are always cleaned up, a running ``interlock serve`` with its admin
key, percentiles, the summary table, and the frame of ``main()``.

The scripts import it as ``harness``: run as ``python bench/<script>.py``, their own
directory is first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from interlock.cli.child import CHILDREN
from interlock.store.spool import spool_path

HOST = "127.0.0.1"
PASSED_ENV = ("INTERLOCK_WORKER_", "INTERLOCK_SQLITE_SYNCHRONOUS")
POSTGRES_URL = r"^postgres(ql)?(\+\w+)?://"


# -- processes, databases, temporary files ---------------------------------------------


class Failed(Exception):
    """A phase could not run; the message says why (with a log tail when useful)."""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    | {line}" for line in text[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait(5)


@dataclass
class Context:
    """One run's temporary directory, processes and PostgreSQL scratch databases.

    ``db_prefix`` starts the names of the scratch databases; ``extra_env`` is set for
    every process spawned; ``clear_proxy_env`` removes the proxy variables from it (a
    bench on loopback wants no proxy between it and what it measures). Subclasses add
    what else they hold to ``stop_processes`` or ``cleanup``."""

    args: argparse.Namespace
    tmp: Path
    db_prefix: str = "interlock_bench"
    extra_env: dict[str, str] = field(default_factory=dict)
    clear_proxy_env: bool = False
    procs: list[Proc] = field(default_factory=list)
    pg_databases: list[str] = field(default_factory=list)

    @property
    def postgres(self) -> bool:
        return self.args.db is not None

    @property
    def database(self) -> str:
        return "PostgreSQL" if self.postgres else "SQLite"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("INTERLOCK_") or k.startswith(PASSED_ENV)}
        env.update(INTERLOCK_LOG_LEVEL="warning", INTERLOCK_AUTO_MIGRATE="true",
                   PYTHONUNBUFFERED="1")
        env.update(self.extra_env)
        if self.clear_proxy_env:
            for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
                env.pop(name, None)
                env.pop(name.upper(), None)
        return env

    def spawn(self, name: str, command: list[str], cwd: Path | None = None) -> Proc:
        """Start ``command`` in its own session, its output to ``{tmp}/{name}.log``."""
        log_path = self.tmp / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env(), cwd=cwd or self.tmp, start_new_session=True,
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def new_database(self, label: str) -> str:
        """The URL of a fresh database: a file in ``tmp`` on SQLite, a scratch
        database (dropped at cleanup) on ``--db``'s PostgreSQL server."""
        if not self.postgres:
            return f"sqlite:///{self.tmp / (label + '.db')}"
        import psycopg
        from sqlalchemy.engine import make_url

        name = f"{self.db_prefix}_{os.getpid()}_{label}"
        with psycopg.connect(_libpq(self.args.db), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.pg_databases.append(name)
        return make_url(self.args.db).set(database=name).render_as_string(hide_password=False)

    def cleanup(self) -> None:
        self.stop_processes()
        self.drop_databases()

    def stop_processes(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()

    def drop_databases(self) -> None:
        if self.pg_databases:
            import psycopg

            try:
                with psycopg.connect(_libpq(self.args.db), autocommit=True) as conn:
                    for name in self.pg_databases:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except psycopg.Error as error:
                print(f"could not drop {', '.join(self.pg_databases)}: {error}", file=sys.stderr)
            self.pg_databases.clear()


def postgres_durability(url: str) -> tuple[bool, str]:
    """Whether the PostgreSQL server behind ``url`` keeps what it commits (fsync,
    synchronous_commit, full_page_writes), and those settings as a line."""
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        settings = {name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                    for name in ("fsync", "synchronous_commit", "full_page_writes")}
    durable = (settings["fsync"] == "on" and settings["synchronous_commit"] != "off"
               and settings["full_page_writes"] == "on")
    return durable, ", ".join(f"{k}={v}" for k, v in settings.items())


def _libpq(url: str) -> str:
    return re.sub(POSTGRES_URL, "postgresql://", url)


def interlock_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "interlock.cli.main", *arguments]


def cpu_seconds(pid: int | None, *, reaped_children: bool = False) -> float | None:
    """User + system CPU time of a process so far (Linux), or None; with
    ``reaped_children``, also that of its children that have exited and been waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        if reaped_children:
            ticks += int(fields[13]) + int(fields[14])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started that still run (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def worker_tasks(pid: int) -> str | None:
    """What an ``interlock worker`` process runs (its ``--tasks``), or None for any
    other process."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    if "worker" not in arguments or "--tasks" not in arguments[:-1]:
        return None
    return arguments[arguments.index("--tasks") + 1]


def worker_processes(pid: int) -> dict[int, str]:
    """The ``interlock worker`` processes that ``pid`` started, each with its
    ``--tasks``."""
    return {child: tasks for child in children_of(pid) if (tasks := worker_tasks(child))}


def process_tree_cpu(pids: list[int]) -> float:
    """CPU seconds of these processes and all their descendants, living or exited
    (Linux /proc): a PostgreSQL backend's CPU counts after its client disconnects."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, queue, seen = 0.0, list(pids), set()
    while queue:
        pid = queue.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += cpu_seconds(pid, reaped_children=True) or 0.0
        queue.extend(children.get(pid, []))
    return total


def wrk_binary() -> str:
    """The path of wrk, the C load generator (Debian's, installed by scripts/wrk.sh)."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "wrk.sh"
    return subprocess.run([str(script), "ensure"], check=True, capture_output=True,
                          text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# -- figures ---------------------------------------------------------------------------


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted, non-empty ``ordered`` (nearest rank)."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def percentiles_ms(values: Iterable[float]) -> dict[str, float]:
    """p50, p95, p99, max, min and mean of durations in seconds, in milliseconds;
    ``n`` is the count."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return {"n": 0}
    return {"n": n, "p50": nearest_rank(ordered, 0.50) * 1000,
            "p95": nearest_rank(ordered, 0.95) * 1000,
            "p99": nearest_rank(ordered, 0.99) * 1000,
            "max": ordered[-1] * 1000, "min": ordered[0] * 1000,
            "mean": sum(ordered) / n * 1000}


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def print_table(title: str, rows: list[tuple[str, str, str, str]], errors: Iterable[str],
                figure_width: int) -> None:
    """The summary: rows of (what, figure, target, verdict), then the errors."""
    width = max(len(row[0]) for row in rows)
    print(f"\n{title}")
    print(f"  {'':{width}}  {'figure':>{figure_width}}  {'target':<16} verdict")
    for name, value, target, mark in rows:
        print(f"  {name:{width}}  {value:>{figure_width}}  {target:<16} {mark}")
    for error in errors:
        print(f"  ! {error}")


# -- Interlock -------------------------------------------------------------------------


@dataclass
class Interlock:
    proc: Proc
    base: str
    api: aiohttp.ClientSession
    db_url: str

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200,
                   headers: dict[str, str] | None = None) -> Any:
        async with self.api.request(method, self.base + path, json=body,
                                    headers=headers) as response:
            text = await response.text()
            if response.status != expect:
                raise Failed(f"{method} {path}: {response.status} {text[:300]}")
            return json.loads(text) if text else None


async def start_interlock(ctx: Context, label: str, db_url: str | None = None, *,
                          worker: bool = True, connections: int = 16) -> Interlock:
    """``interlock serve`` on a free port and ``db_url`` (default: a new database named
    after ``label``), once ready; its API session (``connections`` at most) carries
    the admin key it printed."""
    if db_url is None:
        db_url = ctx.new_database(label)
    port = free_port()
    proc = ctx.spawn(f"{label}-serve", interlock_command(
        "serve", "--worker" if worker else "--no-worker", "--port", str(port), "--db", db_url))
    key = None
    deadline = time.monotonic() + 60
    while key is None:
        if proc.popen.poll() is not None:
            raise Failed(f"interlock serve exited ({proc.popen.returncode}):\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            raise Failed(f"interlock serve printed no key within 60 s:\n{proc.log_tail()}")
        found = re.search(r"INTERLOCK_KEY=(ilk_[A-Za-z0-9_\-]+)", proc.log_path.read_text())
        key = found.group(1) if found else None
        await asyncio.sleep(0.1)
    api = aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {key}"},
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=30))
    interlock = Interlock(proc, f"http://{HOST}:{port}", api, db_url)
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with api.get(interlock.base + "/readyz") as response:
                if response.status == 200:
                    if worker:  # serve's own worker processes, started after it
                        await wait_for_workers(interlock, len(CHILDREN))
                    return interlock
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            await api.close()
            raise Failed(f"interlock serve never became ready:\n{proc.log_tail()}")
        await asyncio.sleep(0.1)


async def wait_for_workers(interlock: Interlock, count: int, timeout: float = 60.0) -> None:
    """Wait until ``/readyz`` lists ``count`` worker processes running. ``/readyz``
    answers ready before any worker has reported, so a benchmark started at once would
    measure the seconds the workers take to start, not Interlock at work."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with interlock.api.get(interlock.base + "/readyz") as response:
                if response.status == 200 and len((await response.json())["workers"]) >= count:
                    return
        if time.monotonic() > deadline:
            raise Failed(f"{count} workers did not start within {timeout:g} s")
        await asyncio.sleep(0.1)


async def stop_interlock(ctx: Context, interlock: Interlock) -> None:
    await interlock.api.close()
    await asyncio.to_thread(ctx.stop, interlock.proc)


# -- the run ---------------------------------------------------------------------------


async def phase(title: str, body: Callable[[], Awaitable[None]], errors: list[str]) -> None:
    """Run one phase under a heading; a ``Failed`` is printed and added to ``errors``,
    and the next phase runs."""
    print(f"\n== {title}", flush=True)
    started = time.perf_counter()
    try:
        await body()
    except Failed as error:
        print(f"    ! {error}")
        errors.append(f"{title}: {str(error).splitlines()[0]}")
    print(f"    ({time.perf_counter() - started:.1f} s)", flush=True)


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of ``doc``, with ``--db``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="a PostgreSQL URL to bench on (default: SQLite in a "
                        "temporary directory); temporary databases are made on its server")
    return parser


def parse_arguments(parser: argparse.ArgumentParser, skips: Iterable[str]
                    ) -> argparse.Namespace:
    """Add ``--skip-{name}`` for each of ``skips`` and ``--keep``, then parse."""
    for name in skips:
        parser.add_argument(f"--skip-{name}", action="store_true")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (databases, logs)")
    return parser.parse_args()


def check_db(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.db and not re.match(POSTGRES_URL, args.db):
        parser.error("--db: a postgresql:// URL (SQLite is the default)")


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def setup_line(ctx: Context) -> str:
    """The database, the temporary directory, and the variables passed to Interlock."""
    passed = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV)}
    return (f"database: {ctx.database}; temp dir {ctx.tmp}"
            + (f"; passing {passed}" if passed else ""))


def run_bench(ctx: Context, body: Callable[[], None], summary: Callable[[], None],
              errors: list[str]) -> int:
    """The frame of ``main()``: run ``body`` (SIGTERM is Ctrl-C), clean up whatever
    happened (keeping ``tmp`` with ``--keep``), then, unless interrupted or ``Failed``,
    print the ``summary`` and the total time. The exit code: 0, 1 with ``errors`` or a
    ``Failed``, 130 when interrupted."""

    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    started = time.perf_counter()
    code = 0
    try:
        body()
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        code = 130
    except Failed as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    finally:
        ctx.cleanup()
        if ctx.args.keep:
            print(f"kept {ctx.tmp}")
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    if code == 0:
        summary()
        print(f"\n(total {time.perf_counter() - started:.0f} s)")
        code = 1 if errors else 0
    return code


def spooled_payloads(engine: sa.Engine, source_id: str | None = None) -> int:
    """Payloads still waiting in the ingest spool (SQLite shared with worker processes,
    see interlock.store.spool): accepted and not yet in the payloads table, so pending
    too."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    path = Path(spool_path(database)) if database else None
    if path is None or not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as spool:
        try:
            if source_id is None:
                return int(spool.execute("SELECT count(*) FROM received").fetchone()[0])
            return int(spool.execute("SELECT count(*) FROM received WHERE source_id = ?",
                                     (source_id,)).fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0
