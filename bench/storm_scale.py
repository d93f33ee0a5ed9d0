"""Scale-out of alert processing on PostgreSQL: ``bench/storm.py`` with 1, then 2 (or
``--counts``) ``interlock worker`` processes, alternating, ``--runs`` times each, and
the medians and ranges side by side with the ratio to one worker. Not a test: it prints
figures.

    .venv/bin/python bench/storm_scale.py --db postgresql://… [--seconds 20] [--rate 1000]

Alternating the counts run by run spreads what other processes on the machine do over
both. Each run prints where the limit was: each worker's CPU, PostgreSQL's, and how busy
the machine's cores were; when a worker or the database is near 100 % of a core, or
the machine near all its cores, that is the limit, not the number of workers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

KEYS = (
    ("processed_overall_per_s", "processed/s, first POST to last processed", "{:,.0f}"),
    ("processed_per_s", "processed/s while the storm lasted", "{:,.0f}"),
    ("cpu_us_per_alert", "Interlock CPU µs per alert", "{:,.0f}"),
    ("pg_cpu_us_per_alert", "PostgreSQL CPU µs per alert", "{:,.0f}"),
    ("worker_cpu_pct", "each worker, % of a core", "{:,.0f}"),
    ("pg_cpu_pct", "PostgreSQL, % of a core", "{:,.0f}"),
    ("machine_busy_pct", "machine busy, % of all cores", "{:,.0f}"),
    ("drain_s", "backlog drained after, s", "{:,.1f}"),
    ("created_p99_ms", "POST -> incident.created webhook p99, ms", "{:,.0f}"),
    ("api_p99_ms", "the person's API requests p99, ms", "{:,.0f}"),
)


def run_once(args: argparse.Namespace, workers: int, passed: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).parent / "storm.py"), "--db", args.db,
               "--workers", str(workers), *passed]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("FIGURES "):
            figures: dict[str, Any] = json.loads(line.removeprefix("FIGURES "))
            shown = {key: value(figures, key) for key, _, _ in KEYS}
            print(f"  {workers} worker(s): " + ", ".join(
                f"{key} {each:.0f}" for key, each in shown.items() if each is not None),
                flush=True)
            return figures
    raise SystemExit(f"storm.py --workers {workers} failed:\n{done.stdout[-3000:]}"
                     f"\n{done.stderr[-3000:]}")


def value(figures: dict[str, Any], key: str) -> float | None:
    found = figures.get(key)
    if isinstance(found, list):  # one per worker: the mean
        return sum(found) / len(found) if found else None
    return float(found) if found is not None else None


def cell(values: list[float], form: str) -> str:
    if not values:
        return "-"
    return (form.format(statistics.median(values))
            + f" ({form.format(min(values))}-{form.format(max(values))})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="a PostgreSQL server's URL")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--counts", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=20,
                        help="each storm's length (storm.py's own default is 60 s; the "
                             "README's figures are from 20 s storms)")
    args, passed = parser.parse_known_args()
    passed = ["--seconds", f"{args.seconds:g}", *passed]
    counts = [int(each) for each in args.counts.split(",")]
    results: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
    for run in range(args.runs):
        print(f"run {run + 1} of {args.runs}", flush=True)
        for count in counts:
            results[count].append(run_once(args, count, passed))
    print("\nmedian (range) over", args.runs, "runs")
    print(f"  {'':44}" + "".join(f"{f'{count} worker(s)':>26}" for count in counts))
    for key, label, form in KEYS:
        row = [cell([v for f in results[count] if (v := value(f, key)) is not None], form)
               for count in counts]
        print(f"  {label:44}" + "".join(f"{each:>26}" for each in row))
    base = statistics.median(f["processed_overall_per_s"] for f in results[counts[0]])
    ratios = {count: statistics.median(f["processed_overall_per_s"] for f in results[count])
              / max(base, 1e-9) for count in counts}
    print("  ratio to " + f"{counts[0]} worker(s) (medians of processed/s): "
          + ", ".join(f"{count}: {ratio:.2f}x" for count, ratio in ratios.items()))
    print("FIGURES " + json.dumps({"counts": counts, "ratios": ratios, "runs": {
        str(count): results[count] for count in counts}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
