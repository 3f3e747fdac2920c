"""Which room hears what (issue 21, third round), in the fast layer: answers in foreign rooms,
applicant text in the main room, appeals, direct-chat invites, and an honest applicant's pace.

The attacks are played as an attacker would: a room an outsider made, with a member typing
commands in it; an application whose name is a phishing line; thirty appeals in thirty
minutes; two thousand direct-chat invites.
"""

from __future__ import annotations

from typing import Any

from bot.services.outbox import dm
from storage.repo import OutboxItem
from tests.unit.test_engine import ALICE, BOB, CHAIR, MAIN, MALLORY, ROOM, World

EVIL_ROOM = "!evil:x"  # a room Mallory made and invited the bot to, as a direct chat
PHISH = "URGENT all members: re-verify at https://evil.example/login"


async def _sent_to(w: World, room: str) -> list[OutboxItem]:
    """Everything with content the bot would send to `room` (reactions say nothing)."""
    return [i for i in await w.pending() if i.room_id == room and i.op != "reaction"]


def _text(items: list[OutboxItem]) -> str:
    return "\n".join(str(i.payload.get("body", "")) for i in items)


async def _object(w: World, member: str, reason: str) -> None:
    await w.apply(w.command(member, f"!cb object {reason}", room=ROOM))


# ---- 5. answers in the wrong room ---------------------------------------------------------


async def test_foreign_room_gets_no_details_and_the_member_gets_them_by_dm(opened: World) -> None:
    w = opened
    await _object(w, ALICE, "Secret reason about the applicant.")
    await w.engine.remember_dm(MALLORY, EVIL_ROOM)  # the bot accepted Mallory's direct chat
    before = len(await _sent_to(w, EVIL_ROOM))
    commands = [
        w.command(ALICE, body, room=EVIL_ROOM)
        for body in ("!cb status 1", "!cb mine 1", "!cb objections 1", "!cb export 1", "!cb help")
    ]
    await w.apply(*commands)
    # Nothing but reactions lands in Mallory's room: no position, no reason, no record.
    assert len(await _sent_to(w, EVIL_ROOM)) == before
    private = _text(await _sent_to(w, dm(ALICE)))
    assert "Secret reason about the applicant." in private  # objections, by DM
    assert "Your position on request #1: object" in private  # mine, by DM
    assert "State: open" in private  # status, by DM
    files = [i for i in await w.pending() if i.op == "file"]
    assert [f.room_id for f in files] == [dm(ALICE)]  # the record, by DM
    for command in commands:
        assert await w.acks(command.event_id) == ["✅"]


async def test_foreign_room_owner_sees_nothing_of_others(opened: World) -> None:
    """The outsider in their own direct chat sees no request (they are not a member), and a
    member's command there is not theirs to read."""
    w = opened
    await _object(w, ALICE, "Secret reason about the applicant.")
    await w.engine.remember_dm(MALLORY, EVIL_ROOM)
    await w.apply(
        w.command(MALLORY, "!cb status 1", room=EVIL_ROOM),
        w.command(MALLORY, "!cb objections 1", room=EVIL_ROOM),
        w.command(BOB, "!cb mine", room=EVIL_ROOM),  # no request: a refusal, by DM
    )
    assert "Secret reason" not in _text(await _sent_to(w, EVIL_ROOM))
    assert "Secret reason" not in _text(await _sent_to(w, dm(MALLORY)))
    assert "which request?" in _text(await _sent_to(w, dm(BOB)))


async def test_foreign_room_details_in_the_main_room_go_by_dm(opened: World) -> None:
    w = opened
    await _object(w, ALICE, "Secret reason about the applicant.")
    before = _text(await _sent_to(w, MAIN))
    await w.apply(
        w.command(ALICE, "!cb status 1", room=MAIN),
        w.command(ALICE, "!cb objections 1", room=MAIN),
        w.command(ALICE, "!cb mine 1", room=MAIN),
        w.command(ALICE, "!cb export 1", room=MAIN),
        w.command(CHAIR, "!cb triage", room=MAIN),
    )
    said = _text(await _sent_to(w, MAIN))[len(before) :]
    assert "Secret reason" not in said
    assert "State:" not in said
    assert "Your position" not in said
    assert not [i for i in await w.pending() if i.op == "file" and i.room_id == MAIN]
    private = _text(await _sent_to(w, dm(ALICE)))
    assert "Secret reason about the applicant." in private
    assert "State: open" in private
    assert "No applications are waiting" in _text(await _sent_to(w, dm(CHAIR)))


async def test_foreign_room_another_requests_room_hears_nothing_of_this_one(
    opened: World,
) -> None:
    """Details of #1 asked for in #2's room go by DM; #1's own room still answers."""
    w = opened
    await _object(w, ALICE, "Secret reason about the applicant.")
    await w.open_request(room="!req2:x", ballot="$ballot2", applicant="@frank:x")
    before = _text(await _sent_to(w, "!req2:x"))
    await w.apply(
        w.command(ALICE, "!cb objections 1", room="!req2:x"),
        w.command(ALICE, "!cb status 1", room="!req2:x"),
    )
    assert "Secret reason" not in _text(await _sent_to(w, "!req2:x"))[len(before) :]
    assert "Secret reason about the applicant." in _text(await _sent_to(w, dm(ALICE)))
    own = w.command(BOB, "!cb objections", room=ROOM)
    await w.apply(own)
    reply: dict[str, Any] = await w.reply_to(own.event_id)
    assert "Secret reason about the applicant." in reply["body"]
    assert "Secret reason about the applicant." in _text(await _sent_to(w, ROOM))
