"""Which room hears what, against a real Synapse (issue 21, third round): a room an outsider
made hears no request's details, and a flood of direct-chat invites leaves the bot in at
most its cap of rooms. Outsiders and members are real nio clients; the bot runs as in
production.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.sim_member import SimMember
from bot.devtools.synapse import LocalSynapse
from tests.integration.harness import Group, query, running_group
from tests.integration.test_attacks import from_bot, outsider
from tests.integration.test_process import command, open_request, reply_to

pytestmark = pytest.mark.real

SECRET = "Secret worry about the applicant's registry."
CAP = 4


@pytest.fixture
async def group(
    synapse: LocalSynapse, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Group]:
    # One bot account per test: the homeserver outlives each test's group.
    tag = "rooms-" + request.node.name.removeprefix("test_").split("_")[0]
    async with running_group(
        synapse, tmp_path, tag, group_extra=f"dm_rooms_per_server = {CAP}"
    ) as g:
        yield g


def _bodies(group: Group, client: SimMember, room: str) -> list[str]:
    """The bodies of the bot's messages (not its reactions) that `client` saw in `room`."""
    return [
        str(e.get("content", {}).get("body", ""))
        for e in from_bot(group, client, room)
        if e.get("type") == "m.room.message"
    ]


async def _bot_joined(group: Group) -> set[str]:
    """The rooms the bot has joined, as the homeserver says."""

    def get() -> Any:
        req = urllib.request.Request(
            f"{group.synapse.base_url}/_matrix/client/v3/joined_rooms",
            headers={"Authorization": f"Bearer {group.bot_user.access_token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    return set((await asyncio.to_thread(get))["joined_rooms"])


async def _settled(group: Group, inviter: SimMember, rooms: list[str]) -> None:
    """Wait until the bot answered every invite (joined, or left/refused)."""
    bot = group.bot_user.user_id
    for _ in range(120):
        pending = []
        for room in rooms:
            member = await inviter.gateway.state_event(room, "m.room.member", bot)
            if member is not None and member.get("membership") == "invite":
                pending.append(room)
        if not pending:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the bot left {len(pending)} invites unanswered")


async def test_foreign_room_hears_no_details(group: Group, synapse: LocalSynapse) -> None:
    alice = group.members["alice"]
    room, _ballot = await open_request(group, "--deadline 1h")
    await command(alice, room, f"!cb object {SECRET}")
    # Mallory makes a room, invites the bot as a direct chat (accepted: self_apply is on),
    # then invites Alice; Alice asks about the request there.
    mallory = await outsider(synapse, group, "mallory")
    evil = await mallory.open_dm(group.bot_user.user_id)
    await _settled(group, mallory, [evil])
    await mallory.gateway.invite(evil, alice.user_id)
    await alice.wait_invite(lambda r: r == evil)
    await alice.join(evil)
    for text in ("!cb status 1", "!cb mine 1", "!cb objections 1", "!cb export 1"):
        await command(alice, evil, text)
    await command(alice, evil, "!cb mine", ok=False)  # which request? (said by DM)
    # Mallory's own command is answered in her own direct chat: a refusal, nothing more.
    probe = await command(mallory, evil, "!cb status 1", ok=False)
    # Alice's answers reach her own direct chat, which the bot opens.
    own = await alice.wait_invite(lambda r: r != evil)
    await alice.join(own)
    await alice.wait_for(
        lambda ev: SECRET in str(ev.get("content", {}).get("body", "")), room_id=own
    )
    await alice.wait_for(lambda ev: ev.get("content", {}).get("msgtype") == "m.file", room_id=own)
    # In the main room too, details go by DM.
    await command(alice, group.main_room, "!cb objections 1")
    await alice.wait_for(
        lambda ev: "objections" in str(ev.get("content", {}).get("consensus_bot", {})),
        room_id=own,
    )
    await asyncio.sleep(2)
    for client in (alice, mallory):
        await client.sync(0)
    # In Mallory's room the bot said nothing to Alice (reactions aside): only Mallory's own
    # refusal, and not a word of the request.
    said = [e for e in from_bot(group, mallory, evil) if e.get("type") == "m.room.message"]
    assert [reply_to(probe)(e) for e in said] == [True]
    assert "only members and chairs" in said[0]["content"]["body"]
    assert _bodies(group, alice, evil) == [said[0]["content"]["body"]]
    assert not any(SECRET in body for body in _bodies(group, alice, group.main_room))


async def test_invite_flood_leaves_the_bot_in_at_most_the_cap(
    group: Group, synapse: LocalSynapse
) -> None:
    # One outsider's thirty direct chats: the bot keeps the newest only.
    mallory = await outsider(synapse, group, "flood")
    flood = [await mallory.open_dm(group.bot_user.user_id) for _ in range(30)]
    await _settled(group, mallory, flood)
    joined = await _bot_joined(group)
    assert len(joined & set(flood)) <= 1
    rows = await query(group, "SELECT room_id FROM dm_rooms WHERE user_id = ?", (mallory.user_id,))
    assert len(rows) == 1
    # Many outsiders of one server (minted users): the bot stays in at most CAP chats with
    # that server's outsiders.
    sybils = [await outsider(synapse, group, f"sybil{n}") for n in range(CAP + 3)]
    rooms = [await s.open_dm(group.bot_user.user_id) for s in sybils]
    for sybil, room in zip(sybils, rooms, strict=True):
        await _settled(group, sybil, [room])
    joined = await _bot_joined(group)
    outsider_rooms = joined & {*flood, *rooms}
    assert len(outsider_rooms) <= CAP
    assert len(joined - {group.main_room}) <= CAP  # and nothing else was joined
    # A member's direct chat is still accepted.
    alice = group.members["alice"]
    own = await alice.open_dm(group.bot_user.user_id)
    await _settled(group, alice, [own])
    assert own in await _bot_joined(group)
