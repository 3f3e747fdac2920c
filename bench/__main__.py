"""`python -m bench [--quick] [--diagnose] [ingest|e2e|startup|summary ...]` (`make bench`)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import Result, shared_synapse

NAMES = ("ingest", "e2e", "startup", "summary", "large")
# Run only when named: its own Synapse with default rate limits, about 5 minutes.
ON_REQUEST = frozenset({"large"})
NEEDS_SYNAPSE = {"e2e", "startup"}


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
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
