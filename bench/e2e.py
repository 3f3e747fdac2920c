"""Benchmark 2 — end to end against a local Synapse: the bot next to a bare nio client.

A group of 20 members (real Matrix clients, `bot.devtools.sim_member.SimMember`) and a chair is set
up with `tests.integration.harness.make_group`; the bot runs as in production
(`python -m bot run` in a subprocess). The chair files a request and every member joins its
room. Then the members react on the ballot concurrently, in two phases:

* paced: each member reacts about once a second (jittered) — below what Synapse can take;
* burst: each member sends reactions back to back — Synapse at saturation.

For every reaction, measured from the moment the member starts sending it:

* bot: send → position stored (its row in `position_inputs` is visible in the bot's database;
  a reader thread polls every 2 ms);
* baseline: send → seen by a bare nio client (`nio.AsyncClient.sync` long-polling with the
  bot's own sync filter, as the chair, in the same room, at the same time).

Also the CPU time the bot and Synapse used (from /proc), per reaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import Result, note, percentile, shared_synapse

_BASES = ("👍", "👌", "🤔", "✅", "🤐")
_TONES = ("", "🏻", "🏼", "🏽", "🏾", "🏿", "️")
# Distinct annotation keys (a member cannot send the same key twice) that all map to ballot
# positions (skin tones and the variation selector are normalised away by the bot).
KEYS: tuple[str, ...] = tuple(base + tone for tone in _TONES for base in _BASES)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StoredWatcher:
    """Polls the bot's database for new position rows and notes when each appeared."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.stored: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.db_path, timeout=5)
        last = 0
        try:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT id, event_id FROM position_inputs WHERE id > ? ORDER BY id", (last,)
                ).fetchall()
                now = time.perf_counter()
                for row_id, event_id in rows:
                    self.stored.setdefault(event_id, now)
                    last = row_id
                time.sleep(0.002)
        finally:
            conn.close()


class BareClient:
    """A bare nio client: `AsyncClient.sync` in a loop, noting when each event is first seen."""

    def __init__(self, homeserver: str, user_id: str, token: str, device_id: str) -> None:
        from nio import AsyncClient, AsyncClientConfig

        self.client = AsyncClient(
            homeserver,
            user_id,
            device_id=device_id,
            config=AsyncClientConfig(store_sync_tokens=False, max_timeouts=0),
        )
        self.client.access_token = token
        self.client.user_id = user_id
        self.seen: dict[str, float] = {}
        self.syncs = 0
        self.limited = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from nio import SyncResponse

        from bot.matrix.decode import sync_filter

        self._filter = sync_filter()
        first = await self.client.sync(timeout=0, sync_filter=self._filter)
        assert isinstance(first, SyncResponse), first
        self._since = first.next_batch
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        from nio import SyncResponse

        while True:
            resp = await self.client.sync(
                timeout=30_000, sync_filter=self._filter, since=self._since
            )
            now = time.perf_counter()
            if not isinstance(resp, SyncResponse):
                await asyncio.sleep(0.1)
                continue
            self.syncs += 1
            self._since = resp.next_batch
            for room in resp.rooms.join.values():
                self.limited += bool(room.timeline.limited)
                for event in room.timeline.events:
                    self.seen.setdefault(event.event_id, now)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()


async def _wait_all(ids: list[str], *maps: dict[str, float], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(all(i in m for i in ids) for m in maps):
            return True
        await asyncio.sleep(0.05)
    return False


def _lat(sent: dict[str, float], got: dict[str, float]) -> list[float]:
    return [got[e] - t0 for e, t0 in sent.items() if e in got]


async def _phase(
    members: list[Any],
    room: str,
    ballot: str,
    keys: list[list[str]],
    *,
    paced: bool,
    rng: random.Random,
) -> tuple[dict[str, float], float, float]:
    """Every member sends its keys; returns {event ID: send start}, first start, last end."""
    sent: dict[str, float] = {}
    ends: list[float] = []

    async def one(member: Any, my_keys: list[str], seed: int) -> None:
        local = random.Random(seed)
        if paced:
            await asyncio.sleep(local.uniform(0, 1.0))
        for key in my_keys:
            t0 = time.perf_counter()
            event_id = await member.react(room, ballot, key)
            sent[event_id] = t0
            ends.append(time.perf_counter())
            if paced:
                await asyncio.sleep(local.uniform(0.5, 1.5))

    start = time.perf_counter()
    await asyncio.gather(
        *(one(m, k, rng.randrange(1 << 30)) for m, k in zip(members, keys, strict=True))
    )
    return sent, start, max(ends)


def _ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:.0f}"


async def _run(quick: bool, workdir: Path, synapse: Any) -> Result:
    from bot.devtools.sim_member import bot_message
    from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS
    from tests.integration.harness import make_group

    n_members = 6 if quick else 20
    paced_each = 2 if quick else 8
    burst_each = 3 if quick else 20
    rng = random.Random(11)
    spec = tuple(
        (f"m{i:02d}", STAKEHOLDER_GROUPS[i % len(STAKEHOLDER_GROUPS)], REGIONS[i % len(REGIONS)])
        for i in range(n_members)
    )
    note(f"e2e: registering a group of {n_members} members and starting the bot")
    group = await make_group(synapse, workdir, f"e2e{int(time.time())}", members=spec)
    bare: BareClient | None = None
    watcher: StoredWatcher | None = None
    try:
        group.bot.start()
        await group.bot.wait_ready(timeout=60)
        chair, members = group.chair, list(group.members.values())
        filing = await chair.say(
            group.main_room,
            f"!cb request {group.applicant.user_id} --deadline 1d "
            "Benchmark applicant who wants to help.",
        )
        note(f"e2e: request filed ({filing}); waiting for the room and the invites")
        room = await members[0].wait_invite(timeout=60)
        await asyncio.gather(
            *(m.wait_invite(lambda r: r == room, timeout=60) for m in [*members, chair])
        )
        await asyncio.gather(*(m.join(room) for m in [*members, chair]))
        ballot_ev = await members[0].wait_for(bot_message("ballot", 1), room_id=room, timeout=60)
        ballot = ballot_ev["event_id"]

        bare = BareClient(
            synapse.base_url,
            chair.user_id,
            chair._token,  # the chair's session: it is in the room, and never reacts
            chair.gateway.device_id,
        )
        await bare.start()
        watcher = StoredWatcher(group.db_path)
        watcher.start()

        # Warm-up: one reaction each, not counted.
        warm = [[KEYS[0]] for _ in members]
        sent, _, _ = await _phase(members, room, ballot, warm, paced=False, rng=rng)
        await _wait_all(list(sent), watcher.stored, bare.seen, within=60)

        bot_pid = group.bot.proc.pid if group.bot.proc else 0
        hs_pid = synapse._process.pid  # the harness keeps the Synapse child process here
        cpu0 = (cpu_seconds(bot_pid), cpu_seconds(hs_pid))

        note(f"e2e: paced phase, {paced_each} reactions per member")
        keys = [KEYS[1 : 1 + paced_each] for _ in members]
        paced, _, _ = await _phase(members, room, ballot, keys, paced=True, rng=rng)
        ok_paced = await _wait_all(list(paced), watcher.stored, bare.seen, within=60)

        note(f"e2e: burst phase, {burst_each} reactions per member back to back")
        first = 1 + paced_each
        keys = [KEYS[first : first + burst_each] for _ in members]
        burst, b_start, b_end = await _phase(members, room, ballot, keys, paced=False, rng=rng)
        ok_burst = await _wait_all(list(burst), watcher.stored, bare.seen, within=120)
        cpu1 = (cpu_seconds(bot_pid), cpu_seconds(hs_pid))
    finally:
        if watcher is not None:
            watcher.stop()
        if bare is not None:
            await bare.close()
        await group.close()

    n_all = len(paced) + len(burst)
    bot_p, bare_p = _lat(paced, watcher.stored), _lat(paced, bare.seen)
    r50 = percentile(bot_p, 50) / percentile(bare_p, 50)
    r95 = percentile(bot_p, 95) / percentile(bare_p, 95)
    bot_b, bare_b = _lat(burst, watcher.stored), _lat(burst, bare.seen)
    rb50 = percentile(bot_b, 50) / percentile(bare_b, 50)
    send_rate = len(burst) / (b_end - b_start)
    bot_done = max((watcher.stored[e] for e in burst if e in watcher.stored), default=b_end)
    bare_done = max((bare.seen[e] for e in burst if e in bare.seen), default=b_end)
    bot_rate = len(bot_b) / (bot_done - b_start)
    bare_rate = len(bare_b) / (bare_done - b_start)
    keep = bot_rate / bare_rate
    bot_cpu, hs_cpu = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]

    line = (
        f"e2e: {n_members} members, {n_all} reactions; paced: bot send→stored p50 "
        f"{_ms(bot_p, 50)} p95 {_ms(bot_p, 95)} ms vs bare nio send→seen p50 {_ms(bare_p, 50)} "
        f"p95 {_ms(bare_p, 95)} ms (×{r50:.2f} p50, ×{r95:.2f} p95); burst: Synapse took "
        f"{send_rate:.0f} reactions/s, bot stored {bot_rate:.0f}/s vs bare saw {bare_rate:.0f}/s "
        f"(×{keep:.2f}); CPU per reaction bot {bot_cpu / n_all * 1000:.1f} ms vs Synapse "
        f"{hs_cpu / n_all * 1000:.1f} ms"
    )
    result = Result("e2e", line, True)
    result.values.update(e2e_p50_ratio=r50, e2e_p95_ratio=r95)
    result.check(ok_paced and ok_burst, "not every reaction was stored and seen in time")
    result.check(r50 <= 1.10, f"paced p50 ×{r50:.2f} the bare client's > ×1.10")
    result.check(r95 <= 1.10, f"paced p95 ×{r95:.2f} the bare client's > ×1.10")
    result.check(keep >= 0.95, f"bot stored the burst at ×{keep:.2f} the bare client's rate")
    added = [
        watcher.stored[e] - bare.seen[e] for e in paced if e in watcher.stored and e in bare.seen
    ]
    result.details += [
        f"paced, per reaction, bot stored − bare client saw: p50 {_ms(added, 50)} ms, p95 "
        f"{_ms(added, 95)} ms (stored times are polled every 2 ms: about 1 ms of it is the poll)",
        f"burst latency: bot p50 {_ms(bot_b, 50)} p95 {_ms(bot_b, 95)} ms vs bare p50 "
        f"{_ms(bare_b, 50)} p95 {_ms(bare_b, 95)} ms (×{rb50:.2f} p50); the burst's "
        f"{len(burst)} sends took {b_end - b_start:.1f} s, the last was stored "
        f"+{(bot_done - b_end) * 1000:.0f} ms after the last send returned, seen "
        f"+{(bare_done - b_end) * 1000:.0f} ms",
        f"CPU over both phases: bot {bot_cpu:.2f} s, Synapse {hs_cpu:.2f} s "
        f"(bot ×{bot_cpu / hs_cpu if hs_cpu else float('nan'):.2f} Synapse); bare client "
        f"{bare.syncs} syncs, {bare.limited} limited timelines",
    ]
    return result


def run(quick: bool = False, synapse: Any = None) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        work = Path(tmp)
        if synapse is not None:
            return asyncio.run(_run(quick, work, synapse))
        with shared_synapse(work) as server:
            return asyncio.run(_run(quick, work, server))
