"""Benchmark 1 — ingest: synthetic sync responses through the bot's real path, no network.

Synthetic `/sync` responses (reactions, redactions and `!cb` commands from 1,000 members over
100 open requests, 100,000 events in batches of 100–500) are kept as raw JSON bytes and
replayed three times in the same run:

* bot: `json.loads` → `decode_sync` → `Batches.apply_batch` (one durable SQLite commit per
  batch: WAL, synchronous=FULL) on the services `bot.app.build_services` wires, exactly what
  `Syncer.run` does with a response;
* baseline (a): `json.loads` → `nio.SyncResponse.from_dict` on the same bytes: the parsing
  every bot built on nio pays (this bot does not run it; it decodes the raw JSON itself);
* baseline (b): the rows the bot must write at the least, written by a bare sqlite3 loop
  (one `execute` per row, no reads, no logic), one durable transaction per batch, on a copy of the
  same starting database with the same pragmas. What counts is derived at read time by
  `bot.domain.counting.count`, so these are the ledger rows (inputs, redactions), the
  objections opened, the acknowledgements queued, the processed-event marks and the token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bench import Result, note, percentile

if TYPE_CHECKING:
    from bot.app import Services
    from bot.services.settings import Settings
    from storage.backend import Backend, Params, Tx

BOT = "@consensus:bench.example"
CHAIR = "@chair:bench.example"
MAIN_ROOM = "!main:bench.example"
PREFIX = "!cb"
SERVER = "bench.example"

# Reaction keys with their weights; skin tones and variation selectors are normalised away by
# the bot, so they are the same positions. 🎉 and ❤️ are not ballot reactions (ignored).
REACTION_KEYS: tuple[tuple[str, int], ...] = (
    ("👍", 30),
    ("👍🏽", 5),
    ("✅", 5),
    ("👌", 20),
    ("🤔", 12),
    ("👎", 4),
    ("✋", 1),
    ("🤐", 5),
    ("🎉", 10),
    ("❤️", 8),
)
COMMANDS: tuple[tuple[str, int], ...] = (
    ("!cb support", 30),
    ("!cb support Strong track record in the region.", 10),
    ("!cb no-objection", 20),
    ("!cb concern Not sure how much time they can give.", 15),
    ("!cb concern", 5),
    ("!cb object The statement does not say what they will work on.", 5),
    ("!cb withdraw", 10),
    ("!cb abstain", 5),
)
POSITION_KEYS = {"👍", "👍🏽", "✅", "👌", "🤔", "👎", "✋", "🤐"}


def event_id(n: int) -> str:
    """A Matrix-looking event ID (43 characters of URL-safe base64, like room v4+ IDs)."""
    digest = hashlib.sha256(n.to_bytes(8, "big")).digest()
    return "$" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def seed_roster(repo: Any, members: int, now: int) -> None:
    """`members` members spread over every stakeholder group and region (shared by benches)."""
    from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS

    for i in range(members):
        group = STAKEHOLDER_GROUPS[i % len(STAKEHOLDER_GROUPS)]
        await repo.upsert_member(
            "main", member_id(i), group, REGIONS[i % len(REGIONS)], now, "config"
        )


def member_id(i: int) -> str:
    return f"@member{i:05d}:{SERVER}"


def room_id(r: int) -> str:
    return f"!request{r:04d}room:{SERVER}"


def ballot_id(r: int) -> str:
    return event_id(10**9 + r)


@dataclass
class Workload:
    """The synthetic sync responses and, per batch, the rows a bare writer writes for them."""

    members: int
    requests: int
    batches: list[bytes] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    rows: list[list[tuple[str, tuple[Any, ...]]]] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(self.sizes)


# The statements of the bare baseline (b): the same tables and columns the bot writes.
#
# Baseline (b) is the least the bot must write for an event, with no reads and no logic.
# There is no stored current position any more (migration 0003 dropped `current_positions`;
# every reader derives it from the ledger with `bot.domain.counting.count`), so the least is
# now: the input row itself, with the room it came from and the bot's receive time (the rule
# needs both: a retraction counts only in the input's room, lateness is judged on the bot's
# clock); for a redaction its row with its receive time, and nothing else (the rule decides
# at read time whether it retracts a position, where the old baseline deleted the current
# position); an objection row when an input objects; the acknowledgement of a command; the
# processed-event mark; the sync token. Withdrawals are inputs without a position.
SQL_PROCESSED = "INSERT INTO processed_events(event_id, room_id, processed_at) VALUES (?, ?, ?)"
SQL_INPUT = (
    "INSERT INTO position_inputs(request_id, member, event_id, source, position, reason, ts, "
    "recorded_at, room_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SQL_REDACTION = (
    "INSERT INTO redactions(event_id, redacts, room_id, sender, ts, recorded_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
SQL_OBJECTION = (
    "INSERT INTO objections(request_id, member, event_id, reason, state, created_at) "
    "VALUES (?, ?, ?, ?, 'open', ?)"
)
SQL_OUTBOX = (
    "INSERT INTO outbox(txn_id, op, request_id, room_id, target, purpose, payload, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
SQL_TOKEN = (
    "INSERT INTO meta(key, value) VALUES ('sync_token', ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
)

_POSITION_OF_KEY = {
    "👍": "support",
    "👍🏽": "support",
    "✅": "support",
    "👌": "no-objection",
    "🤔": "concern",
    "👎": "object",
    "✋": "object",
    "🤐": "abstain",
}
_POSITION_OF_COMMAND = {
    "support": "support",
    "no-objection": "no-objection",
    "concern": "concern",
    "object": "object",
    "abstain": "abstain",
    "withdraw": None,
}


def make_workload(
    n_events: int, members: int = 1_000, requests: int = 100, seed: int = 7
) -> Workload:
    """Generate the sync responses (raw JSON bytes) and the baseline's rows per batch."""
    rng = random.Random(seed)
    keys = [k for k, _ in REACTION_KEYS]
    key_weights = [w for _, w in REACTION_KEYS]
    commands = [c for c, _ in COMMANDS]
    command_weights = [w for _, w in COMMANDS]
    live: list[tuple[str, int, str]] = []  # (event ID, request, sender) of unredacted reactions
    work = Workload(members, requests)
    ts = 1_750_000_000_000
    n = 0
    batch_no = 0
    payload = json.dumps({"kind": "reaction", "key": "✅"})
    while n < n_events:
        size = min(rng.randint(100, 500), n_events - n)
        rooms: dict[str, list[dict[str, Any]]] = {}
        rows: list[tuple[str, tuple[Any, ...]]] = []
        for _ in range(size):
            n += 1
            ts += rng.randint(1, 20)
            eid = event_id(n)
            roll = rng.random()
            if roll < 0.10 and live:
                kind = "redaction"
                target, r, sender = live.pop(rng.randrange(len(live)))
                content: dict[str, Any] = {"redacts": target}
                ev: dict[str, Any] = {
                    "type": "m.room.redaction",
                    "redacts": target,
                    "content": content,
                }
                rows.append((SQL_REDACTION, (eid, target, room_id(r), sender, ts, ts)))
            elif roll < 0.20:
                kind = "command"
                r = rng.randint(1, requests)
                sender = member_id(rng.randrange(members))
                body = rng.choices(commands, command_weights)[0]
                ev = {"type": "m.room.message", "content": {"msgtype": "m.text", "body": body}}
                name, _, reason = body[len(PREFIX) + 1 :].partition(" ")
                position = _POSITION_OF_COMMAND[name]
                params = (r, sender, eid, "command", position, reason or None, ts, ts, room_id(r))
                rows.append((SQL_INPUT, params))
                if position == "object":
                    rows.append((SQL_OBJECTION, (r, sender, eid, reason, ts)))
                rows.append(
                    (SQL_OUTBOX, (f"b.{eid}", "reaction", None, room_id(r), eid, None, payload, ts))
                )
            else:
                kind = "reaction"
                r = rng.randint(1, requests)
                sender = member_id(rng.randrange(members))
                key = rng.choices(keys, key_weights)[0]
                ev = {
                    "type": "m.reaction",
                    "content": {
                        "m.relates_to": {
                            "rel_type": "m.annotation",
                            "event_id": ballot_id(r),
                            "key": key,
                        }
                    },
                }
                if key in POSITION_KEYS:
                    live.append((eid, r, sender))
                    position = _POSITION_OF_KEY[key]
                    params = (r, sender, eid, "reaction", position, None, ts, ts, room_id(r))
                    rows.append((SQL_INPUT, params))
                    if position == "object":
                        rows.append((SQL_OBJECTION, (r, sender, eid, None, ts)))
            ev.update(
                event_id=eid,
                sender=sender,
                origin_server_ts=ts,
                unsigned={"age": rng.randint(5, 90)},
            )
            rows.append((SQL_PROCESSED, (eid, room_id(r), ts)))
            rooms.setdefault(room_id(r), []).append(ev)
            work.kinds[kind] = work.kinds.get(kind, 0) + 1
        batch_no += 1
        rows.append((SQL_TOKEN, (f"s{batch_no}_bench",)))
        response = {
            "next_batch": f"s{batch_no}_bench",
            "rooms": {
                "join": {
                    rid: {
                        "timeline": {
                            "events": events,
                            "limited": False,
                            "prev_batch": f"p{batch_no}",
                        },
                        "state": {"events": []},
                        "ephemeral": {"events": []},
                        "account_data": {"events": []},
                        "unread_notifications": {"notification_count": 0, "highlight_count": 0},
                        "summary": {},
                    }
                    for rid, events in rooms.items()
                },
                "invite": {},
                "leave": {},
            },
            "account_data": {"events": []},
            "presence": {"events": []},
            "to_device": {"events": []},
            "device_lists": {"changed": [], "left": []},
            "device_one_time_keys_count": {"signed_curve25519": 0},
        }
        work.batches.append(json.dumps(response, ensure_ascii=False).encode())
        work.sizes.append(size)
        work.rows.append(rows)
    return work


# --- setup ---------------------------------------------------------------------------------


def settings() -> Settings:
    """The settings of a bot configured with the benchmark's group (no encryption, no
    reminders, no digest: the benchmarks measure ingest), built as `bot.app` builds them."""
    from bot.config import Config
    from bot.services.settings import Settings
    from storage.keys import Keys

    config = Config.model_validate(
        {
            "matrix": {
                "homeserver": "https://bench.example",
                "user_id": BOT,
                "password": "unused",
                "command_prefix": PREFIX,
                "encryption": "off",
            },
            "group": {
                "name": "Bench Collaboration Group",
                "main_room": MAIN_ROOM,
                "chairs": [CHAIR],
            },
            "process": {"reminders": []},
            "digest": {"schedule": ""},
        },
        context={"base_dir": Path("/nonexistent"), "env": {}},
    )
    keys = Keys(hums=b"bench hum key", markers=b"bench marker key")
    return Settings.from_config(
        config, main_room_id=MAIN_ROOM, keys=keys, space_id=None, bot_needs_power_entry=False
    )


def engine(db: Backend) -> Services:
    """The services wired as the bot wires them (`bot.app.build_services`), without a
    homeserver or a scheduler: the benchmarks measure the bot's code, not Matrix."""
    from bot.app import build_services
    from bot.services.clock import SystemClock
    from bot.services.outbox import Doorbell

    return build_services(settings(), db, SystemClock(), Doorbell())


def open_target(target: Path | str) -> Backend:
    """The bot's database for a benchmark: a SQLite file, or a PostgreSQL DSN."""
    from storage.database import Database
    from storage.postgres import PostgresDatabase

    return PostgresDatabase(target) if isinstance(target, str) else Database(target)


async def build_database(path: Path | str, members: int, requests: int) -> None:
    """Members, and open requests with their ballots, through the services and `Repository`.

    `Ballots.file_request` and `RoomOpening.room_ready` do what the bot does when a chair files a
    request and its room exists (eligibility snapshot, card, ballot, invites queued); the ballot
    event ID is then recorded as `SentHooks.on_sent` would. The queued operations are marked sent.
    """
    from bot.domain.request import Applicant
    from bot.services.clock import SystemClock
    from bot.services.outbox import Outbox
    from bot.services.plans import AfterCommit
    from storage.repo import Repository

    db = open_target(path)
    await db.open()
    services = engine(db)
    ballots = services.groups.first.ballots
    now = SystemClock().now_ms()
    try:
        async with db.transaction() as tx:
            repo = Repository(tx)
            await seed_roster(repo, members, now)
            out = Outbox(repo, now, AfterCommit())
            for r in range(1, requests + 1):
                applicant = Applicant(
                    f"@applicant{r}:{SERVER}", f"Applicant {r}", "Org", None, None
                )
                req = await ballots.file_request(
                    repo, out, applicant, "Wants to help.", CHAIR, f"$filing{r}", None, now
                )
                assert req.id == r
                await services.openings[services.groups.first.group_id].room_ready(
                    repo, out, r, room_id(r), now
                )
                await repo.update_request(r, ballot_event_id=ballot_id(r))
            await tx.execute("UPDATE outbox SET state = 'sent', sent_at = ?", (now,))
    finally:
        await db.close()


def table_counts(path: Path) -> dict[str, int]:
    tables = (
        "processed_events",
        "position_inputs",
        "redactions",
        "objections",
        "outbox",
        "failed_events",
    )
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


# --- the three runs ------------------------------------------------------------------------


async def run_bot(
    path: Path | str, work: Workload, counter: Calls | None = None
) -> tuple[list[float], dict[str, float], Any]:
    """The bot's path; returns per-batch seconds, the split by stage, and totals. With a
    `counter`, every database call the services make is counted in it."""
    from bot.matrix.decode import decode_sync
    from bot.services.batches import BatchResult

    db = open_target(path)
    await db.open()
    bot = engine(db if counter is None else cast("Backend", CountingBackend(db, counter)))
    laps: list[float] = []
    split = {"json": 0.0, "decode": 0.0, "apply": 0.0}
    total = BatchResult()
    clock = time.perf_counter
    try:
        for raw_bytes in work.batches:
            t0 = clock()
            raw = json.loads(raw_bytes)
            t1 = clock()
            batch = decode_sync(raw, BOT, PREFIX)
            t2 = clock()
            result = await bot.batches.apply_batch(batch)
            t3 = clock()
            laps.append(t3 - t0)
            split["json"] += t1 - t0
            split["decode"] += t2 - t1
            split["apply"] += t3 - t2
            total.applied += result.applied
            total.duplicates += result.duplicates
            total.failed += result.failed
            total.queued += result.queued
    finally:
        await db.close()
    return laps, split, total


def run_nio(work: Workload) -> list[float]:
    """Baseline (a): nio's parsing of the same responses."""
    from nio import SyncResponse

    laps: list[float] = []
    clock = time.perf_counter
    for raw_bytes in work.batches:
        t0 = clock()
        parsed = SyncResponse.from_dict(json.loads(raw_bytes))
        laps.append(clock() - t0)
        assert isinstance(parsed, SyncResponse), parsed
    return laps


async def run_bare(path: Path, work: Workload) -> list[float]:
    """Baseline (b): the same rows by a bare sqlite3 loop, one durable transaction per batch
    (the least the bot's writes can cost: no reads, no logic, no thread for the fsync)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    laps: list[float] = []
    clock = time.perf_counter
    try:
        for rows in work.rows:
            t0 = clock()
            conn.execute("BEGIN IMMEDIATE")
            for sql, params in rows:
                conn.execute(sql, params)
            conn.execute("COMMIT")
            laps.append(clock() - t0)
    finally:
        conn.close()
    return laps


# --- the cause: what the bot's time goes to ------------------------------------------------


@dataclass
class Calls:
    """Database calls counted at the `Tx` level, by kind."""

    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int = 1) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + n

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


class CountingTx:
    """A `Tx` that counts its calls (bench only): each method is one call to the database,
    a savepoint two (SAVEPOINT and RELEASE)."""

    def __init__(self, tx: Tx, calls: Calls) -> None:
        self._tx, self._calls = tx, calls

    async def execute(self, sql: str, params: Params = ()) -> int:
        self._calls.add("execute")
        return await self._tx.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._calls.add("executemany")
        await self._tx.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Any:
        self._calls.add("fetchone")
        return await self._tx.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> Any:
        self._calls.add("fetchall")
        return await self._tx.fetchall(sql, params)

    async def tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self._calls.add("tuples")
        return await self._tx.tuples(sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        self._calls.add("fetchval")
        return await self._tx.fetchval(sql, params)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._calls.add("savepoint", 2)
        async with self._tx.savepoint():
            yield


class CountingBackend:
    """A backend whose transactions count their calls (bench only): BEGIN and COMMIT are two
    calls per transaction; everything else is delegated unchanged."""

    def __init__(self, db: Backend, calls: Calls) -> None:
        self._db, self._calls = db, calls

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        self._calls.add("begin+commit", 2)
        async with self._db.transaction() as tx:
            yield CountingTx(tx, self._calls)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


async def round_trips(path: Path, work: Workload, batches: int) -> tuple[float, Calls]:
    """Database calls per sync batch on the ingest path (mean over the first `batches`)."""
    calls = Calls()
    part = Workload(work.members, work.requests, work.batches[:batches], work.sizes[:batches])
    await run_bot(path, part, calls)
    return calls.total / len(part.batches), calls


async def hand_offs(path: Path, work: Workload, batches: int) -> tuple[float, float]:
    """Hand-offs to the database thread on the bot's path (first `batches` batches): per
    event and per sync batch. Every call to the connection's thread is one (aiosqlite queues
    each statement, BEGIN and COMMIT included), so its queueing function is counted."""
    import aiosqlite

    original = aiosqlite.Connection._execute
    count = 0

    async def counting(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        return await original(self, fn, *args, **kwargs)

    part = Workload(work.members, work.requests, work.batches[:batches], work.sizes[:batches])
    aiosqlite.Connection._execute = counting  # type: ignore[method-assign]
    try:
        await run_bot(path, part)
    finally:
        aiosqlite.Connection._execute = original  # type: ignore[method-assign]
    return count / part.events, count / len(part.batches)


async def profile_bot(work: Workload, base: Path) -> list[str]:
    """A cProfile of the bot's path over 30 batches, by own time."""
    import cProfile
    import io
    import pstats

    profiled = base.with_name("profiled.db")
    shutil.copy(base, profiled)
    part = Workload(work.members, work.requests, work.batches[:30], work.sizes[:30])
    profiler = cProfile.Profile()
    profiler.enable()
    await run_bot(profiled, part)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    lines = ["cProfile of the bot's path (30 batches), by own time:"]
    lines += [f"  {line}" for line in out.getvalue().splitlines() if line.strip()][3:]
    return lines


# PostgreSQL ingests the first batches up to this many events (full run; --quick has fewer).
PG_EVENTS = 20_000


def _prefix(sizes: list[int], events: int) -> int:
    """How many leading batches hold about `events` events (at least one)."""
    total = 0
    for n, size in enumerate(sizes, 1):
        total += size
        if total >= events:
            return n
    return len(sizes)


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def _run(quick: bool, workdir: Path, diagnosing: bool) -> Result:
    n_events = 3_000 if quick else 100_000
    members, requests = (200, 20) if quick else (1_000, 100)
    note(f"ingest: generating {n_events:,} events from {members:,} members on {requests} ballots")
    work = make_workload(n_events, members, requests)
    note(
        f"ingest: {len(work.batches)} sync responses, "
        f"{sum(len(b) for b in work.batches) / 1e6:.1f} MB of JSON, {work.kinds}"
    )
    base = workdir / "setup.db"
    await build_database(base, members, requests)
    bot_db, bare_db = workdir / "bot.db", workdir / "bare.db"
    shutil.copy(base, bot_db)
    shutil.copy(base, bare_db)
    before = table_counts(base)

    note("ingest: baseline (a), nio's parsing")
    nio_laps = run_nio(work)
    note("ingest: the bot (decode → apply → commit per batch)")
    bot_laps, split, totals = await run_bot(bot_db, work)
    note("ingest: baseline (b), bare sqlite3 writer")
    bare_laps = await run_bare(bare_db, work)

    events = work.events
    t_bot, t_nio, t_bare = sum(bot_laps), sum(nio_laps), sum(bare_laps)
    rate = events / t_bot
    ratio_a, ratio_b = t_bot / t_nio, t_bot / t_bare
    after_bot, after_bare = table_counts(bot_db), table_counts(bare_db)
    rows_bot = sum(after_bot.values()) - sum(before.values())
    rows_bare = sum(after_bare.values()) - sum(before.values())
    line = (
        f"ingest: {events:,} events in {t_bot:.1f} s = {rate:,.0f} events/s "
        f"({t_bot / events * 1e6:.0f} µs/event), per batch p50 {_fmt_ms(percentile(bot_laps, 50))} "
        f"p99 {_fmt_ms(percentile(bot_laps, 99))}; ×{ratio_a:.2f} nio parsing alone "
        f"(a: {events / t_nio:,.0f} events/s), ×{ratio_b:.2f} bare sqlite3 writer "
        f"(b: {events / t_bare:,.0f} events/s)"
    )
    result = Result("ingest", line, True)
    result.values.update(ingest_sqlite_eps=rate, ingest_parse_ratio=ratio_a)
    result.check(rate >= 6_000, f"{rate:,.0f} events/s < 6,000 events/s")
    result.check(ratio_a <= 2.0, f"total ×{ratio_a:.2f} nio parsing > ×2")
    per = 1e6 / events
    result.details += [
        f"bot split: json.loads {split['json'] * per:.0f} µs/event, decode_sync "
        f"{split['decode'] * per:.0f} µs/event, apply_batch+commit {split['apply'] * per:.0f} "
        f"µs/event; nio from_dict (incl. json.loads) {t_nio * per:.0f} µs/event; bare writer "
        f"{t_bare * per:.0f} µs/event",
        f"batches: {len(work.batches)} of {min(work.sizes)}–{max(work.sizes)} events; bare per "
        f"batch p50 {_fmt_ms(percentile(bare_laps, 50))} p99 {_fmt_ms(percentile(bare_laps, 99))}; "
        f"nio per batch p50 {_fmt_ms(percentile(nio_laps, 50))}",
        f"applied {totals.applied:,}, duplicates {totals.duplicates}, failed {totals.failed}, "
        f"outbox rows queued {totals.queued:,}; rows written: bot {rows_bot:,}, bare {rows_bare:,}",
        "rows written per table, bot/bare: "
        + ", ".join(f"{t} {after_bot[t] - n:,}/{after_bare[t] - n:,}" for t, n in before.items()),
    ]
    if totals.failed:
        result.check(False, f"{totals.failed} events failed to apply")

    note("ingest: counting the hand-offs to the database thread")
    counted = workdir / "counted.db"
    shutil.copy(base, counted)
    per_event, per_batch = await hand_offs(counted, work, batches=min(20, len(work.batches)))
    result.details.append(
        f"database thread: {per_batch:.1f} hand-offs per sync batch, {per_event:.3f} per event "
        "(every statement, BEGIN and COMMIT is one)"
    )
    note("ingest: counting the database calls per sync batch (at the Tx level)")
    counted_calls = workdir / "calls.db"
    shutil.copy(base, counted_calls)
    per_batch, calls = await round_trips(counted_calls, work, batches=min(50, len(work.batches)))
    result.values["round_trips_per_batch"] = per_batch
    result.check(per_batch <= 25, f"{per_batch:,.0f} database calls per batch > 25")
    by_kind = ", ".join(
        f"{k} {n / min(50, len(work.batches)):,.0f}" for k, n in calls.by_kind.items()
    )
    result.details.append(
        f"database calls per sync batch (Tx level, mean of {min(50, len(work.batches))}): "
        f"{per_batch:,.0f} ({by_kind})"
    )
    note("ingest: the same responses encrypted (Megolm), decrypted on the bot's path")
    from bench import encrypted

    crypto, sealed, pairs = encrypted.setup(workdir, work)
    sealed_db = workdir / "encrypted.db"
    shutil.copy(base, sealed_db)
    t_sealed, t_decrypting = await encrypted.run_encrypted(sealed_db, crypto, sealed)
    t_alone = encrypted.decrypt_alone(crypto, pairs)
    result.details.append(
        f"encrypted: {events / t_sealed:,.0f} events/s ({t_sealed / events * 1e6:.0f} µs/event) "
        f"with every reaction and message Megolm-encrypted; decryption on the bot's path "
        f"{t_decrypting / len(pairs) * 1e6:.0f} µs per encrypted event (Crypto.decrypt_timeline: "
        f"Megolm, sender-key and type checks, the plain event rebuilt), ×"
        f"{t_decrypting / t_alone:.2f} nio's decrypt_megolm_event alone "
        f"({t_alone / len(pairs) * 1e6:.0f} µs per event, same run)"
    )
    note("ingest: the same on PostgreSQL (a throwaway local cluster)")
    from bench.postgres import throwaway_cluster

    with throwaway_cluster() as pg:
        if pg is None:
            result.details.append("postgresql: skipped (PostgreSQL is not installed here)")
        else:
            pg.admin("CREATE DATABASE setup")
            await build_database(pg.dsn("setup"), members, requests)
            pg.admin("CREATE DATABASE bot TEMPLATE setup")
            # The first batches only (a full run took most of `make bench`'s time), against
            # SQLite's time for the very same batches from the same starting state above.
            n_pg = _prefix(work.sizes, PG_EVENTS)
            part = Workload(members, requests, work.batches[:n_pg], work.sizes[:n_pg])
            pg_laps, pg_split, pg_totals = await run_bot(pg.dsn("bot"), part)
            t_pg, t_same = sum(pg_laps), sum(bot_laps[:n_pg])
            pg_per = 1e6 / part.events
            result.values.update(ingest_pg_eps=part.events / t_pg, ingest_pg_ratio=t_pg / t_same)
            result.details.append(
                f"postgresql: the first {n_pg} batches ({part.events:,} events): "
                f"{part.events / t_pg:,.0f} events/s ({t_pg * pg_per:.0f} µs/event, "
                f"apply+commit {pg_split['apply'] * pg_per:.0f} µs/event), ×{t_pg / t_same:.2f} "
                f"SQLite's time for the same batches in this run; per batch p50 "
                f"{_fmt_ms(percentile(pg_laps, 50))}; applied {pg_totals.applied:,}, "
                f"failed {pg_totals.failed}"
            )
            result.check(t_pg / t_same <= 1.5, f"PostgreSQL ×{t_pg / t_same:.2f} SQLite > ×1.5")
    if diagnosing:
        result.details += await profile_bot(work, base)
    return result


def run(quick: bool = False, *, diagnose: bool = False) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        return asyncio.run(_run(quick, Path(tmp), diagnose))
