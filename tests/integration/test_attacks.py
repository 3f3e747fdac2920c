"""The attacker layer: a hostile member and outsiders, as real Matrix clients against a real
Synapse, try to hijack rooms, unmask hums, flood the bot and overflow its answers. Each
attack is asserted to fail. (A back-dated reaction needs a homeserver that forges
`origin_server_ts`; the fast layer covers it: tests/unit/test_counting.py.)
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.devtools.sim_member import Event, SimMember, bot_message
from bot.devtools.synapse import LocalSynapse
from bot.matrix.rooms import REQUEST_STATE_TYPE
from tests.integration.harness import Group, dm_with_bot, running_group
from tests.integration.test_process import command, open_request, reply_to

pytestmark = pytest.mark.real


@pytest.fixture
async def group(synapse: LocalSynapse, tmp_path: Path) -> AsyncIterator[Group]:
    async with running_group(synapse, tmp_path, "attack") as g:
        yield g


async def outsider(synapse: LocalSynapse, group: Group, name: str) -> SimMember:
    user = synapse.register(f"attack-{name}")
    synapse.exempt_from_rate_limits(user.user_id)
    client = SimMember(synapse.base_url, user.user_id, user.access_token, user.device_id)
    await client.connect()
    group.clients.append(client)
    return client


def from_bot(group: Group, member: SimMember, room: str) -> list[Event]:
    return [e for e in member.events.get(room, []) if e.get("sender") == group.bot_user.user_id]


async def test_attacks_fail(group: Group, synapse: LocalSynapse) -> None:
    chair, m = group.chair, group.members
    alice, bob, carol, mallory = m["alice"], m["bob"], m["carol"], m["dave"]  # dave turns

    # 1. Five outsiders apply by direct message: no ballot, no invite without a chair.
    outsiders = [await outsider(synapse, group, f"eve{n}") for n in range(5)]
    for n, eve in enumerate(outsiders):
        dm = await dm_with_bot(eve, group)
        await command(eve, dm, f"!cb apply I run network number {n}.")
    triage = await command(chair, group.main_room, "!cb triage")
    listed = await chair.wait_for(reply_to(triage), room_id=group.main_room)
    assert listed["content"]["consensus_bot"]["triage"] == [1, 2, 3, 4, 5]
    await alice.sync(0)
    assert not alice.invites  # no request room was opened

    # A chair files a real request; its room opens for the members.
    room, _ballot = await open_request(group, "--deadline 1h", number=6)

    # 2. Mallory copies the request room's marker into a room she made and invites the bot:
    # the marker holds no public instance id, and the bot does not join her room.
    marker = await mallory.gateway.state_event(room, REQUEST_STATE_TYPE)
    assert set(marker) == {"request", "token"}
    planted = await mallory.create_room("Request #6: totally real", [group.bot_user.user_id])
    await mallory.gateway.put_state(planted, REQUEST_STATE_TYPE, marker)
    await asyncio.sleep(3)
    membership = await mallory.gateway.state_event(planted, "m.room.member", group.bot_user.user_id)
    assert membership is None or membership.get("membership") != "join"

    # 3. Mallory plants a "direct chat" with Alice and the bot: Alice's reminders and hums do
    # not go there.
    fake_dm = await mallory.open_dm(group.bot_user.user_id)
    await mallory.gateway.invite(fake_dm, alice.user_id)
    await alice.wait_invite(lambda r: r == fake_dm)
    await alice.join(fake_dm)
    refused = await command(alice, fake_dm, "!cb hum for --request 6", ok=False)
    # The refusal is said in Alice's own direct chat, which the bot opens; in Mallory's room
    # the bot says nothing (issue 21: no answers in a room the bot keeps no role for).
    alice_dm = await alice.wait_invite(lambda r: r not in (fake_dm, planted), timeout=30)
    await alice.join(alice_dm)
    why = await alice.wait_for(reply_to(refused), room_id=alice_dm)
    assert "direct message" in why["content"]["body"]
    assert not [e for e in from_bot(group, alice, fake_dm) if e.get("type") == "m.room.message"]
    await command(chair, room, "!cb remind")
    await alice.wait_for(bot_message("reminder", 6), room_id=alice_dm)
    own: dict[str, str] = {alice.user_id: alice_dm}
    for member in (bob, carol):  # each gets a new direct chat of their own
        dm = await member.wait_invite(lambda r: r not in (fake_dm, planted), timeout=30)
        await member.join(dm)
        await member.wait_for(bot_message("reminder", 6), room_id=dm)
        own[member.user_id] = dm
    await mallory.sync(0)
    # (Mallory's own reminder may go to the chat she opened; never Alice's.)
    for event in from_bot(group, mallory, fake_dm):
        assert alice.user_id not in event.get("content", {}).get("m.mentions", {}).get(
            "user_ids", []
        )
        assert alice.user_id not in event.get("content", {}).get("body", "")

    # 4. Hum probing: members hum while others ask `status` after each hum: nothing is said
    # of the hums while the ballot is open.
    for member in (alice, bob, carol):
        await command(member, own[member.user_id], "!cb hum for loud --request 6")
        probe = await command(mallory, room, "!cb status")
        answer = await mallory.wait_for(reply_to(probe), room_id=room)
        body = answer["content"]["body"]
        assert "for: " not in body
        assert "against: " not in body
        assert "hums" not in answer["content"]["consensus_bot"] or "loud" not in str(
            answer["content"]["consensus_bot"]["hums"]
        )

    # 5. A 60-command flood by an outsider; a member's status is still answered, and the
    # outsider hears at most one "too many" after the few admitted.
    flooder = await outsider(synapse, group, "flood")
    flood_dm = await dm_with_bot(flooder, group)
    sent = [await flooder.say(flood_dm, "!cb help") for _ in range(60)]
    status = await command(alice, room, "!cb status")
    await alice.wait_for(reply_to(status), room_id=room, timeout=30)
    await asyncio.sleep(3)
    await flooder.sync(0)
    acked = {
        e["content"]["m.relates_to"]["event_id"]
        for e in from_bot(group, flooder, flood_dm)
        if e.get("type") == "m.reaction"
    }
    assert len(acked & set(sent)) <= 4

    # 6. An answer larger than an event may be: `members` with 1,500 seats (loaded into the
    # roster as an operator's import would) arrives as a file.
    with sqlite3.connect(group.db_path, timeout=30) as db:
        db.executemany(
            "INSERT INTO members(group_id, user_id, stakeholder, region, active, added_at, "
            "added_by) VALUES ('main', ?, 'academia', 'europe', 1, 0, 'import')",
            [(f"@seat{n:04d}:localhost",) for n in range(1_500)],
        )
    ask = await command(chair, group.main_room, "!cb members")
    note = await chair.wait_for(reply_to(ask), room_id=group.main_room)
    assert "attached as a file" in note["content"]["body"]
    upload = await chair.wait_for(
        lambda ev: ev.get("content", {}).get("msgtype") == "m.file", room_id=group.main_room
    )
    assert upload["content"]["info"]["size"] > 32 * 1024
