"""The walking skeleton against a real Synapse: one request from filing to confirmed outcome.

The bot runs as in production (`python -m bot run --config …` in a subprocess); the chair,
the members and the applicant are real Matrix clients. The lifecycle runs once with SQLite
and once with PostgreSQL (a database on the session's throwaway cluster).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.devtools.sim_member import Event, bot_message, reaction_to
from bot.devtools.synapse import LocalSynapse
from tests.integration.harness import Group, make_group, query

pytestmark = pytest.mark.real


@pytest.fixture
async def group(
    synapse: LocalSynapse, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[Group]:
    dsn = request.getfixturevalue("pg_dsn") if backend == "postgresql" else None
    g = await make_group(synapse, tmp_path, f"ws{backend[:2]}", dsn=dsn)
    g.bot.start()
    await g.bot.wait_ready()
    try:
        yield g
    finally:
        await g.close()


def _is_joined(user_id: str):  # type: ignore[no-untyped-def]
    def match(ev: Event) -> bool:
        return (
            ev.get("type") == "m.room.member"
            and ev.get("state_key") == user_id
            and ev.get("content", {}).get("membership") == "join"
        )

    return match


def _reply_to(event_id: str):  # type: ignore[no-untyped-def]
    def match(ev: Event) -> bool:
        content = ev.get("content", {})
        return (
            content.get("consensus_bot", {}).get("kind") == "reply"
            and content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id
        )

    return match


async def test_request_from_filing_to_confirmed_outcome(group: Group) -> None:
    chair, m = group.chair, group.members
    alice, bob, carol, dave = m["alice"], m["bob"], m["carol"], m["dave"]
    await chair.wait_for(_is_joined(group.bot_user.user_id), room_id=group.main_room)

    # A malformed command gets its usage; an unknown one a suggestion.
    bad = await chair.say(group.main_room, "!cb request")
    answer = await chair.wait_for(_reply_to(bad), room_id=group.main_room)
    assert "Usage: !cb request" in answer["content"]["body"]
    await chair.wait_for(reaction_to(bad, "❌"), room_id=group.main_room)
    typo = await chair.say(group.main_room, "!cb suport")
    answer = await chair.wait_for(_reply_to(typo), room_id=group.main_room)
    assert "Did you mean !cb support" in answer["content"]["body"]

    # The chair files the request.
    filing = await chair.say(
        group.main_room,
        f"!cb request {group.applicant.user_id} --name 'Erin <b>Example</b>' --org 'Erin Org' "
        "--stakeholder academia --region europe --deadline 20s "
        "Erin works on routing security and wants to help.",
    )
    await chair.wait_for(reaction_to(filing, "✅"), room_id=group.main_room, timeout=15)

    # Every member is invited to the request's room and finds the card and the ballot.
    room = await alice.wait_invite()
    for member in m.values():
        assert await member.wait_invite(lambda r: r == room) == room
        await member.join(room)
    card = await alice.wait_for(bot_message("request_card", 1), room_id=room)
    assert "Erin &lt;b&gt;Example&lt;/b&gt;" in card["content"]["formatted_body"]
    assert "<b>Example</b>" not in card["content"]["formatted_body"]
    assert "Independence" in card["content"]["body"]
    assert card["content"]["msgtype"] == "m.notice"
    ballot = await alice.wait_for(bot_message("ballot", 1), room_id=room)
    ballot_id = ballot["event_id"]
    # No reactions are seeded: the live tally is pinned instead.
    await alice.wait_for(bot_message("tally", 1), room_id=room)

    # Positions: alice supports; bob objects, then changes his mind to no objection;
    # carol has a concern with a reason by command; dave stays silent.
    await alice.react(room, ballot_id, "👍🏽")  # a skin tone is the same position
    objection = await bob.react(room, ballot_id, "👎")
    await bob.wait_for(bot_message("reply", 1), room_id=room)  # asked for the reason
    await bob.redact(room, objection)
    await bob.react(room, ballot_id, "👌")
    concern = await carol.say(room, "!cb concern The statement is short on specifics.")
    await carol.wait_for(reaction_to(concern, "✅"), room_id=room)

    # The applicant is not a member: a reaction from outside the roster is not counted
    # (erin is not even in the room, so use the chair, who is not a member either).
    await chair.join(room)
    await chair.react(room, ballot_id, "👎")

    # A member cannot confirm: only a chair can.
    attempt = await dave.say(room, "!cb confirm")
    refusal = await dave.wait_for(_reply_to(attempt), room_id=room)
    assert "only a chair can confirm" in refusal["content"]["body"]

    # The deadline passes: the bot posts the draft sense of the room.
    summary = await chair.wait_for(bot_message("summary", 1), room_id=room, timeout=40)
    data = summary["content"]["consensus_bot"]
    assert data["counts"] == {
        "support": 1,
        "no-objection": 1,
        "concern": 1,
        "object": 0,
        "abstain": 0,
        "recuse": 0,
    }
    assert data["eligible"] == 4
    assert data["participated"] == 3
    assert data["open_objections"] == 0
    assert data["proposed_outcome"] == "rough-consensus-admit"
    assert data["did_not_take_part"] == [dave.user_id]
    assert summary["content"]["m.mentions"] == {"user_ids": [chair.user_id]}

    # The chair confirms; the outcome is announced in both rooms and the applicant admitted.
    confirm = await chair.say(room, "!cb confirm")
    await chair.wait_for(reaction_to(confirm, "✅"), room_id=room)
    outcome = await chair.wait_for(bot_message("outcome", 1), room_id=room)
    assert outcome["content"]["consensus_bot"]["outcome"] == "admit"
    assert outcome["content"]["consensus_bot"]["decided_by"] == chair.user_id
    await chair.wait_for(bot_message("outcome", 1, outcome="admit"), room_id=group.main_room)
    assert await group.applicant.wait_invite(lambda r: r == group.main_room) == group.main_room

    rows = await query(
        group,
        "SELECT stakeholder, region, active FROM members WHERE user_id = ?",
        (group.applicant.user_id,),
    )
    assert [tuple(r.values()) for r in rows] == [("academia", "europe", 1)]
    history = [
        tuple(r.values())
        for r in await query(
            group, "SELECT member, source, position FROM position_inputs ORDER BY id"
        )
    ]
    assert (bob.user_id, "reaction", "object") in history  # every change is kept
    assert (bob.user_id, "reaction", "no-objection") in history
    assert all(member != chair.user_id for member, _, _ in history)
