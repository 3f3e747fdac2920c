"""Who can read the bot in an encrypted room follows who is in it, while the bot runs (issue 20).

Every person is an encrypting nio client with its own store. A member who joins the encrypted
main room, or is added to the roster and invited into a running ballot, reads the bot's very
next message there; a member who leaves cannot read the bot's next message even with its
ciphertext in hand (the bot rotated its Megolm session); a member's new device reads what the
bot sends after it appeared. None of it needs the bot to restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.sim_member import SimMember
from bot.devtools.synapse import LocalSynapse, RegisteredUser
from bot.matrix.crypto import Outcome
from tests.integration.harness import Group, running_group
from tests.integration.test_process import command, open_request

pytestmark = pytest.mark.real

Event = dict[str, Any]


def plain_reply_to(event_id: str, event_type: str = "m.room.message") -> Callable[[Event], bool]:
    """The bot's answer to `event_id`, decrypted: an `m.room.encrypted` event keeps its
    `m.relates_to` in clear, so the type is what shows it could be read."""

    def match(ev: Event) -> bool:
        relates = ev.get("content", {}).get("m.relates_to", {})
        return (
            ev.get("type") == event_type
            and relates.get("m.in_reply_to", {}).get("event_id") == event_id
        )

    return match


def encrypted_reply_to(event_id: str) -> Callable[[Event], bool]:
    """The same answer still encrypted (what a client that has no key for it keeps)."""
    return plain_reply_to(event_id, "m.room.encrypted")


@pytest.fixture
async def group(
    synapse: LocalSynapse, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Group]:
    # One set of users per test: a bot's cross-signing identity stays on the shared server.
    tag = {
        "test_joiner_reads_encrypted_main_room": "e2j1",
        "test_joiner_added_mid_ballot_reads_encrypted_request_room": "e2j2",
        "test_leaver_cannot_read_encrypted_next_message": "e2j3",
        "test_new_device_reads_encrypted_next_message": "e2j4",
    }[request.node.name]
    async with running_group(synapse, tmp_path, tag, encryption="required") as g:
        yield g


def encrypting_client(group: Group, user: RegisteredUser, name: str) -> SimMember:
    """An encrypting client for one device of `user`, with a store of its own."""
    member = SimMember(
        group.synapse.base_url,
        user.user_id,
        user.access_token,
        user.device_id,
        crypto_store=group.workdir / "people" / f"{name}-{user.device_id}",
    )
    group.clients.append(member)
    return member


def newcomer(group: Group, name: str) -> SimMember:
    """A new encrypting client for a user registered now (`name` under the group's tag)."""
    tag = group.bot_user.localpart.removesuffix("-bot")
    user = group.synapse.register(f"{tag}-{name}")
    group.synapse.exempt_from_rate_limits(user.user_id)
    return encrypting_client(group, user, name)


async def test_joiner_reads_encrypted_main_room(group: Group) -> None:
    alice = group.members["alice"]
    # The bot has spoken in the main room: an outbound session exists, shared with the
    # members it knew then.
    asked = await alice.say(group.main_room, "!cb help")
    await alice.wait_for(plain_reply_to(asked), room_id=group.main_room)

    frank = newcomer(group, "frank")
    await frank.connect()
    await group.chair.gateway.invite(group.main_room, frank.user_id)
    await frank.wait_invite(lambda r: r == group.main_room)
    await frank.join(group.main_room)

    # The very next message of the bot, answering someone else, is readable to the joiner
    # (who has not spoken, so a lazy-loaded member list would not even know them) and to
    # the members who were there all along.
    again = await alice.say(group.main_room, "!cb help status")
    await frank.wait_for(plain_reply_to(again), room_id=group.main_room)
    await alice.wait_for(plain_reply_to(again), room_id=group.main_room)
    # The joiner's own question too.
    question = await frank.say(group.main_room, "!cb help")
    answer = await frank.wait_for(plain_reply_to(question), room_id=group.main_room)
    assert answer["content"]["body"]


async def test_joiner_added_mid_ballot_reads_encrypted_request_room(group: Group) -> None:
    room, _ = await open_request(group)
    frank = newcomer(group, "frank")
    await frank.connect()
    await command(
        group.chair,
        group.main_room,
        f"!cb member add {frank.user_id} --stakeholder academia --region africa",
    )
    # Added to the roster while the ballot runs: the bot invites them into the ballot's room
    # and into the main room.
    await frank.wait_invite(lambda r: r == room, timeout=60)
    await frank.join(room)
    await frank.wait_invite(lambda r: r == group.main_room, timeout=60)
    await frank.join(group.main_room)

    # The bot's very next message in each room is readable to the new member.
    asked = await group.chair.say(room, "!cb status")
    await frank.wait_for(plain_reply_to(asked), room_id=room)
    asked_main = await group.chair.say(group.main_room, "!cb list")
    await frank.wait_for(plain_reply_to(asked_main), room_id=group.main_room)
    # The new member takes part: their own command in the ballot's room is answered readably.
    mine = await frank.say(room, "!cb support 1")
    await frank.wait_for(plain_reply_to(mine), room_id=room, timeout=30)


async def _cannot_read(outsider: SimMember, reader: SimMember, room: str, asked: str) -> None:
    """`reader` reads the bot's answer to `asked`; `outsider`, with every key the bot ever
    sent them in their store and the ciphertext in hand, cannot."""
    await reader.wait_for(plain_reply_to(asked), room_id=room)
    page = await reader.gateway.raw(
        "GET", f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100"
    )
    ciphertext = next(e for e in page["chunk"] if encrypted_reply_to(asked)(e))
    crypto = outsider.gateway.crypto
    assert crypto is not None
    await outsider.sync(0)
    result = crypto.decrypt(room, ciphertext)
    assert result.outcome is not Outcome.DECRYPTED, f"{outsider.user_id} read the next message"


async def test_leaver_cannot_read_encrypted_next_message(group: Group) -> None:
    room, _ = await open_request(group)
    carol, dave = group.members["carol"], group.members["dave"]
    # Both read the bot's messages while they were in the room...
    before = await group.chair.say(room, "!cb status")
    await dave.wait_for(plain_reply_to(before), room_id=room)
    await carol.wait_for(plain_reply_to(before), room_id=room)

    # ... then Dave leaves: the bot rotates its session, so its next answer is readable to
    # the members who stayed, not to him, even with the ciphertext in hand.
    await dave.gateway.leave(room)
    after_leave = await group.chair.say(room, "!cb status")
    await _cannot_read(dave, group.chair, room, after_leave)

    # Carol is removed from the roster: the bot takes her out of the undecided request's
    # room, and she cannot read what it says there next either.
    await command(group.chair, group.main_room, f"!cb member remove {carol.user_id}")
    for _ in range(60):
        members = await group.chair.gateway.raw(
            "GET", f"/_matrix/client/v3/rooms/{room}/members?not_membership=leave"
        )
        if carol.user_id not in {e["state_key"] for e in members["chunk"]}:
            break
        await group.chair.sync(500)
    else:
        raise AssertionError("a removed member stayed in the request room")
    after_remove = await group.chair.say(room, "!cb status")
    await _cannot_read(carol, group.chair, room, after_remove)
    # The control: what they were sent before they went stays readable to them.
    crypto = dave.gateway.crypto
    assert crypto is not None
    page = await group.chair.gateway.raw(
        "GET", f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100"
    )
    earlier = next(e for e in page["chunk"] if encrypted_reply_to(before)(e))
    assert crypto.decrypt(room, earlier).outcome is Outcome.DECRYPTED


async def test_new_device_reads_encrypted_next_message(group: Group) -> None:
    room, _ = await open_request(group)
    carol = group.members["carol"]
    first = await group.chair.say(room, "!cb status")
    await carol.wait_for(plain_reply_to(first), room_id=room)

    # Carol logs in on a new device (a second login of the same user).
    again = group.synapse.register(carol.user_id.split(":")[0].lstrip("@"))
    assert again.device_id != carol.gateway.device_id
    laptop = encrypting_client(group, again, "carol")
    await laptop.connect()

    asked = await group.chair.say(room, "!cb status")
    await laptop.wait_for(plain_reply_to(asked), room_id=room, timeout=30)
