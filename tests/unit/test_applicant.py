"""The applicant's journey in the fast layer: a structured application completed step by
step, the principles affirmed, members' questions relayed and answered, the applicant's own
status, and `mine`."""

from __future__ import annotations

from tests.unit.test_engine import ALICE, BOB, CHAIR, ERIN, MAIN, MALLORY, World

DM_ERIN = "!dm-erin:x"
DM_MALLORY = "!dm-mallory:x"


async def text(w: World, event_id: str) -> str:
    return str((await w.reply_to(event_id))["body"])


async def test_an_application_is_completed_one_question_at_a_time(world: World) -> None:
    w = world
    await w.services.dms.remember(MALLORY, DM_MALLORY)
    first = w.command(MALLORY, "!cb apply I run a registry.", room=DM_MALLORY)
    await w.apply(first)
    assert "Next, which country are you in: !cb apply - --country" in await text(w, first.event_id)
    w.clock.advance(20_000)
    wrong = w.command(MALLORY, "!cb apply - --country Nepl", room=DM_MALLORY)
    await w.apply(wrong)
    assert "Did you mean Nepal" in await text(w, wrong.event_id)
    steps = [
        ("!cb apply - --country Nepal", "which stakeholder group"),
        ("!cb apply - --stakeholder technical-community", "your background"),
        ("!cb apply - --background 'APNIC member; RFC 9999 co-author'", "affirm"),
        ("!cb affirm 1", "It is complete"),
    ]
    for body, expected in steps:
        w.clock.advance(20_000)  # a person typing
        step = w.command(MALLORY, body, room=DM_MALLORY)
        await w.apply(step)
        assert expected in await text(w, step.event_id), body
    req = await w.request(1)
    assert (req.applicant.country, req.applicant.region) == ("NP", "asia-pacific")
    assert req.affirmed_at is not None
    # The card a chair opens shows the country with its development status.
    await w.apply(w.command(CHAIR, "!cb accept 1", room=MAIN))
    create = [i for i in await w.pending() if i.op == "create_room"]
    assert create


async def test_members_ask_and_the_applicant_answers(opened: World) -> None:
    w = opened  # request #1 for ERIN
    await w.services.dms.remember(ERIN, DM_ERIN)
    ask = w.command(ALICE, "!cb ask Which RIR region do you operate in?")
    await w.apply(ask)
    assert await w.acks(ask.event_id) == ["✅"]
    [relayed] = [
        i
        for i in await w.messages()
        if i.room_id == f"dm:{ERIN}" and i.payload["consensus_bot"].get("event") == "question"
    ]
    assert "Which RIR region" in relayed.payload["body"]
    assert ALICE not in relayed.payload["body"]  # the applicant does not learn who asked
    stranger = w.command(BOB, "!cb answer 1 I am not the applicant.", room="!dm-bob:x")
    await w.services.dms.remember(BOB, "!dm-bob:x")
    await w.apply(stranger)
    assert "no question 1" in await text(w, stranger.event_id)
    answer = w.command(ERIN, "!cb answer 1 AFRINIC, from Nairobi.", room=DM_ERIN)
    await w.apply(answer)
    assert await w.acks(answer.event_id) == ["✅"]
    [posted] = [
        i for i in await w.messages() if i.payload["consensus_bot"].get("event") == "answer"
    ]
    assert posted.room_id is None  # the request's room
    assert "AFRINIC, from Nairobi." in posted.payload["body"]


async def test_the_applicant_sees_the_stage_and_dates_never_positions(opened: World) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👎"))
    await w.services.dms.remember(ERIN, DM_ERIN)
    status = w.command(ERIN, "!cb status", room=DM_ERIN)
    await w.apply(status)
    body = await text(w, status.event_id)
    assert "in front of the members" in body
    assert "object" not in body
    assert ALICE not in body
    outsider = w.command(MALLORY, "!cb status 1", room="!x:x")
    await w.apply(outsider)
    assert "only members and chairs" in await text(w, outsider.event_id)


async def test_mine_tells_a_member_their_position_by_direct_message(opened: World) -> None:
    w = opened
    await w.apply(w.command(ALICE, "!cb concern The statement is vague."))
    mine = w.command(ALICE, "!cb mine")
    await w.apply(mine)
    [told] = [i for i in await w.messages() if i.room_id == f"dm:{ALICE}"]
    assert "concern" in told.payload["body"]
    assert "The statement is vague." in told.payload["body"]


async def test_a_members_incomplete_request_waits_and_is_completed_by_edit(world: World) -> None:
    w = world
    filed = w.command(ALICE, "!cb request @dana:x Dana studies routing security.", room=MAIN)
    await w.apply(filed)
    assert "it lacks country, stakeholder, background" in await text(w, filed.event_id)
    assert (await w.request(1)).state.value == "triage"
    assert not [i for i in await w.pending() if i.op == "create_room"]
    stranger = w.command(BOB, "!cb edit 1 --country Kenya", room=MAIN)
    await w.apply(stranger)
    assert "only a chair can edit" in await text(w, stranger.event_id)
    edit = w.command(
        ALICE,
        "!cb edit 1 --country Kenya --stakeholder academia --background 'AFRINIC fellow'",
        room=MAIN,
    )
    await w.apply(edit)
    assert "It is complete" in await text(w, edit.event_id)
    req = await w.request(1)
    assert (req.applicant.country, req.applicant.region) == ("KE", "africa")


async def test_a_chairs_edit_of_an_open_request_is_announced_and_recorded(
    opened: World,
) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👍"))
    edit = w.command(CHAIR, "!cb edit 1 --org 'Example Networks'")
    await w.apply(edit)
    assert await w.acks(edit.event_id) == ["✅"]
    [told] = [
        i
        for i in await w.messages()
        if i.payload["consensus_bot"].get("event") == "edited" and i.room_id is None
    ]
    assert "Example Networks" in told.payload["body"]
    assert told.payload["m.mentions"] == {"user_ids": [ALICE]}  # her position predates it
    from bot.services.export import export_record
    from storage.repo import Repository

    async with w.db.transaction() as tx:
        rec = await export_record(Repository(tx), 1, group_name="G", quorum=0.5)
    [edited] = [e for e in rec["entries"] if e["type"] == "edited"]
    assert edited["changes"] == {"org": "Example Networks"}
