"""Benchmarks with same-run baselines: `python -m bench [--quick] [NAME ...]`.

Every benchmark returns a `Result`: one summary line with its figures and the ratio against a
baseline measured in the same run, and whether it met the target of the issue. Nothing here
asserts timings; the test suite has no timing assertions either.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Result",
    "Stopwatch",
    "note",
    "percentile",
    "rss_mb",
    "shared_synapse",
]


@dataclass
class Result:
    """What one benchmark found."""

    name: str
    line: str  # the one-line summary: figures and the ratio against the same-run baseline
    met: bool  # every target of the issue met
    misses: list[str] = field(default_factory=list)  # which targets were missed, and by how much
    details: list[str] = field(default_factory=list)  # further figures, printed after the line
    # The figures `bench/results.json` keeps (the keys), each measured in this run.
    values: dict[str, float | str] = field(default_factory=dict)

    def check(self, ok: bool, miss: str) -> None:
        """Record one target: `miss` is kept when it was not met."""
        if not ok:
            self.met = False
            self.misses.append(miss)


_T0 = time.monotonic()


def note(text: str) -> None:
    """Progress output with the seconds since start (stderr: stdout holds the figures)."""
    print(f"  · {time.monotonic() - _T0:5.1f}s {text}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


class Stopwatch:
    """Accumulates wall time of `with sw:` blocks."""

    def __init__(self) -> None:
        self.total = 0.0
        self.laps: list[float] = []

    def __enter__(self) -> Stopwatch:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        lap = time.perf_counter() - self._t0
        self.total += lap
        self.laps.append(lap)


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of a process (VmRSS from /proc), in MiB."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


@contextlib.contextmanager
def shared_synapse(workdir: Path) -> Iterator[object]:
    """A local Synapse (bot.devtools.synapse.LocalSynapse) for the benchmarks that need one."""
    from bot.devtools.synapse import LocalSynapse

    server = LocalSynapse(workdir / "synapse")
    server.start()
    note(f"local Synapse up in {server.last_start_seconds:.1f} s at {server.base_url}")
    try:
        yield server
    finally:
        server.stop()
