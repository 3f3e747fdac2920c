"""Rough consensus you can defend, against a real Synapse: dispositions of substance, a
contest that reopens an objection, a draft that says most are in the rough, a confirm that
needs the chair's words, and an appeal that reopens the ballot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.devtools.sim_member import bot_message
from bot.devtools.synapse import LocalSynapse
from tests.integration.harness import Group, running_group
from tests.integration.test_process import command, open_request, reply_to

pytestmark = pytest.mark.real

WHY = "The charter welcomes registry operators; the track record is in the statement."


@pytest.fixture
async def group(synapse: LocalSynapse, tmp_path: Path) -> AsyncIterator[Group]:
    async with running_group(synapse, tmp_path, "rough") as g:
        yield g


async def test_a_rough_consensus_the_chair_must_defend(group: Group) -> None:
    chair, m = group.chair, group.members
    alice, bob, carol, dave = m["alice"], m["bob"], m["carol"], m["dave"]
    room, ballot = await open_request(group, "--deadline 1h")
    await alice.react(room, ballot["event_id"], "👍")
    numbers = {}
    for member, reason in (
        (bob, "No track record in Internet resources."),
        (carol, "The organisation has no security contact."),
        (dave, "Conflict of interest with a member."),
    ):
        sent = await command(member, room, f"!cb object {reason}")
        answer = await member.wait_for(reply_to(sent), room_id=room)
        numbers[member.user_id] = answer["content"]["consensus_bot"]["objections"][-1]["id"]

    # One word is not a disposition; a sentence is, and the objector hears of it.
    thin = await command(
        chair, room, f"!cb dispose {numbers[bob.user_id]} addressed considered", ok=False
    )
    refusal = await chair.wait_for(reply_to(thin), room_id=room)
    assert "rationale of substance" in refusal["content"]["body"]
    for oid in numbers.values():
        await command(chair, room, f"!cb dispose {oid} addressed {WHY}")

    # Bob contests before the decision: his objection is open again.
    contest = await command(
        bob, room, f"!cb contest {numbers[bob.user_id]} The record is not there."
    )
    reopened = await bob.wait_for(reply_to(contest), room_id=room)
    states = {o["id"]: o["state"] for o in reopened["content"]["consensus_bot"]["objections"]}
    assert states[numbers[bob.user_id]] == "open"
    await command(chair, room, f"!cb dispose {numbers[bob.user_id]} addressed {WHY} See the RIR.")

    # The draft marks that most are in the rough; a bare confirm is refused.
    await command(chair, room, "!cb close")
    draft = await chair.wait_for(bot_message("summary", 1), room_id=room)
    assert "Most participants are in the rough" in draft["content"]["body"]
    assert draft["content"]["consensus_bot"]["in_the_rough_count"] == 3
    bare = await command(chair, room, "!cb confirm", ok=False)
    why = await chair.wait_for(reply_to(bare), room_id=room)
    assert "rationale" in why["content"]["body"]
    await command(chair, room, f"!cb confirm {WHY}")
    outcome = await chair.wait_for(bot_message("outcome", 1), room_id=room)
    assert WHY in outcome["content"]["body"]
    assert "!cb appeal 1 REASON" in outcome["content"]["body"]

    # A member appeals; the chair upholds it; the ballot is open again.
    appeal = await command(carol, room, "!cb appeal 1 The security contact still does not exist.")
    lodged = await carol.wait_for(reply_to(appeal), room_id=room)
    appeal_id = lodged["content"]["consensus_bot"]["appeal"]
    await command(
        chair, room, f"!cb appeal-answer {appeal_id} upheld The contact must exist before we admit."
    )
    await chair.wait_for(
        lambda ev: "open again until" in str(ev.get("content", {}).get("body", "")),
        room_id=room,
    )
    status = await command(dave, room, "!cb status")
    answer = await dave.wait_for(reply_to(status), room_id=room)
    assert answer["content"]["consensus_bot"]["state"] == "open"
