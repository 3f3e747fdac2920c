"""A large group on two federating homeservers under Synapse's default rate limits (issue 25).

Two Synapse servers on 127.0.0.1 federate over TLS (self-signed, `bot/devtools/synapse.py`);
both keep Synapse's default rate limits and the bot is not exempted. The roster has at least
200 members (220; 500 under `make soak`), most only registered, split across both servers; a sample
of 20 (10 on each server) has clients and is in the main room. A chair files a request; every
sampled member follows the announcement's link, joins the restricted request room without an
invite and reads the card and the ballot within READ_BOUND_S of the filing; their positions
count, equal to what the homeserver holds; the draft and the outcome arrive within
DECIDE_BOUND_S of `close` and `confirm`, although the bot is inviting the registered-only
members (not in the main room) in the background. The times are printed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from bot.devtools.sim_member import SimMember, bot_message, reaction_to
from bot.devtools.synapse import LocalSynapse, RegisteredUser
from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS
from tests.integration.harness import BotProcess, config_toml
from tests.integration.test_large import join_by_link, readable

pytestmark = pytest.mark.real
log = logging.getLogger(__name__)

SAMPLE = 20  # members with clients, half on each server
READ_BOUND_S = 120.0  # filing -> every sampled member has read the card and the ballot
DECIDE_BOUND_S = 60.0  # close -> draft, confirm -> outcome
KEYS = {"👍": "support", "🤔": "concern"}


@pytest.fixture
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LocalSynapse]]:
    servers = [
        LocalSynapse(
            tmp_path_factory.mktemp(f"fed-{n}"), relaxed_rate_limits=False, federation=True
        )
        for n in "ab"
    ]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def _client(server: LocalSynapse, user: RegisteredUser) -> SimMember:
    return SimMember(server.base_url, user.user_id, user.access_token, user.device_id)


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(220, id="full"),  # about 85 s: the default run
        pytest.param(500, id="soak500", marks=pytest.mark.soak),  # make soak
    ],
)
async def test_large_group_default_rate_limits_two_servers(
    two_servers: list[LocalSynapse], tmp_path: Path, size: int
) -> None:
    home, other = two_servers
    times: dict[str, float] = {}
    began = time.monotonic()
    bot_user = home.register("bot")  # NOT exempted: the bot lives with the defaults
    chair_user = home.register("chair")
    applicant = home.register("erin")
    roster: list[tuple[RegisteredUser, LocalSynapse]] = []
    for n in range(size):
        server = home if n % 2 == 0 else other
        roster.append((server.register(f"m{n:03d}"), server))
    times["register"] = time.monotonic() - began
    # The people are not what is measured: their own sends are exempted on their server.
    home.exempt_from_rate_limits(chair_user.user_id)
    sample = roster[:SAMPLE]
    for user, server in sample:
        server.exempt_from_rate_limits(user.user_id)
    chair = _client(home, chair_user)
    members = [_client(server, user) for user, server in sample]
    clients = [chair, *members]
    bot = BotProcess(tmp_path / "config.toml", tmp_path / "bot.log")
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        main_room = await chair.create_room("Main room", [])
        for user in [bot_user, *(u for u, _ in sample)]:
            await chair.gateway.invite(main_room, user.user_id)
        via = f"?server_name={quote(home.server_name)}"
        for member in members:
            await member.wait_invite(lambda r: r == main_room, timeout=60)
            await member.gateway.raw(
                "POST", f"/_matrix/client/v3/join/{quote(main_room, safe='')}{via}", {}
            )
        times["setup"] = time.monotonic() - began
        pairs = zip(cycle(STAKEHOLDER_GROUPS), cycle(REGIONS), strict=False)
        seeds = [(u.user_id, g, r) for (u, _), (g, r) in zip(roster, pairs, strict=False)]
        (tmp_path / "config.toml").write_text(
            config_toml(
                home,
                bot_user,
                main_room,
                chair_user.user_id,
                seeds,
                tmp_path / "consensus.db",
                request_rooms="restricted",
                quorum=0.02,  # the 20 sampled members are enough to judge (most are silent)
            )
        )
        bot.start()
        await bot.wait_ready(timeout=120)

        filed_at = time.monotonic()
        filing = await chair.say(
            main_room,
            f"!cb request {applicant.user_id} --stakeholder academia --region europe "
            "--deadline 1h A large group's request.",
        )
        await chair.wait_for(reaction_to(filing, "✅"), room_id=main_room, timeout=120)
        times["filed->ack"] = time.monotonic() - filed_at

        async def reads(member: SimMember) -> tuple[str, float]:
            room = await join_by_link(member, main_room)
            await member.wait_for(readable("request_card"), room_id=room, timeout=READ_BOUND_S)
            await member.wait_for(readable("ballot"), room_id=room, timeout=READ_BOUND_S)
            return room, time.monotonic() - filed_at

        read = await asyncio.gather(*(reads(m) for m in members))
        rooms = {room for room, _ in read}
        assert len(rooms) == 1
        room = rooms.pop()
        times["filed->all sampled read the ballot"] = max(t for _, t in read)
        assert all(room not in m.invites for m in members)  # nobody needed an invite
        ballot = await members[0].wait_for(readable("ballot"), room_id=room)

        # Positions: most support, two have a concern; each member from their own server.
        for n, member in enumerate(members):
            await member.react(room, ballot["event_id"], "🤔" if n in (3, 14) else "👍")
        await join_by_link(chair, main_room)
        close = await chair.say(room, "!cb close")
        closed_at = time.monotonic()
        draft = await chair.wait_for(
            bot_message("summary", 1), room_id=room, timeout=DECIDE_BOUND_S * 3
        )
        times["close->draft"] = time.monotonic() - closed_at
        # The count is the homeserver's: each sampled member's reaction before the close.
        close_ev = await chair.wait_for(lambda ev: ev.get("event_id") == close, room_id=room)
        live = await chair.gateway.reactions(room, ballot["event_id"])
        truth = _truth(live, int(close_ev["origin_server_ts"]))
        counts = draft["content"]["consensus_bot"]["counts"]
        assert {p: counts[p] for p in truth} == truth == {"support": SAMPLE - 2, "concern": 2}
        assert draft["content"]["consensus_bot"]["eligible"] == size
        rows = await _positions(tmp_path / "consensus.db")
        assert rows == {ev["sender"] for ev in live if ev["content"]["m.relates_to"]["key"] in KEYS}

        confirmed_at = time.monotonic()
        await chair.say(room, "!cb confirm")
        await chair.wait_for(bot_message("outcome", 1), room_id=room, timeout=DECIDE_BOUND_S * 3)
        times["confirm->outcome"] = time.monotonic() - confirmed_at
        # The outcome reaches the main room, where every member is (both servers).
        await members[1].wait_for(bot_message("outcome", 1), room_id=main_room, timeout=120)
        times["total"] = time.monotonic() - began
        report = ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
        print(f"\nlarge group ({size} members, two servers, default limits): {report}")
        log.info("large group: %s", report)
        assert times["filed->all sampled read the ballot"] < READ_BOUND_S
        assert times["close->draft"] < DECIDE_BOUND_S
        assert times["confirm->outcome"] < DECIDE_BOUND_S
        assert "failed for good" not in bot.log_text()
    finally:
        bot.stop()
        for c in clients:
            await c.close()


def _truth(reactions: list[dict[str, Any]], before_ts: int) -> dict[str, int]:
    """Each sender's latest position reaction before `before_ts`, counted by position."""
    latest: dict[str, str] = {}
    for ev in sorted(reactions, key=lambda e: int(e["origin_server_ts"])):
        key = ev["content"]["m.relates_to"]["key"]
        if key in KEYS and int(ev["origin_server_ts"]) < before_ts:
            latest[ev["sender"]] = KEYS[key]
    counts = dict.fromkeys(KEYS.values(), 0)
    for position in latest.values():
        counts[position] += 1
    return counts


async def _positions(db_path: Path) -> set[str]:
    """Who has a position row in the bot's database for request 1."""
    import sqlite3

    with sqlite3.connect(db_path, timeout=30) as db:
        return {r[0] for r in db.execute("SELECT member FROM position_inputs WHERE request_id = 1")}
