"""Fault layer against a real Synapse: kills, a homeserver outage, a second instance.

The default run has a short crash run (3 kills); `make soak` runs the long one (≥ 20).
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.devtools.sim_member import bot_message, reaction_to
from bot.devtools.synapse import LocalSynapse
from storage.postgres import ACTIVE_KEY
from tests.integration.faults import (
    STANDBY_LOG,
    BurstStats,
    bot_messages_by_kind,
    bot_positions,
    converge,
    failover_killer,
    killer,
    member_burst,
    open_request,
    replies_per_command,
    wait_for_log,
)
from tests.integration.harness import DEFAULT_MEMBERS, BotProcess, Group, make_group, query

pytestmark = pytest.mark.real

CRASH_MEMBERS = (
    *DEFAULT_MEMBERS,
    ("frank", "government", "arab-states"),
    ("grace", "academia", "cis"),
    ("heidi", "intergovernmental", "europe"),
    ("ivan", "technical-community", "africa"),
)


async def crash_run(
    group: Group,
    *,
    kills: int,
    actions_per_member: int,
    seed: int,
    standby: BotProcess | None = None,
    failover_timeout: float = 10.0,
) -> str:
    """A burst with kills. With a `standby` (PostgreSQL), the killed bot is not restarted:
    the standby must take over within `failover_timeout`, and the killed one becomes the
    next standby."""
    rng = random.Random(seed)
    group.bot.start()
    await group.bot.wait_ready()
    if standby is not None:
        standby.start()
        await wait_for_log(standby, STANDBY_LOG, 30)
    room, ballot = await open_request(group)
    stats = BurstStats()
    span = actions_per_member * 0.06
    bursts = [
        member_burst(m, room, ballot, actions_per_member, random.Random(rng.random()), stats)
        for m in group.members.values()
    ]
    if standby is None:
        chaos = killer(group, kills, span, rng, stats)
    else:
        chaos = failover_killer([group.bot, standby], kills, span, rng, stats, failover_timeout)
    await asyncio.gather(*bursts, chaos)
    current, truth = await converge(group, room, ballot)
    _, recorded, rows = await bot_positions(group)
    lost = stats.live_position_events - recorded
    doubled = rows - len(recorded) + len(recorded - stats.sent_position_events)
    report = f"kills={stats.kills} actions={stats.actions} lost={len(lost)} doubled={doubled}"
    if stats.takeovers:
        report += f" takeover_max={max(stats.takeovers):.2f}s"
    print(report)
    assert current == truth, f"{report}\nbot:   {current}\ntruth: {truth}"
    lost_commands = lost & stats.commands
    assert not lost, f"{report}: lost {len(lost_commands)} commands, e.g. {sorted(lost)[:3]}"
    assert doubled == 0, report

    observer = next(iter(group.members.values()))
    kinds = await bot_messages_by_kind(observer, room, group.bot_user.user_id)
    assert kinds.get("request_card") == 1, kinds
    assert kinds.get("ballot") == 1, kinds
    replies = await replies_per_command(observer, room, group.bot_user.user_id)
    assert all(n == 1 for n in replies.values()), {k: n for k, n in replies.items() if n > 1}
    main_kinds = await bot_messages_by_kind(observer, group.main_room, group.bot_user.user_id)
    assert main_kinds.get("reply", 0) >= 1
    assert await query(group, "SELECT count(*) AS n FROM requests") == [{"n": 1}]
    rooms = [r for r in await group.chair.gateway.joined_rooms()]
    assert len(set(rooms)) == len(rooms)
    # Every room the members were invited to by the bot for a request is the one room.
    assert len([r for m in group.members.values() for r in m.invites]) == 0
    return report


@pytest.fixture
async def crash_group(
    synapse: LocalSynapse, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Group]:
    g = await make_group(
        synapse, tmp_path, f"cr{abs(hash(request.node.name)) % 10_000}", members=CRASH_MEMBERS
    )
    try:
        yield g
    finally:
        await g.close()


async def test_crash_run_short(crash_group: Group) -> None:
    """Three SIGKILLs during a burst: nothing lost, nothing counted twice, nothing sent twice."""
    await crash_run(crash_group, kills=3, actions_per_member=25, seed=7)


@pytest.mark.soak
async def test_crash_run_long(crash_group: Group) -> None:
    """The long run: twenty kills over a longer burst."""
    await crash_run(crash_group, kills=20, actions_per_member=120, seed=11)


@asynccontextmanager
async def active_and_standby(
    synapse: LocalSynapse, tmp_path: Path, pg_dsn: str, tag: str, **options: Any
) -> AsyncIterator[tuple[Group, BotProcess]]:
    """A group whose bot keeps its data in PostgreSQL (`make_group`'s options), and a
    standby bot process with the same config (same database, key file, account, device)."""
    g = await make_group(
        synapse,
        tmp_path,
        tag,
        dsn=pg_dsn,
        failover_timeout=f"{FAILOVER_TIMEOUT:.0f}s",
        **options,
    )
    standby = BotProcess(g.config_path, tmp_path / "bot-standby.log")
    try:
        yield g, standby
    finally:
        standby.stop()
        await g.close()


@pytest.fixture
async def failover_group(
    synapse: LocalSynapse, tmp_path: Path, pg_dsn: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Group, BotProcess]]:
    """A crash group on PostgreSQL with a standby."""
    tag = f"fo{abs(hash(request.node.name)) % 10_000}"
    async with active_and_standby(synapse, tmp_path, pg_dsn, tag, members=CRASH_MEMBERS) as pair:
        yield pair


FAILOVER_TIMEOUT = 10.0


@pytest.mark.pg
async def test_failover_short(failover_group: tuple[Group, BotProcess]) -> None:
    """Active and standby on one PostgreSQL database: SIGKILL the active twice mid-burst; the
    standby takes over within the failover timeout each time; nothing lost, nothing doubled."""
    group, standby = failover_group
    report = await crash_run(
        group,
        kills=2,
        actions_per_member=25,
        seed=5,
        standby=standby,
        failover_timeout=FAILOVER_TIMEOUT,
    )
    assert "takeover_max" in report


@pytest.fixture
async def encrypted_failover_group(
    synapse: LocalSynapse, tmp_path: Path, pg_dsn: str
) -> AsyncIterator[tuple[Group, BotProcess]]:
    """`failover_group` with encryption required: encrypted main room, every member an
    encrypting client, the bot's keys in PostgreSQL (the standby shares nothing else)."""
    tag = f"efo{random.randrange(10_000)}"
    async with active_and_standby(synapse, tmp_path, pg_dsn, tag, encryption="required") as pair:
        yield pair


@pytest.mark.pg
async def test_failover_encrypted_kills(
    encrypted_failover_group: tuple[Group, BotProcess],
) -> None:
    """Encryption on, active and standby on PostgreSQL: SIGKILL the active mid-ballot three
    times; the standby takes over as the same device each time (its keys are in the
    database), every position counts once, members read the draft and the outcome, and the
    device stays the one cross-signed device of the bot."""
    group, standby = encrypted_failover_group
    report = await crash_run(
        group,
        kills=3,
        actions_per_member=20,
        seed=17,
        standby=standby,
        failover_timeout=FAILOVER_TIMEOUT,
    )
    assert "takeover_max" in report
    [req] = await query(group, "SELECT room_id FROM requests WHERE id = 1")
    room = req["room_id"]
    chair = group.chair
    await chair.wait_invite(lambda r: r == room)
    await chair.join(room)
    closed = await chair.say(room, "!cb close")
    await chair.wait_for(reaction_to(closed, "✅"), room_id=room, timeout=60)
    for member in group.members.values():  # every member reads the draft...
        draft = await member.wait_for(bot_message("summary", 1), room_id=room, timeout=60)
        assert draft["type"] == "m.room.message"
    decided = await chair.say(
        room,
        "!cb decide decline The applicant has not yet shown the operational background "
        "in Internet resources that the principles ask for.",
    )
    await chair.wait_for(reaction_to(decided, "✅"), room_id=room, timeout=60)
    for member in group.members.values():  # ... and the outcome, decrypted
        outcome = await member.wait_for(bot_message("outcome", 1), room_id=room, timeout=60)
        assert outcome["content"]["consensus_bot"]["outcome"] == "decline"
    # The bot is still one device, the configured one, signed by its self-signing key.
    bot = group.bot_user
    keys = await chair.gateway.raw(
        "POST", "/_matrix/client/v3/keys/query", {"device_keys": {bot.user_id: []}}
    )
    assert list(keys["device_keys"][bot.user_id]) == [bot.device_id]
    ssk = next(iter(keys["self_signing_keys"][bot.user_id]["keys"]))
    device = keys["device_keys"][bot.user_id][bot.device_id]
    assert ssk in device["signatures"][bot.user_id]
    logs = group.bot.log_text() + standby.log_text()
    assert "has no keys for the bot's device" not in logs


@pytest.mark.soak
@pytest.mark.pg
async def test_failover_long(failover_group: tuple[Group, BotProcess]) -> None:
    """The long failover run: ten kills of whichever bot is active over a longer burst."""
    group, standby = failover_group
    await crash_run(
        group,
        kills=10,
        actions_per_member=120,
        seed=13,
        standby=standby,
        failover_timeout=FAILOVER_TIMEOUT,
    )


@pytest.mark.pg
async def test_an_active_bot_that_loses_its_lock_stops_at_once(
    failover_group: tuple[Group, BotProcess],
) -> None:
    """The server ends the active bot's lock session: the bot exits non-zero within seconds
    instead of writing on without the lock."""
    group, _ = failover_group
    assert group.dsn is not None
    group.bot.start()
    await group.bot.wait_ready()
    admin = await asyncpg.connect(group.dsn)
    try:
        cut = await admin.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND objid = $1 AND granted",
            ACTIVE_KEY,
        )
        assert cut is True
    finally:
        await admin.close()
    proc = group.bot.proc
    assert proc is not None
    for _ in range(100):
        if proc.poll() is not None:
            break
        await asyncio.sleep(0.05)
    assert proc.returncode == 1, group.bot.log_text()[-2000:]
    assert "lost the lock connection" in group.bot.log_text()


async def test_second_instance_refused(synapse: LocalSynapse, tmp_path: Path) -> None:
    group = await make_group(synapse, tmp_path, "single")
    try:
        group.bot.start()
        await group.bot.wait_ready()
        second = subprocess.run(  # noqa: ASYNC221 - the test waits for it on purpose
            [sys.executable, "-m", "bot", "run", "--config", str(group.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "another Consensus Bot" in second.stderr
        assert "one bot per database" in second.stderr
    finally:
        await group.close()


@pytest.fixture
def own_synapse(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSynapse]:
    server = LocalSynapse(tmp_path_factory.mktemp("outage-synapse"))
    server.start()
    try:
        yield server  # type: ignore[misc]
    finally:
        server.stop()


async def test_homeserver_outage(own_synapse: LocalSynapse, tmp_path: Path) -> None:
    """Synapse stops for 30 s mid-request: the bot backs off (no storm) and finishes the job."""
    group = await make_group(own_synapse, tmp_path, "outage", watchdog="10s")
    try:
        group.bot.start()
        await group.bot.wait_ready()
        room, ballot = await open_request(group)
        m = group.members
        await m["alice"].react(room, ballot, "👍")
        await m["bob"].react(room, ballot, "👌")
        await asyncio.sleep(1.0)

        own_synapse.stop()
        before = group.bot.log_text()
        await asyncio.sleep(30)
        own_synapse.start()
        during = group.bot.log_text()[len(before) :]
        failures = len(re.findall(r"sync failed", during))
        # Exponential backoff with jitter: a handful of attempts in 30 s, not a storm.
        assert 2 <= failures <= 10, during[-2000:]
        # Past the configured watchdog (10 s) the failure is logged as an error.
        assert re.search(r"ERROR bot\.services\.syncer: sync has failed for \d+ s", during)

        await m["carol"].react(room, ballot, "👍")
        await group.chair.wait_invite(lambda r: r == room)
        await group.chair.join(room)
        close = await group.chair.say(room, "!cb close")
        await group.chair.wait_for(reaction_to(close, "✅"), room_id=room, timeout=90)
        summary = await group.chair.wait_for(bot_message("summary", 1), room_id=room, timeout=30)
        counts = summary["content"]["consensus_bot"]["counts"]
        assert counts["support"] == 2
        assert counts["no-objection"] == 1
        assert "homeserver reachable again" in group.bot.log_text()
    finally:
        await group.close()
