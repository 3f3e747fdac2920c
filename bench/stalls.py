"""Benchmark 5 — event-loop stalls: how long the bot's loop is blocked by its heavy operations.

While the loop is blocked nothing is read from or sent to the homeserver. A probe task sleeps
5 ms in a loop and records how late each wake-up is; its worst lateness during an operation is
that operation's longest stall. The database (SQLite, as `bot.app` opens it) holds 10,000
members and 20 open ballots, each with the whole roster eligible and 7,000 positions; on it,
through the services `bot.app.build_services` wires, one after the other:

* ingest: sync responses (reactions, redactions, commands on those 20 ballots) through
  `decode_sync` → `Batches.apply_batch`, as `Syncer.run` does;
* tally refresh: `Calendar.refresh_tallies` with every ballot's live tally out of date;
* digest: `Calendar.fire_digest` over the 20 open ballots;
* export: a chair's `export --format json` then `--format md` in an open ballot's room (the
  live record built and rendered, the file queued);
* draft: `Calendar.fire_deadline` closing a ballot, which drafts its sense for the chairs;
* decide: a chair's `decide admit …` on that ballot, which freezes its record.

Target (issue 22): no stall of 50 ms or more. `--quick` runs fewer ingest batches; the
ballots keep their 10,000 members, since the stalls are what scales with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import Result, note

PROBE_S = 0.005  # the probe's sleep
TARGET_MS = 50.0


class Probe:
    """A task that sleeps PROBE_S in a loop and keeps its worst lateness (the longest time
    the loop was busy with something else)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        clock = time.perf_counter
        while True:
            t0 = clock()
            await asyncio.sleep(PROBE_S)
            self.worst = max(self.worst, clock() - t0 - PROBE_S)

    async def __aenter__(self) -> Probe:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(PROBE_S * 2)  # running before the operation starts
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(PROBE_S * 2)  # a stall at the very end is seen too
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _run(quick: bool, workdir: Path) -> Result:
    from bench.ingest import (
        BOT,
        CHAIR,
        PREFIX,
        engine,
        event_id,
        make_workload,
        open_target,
        room_id,
    )
    from bench.summary import build
    from bot.app import settle_heap
    from bot.matrix.decode import decode_sync
    from bot.matrix.events import CommandText, SyncBatch
    from storage.repo import Repository

    members, ballots, taking_part = 10_000, 20, 7_000
    n_events = 2_000 if quick else 10_000
    note(f"stalls: {ballots} open ballots of {members:,} members ({taking_part:,} positions each)")
    path = workdir / "stalls.db"
    await build(path, members, taking_part, ballots, seed=5)
    work = make_workload(n_events, members, ballots, seed=11)

    db = open_target(path)
    await db.open()
    bot = engine(db)
    settle_heap()  # as the bot does once it has started
    stalls: dict[str, float] = {}
    commands = 0

    async def measure(name: str, operation: Callable[[], Awaitable[Any]]) -> None:
        note(f"stalls: {name}")
        async with Probe() as probe:
            t0 = time.perf_counter()
            await operation()
            took = time.perf_counter() - t0
        stalls[name] = probe.worst * 1000
        note(f"stalls: {name} took {took:.2f} s, longest stall {probe.worst * 1000:.1f} ms")

    async def ingest() -> None:
        for raw in work.batches:
            await bot.batches.apply_batch(decode_sync(json.loads(raw), BOT, PREFIX))

    async def tallies() -> None:
        async with db.transaction() as tx:
            await Repository(tx).mark_tally_dirty(list(range(1, ballots + 1)))
        await bot.groups.first.calendar.refresh_tallies()

    async def command(request: int, body: str) -> None:
        """A chair's command in the request's room, through the batch apply as a sync brings it."""
        nonlocal commands
        commands += 1
        ts = int(time.time() * 1000)
        text = CommandText(room_id(request), event_id(3 * 10**9 + commands), CHAIR, ts, body)
        result = await bot.batches.apply_batch(SyncBatch(next_batch=f"c{commands}", events=[text]))
        assert result.applied == 1, (body, result)
        assert not result.failed, (body, result)

    async def export() -> None:
        for fmt in ("json", "md"):
            await command(1, f"{PREFIX} export --format {fmt}")

    async def draft() -> None:
        async with db.transaction() as tx:
            await Repository(tx).update_request(ballots, deadline_at=0)
        await bot.groups.first.calendar.fire_deadline(ballots)

    async def decide() -> None:
        await command(
            ballots,
            f"{PREFIX} decide admit The concerns raised were answered on the list by the "
            "applicant in detail.",
        )

    async def check() -> None:
        """The commands did what they say (a refusal would be a much cheaper operation)."""
        async with db.transaction() as tx:
            decided = await tx.fetchval("SELECT state FROM requests WHERE id = ?", (ballots,))
            files = await tx.fetchval("SELECT count(*) FROM outbox WHERE op = 'file'")
        assert (decided, files) == ("decided", 2), (decided, files)

    try:
        await measure("ingest", ingest)
        await measure("tally refresh", tallies)
        await measure("digest", bot.groups.first.calendar.fire_digest)
        await measure("export", export)
        await measure("draft", draft)
        await measure("decide", decide)
        await check()
    finally:
        await db.close()

    worst = max(stalls, key=lambda k: stalls[k])
    line = (
        f"stalls: longest event-loop stall {stalls[worst]:.1f} ms, in {worst} "
        f"({ballots} ballots of {members:,} members); "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in stalls.items())
    )
    result = Result("stalls", line, True)
    result.values.update(loop_stall_max_ms=stalls[worst], loop_stall_worst=worst)
    for name, ms in stalls.items():
        result.values[f"loop_stall_{name.replace(' ', '_')}_ms"] = ms
        result.check(ms < TARGET_MS, f"{name} stalled the loop {ms:.1f} ms ≥ {TARGET_MS:.0f} ms")
    result.details.append(
        f"probe: a task sleeping {PROBE_S * 1000:.0f} ms in a loop, its worst lateness per "
        f"operation; ingest of {work.events:,} events in {len(work.batches)} sync responses"
    )
    return result


def run(quick: bool = False) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-stalls-") as tmp:
        return asyncio.run(_run(quick, Path(tmp)))
