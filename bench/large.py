"""Benchmark — a 500-member group under Synapse's default rate limits (issue 25).

One local Synapse keeps its default limits; the bot is not exempted (the members and the chair
are, for their own clicks: they are not what is measured). 500 members are registered and
joined to the main room. Two bots run one after the other against the same server and room:

* restricted (`group.request_rooms = "restricted"`, the default): the chair files a request;
  measured: filing → the announcement is in the main room and a sample of members has joined
  the request room from its link and read the ballot ("every member can join and read the
  ballot": all 500 are in the main room, nobody needs an invite); then `!cb remind` → the
  reminder, one message in the main room mentioning every member without a position.
* baseline, invite everyone (`group.request_rooms = "invite"`, the behaviour before): the same
  filing; the invites are counted for WINDOW_S seconds and the time for all 500 extrapolated
  from the measured rate (at ~5 s an invite, all of them would take about 40 minutes); then,
  with the invites marked done, `!cb remind` → one DM per member (each first needs a direct
  chat made and the member invited into it), counted for WINDOW_S and extrapolated likewise.

`large_results()` returns the figures as a dict (for bench/results.json).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sqlite3
import tempfile
import time
import urllib.request
from itertools import cycle
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import Result, note

MEMBERS = 500
QUICK_MEMBERS = 100
WINDOW_S = 60.0
QUICK_WINDOW_S = 20.0
SAMPLE = 5  # members with a client, who join from the link and read the ballot


def _http(base: str, method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return dict(json.loads(resp.read() or b"{}"))


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def _scenario(workdir: Path, n: int, window: float) -> dict[str, Any]:
    from bot.devtools.sim_member import SimMember, bot_message, reaction_to
    from bot.devtools.synapse import LocalSynapse
    from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS
    from tests.integration.harness import BotProcess, config_toml
    from tests.integration.test_large import join_by_link, readable

    server = LocalSynapse(workdir / "synapse", relaxed_rate_limits=False)
    server.start()
    figures: dict[str, Any] = {"members": n, "window_s": window}
    clients: list[SimMember] = []
    bots: list[BotProcess] = []
    try:
        t0 = time.monotonic()
        chair_user = server.register("chair")
        server.exempt_from_rate_limits(chair_user.user_id)
        bot_users = [server.register("bot-restricted"), server.register("bot-invite")]
        people = [server.register(f"m{i:03d}") for i in range(n)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda u: server.exempt_from_rate_limits(u.user_id), people))
        note(f"large: {n} members registered in {time.monotonic() - t0:.0f} s")
        chair = SimMember(
            server.base_url, chair_user.user_id, chair_user.access_token, chair_user.device_id
        )
        clients.append(chair)
        await chair.connect()
        main = await chair.create_room("Main room", [])
        base, room_path = server.base_url, quote(main, safe="")
        for user in bot_users:
            # The bots join first: the room's server then takes one join a second for a
            # while (rc_joins_per_room), as it does after any crowd joined.
            await chair.gateway.invite(main, user.user_id)
            _http(server.base_url, "POST", f"/_matrix/client/v3/join/{quote(main, safe='')}",
                  user.access_token, {})  # fmt: skip

        def enter(user: Any) -> None:
            _http(base, "POST", f"/_matrix/client/v3/rooms/{room_path}/invite",
                  chair_user.access_token, {"user_id": user.user_id})  # fmt: skip
            _http(base, "POST", f"/_matrix/client/v3/join/{room_path}", user.access_token, {})

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(enter, people))
        note(f"large: {n} members in the main room after {time.monotonic() - t0:.0f} s")
        sample = [SimMember(base, u.user_id, u.access_token, u.device_id) for u in people[:SAMPLE]]
        clients.extend(sample)
        await asyncio.gather(*(c.connect() for c in sample))
        pairs = zip(cycle(STAKEHOLDER_GROUPS), cycle(REGIONS), strict=False)
        seeds = [(u.user_id, g, r) for u, (g, r) in zip(people, pairs, strict=False)]

        async def start_bot(kind: str, user: Any) -> tuple[BotProcess, Path]:
            where = workdir / kind
            where.mkdir(exist_ok=True)
            db = where / "consensus.db"
            (where / "config.toml").write_text(
                config_toml(
                    server,
                    user,
                    main,
                    chair_user.user_id,
                    seeds,
                    db,
                    request_rooms=kind,
                    quorum=0.01,
                )
            )
            bot = BotProcess(where / "config.toml", where / "bot.log")
            bots.append(bot)
            bot.start()
            await bot.wait_ready(timeout=180)
            return bot, db

        async def file(number: int) -> float:
            filing = await chair.say(
                main,
                f"!cb request @erin{number}:{server.server_name} --stakeholder academia "
                "--region europe --deadline 1d A large group's request.",
            )
            started = time.monotonic()
            await chair.wait_for(reaction_to(filing, "✅"), room_id=main, timeout=300)
            return started

        # --- restricted -------------------------------------------------------------
        bot, _ = await start_bot("restricted", bot_users[0])
        started = await file(1)
        await chair.wait_for(bot_message("reply", 1, event="opened"), room_id=main, timeout=600)
        figures["restricted_announced_s"] = time.monotonic() - started

        async def reads(member: SimMember) -> str:
            room = await join_by_link(member, main, 1)
            await member.wait_for(readable("ballot"), room_id=room, timeout=600)
            return room

        rooms = await asyncio.gather(*(reads(m) for m in sample))
        figures["restricted_ready_s"] = time.monotonic() - started
        room = rooms[0]
        note(f"large: restricted: members can join and read after "
             f"{figures['restricted_ready_s']:.1f} s")  # fmt: skip
        await join_by_link(chair, main, 1)
        asked = time.monotonic()
        remind = await chair.say(room, "!cb remind")
        await chair.wait_for(reaction_to(remind, "✅"), room_id=room, timeout=300)
        mentioned: set[str] = set()
        deadline = time.monotonic() + 600
        while len(mentioned) < n and time.monotonic() < deadline:
            await chair.sync(1_000)
            for ev in chair.events.get(main, []):
                if bot_message("reminder", 1)(ev):
                    mentioned |= set(ev["content"].get("m.mentions", {}).get("user_ids", []))
        figures["restricted_reminders_s"] = time.monotonic() - asked
        figures["restricted_reminded"] = len(mentioned)
        note(f"large: restricted: {len(mentioned)} reminded after "
             f"{figures['restricted_reminders_s']:.1f} s")  # fmt: skip
        bot.stop()

        # --- baseline: invite everyone ------------------------------------------------
        bot, db = await start_bot("invite", bot_users[1])
        started = await file(2)
        invite_sql = "SELECT COUNT(*) FROM outbox WHERE op = 'invite' AND state = 'sent'"
        first = None
        while first is None and time.monotonic() - started < 600:
            if _count(db, "SELECT COUNT(*) FROM requests WHERE room_id IS NOT NULL"):
                first = time.monotonic()
            await asyncio.sleep(0.5)
        assert first is not None, "the baseline's room was never made"
        before = _count(db, invite_sql)
        await asyncio.sleep(window)
        invited = _count(db, invite_sql) - before
        rate = invited / window
        ahead = first - started
        # createRoom carries ten invitees; the rest go one by one at the measured rate.
        figures["invite_invited_in_window"] = invited
        figures["invite_ready_s"] = ahead + max(0, n + 1 - 10) / rate if rate else float("inf")
        note(f"large: baseline: {invited} invites in {window:.0f} s")
        bot.stop()
        with sqlite3.connect(db, timeout=30) as conn:  # as if every invite had gone out
            conn.execute("UPDATE outbox SET state = 'sent' WHERE op = 'invite'")
        bot.start()
        await bot.wait_ready(timeout=180)
        rooms_b = _http(base, "GET", "/_matrix/client/v3/joined_rooms", chair_user.access_token)
        with sqlite3.connect(db, timeout=30) as conn:
            row = conn.execute("SELECT room_id FROM requests ORDER BY id DESC LIMIT 1").fetchone()
        room_b = str(row[0])
        if room_b not in rooms_b.get("joined_rooms", []):
            await chair.join(room_b)
        sent_sql = (
            "SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND op = 'message' "
            'AND payload LIKE \'%"kind": "reminder"%\''
        )
        remind = await chair.say(room_b, "!cb remind")
        asked = time.monotonic()
        await chair.wait_for(reaction_to(remind, "✅"), room_id=room_b, timeout=300)
        await asyncio.sleep(max(0.0, window - (time.monotonic() - asked)))
        reminded = _count(db, sent_sql)
        spent = time.monotonic() - asked
        figures["dm_reminded_in_window"] = reminded
        figures["dm_reminders_s"] = n * spent / reminded if reminded else float("inf")
        note(f"large: baseline: {reminded} reminder DMs in {spent:.0f} s")
        bot.stop()
    finally:
        for bot in bots:
            bot.stop()
        for c in clients:
            await c.close()
        server.stop()
    return figures


def large_results(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its figures (seconds, counts) as a plain dict."""
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        n, window = (QUICK_MEMBERS, QUICK_WINDOW_S) if quick else (MEMBERS, WINDOW_S)
        return asyncio.run(_scenario(Path(tmp), n, window))


def run(quick: bool, synapse: object = None) -> Result:
    """The benchmark line: restricted against invite-everyone, under default limits."""
    f = large_results(quick)
    ready, base_ready = f["restricted_ready_s"], f["invite_ready_s"]
    remind, base_remind = f["restricted_reminders_s"], f["dm_reminders_s"]
    line = (
        f"large ({f['members']} members, default limits): filing → every member can join and "
        f"read the ballot {ready:.0f} s vs {base_ready / 60:.0f} min inviting everyone "
        f"({base_ready / ready:.0f}x); reminders delivered {remind:.0f} s vs "
        f"{base_remind / 60:.0f} min by DM ({base_remind / remind:.0f}x)"
    )
    result = Result("large", line, True)
    result.details.append(
        f"baseline extrapolated from {f['invite_invited_in_window']} invites and "
        f"{f['dm_reminded_in_window']} reminder DMs in {f['window_s']:.0f} s windows; "
        f"announcement {f['restricted_announced_s']:.1f} s after filing; "
        f"{f['restricted_reminded']} members mentioned by the reminder"
    )
    result.details.append("figures: " + json.dumps(f, default=str))
    result.check(ready < 120, f"members could join after {ready:.0f} s (target 120 s)")
    result.check(remind < 60, f"reminders took {remind:.0f} s (target 60 s)")
    return result
