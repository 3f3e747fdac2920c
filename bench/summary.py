"""Benchmark 4 — the draft sense of the room for a ballot with 10,000 eligible members.

The database holds 10,000 members, one open request whose eligibility snapshot is the whole
roster, positions from 7,000 of them (some objections open, some addressed) and a second open
request with its own positions (so the queries must pick the right rows). Timed, repeated:

* bot: `Ballots.sense(repo, req)` — the request's raw rows loaded as plain tuples by
  `Repository.plain_rows` (the eligible snapshot, the roster's active members, every input,
  the redactions aimed at them), counted by the one rule (`bot.domain.counting.standing`, the
  core `count` runs too), the objections read by `Repository.objections` and the whole
  drafted by `bot.domain.sense.determine` — plus `bot.matrix.render.summary` (the message the
  chair gets), in one read transaction, on the services `bot.app.build_services` wires;
* baseline, same run: the same result sets fetched with bare sqlite3 (`fetchall`,
  the statements `Repository.plain_rows` and `Repository.objections` run, no row objects, no
  logic) — the floor for reading what the draft needs — and `determine` alone on values
  already in memory (the floor for drafting). Their sum is the least a draft can cost; above
  it is the price of the row tuples and of the counting rule.

`standing` alone, on rows already in memory, is timed too.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result, note, percentile
from bench.ingest import (
    SERVER,
    SQL_INPUT,
    SQL_OBJECTION,
    event_id,
    member_id,
    seed_roster,
)

MAX_EVENT_BYTES = 65_536  # the spec's limit for a whole event (PDU), content included
POSITIONS = ("support", "no-objection", "concern", "object", "abstain", "recuse")
WEIGHTS = (45, 25, 15, 3, 8, 4)

# What `Repository.plain_rows` (eligible snapshot, the roster's active members, inputs,
# redactions aimed at them) and `Repository.objections` read, statement for statement: keep
# them in step. (Nobody left the roster, so plain_rows runs no query for removal times.)
BARE_QUERIES = (
    (
        "SELECT user_id, stakeholder, region, country FROM eligible WHERE request_id = ? "
        "ORDER BY user_id"
    ),
    (
        "SELECT e.user_id, coalesce(m.removed_at, 0) FROM eligible e "
        "LEFT JOIN members m ON m.user_id = e.user_id "
        "WHERE e.request_id = ? AND (m.active IS NULL OR m.active != 1)"
    ),
    (
        "SELECT event_id, member, position, ts, source, room_id, recorded_at "
        "FROM position_inputs WHERE request_id = ?"
    ),
    (
        "SELECT r.* FROM redactions r JOIN position_inputs p ON p.event_id = r.redacts "
        "WHERE p.request_id = ? ORDER BY r.recorded_at, r.event_id"
    ),
    "SELECT * FROM objections WHERE request_id = ? ORDER BY id",
)


async def build(
    path: Path | str, members: int, taking_part: int, ballots: int = 2, seed: int = 3
) -> None:
    """Members and open ballots through `Repository`, in the ingest workload's rooms (so its
    responses land on them) with a live tally; position inputs bulk-inserted with the
    columns `Repository.add_input` writes (a SQLite file, or a PostgreSQL DSN)."""
    from bench.ingest import ballot_id, open_target, room_id
    from bot.domain.lifecycle import RequestState
    from bot.domain.request import Applicant
    from storage.repo import Repository

    rng = random.Random(seed)
    now = int(time.time() * 1000)
    db = open_target(path)
    await db.open()
    try:
        async with db.transaction() as tx:
            repo = Repository(tx)
            await seed_roster(repo, members, now)
            for r in range(1, ballots + 1):
                rid = await repo.create_request(
                    "main",
                    Applicant(f"@applicant{r}:{SERVER}", f"Applicant {r}", "Org", None, None),
                    "Wants to help.",
                    f"@chair:{SERVER}",
                    f"$filing{r}",
                    False,
                    now + 86_400_000,
                    now,
                )
                await repo.update_request(
                    rid,
                    state=RequestState.OPEN,
                    room_id=room_id(r),
                    opened_at=now,
                    ballot_event_id=ballot_id(r),
                    tally_event_id=event_id(2 * 10**9 + r),
                )
                await repo.snapshot_eligible(rid)
                # One input per member taking part, in the request's room: what the rule counts
                # (there is no stored current position; it is derived from these rows).
                inputs, objections = [], []
                who = rng.sample(range(members), taking_part)
                room = room_id(r)
                for n, i in enumerate(who):
                    eid = event_id(r * 1_000_000 + n)
                    pos = rng.choices(POSITIONS, WEIGHTS)[0]
                    inputs.append((rid, member_id(i), eid, "reaction", pos, None, now, now, room))
                    if pos == "object":
                        objections.append((rid, member_id(i), eid, "A reason.", now))
                await tx.executemany(SQL_INPUT, inputs)
                await tx.executemany(SQL_OBJECTION, objections)
            # Half the objections on request 1 were addressed by the chair.
            await tx.execute(
                "UPDATE objections SET state = 'addressed', disposed_by = ?, rationale = 'ok' "
                "WHERE request_id = 1 AND id % 2 = 0",
                (f"@chair:{SERVER}",),
            )
    finally:
        await db.close()


async def draft(db: Any, ballots: Any) -> tuple[Any, Any]:
    """What the bot does for a draft: request #1 and `Ballots.sense`, in one transaction."""
    from storage.repo import Repository

    async with db.transaction() as tx:
        repo = Repository(tx)
        req = await repo.request(1)
        assert req is not None
        return req, await ballots.sense(repo, req)


async def _run(quick: bool, workdir: Path) -> Result:
    from bench.ingest import engine
    from bot.app import settle_heap
    from bot.domain.counting import standing
    from bot.domain.sense import Voter, determine
    from bot.matrix import render
    from storage.database import Database
    from storage.repo import Repository

    members = 2_000 if quick else 10_000
    taking_part = members * 7 // 10
    rounds = 5 if quick else 30
    path = workdir / "summary.db"
    note(f"summary: building a ballot with {members:,} eligible members")
    await build(path, members, taking_part)

    db = Database(path)
    await db.open()
    chair = [f"@chair:{SERVER}"]
    bot_laps: list[float] = []
    sense_laps: list[float] = []
    try:  # the database is closed whatever happens: its thread would keep the process alive
        ballots = engine(db).groups.first.ballots
        quorum = ballots.settings.quorum
        settle_heap()  # as the bot does once it has started (bot.app.App.run)
        for _ in range(rounds + 1):
            t0 = time.perf_counter()
            req, sense = await draft(db, ballots)
            t1 = time.perf_counter()
            message = render.summary(req, sense, final=True, mentions=chair)
            t2 = time.perf_counter()
            bot_laps.append(t2 - t0)
            sense_laps.append(t1 - t0)
        # The same steps one by one, for where the time goes.
        parts: dict[str, list[float]] = {"rows": [], "objections": []}
        for _ in range(rounds):
            async with db.transaction() as tx:
                repo = Repository(tx)
                t0 = time.perf_counter()
                rows = await repo.plain_rows(1)
                t1 = time.perf_counter()
                objections = await repo.objections(1)
                t2 = time.perf_counter()
            parts["rows"].append(t1 - t0)
            parts["objections"].append(t2 - t1)
    finally:
        await db.close()
    bot_laps, sense_laps = bot_laps[1:], sense_laps[1:]  # the first round warms the caches
    assert req is not None
    window = ballots.window(req)
    count_laps: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        tally = standing(window, rows.snapshot, rows.removed, rows.inputs, rows.redactions)
        count_laps.append(time.perf_counter() - t0)
    voters, positions = tally.voters, tally.positions
    det_laps: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        drafted = determine(voters, positions, objections, quorum)
        det_laps.append(time.perf_counter() - t0)
    assert drafted == sense, "the steps one by one must draft what Ballots.sense drafts"

    bare_laps: list[float] = []
    bare_parts: list[list[float]] = [[] for _ in BARE_QUERIES]
    bare_rows: list[int] = []
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for _ in range(rounds + 1):
            t0 = time.perf_counter()
            conn.execute("BEGIN")
            got = []
            for i, sql in enumerate(BARE_QUERIES):
                q0 = time.perf_counter()
                got.append(conn.execute(sql, (1,)).fetchall())
                bare_parts[i].append(time.perf_counter() - q0)
            conn.execute("COMMIT")
            bare_laps.append(time.perf_counter() - t0)
            bare_rows.append(sum(1 for result in got for _ in result))
    finally:
        conn.close()
    bare_laps = bare_laps[1:]
    render_laps = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        render.summary(req, sense, final=True, mentions=chair)
        render_laps.append(time.perf_counter() - t0)

    size = len(json.dumps(message.content(), ensure_ascii=False).encode())
    read = (
        len(rows.snapshot)
        + len(rows.removed)
        + len(rows.inputs)
        + len(rows.redactions)
        + len(objections)
    )
    assert bare_rows[-1] == read, (bare_rows[-1], read)

    def ms(values: list[float]) -> str:
        return f"{percentile(values, 50) * 1000:.1f}"

    p50, p95 = percentile(bot_laps, 50), percentile(bot_laps, 95)
    sense50 = percentile(sense_laps, 50)
    bare50, det50 = percentile(bare_laps, 50), percentile(det_laps, 50)
    floor = bare50 + det50
    assert isinstance(voters[0], Voter)
    line = (
        f"summary: draft sense for {len(voters):,} eligible members "
        f"({sense.participated:,} took part, proposal {sense.proposal.value}): p50 "
        f"{p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (Ballots.sense: read+count+draft "
        f"{sense50 * 1000:.1f} ms); ×{p50 / bare50:.2f} a bare sqlite3 read of the same rows "
        f"({bare50 * 1000:.1f} ms), ×{sense50 / floor:.2f} for Ballots.sense against that read + "
        f"determine alone ({floor * 1000:.1f} ms, determine {det50 * 1000:.1f} ms)"
    )
    result = Result("summary", line, True)
    result.values["summary_p50_ms_sqlite"] = p50 * 1000
    result.check(p50 < 0.050, f"p50 {p50 * 1000:.1f} ms ≥ 50 ms")
    result.details += [
        f"where the time goes (p50): Repository.plain_rows {ms(parts['rows'])} ms (bare: "
        f"eligible {ms(bare_parts[0][1:])} ms, members who left {ms(bare_parts[1][1:])} ms, "
        f"inputs {ms(bare_parts[2][1:])} ms, redactions {ms(bare_parts[3][1:])} ms), "
        f"Repository.objections {ms(parts['objections'])} ms (bare "
        f"{ms(bare_parts[4][1:])} ms), counting.standing {ms(count_laps)} ms, determine "
        f"{ms(det_laps)} ms, render.summary {ms(render_laps)} ms",
        f"{rounds} rounds; rows read per draft: {len(rows.snapshot):,} eligible, "
        f"{len(rows.inputs):,} inputs, {len(rows.redactions):,} redactions, {len(objections):,} "
        f"objections; message {len(message.body):,} characters of text, "
        f"{len(message.html):,} of HTML, {size:,} bytes of event content as JSON",
    ]
    result.details.append(await _postgresql(members, taking_part, rounds, p50, result))
    if size > MAX_EVENT_BYTES:
        result.details.append(
            f"WARNING: the summary's content alone is {size:,} bytes; Matrix events are limited "
            f"to {MAX_EVENT_BYTES:,} bytes, so the homeserver would refuse this message"
        )
    return result


async def _postgresql(
    members: int, taking_part: int, rounds: int, sqlite_p50: float, result: Result
) -> str:
    """The same draft and message on PostgreSQL (a throwaway local cluster), against
    SQLite's p50 of the same steps."""
    from bench.ingest import engine, open_target
    from bench.postgres import throwaway_cluster
    from bot.app import settle_heap
    from bot.matrix import render

    note("summary: the same on PostgreSQL (a throwaway local cluster)")
    with throwaway_cluster() as pg:
        if pg is None:
            return "postgresql: skipped (PostgreSQL is not installed here)"
        pg.admin("CREATE DATABASE summary")
        await build(pg.dsn("summary"), members, taking_part)
        db = open_target(pg.dsn("summary"))
        await db.open()
        laps: list[float] = []
        try:
            ballots = engine(db).groups.first.ballots
            settle_heap()
            for _ in range(rounds + 1):
                t0 = time.perf_counter()
                req, sense = await draft(db, ballots)
                render.summary(req, sense, final=True, mentions=[f"@chair:{SERVER}"])
                laps.append(time.perf_counter() - t0)
        finally:
            await db.close()
    p50 = percentile(laps[1:], 50)
    result.values["summary_p50_ms_pg"] = p50 * 1000
    result.check(p50 / sqlite_p50 <= 1.5, f"PostgreSQL ×{p50 / sqlite_p50:.2f} SQLite > ×1.5")
    return (
        f"postgresql: Ballots.sense + render.summary p50 {p50 * 1000:.1f} ms, p95 "
        f"{percentile(laps[1:], 95) * 1000:.1f} ms, ×{p50 / sqlite_p50:.2f} SQLite's "
        "in this run"
    )


def run(quick: bool = False) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-summary-") as tmp:
        return asyncio.run(_run(quick, Path(tmp)))
