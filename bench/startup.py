"""Benchmark 3 — start-up and memory of the real bot process with a big database.

The database holds 10,000 members, 1,000 open requests (each with its eligibility snapshot of
the whole roster, as `Repository.snapshot_eligible` makes it) and 200,000 position changes
(the input ledger, open objections, processed-event marks; there is no stored current
position since migration 0003, every reader counts the ledger). The bot is started as
in production (`python -m bot run`, `tests.integration.harness.BotProcess`) against a local
Synapse, with the product's default reminders and digest; the requests' rooms do not exist on
that server (the bot only needs to log in and sync).

Measured: from `Popen` to the first incremental sync applied — a valid sync token is stored in
the database before the start and the chair posts one message in the main room, so the bot's
first `/sync` is incremental and returns at once; the moment its batch is applied is when the
token in the database changes (polled every 10 ms). Also: until the log says "Consensus Bot
running", and RSS (VmRSS at the first sync; VmHWM, the peak, 3 s later (1 s with --quick)).

Baseline, same run, same server: the same bot with an empty database. Then 1,000 decided
requests (with their snapshots and positions) are added to the big database and the start is
measured again: start-up must not grow with closed requests. They carry no frozen decision
record (`records`): one lists every eligible member (about 2 MB with 10,000), 2 GB at full
size; start-up reads none, but the file is smaller than a real one (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result, note, shared_synapse
from bench.ingest import (
    SERVER,
    SQL_INPUT,
    SQL_OBJECTION,
    SQL_PROCESSED,
    event_id,
    member_id,
)

DAY_MS = 86_400_000
POSITIONS = ("support", "no-objection", "concern", "object", "abstain", None)
POSITION_WEIGHTS = (40, 25, 12, 4, 5, 4)


def _status(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


async def add_requests(
    path: Path,
    *,
    members: int,
    requests: int,
    positions: int,
    decided: bool,
    seed: int,
) -> None:
    """Requests (open, or decided and left) with snapshots and position history.

    Members, requests and eligibility go through `Repository`; the 200,000-row history is
    bulk-inserted (`Tx.executemany`) with the columns `Repository` writes: the inputs (with
    their room and receive time), their processed-event marks, and an open objection for each
    member whose latest input objects. Nothing else: what counts is derived from the inputs.
    """
    from bot.domain.lifecycle import Outcome, RequestState
    from bot.domain.request import Applicant
    from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS
    from storage.database import Database
    from storage.repo import Repository

    rng = random.Random(seed)
    now = int(time.time() * 1000)
    db = Database(path)
    await db.open()
    try:
        async with db.transaction() as tx:
            repo = Repository(tx)
            if not decided:
                for i in range(members):
                    await repo.upsert_member(
                        "main",
                        member_id(i),
                        STAKEHOLDER_GROUPS[i % len(STAKEHOLDER_GROUPS)],
                        REGIONS[i % len(REGIONS)],
                        now - 30 * DAY_MS,
                        "config",
                    )
            rooms: dict[int, str] = {}
            for k in range(requests):
                tag = f"{'d' if decided else 'o'}{k}"
                rid = await repo.create_request(
                    "main",
                    Applicant(f"@applicant-{tag}:{SERVER}", f"Applicant {tag}", "Org", None, None),
                    "Wants to help with the group's work.",
                    f"@chair:{SERVER}",
                    f"$filing-{tag}",
                    False,
                    now + 7 * DAY_MS if not decided else now - 20 * DAY_MS,
                    now - 2 * DAY_MS if not decided else now - 40 * DAY_MS,
                )
                fields: dict[str, Any] = {
                    "state": RequestState.OPEN,
                    "room_id": f"!room-{tag}:{SERVER}",
                    "ballot_event_id": f"$ballot-{tag}",
                    "opened_at": now - DAY_MS if not decided else now - 39 * DAY_MS,
                }
                if decided:
                    fields.update(
                        state=RequestState.DECIDED,
                        closed_at=now - 20 * DAY_MS,
                        outcome=Outcome.ADMIT,
                        decided_by=f"@chair:{SERVER}",
                        rationale="Rough consensus.",
                        decided_at=now - 19 * DAY_MS,
                    )
                await repo.update_request(rid, **fields)
                await repo.snapshot_eligible(rid)
                rooms[rid] = fields["room_id"]

            ids = list(rooms)
            inputs, processed, objections = [], [], []
            latest: dict[tuple[int, str], tuple[Any, ...]] = {}
            base = 2_000_000 + seed * 10_000_000
            ts = now - 30 * DAY_MS
            for n in range(positions):
                rid = rng.choice(ids)
                who = member_id(rng.randrange(members))
                pos = rng.choices(POSITIONS, POSITION_WEIGHTS)[0]
                eid = event_id(base + n)
                ts += 1
                source = "reaction" if rng.random() < 0.8 else "command"
                inputs.append((rid, who, eid, source, pos, None, ts, ts, rooms[rid]))
                processed.append((eid, rooms[rid], ts))
                latest[(rid, who)] = (rid, who, pos, eid, ts)
            for row in latest.values():
                if row[2] == "object":
                    objections.append((row[0], row[1], row[3], "A reason.", row[4]))
            await tx.executemany(SQL_INPUT, inputs)
            await tx.executemany(SQL_PROCESSED, processed)
            await tx.executemany(SQL_OBJECTION, objections)
    finally:
        await db.close()


def _set_token(db_path: Path, token: str) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('sync_token', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (token,),
        )


def _token(db_path: Path) -> str | None:
    conn = sqlite3.connect(db_path, timeout=5)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'sync_token'").fetchone()
        return None if row is None else str(row[0])
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


async def measure_start(
    synapse: Any, group: Any, db_path: Path, label: str, limit: float, settle: float = 3.0
) -> dict[str, float]:
    """Start the bot on `db_path`; seconds to "running" and to the first incremental sync."""
    from bot.matrix.decode import sync_filter
    from bot.matrix.gateway import Gateway
    from tests.integration.harness import BotProcess, config_toml

    # A valid token for the bot's first incremental sync, and something new behind it.
    probe = Gateway(synapse.base_url, group.bot_user.user_id, group.bot_user.device_id)
    await probe.connect(password=None, access_token=group.bot_user.access_token)
    try:
        await probe.join(group.main_room)  # joined before the token: the chair's line is new
        raw = await probe.sync(None, 0, sync_filter())
    finally:
        await probe.close()
    token = raw["next_batch"]
    _set_token(db_path, token)
    await group.chair.say(group.main_room, f"benchmark: starting the bot ({label})")

    config = db_path.with_suffix(".toml")
    config.write_text(
        config_toml(
            synapse,
            group.bot_user,
            group.main_room,
            group.chair.user_id,
            [],
            db_path,
            reminders=("48h", "24h"),  # the product's defaults (config.example.toml)
            digest="0 9 * * mon",
        )
    )
    bot = BotProcess(config, db_path.with_suffix(".log"))
    t0 = time.perf_counter()
    bot.start()
    assert bot.proc is not None
    pid = bot.proc.pid
    ready = synced = float("nan")
    rss_at_sync = float("nan")
    try:
        while time.perf_counter() - t0 < limit:
            if bot.proc.poll() is not None:
                raise RuntimeError(f"bot exited ({label}):\n{bot.log_text()[-3000:]}")
            if math.isnan(ready) and "Consensus Bot running" in bot.log_text(since_start=True):
                ready = time.perf_counter() - t0
            current = _token(db_path)
            if current is not None and current != token:
                synced = time.perf_counter() - t0
                rss_at_sync = _status(pid)["VmRSS"]
                break
            await asyncio.sleep(0.01)
        else:
            raise TimeoutError(f"no first sync within {limit:.0f} s ({label})")
        await asyncio.sleep(settle)  # let the start-up catch-up run, then read the peak
        status = _status(pid)
        if math.isnan(ready) and "Consensus Bot running" in bot.log_text(since_start=True):
            ready = synced  # the line reached the log file only after the token changed
    finally:
        t_stop = time.perf_counter()
        bot.stop()
        note(f"startup: {label}: stopped in {time.perf_counter() - t_stop:.1f} s")
    size = db_path.stat().st_size / 1e6  # noqa: ASYNC240 - a stat, after the measurement
    check = sqlite3.connect(db_path)
    try:  # what `Database.open()` runs at every start, timed here on the same (warm) file
        t0 = time.perf_counter()
        check.execute("PRAGMA quick_check").fetchall()
        quick_check = time.perf_counter() - t0
    finally:
        check.close()
    return {
        "quick_check": quick_check,
        "ready": ready,
        "synced": synced,
        "rss": rss_at_sync,
        "rss_later": status["VmRSS"],
        "hwm": status["VmHWM"],
        "db_mb": size,
    }


async def _run(quick: bool, workdir: Path, synapse: Any) -> Result:
    from storage.database import Database
    from tests.integration.harness import make_group

    members = 1_000 if quick else 10_000
    open_requests = 100 if quick else 1_000
    positions = 20_000 if quick else 200_000
    timeout = 120 if quick else 300
    settle = 1.0 if quick else 3.0

    group = await make_group(synapse, workdir, f"st{int(time.time())}", members=())
    try:
        empty = workdir / "empty.db"
        big = workdir / "big.db"
        for path in (empty, workdir / "warmup.db"):
            db = Database(path)
            await db.open()
            await db.close()
        note("startup: warm-up start (warms the file cache)")
        await measure_start(synapse, group, workdir / "warmup.db", "warm-up", timeout, settle)

        note(
            f"startup: building {members:,} members, {open_requests:,} open requests, "
            f"{positions:,} position changes"
        )
        t = time.perf_counter()
        await add_requests(
            big,
            members=members,
            requests=open_requests,
            positions=positions,
            decided=False,
            seed=1,
        )
        note(f"startup: built in {time.perf_counter() - t:.0f} s; measuring")
        base = await measure_start(synapse, group, empty, "empty database", timeout, settle)
        full = await measure_start(synapse, group, big, "big database", timeout, settle)

        note(f"startup: adding {open_requests:,} decided requests with their history")
        await add_requests(
            big,
            members=members,
            requests=open_requests,
            positions=positions,
            decided=True,
            seed=2,
        )
        closed = await measure_start(synapse, group, big, "big + decided", timeout, settle)
    finally:
        await group.close()

    ratio = full["synced"] / base["synced"]
    growth = closed["synced"] / full["synced"]
    line = (
        f"startup: {open_requests:,} open requests, {members:,} members, {positions:,} position "
        f"changes ({full['db_mb']:.0f} MB): first incremental sync {full['synced']:.2f} s after "
        f"process start (running at {full['ready']:.2f} s), RSS {full['rss']:.0f} MB (peak "
        f"{full['hwm']:.0f} MB); ×{ratio:.2f} the empty database ({base['synced']:.2f} s, "
        f"{base['rss']:.0f} MB); +{open_requests:,} decided requests: {closed['synced']:.2f} s "
        f"(×{growth:.2f})"
    )
    result = Result("startup", line, True)
    # The start-up figures: the big database's first sync, and its peak RSS.
    result.values.update(startup_s=full["synced"], startup_rss_mb=full["hwm"])
    result.check(full["synced"] < 3.0, f"first incremental sync after {full['synced']:.2f} s > 3 s")
    result.check(full["hwm"] < 150, f"peak RSS {full['hwm']:.0f} MB > 150 MB")
    result.check(growth <= 1.15, f"decided requests slow the start ×{growth:.2f}")
    result.details += [
        f"{label}: running {m['ready']:.2f} s, first sync {m['synced']:.2f} s, RSS at sync "
        f"{m['rss']:.0f} MB, {settle:.0f} s later {m['rss_later']:.0f} MB, peak {m['hwm']:.0f} MB, "
        f"database {m['db_mb']:.0f} MB; PRAGMA quick_check (run by Database.open at every "
        f"start) alone {m['quick_check']:.2f} s"
        for label, m in (("empty", base), ("big", full), ("big + decided", closed))
    ]
    return result


def run(quick: bool = False, synapse: Any = None) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        work = Path(tmp)
        if synapse is not None:
            return asyncio.run(_run(quick, work, synapse))
        with shared_synapse(work) as server:
            return asyncio.run(_run(quick, work, server))
