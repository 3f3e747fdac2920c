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
from pathlib import Path

import pytest

from bot.devtools.sim_member import bot_message, reaction_to
from bot.devtools.synapse import LocalSynapse
from tests.integration.faults import (
    BurstStats,
    bot_messages_by_kind,
    bot_positions,
    converge,
    killer,
    member_burst,
    open_request,
    replies_per_command,
)
from tests.integration.harness import DEFAULT_MEMBERS, Group, make_group

pytestmark = pytest.mark.real

CRASH_MEMBERS = (
    *DEFAULT_MEMBERS,
    ("frank", "government", "arab-states"),
    ("grace", "academia", "cis"),
    ("heidi", "intergovernmental", "europe"),
    ("ivan", "technical-community", "africa"),
)


async def crash_run(group: Group, *, kills: int, actions_per_member: int, seed: int) -> str:
    rng = random.Random(seed)
    group.bot.start()
    await group.bot.wait_ready()
    room, ballot = await open_request(group)
    stats = BurstStats()
    span = actions_per_member * 0.06
    bursts = [
        member_burst(m, room, ballot, actions_per_member, random.Random(rng.random()), stats)
        for m in group.members.values()
    ]
    await asyncio.gather(*bursts, killer(group, kills, span, rng, stats))
    current, truth = await converge(group, room, ballot)
    _, recorded, rows = bot_positions(group)
    lost = stats.live_position_events - recorded
    doubled = rows - len(recorded) + len(recorded - stats.sent_position_events)
    report = f"kills={stats.kills} actions={stats.actions} lost={len(lost)} doubled={doubled}"
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
    with __import__("sqlite3").connect(group.db_path) as db:
        assert db.execute("SELECT count(*) FROM requests").fetchone() == (1,)
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
