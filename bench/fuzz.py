"""A long schemathesis run against a real ``interlock serve``: every phase (examples,
coverage, fuzzing, and stateful sequences following the links between operations),
every check, far more requests than the bounded fuzz test in ``make test``
(tests/integration/test_fuzz.py). Not a test: it prints what it found.

    .venv/bin/python bench/fuzz.py                          # SQLite, about 10 minutes
    .venv/bin/python bench/fuzz.py --max-examples 300 --max-time 1800
    .venv/bin/python bench/fuzz.py --db postgresql://postgres@127.0.0.1:54329/postgres

``interlock serve --no-worker`` runs on 127.0.0.1 with a fresh database and the admin
key it prints; without the worker nothing is delivered, so the webhook URLs and tool
addresses the fuzzer makes up are stored, never called. Schemathesis reads
tests/schemathesis.toml, shared with the fuzz test: it names the statuses an operation
may answer for reasons the OpenAPI document cannot express. The run is seeded
(``--seed``) so a finding can be replayed; ``st replay <id>`` replays one case from the
``.schemathesis`` directory left in the temporary directory with ``--keep``.

The summary lists each failing operation with what was wrong, then the warnings
(operations the run could not reach with data, or that mostly refused it).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    Context,
    Failed,
    argument_parser,
    check_db,
    parse_arguments,
    phase,
    run_bench,
    setup_line,
    start_interlock,
    stop_interlock,
    temp_dir,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).with_name("st")
#: The headings schemathesis prints over each failing operation, and its failure lines.
_HEADING = re.compile(r"^_{3,} (.+?) _{3,}$")
_FAILURE = re.compile(r"^- (ST\d+ .+)$")


@dataclass
class Findings:
    """What the run printed, read back for the summary."""

    failures: dict[str, list[str]] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    exit_code: int | None = None
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def read_report(output: str, findings: Findings) -> None:
    operation = None
    for line in output.splitlines():
        heading = _HEADING.match(line)
        if heading:
            operation = heading.group(1)
            if operation in ("WARNINGS", "SUMMARY"):
                operation = None
            continue
        failure = _FAILURE.match(line)
        if failure and operation:
            kinds = findings.failures.setdefault(operation, [])
            if failure.group(1) not in kinds:
                kinds.append(failure.group(1))
    tail = output.split("SUMMARY", 1)[1] if "SUMMARY" in output else ""
    findings.summary = [line for line in tail.splitlines()
                        if line.strip() and not line.strip().startswith("=")]


async def run(ctx: Context, findings: Findings) -> None:
    interlock = await start_interlock(ctx, "fuzz", worker=False)
    try:
        key = interlock.api.headers["Authorization"]

        async def fuzz() -> None:
            command = [
                str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color", "run",
                f"{interlock.base}/openapi.json", "--header", f"Authorization: {key}",
                "--checks", "all", "--max-examples", str(ctx.args.max_examples),
                "--seed", str(ctx.args.seed), "--max-time", str(ctx.args.max_time),
                "--workers", "1", "--request-timeout", "10",
                "--suppress-health-check", "all",
            ]
            print(f"    {' '.join(command).replace(key, 'Bearer ilk_…')}", flush=True)
            started = time.perf_counter()
            # Schemathesis writes its case store (for `st replay`) where it runs.
            completed = await asyncio.to_thread(
                subprocess.run, command, cwd=ctx.tmp, capture_output=True, text=True,
                timeout=ctx.args.max_time + 300)
            findings.seconds = time.perf_counter() - started
            findings.exit_code = completed.returncode
            (ctx.tmp / "schemathesis.txt").write_text(completed.stdout + completed.stderr)
            print(completed.stdout, flush=True)
            if completed.returncode not in (0, 1):
                raise Failed(f"schemathesis exited with {completed.returncode}:\n"
                             f"{completed.stderr[-2000:]}")
            read_report(completed.stdout, findings)

        await phase("schemathesis: examples, coverage, fuzzing, stateful", fuzz,
                    findings.errors)
    finally:
        await stop_interlock(ctx, interlock)


def print_summary(ctx: Context, findings: Findings) -> None:
    print(f"\nFuzzing Interlock's API ({ctx.database}, seed {ctx.args.seed}, "
          f"{ctx.args.max_examples} examples per operation, {findings.seconds:.0f} s)")
    if not findings.failures:
        print("  no failures")
    for operation, kinds in sorted(findings.failures.items()):
        print(f"  {operation}")
        for kind in kinds:
            print(f"      {kind}")
    for line in findings.summary:
        print(f"  {line.rstrip()}")
    for error in findings.errors:
        print(f"  ! {error}")


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--max-examples", type=int, default=100,
                        help="examples per operation and phase (default 100)")
    parser.add_argument("--max-time", type=int, default=600,
                        help="time budget in seconds for the whole run (default 600)")
    parser.add_argument("--seed", type=int, default=1, help="the seed (default 1)")
    args = parse_arguments(parser, skips=())
    check_db(parser, args)
    if not SCHEMATHESIS.exists():
        parser.error(f"{SCHEMATHESIS} is missing: run `make install`")
    ctx = Context(args, temp_dir("interlock-fuzz-"), db_prefix="interlock_fuzz",
                  clear_proxy_env=True)
    findings = Findings()

    def body() -> None:
        print(setup_line(ctx), flush=True)
        asyncio.run(run(ctx, findings))

    code = run_bench(ctx, body, lambda: print_summary(ctx, findings), findings.errors)
    return code or (1 if findings.failures else 0)


if __name__ == "__main__":
    sys.exit(main())
