"""Synapse with its default rate limits, and a bot that is not exempted from them.

The bot must get a request room with 15 members invited, its card, ballot and reminders
out by honouring `retry_after_ms` (it queues everything and retries with backoff), and
count every position. Under the default 0.2 messages/s every message past the burst costs
5 s, so the full profile runs with `make soak` and a shorter one in the default run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path

import pytest

from bot.devtools.sim_member import bot_message, reaction_to
from bot.devtools.synapse import LocalSynapse
from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS
from tests.integration.harness import make_group

pytestmark = pytest.mark.real


def roster(n: int) -> tuple[tuple[str, str, str], ...]:
    pairs = zip(range(n), cycle(STAKEHOLDER_GROUPS), cycle(REGIONS), strict=False)
    return tuple((f"m{i:02d}", group, region) for i, group, region in pairs)


@pytest.fixture
def strict_synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSynapse]:
    server = LocalSynapse(tmp_path_factory.mktemp("strict-synapse"), relaxed_rate_limits=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("size", "reminders"),
    [
        pytest.param(12, False, id="short"),  # about a minute: the default run
        pytest.param(15, True, id="full", marks=pytest.mark.soak),  # about two: make soak
    ],
)
async def test_default_rate_limits(
    strict_synapse: LocalSynapse, tmp_path: Path, size: int, reminders: bool
) -> None:
    group = await make_group(
        strict_synapse, tmp_path, f"rl{size}", members=roster(size), rate_limit_bot=True
    )
    try:
        group.bot.start()
        await group.bot.wait_ready()
        chair = group.chair
        filing = await chair.say(
            group.main_room, f"!cb request {group.applicant.user_id} --deadline 1h Rate limits."
        )
        await chair.wait_for(reaction_to(filing, "✅"), room_id=group.main_room, timeout=120)
        members = list(group.members.values())
        room = await members[0].wait_invite(timeout=120)
        for member in members:
            await member.wait_invite(lambda r: r == room, timeout=180)
            await member.join(room)
        ballot = await members[0].wait_for(
            lambda ev: ev.get("type") == "m.room.message" and bot_message("ballot", 1)(ev),
            room_id=room,
            timeout=120,
        )
        # All but three members take a position; with reminders, the three get one.
        for member in members[:-3]:
            await member.react(room, ballot["event_id"], "👍")
        await chair.wait_invite(lambda r: r == room, timeout=60)
        await chair.join(room)
        if reminders:
            remind = await chair.say(room, "!cb remind")
            await chair.wait_for(reaction_to(remind, "✅"), room_id=room, timeout=180)
            for member in members[-3:]:
                dm = await member.wait_invite(timeout=240)
                await member.join(dm)
                await member.wait_for(bot_message("reminder", 1), room_id=dm, timeout=120)
        close = await chair.say(room, "!cb close")
        await chair.wait_for(reaction_to(close, "✅"), room_id=room, timeout=180)
        summary = await chair.wait_for(bot_message("summary", 1), room_id=room, timeout=180)
        assert summary["content"]["consensus_bot"]["counts"]["support"] == size - 3
        assert summary["content"]["consensus_bot"]["eligible"] == size
        log = group.bot.log_text()
        # The limits really were hit, and honoured rather than fought.
        assert re.search(r"M_LIMIT_EXCEEDED|HTTP 429", log), "expected the bot to meet a rate limit"
        assert "failed for good" not in log
    finally:
        await group.close()
