"""The applicant's journey against a real Synapse: an outsider applies by direct message,
completing the application one question at a time; a chair accepts; a member asks a
question and the applicant's answer appears in the request room; the chair confirms; the
applicant receives the outcome with the rationale and how to appeal — and never anyone's
position."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.devtools.sim_member import bot_message
from bot.devtools.synapse import LocalSynapse
from tests.integration.harness import Group, dm_with_bot, running_group
from tests.integration.test_process import command, reply_to

pytestmark = pytest.mark.real


@pytest.fixture
async def group(synapse: LocalSynapse, tmp_path: Path) -> AsyncIterator[Group]:
    async with running_group(synapse, tmp_path, "journey") as g:
        yield g


async def test_the_applicants_journey(group: Group) -> None:
    chair, alice, bob = group.chair, group.members["alice"], group.members["bob"]
    erin = group.applicant
    dm = await dm_with_bot(erin, group)

    async def step(text: str, expect: str) -> None:
        sent = await command(erin, dm, text)
        answer = await erin.wait_for(reply_to(sent), room_id=dm)
        assert expect in answer["content"]["body"], answer["content"]["body"]

    await step("!cb apply I operate an exchange point in Nairobi.", "which country")
    await step("!cb apply - --country Kenya", "stakeholder group")
    await step("!cb apply - --stakeholder technical-community", "background")
    await step("!cb apply - --background 'AFRINIC member since 2012; KIXP operator'", "affirm")
    await step("!cb affirm 1", "It is complete")
    await alice.sync(0)
    assert not alice.invites  # nothing reached the members yet

    await command(chair, group.main_room, "!cb accept 1")
    room = await alice.wait_invite()
    for member in [chair, *group.members.values()]:
        await member.wait_invite(lambda r: r == room)
        await member.join(room)
    ballot = await alice.wait_for(
        lambda ev: ev.get("type") == "m.room.message" and bot_message("ballot", 1)(ev),
        room_id=room,
    )
    card = await alice.wait_for(bot_message("request_card", 1), room_id=room)
    assert "Kenya (KE)" in card["content"]["body"]
    assert "affirmed by the applicant" in card["content"]["body"]

    # A member asks; the applicant answers by direct message; the answer is posted.
    await command(alice, room, "!cb ask Which exchange points do you operate?")
    question = await erin.wait_for(bot_message("reply", 1, event="question"), room_id=dm)
    qid = question["content"]["consensus_bot"]["question"]
    assert alice.user_id not in question["content"]["body"]
    await command(erin, dm, f"!cb answer {qid} KIXP in Nairobi and Mombasa.")
    posted = await alice.wait_for(bot_message("reply", 1, event="answer"), room_id=room)
    assert "KIXP in Nairobi and Mombasa." in posted["content"]["body"]

    for member in (alice, bob):
        await member.react(room, ballot["event_id"], "👍")
    await command(group.members["carol"], room, "!cb no-objection")
    await asyncio.sleep(1.1)  # the test groups' process.min_deadline (1 s) must have passed
    await command(chair, room, "!cb close")
    await chair.wait_for(bot_message("summary", 1), room_id=room)
    await command(chair, room, "!cb confirm The applicant's exchange work is what we need.")

    told = await erin.wait_for(bot_message("outcome", 1), room_id=dm, timeout=30)
    body = told["content"]["body"]
    assert "the applicant is admitted" in body
    assert "exchange work is what we need" in body
    assert "!cb appeal 1 REASON" in body
    # At no point did the applicant receive anyone's position.
    await erin.sync(0)
    for event in erin.events.get(dm, []):
        if event.get("sender") != group.bot_user.user_id:
            continue
        content = event.get("content", {})
        assert "counts" not in content.get("consensus_bot", {})
        for member in group.members.values():
            assert member.user_id not in str(content.get("body", "")), content["body"]
