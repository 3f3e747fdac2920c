"""Hostile input through the whole engine: nothing crashes, nothing leaks, nobody sneaks in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.matrix.events import Invite
from bot.matrix.render import clean
from storage.repo import Repository
from tests.unit.test_engine import ALICE, CHAIR, MAIN, MALLORY, World, make_world

HOSTILE = (
    '<img src=x onerror="alert(1)"> [click](javascript:alert(1)) <script>x</script> '
    "\u202etxt.exe\u202c zero\u200bwidth \u061c \x85 & \"quoted\" 'single'"
)


async def test_a_huge_message_is_refused_politely_and_the_loop_goes_on(opened: World) -> None:
    huge = opened.command(ALICE, "!cb support " + "blah " * 20_000)  # 100 KB
    after = opened.reaction(ALICE, "👍")
    result = await opened.apply(huge, after)
    assert result.failed == 0
    assert await opened.acks(huge.event_id) == ["❌"]
    reply = await opened.reply_to(huge.event_id)
    assert "too long" in reply["body"].lower()
    assert len(reply["body"]) < 1_000  # the answer does not echo the flood
    assert (await opened.positions())[ALICE] is not None  # the next event still counts


async def test_hostile_text_never_reaches_html_unescaped(world: World) -> None:
    await world.open_request(statement=HOSTILE)
    for item in await world.messages():
        html = item.payload.get("formatted_body", "")
        assert "<script" not in html
        assert "<img" not in html
        assert 'href="javascript' not in html
        assert not re.search("[\u202e\u202c\u200b\u061c\x85]", html)
    card = (await world.messages("request_card"))[0].payload
    assert "&lt;script&gt;" in card["formatted_body"]
    assert "javascript:alert(1)" in card["body"]  # shown as text, never as a link


async def test_hostile_reasons_are_escaped_in_replies(opened: World) -> None:
    objection = opened.command(ALICE, f"!cb object {HOSTILE}")
    await opened.apply(objection)
    listing = opened.command(ALICE, "!cb objections")
    await opened.apply(listing)
    reply = await opened.reply_to(listing.event_id)
    assert "<script" not in reply["formatted_body"]
    assert "\u202e" not in reply["formatted_body"] + reply["body"]


async def test_commands_from_outside_the_roster_are_refused(opened: World) -> None:
    attempt = opened.command(MALLORY, "!cb support I am not a member")
    await opened.apply(attempt)
    assert await opened.acks(attempt.event_id) == ["❌"]
    assert "only members" in (await opened.reply_to(attempt.event_id))["body"]
    assert MALLORY not in await opened.positions()


@pytest.mark.parametrize(
    ("command", "what"),
    [
        ("!cb close", "close a ballot"),
        ("!cb decide admit Because.", "decide a request"),
        ("!cb dispose 1 addressed No.", "dispose of an objection"),
        ("!cb member add @mallory:x", "add members"),
    ],
)
async def test_chair_commands_from_members_are_refused(
    opened: World, command: str, what: str
) -> None:
    attempt = opened.command(ALICE, command)
    await opened.apply(attempt)
    assert await opened.acks(attempt.event_id) == ["❌"]
    assert f"only a chair can {what}" in (await opened.reply_to(attempt.event_id))["body"]


async def test_invites_are_accepted_only_from_those_allowed(tmp_path: Path) -> None:
    strict = await make_world(
        tmp_path / "db.sqlite", self_apply=False, allowed_inviters=frozenset({"@ops:x"})
    )
    try:
        accept = strict.services.invites.should_accept
        assert await accept(Invite("!any:x", CHAIR, is_direct=False))
        assert await accept(Invite("!any:x", "@ops:x", is_direct=False))
        assert await accept(Invite(MAIN, None, is_direct=False))  # the configured main room
        assert await accept(Invite("!dm:x", ALICE, is_direct=True))  # a member's DM
        assert not await accept(Invite("!any:x", ALICE, is_direct=False))
        assert not await accept(Invite("!dm:x", MALLORY, is_direct=True))  # no self-apply
        assert not await accept(Invite("!spam:x", MALLORY, is_direct=False))
        assert not await accept(Invite("!x:x", None, is_direct=True))
    finally:
        await strict.db.close()


def test_clean_caps_length() -> None:
    assert len(clean("x" * 10_000, 100)) == 100


async def test_encrypted_messages_get_one_plain_answer_and_an_unencrypted_chat(
    opened: World,
) -> None:
    from bot.matrix.events import EncryptedMessage

    room = "!encrypted-dm:x"
    async with opened.db.transaction() as tx:
        await Repository(tx).set_dm_room(ALICE, room, 1)
    first = EncryptedMessage(room, "$enc1", ALICE, 1)
    second = EncryptedMessage(room, "$enc2", ALICE, 2)
    await opened.apply(first)
    await opened.apply(second)
    notices = [m for m in await opened.messages("reply") if m.room_id == room]
    assert len(notices) == 1
    assert "cannot read encrypted messages" in notices[0].payload["body"]
    welcome = [m for m in await opened.messages("reply") if m.room_id == f"dm:{ALICE}"]
    assert len(welcome) == 1
    async with opened.db.transaction() as tx:
        assert await Repository(tx).dm_room(ALICE) is None  # a new, readable chat is made


async def test_a_group_room_is_not_a_direct_chat(opened: World) -> None:
    """A hum sent in a room others can read would not be private: it must be refused."""
    group_room = "!group:x"  # a room a chair invited the bot into
    hum = opened.command(ALICE, "!cb hum for --request 1", room=group_room)
    status = opened.command(ALICE, "!cb status 1", room=group_room)
    await opened.apply(hum, status)
    assert await opened.acks(hum.event_id) == ["❌"]
    assert "direct message" in (await opened.reply_to(hum.event_id))["body"]
    assert await opened.acks(status.event_id) == ["✅"]  # commands that work anywhere do
    assert await opened.scalar("SELECT count(*) FROM hums") == 0
