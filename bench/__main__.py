"""`python -m bench [--quick] [--diagnose] [NAME ...]` (`make bench`; NAMES below)."""

from __future__ import annotations

import argparse
import json
import operator
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import Result, shared_synapse

NAMES = ("ingest", "e2e", "startup", "summary", "stalls", "large")
# Run only when named: its own Synapse with default rate limits, about 5 minutes.
ON_REQUEST = frozenset({"large"})
NEEDS_SYNAPSE = {"e2e", "startup"}
RESULTS = Path(__file__).with_name("results.json")  # not committed (.gitignore)

# The targets, one per key of results.json: (comparison, bound, unit).
TARGETS: dict[str, tuple[Callable[[float, float], bool], float, str]] = {
    "ingest_sqlite_eps": (operator.ge, 6_000, "events/s"),
    "ingest_parse_ratio": (operator.le, 2.0, "× nio parsing"),
    "ingest_pg_ratio": (operator.le, 1.5, "× SQLite's time"),
    "round_trips_per_batch": (operator.le, 25, "calls"),
    "summary_p50_ms_sqlite": (operator.lt, 50, "ms"),
    "summary_p50_ms_pg": (operator.lt, 50, "ms"),
    "loop_stall_max_ms": (operator.lt, 50, "ms"),
    "e2e_p50_ratio": (operator.le, 1.10, "× bare client"),
    "e2e_p95_ratio": (operator.le, 1.10, "× bare client"),
    "startup_s": (operator.lt, 3.0, "s"),
    "startup_rss_mb": (operator.lt, 150, "MB"),
}
_SIGN = {operator.ge: "≥", operator.le: "≤", operator.lt: "<"}


def write_results(results: list[Result], mode: str, path: Path = RESULTS) -> list[str]:
    """Write every key of the issue (null when not measured in this run) to `path`; return
    one line per target saying whether it was met."""
    values: dict[str, float | str | None] = dict.fromkeys(TARGETS)
    values.update(ingest_pg_eps=None, loop_stall_worst=None)  # figures without a target
    for result in results:
        values.update(result.values)
    path.write_text(json.dumps({"mode": mode, "cores": os.cpu_count(), **values}, indent=2) + "\n")
    lines = []
    for key, (compare, bound, unit) in TARGETS.items():
        value = values[key]
        if not isinstance(value, int | float):
            lines.append(f"{key}: not measured in this run")
            continue
        verdict = "met" if compare(value, bound) else "NOT met"
        extra = f" (in {values['loop_stall_worst']})" if key == "loop_stall_max_ms" else ""
        lines.append(
            f"{key}: {value:,.2f}{extra} — target {_SIGN[compare]} {bound:,} {unit}: {verdict}"
        )
    pg_eps = values["ingest_pg_eps"]
    if isinstance(pg_eps, float):
        lines.append(f"ingest_pg_eps: {pg_eps:,.0f} events/s (judged by ingest_pg_ratio)")
    return lines


def _runner(name: str, quick: bool, diagnose: bool, synapse: Any) -> Callable[[], Result]:
    if name == "ingest":
        from bench import ingest

        return lambda: ingest.run(quick, diagnose=diagnose)
    if name == "e2e":
        from bench import e2e

        return lambda: e2e.run(quick, synapse)
    if name == "startup":
        from bench import startup

        return lambda: startup.run(quick, synapse)
    if name == "large":
        from bench import large

        return lambda: large.run(quick)
    if name == "stalls":
        from bench import stalls

        return lambda: stalls.run(quick)
    from bench import summary

    return lambda: summary.run(quick)


def _verdict(result: Result) -> str:
    if result.met:
        return "target met"
    return "MISSED: " + "; ".join(result.misses)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)}")
    parser.add_argument("--quick", action="store_true", help="scaled down smoke run (< 60 s)")
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="ingest: also print a cProfile of the bot's path",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    names = [n for n in NAMES if n in args.names] or [n for n in NAMES if n not in ON_REQUEST]
    mode = "quick" if args.quick else "full"
    print(
        f"Consensus Bot benchmarks ({mode}: {', '.join(names)}) on {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}",
        flush=True,
    )
    began = time.perf_counter()
    results: list[Result] = []
    crashed = False
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        synapse_cm = shared_synapse(Path(tmp)) if NEEDS_SYNAPSE & set(names) else None
        synapse = synapse_cm.__enter__() if synapse_cm is not None else None
        try:
            for name in names:
                t0 = time.perf_counter()
                try:
                    result = _runner(name, args.quick, args.diagnose, synapse)()
                except Exception as exc:
                    crashed = True
                    traceback.print_exc()
                    result = Result(name, f"{name}: did not complete ({exc!r})", False)
                    result.misses.append("crashed")
                results.append(result)
                print(f"\n{result.line}", flush=True)
                for detail in result.details:
                    print(f"    {detail}", flush=True)
                print(f"    [{time.perf_counter() - t0:.0f} s; {_verdict(result)}]", flush=True)
        finally:
            if synapse_cm is not None:
                synapse_cm.__exit__(None, None, None)

    total = time.perf_counter() - began
    print(f"\n== summary ({mode}, {total:.0f} s) ==")
    for result in results:
        print(f"{result.line} — {_verdict(result)}")
    print(f"\n== targets (written to {RESULTS}) ==")
    for line in write_results(results, mode):
        print(line)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
