"""Restricted request rooms on a real homeserver (issue 25, item 1).

Members are not invited: they join the request's room from the announcement's link, being in
the main room (MSC3083 `restricted`), read the card and the ballot, and their positions count.
Someone registered on the server but not in the main room cannot join. In an encrypted group,
a member who joins by themselves reads the card and ballot posted before they joined (the bot
shares its room key with every member of the allow room) and the bot's next message.

The large groups across two federating homeservers under Synapse's default rate limits are
in tests/integration/test_large_federated.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from bot.devtools.sim_member import SimMember, bot_message, reaction_to
from bot.devtools.synapse import LocalSynapse, RegisteredUser
from bot.matrix.gateway import GatewayError
from tests.integration.harness import Group, query, running_group
from tests.integration.test_encryption_members import plain_reply_to
from tests.integration.test_process import command

pytestmark = pytest.mark.real

Event = dict[str, Any]
LINK = re.compile(r"https://matrix\.to/#/(?P<room>[^?\s]+)(?:\?via=(?P<via>\S+))?")


def announced(request: int) -> Callable[[Event], bool]:
    """The bot's announcement in the main room that the request's room is open."""
    return bot_message("reply", request, event="opened")


async def join_by_link(member: SimMember, main_room: str, request: int = 1) -> str:
    """What a member does: read the announcement in the main room, follow its link (join
    through the server it names). Returns the room ID."""
    note = await member.wait_for(announced(request), room_id=main_room, timeout=120)
    found = LINK.search(str(note["content"]["body"]))
    assert found, note["content"]["body"]
    room, via = found["room"], found["via"]
    query_part = f"?server_name={quote(via)}" if via else ""
    path = f"/_matrix/client/v3/join/{quote(room, safe='')}{query_part}"
    for attempt in range(60):
        try:
            await member.gateway.raw("POST", path, {})
            return room
        except GatewayError as exc:
            # Under default limits the room's server takes about one join a second after a
            # burst of ten (rc_joins_per_room); a remote join then fails with 502: a person
            # clicks again, so does this.
            if attempt == 59 or not (exc.transient or "make_join" in str(exc)):
                raise
            await asyncio.sleep((exc.retry_after_ms or 1_000) / 1000)
    return room


def readable(kind: str, request: int = 1) -> Callable[[Event], bool]:
    """A bot message of this kind, decrypted (a `m.room.message`)."""
    return lambda ev: ev.get("type") == "m.room.message" and bot_message(kind, request)(ev)


@pytest.fixture
async def group(
    synapse: LocalSynapse, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Group]:
    encrypted = "encrypt" in request.node.name
    tag = "lg2" if encrypted else "lg1"
    async with running_group(
        synapse,
        tmp_path,
        tag,
        request_rooms="restricted",
        encryption="required" if encrypted else "off",
    ) as g:
        yield g


async def _file(group: Group) -> None:
    await command(
        group.chair,
        group.main_room,
        f"!cb request {group.applicant.user_id} --stakeholder academia --region europe "
        "Erin maintains an open-source RPKI validator.",
    )


async def test_large_restricted_room_members_join_without_invite(group: Group) -> None:
    await _file(group)
    members = list(group.members.values())
    rooms = {await join_by_link(m, group.main_room) for m in members}
    assert len(rooms) == 1
    room = rooms.pop()
    assert all(room not in m.invites for m in members)  # nobody was invited
    ballot = await members[0].wait_for(readable("ballot"), room_id=room, timeout=60)
    for member in members:
        await member.wait_for(readable("request_card"), room_id=room, timeout=60)
        await member.wait_for(readable("ballot"), room_id=room, timeout=60)
    for member in members[:3]:
        await member.react(room, ballot["event_id"], "👍")
    # Someone on the same server, not in the main room, cannot get in.
    outsider = group.synapse.register("lg1-mallory")
    mallory = _client(group, outsider)
    await mallory.connect()
    with pytest.raises(GatewayError) as refused:
        await mallory.gateway.raw("POST", f"/_matrix/client/v3/join/{quote(room, safe='')}", {})
    assert refused.value.status == 403
    # The positions count: the bot's record equals what the homeserver holds.
    for _ in range(60):
        rows = await query(group, "SELECT member FROM position_inputs WHERE request_id = 1")
        if len({r["member"] for r in rows}) >= 3:
            break
        await members[0].sync(500)
    assert {r["member"] for r in rows} == {m.user_id for m in members[:3]}
    asked = await members[3].say(room, "!cb status")
    await members[3].wait_for(reaction_to(asked, "✅"), room_id=room, timeout=30)


def _client(group: Group, user: RegisteredUser, store: Path | None = None) -> SimMember:
    member = SimMember(
        group.synapse.base_url, user.user_id, user.access_token, user.device_id, crypto_store=store
    )
    group.clients.append(member)
    return member


async def test_large_encrypting_member_joins_restricted_room_and_reads(group: Group) -> None:
    await _file(group)
    alice, bob = group.members["alice"], group.members["bob"]
    room = await join_by_link(alice, group.main_room)
    # Posted before Alice joined, by herself: readable (the bot shared its room key with the
    # main room's members, who may all join), and so is the bot's next message.
    await alice.wait_for(readable("request_card"), room_id=room, timeout=60)
    await alice.wait_for(readable("ballot"), room_id=room, timeout=60)
    asked = await alice.say(room, "!cb status")
    answer = await alice.wait_for(plain_reply_to(asked), room_id=room, timeout=60)
    assert answer["content"]["body"]
    # A second member joins later: reads what came before and after, the bot's answer too.
    await join_by_link(bob, group.main_room)
    await bob.wait_for(readable("ballot"), room_id=room, timeout=60)
    raw = await bob.gateway.raw(
        "GET", f"/_matrix/client/v3/rooms/{quote(room, safe='')}/messages?dir=b&limit=50"
    )
    assert "m.room.encrypted" in {e["type"] for e in raw["chunk"]}  # what Bob read was sealed
    await command(bob, room, "!cb support 1")  # a position: acknowledged with ✅
    asked = await bob.say(room, "!cb status")
    await bob.wait_for(plain_reply_to(asked), room_id=room, timeout=60)
