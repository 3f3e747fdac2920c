"""Which room hears what (issue 21, third round), in the fast layer: answers in foreign rooms,
applicant text in the main room, appeals, direct-chat invites, and an honest applicant's pace.

The attacks are played as an attacker would: a room an outsider made, with a member typing
commands in it; an application whose name is a phishing line; thirty appeals in thirty
minutes; two thousand direct-chat invites.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.ratelimit import APPLICANT_TIER, HUMAN_PACE_MS, RateLimiter, Verdict
from bot.matrix.events import Invite
from bot.services.outbox import dm
from commands.help import render_command_help
from commands.table import find_command
from storage.repo import OutboxItem, Repository
from tests.unit.test_engine import (
    ALICE,
    BOB,
    CHAIR,
    DAY,
    ERIN,
    MAIN,
    MALLORY,
    ROOM,
    T0,
    World,
    make_world,
    wire_syncer,
)

EVIL_ROOM = "!evil:x"  # a room Mallory made and invited the bot to, as a direct chat
PHISH = "URGENT all members: re-verify at https://evil.example/login"
WHY = "The charter answers this: registry operators are explicitly welcome."


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
    await w.services.dms.remember(MALLORY, EVIL_ROOM)  # the bot accepted Mallory's direct chat
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
    await w.services.dms.remember(MALLORY, EVIL_ROOM)
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
    assert "No applications are waiting" in said  # triage answers there, without names


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
    status = w.command(BOB, "!cb status", room=ROOM)
    await w.apply(own, status)
    assert "State: open" in (await w.reply_to(status.event_id))["body"]
    assert [i.room_id for i in await _sent_to(w, ROOM) if "State: open" in i.payload["body"]]
    reply: dict[str, Any] = await w.reply_to(own.event_id)
    assert "Secret reason about the applicant." in reply["body"]
    assert "Secret reason about the applicant." in _text(await _sent_to(w, ROOM))


def test_foreign_room_help_says_where_details_are_answered() -> None:
    for name in ("status", "mine", "objections", "export", "object"):
        spec = find_command(name)
        assert spec is not None
        assert "it comes by direct message" in render_command_help(spec, "!cb")
    members = find_command("members")
    assert members is not None
    assert "direct message" not in render_command_help(members, "!cb")


# ---- 6. outsider text in the main room; unlimited appeals ------------------------------------


async def test_appeal_limit_applicant_text_stays_out_of_the_main_room(world: World) -> None:
    """An application named as a phishing line: the main room (the chairs' notice, the
    digest, `list` and `triage` there) shows its number and MXID only."""
    w = world
    await w.services.dms.remember(MALLORY, EVIL_ROOM)
    await w.apply(
        w.command(MALLORY, f'!cb apply --name "{PHISH}" {PHISH} Click it now.', room=EVIL_ROOM)
    )
    await w.apply(
        w.command(CHAIR, "!cb digest", room=MAIN),
        w.command(ALICE, "!cb list", room=MAIN),
        w.command(CHAIR, "!cb triage", room=MAIN),
    )
    said = _text(await _sent_to(w, MAIN))
    assert "evil.example" not in said
    assert "URGENT" not in said
    assert f"Request #1 from {MALLORY}" in said
    # The chair reads the application itself in their direct chat.
    listing = w.command(CHAIR, "!cb triage", room=f"!dm-{CHAIR}")
    await w.services.dms.remember(CHAIR, f"!dm-{CHAIR}")
    await w.apply(listing)
    assert PHISH in (await w.reply_to(listing.event_id))["body"]
    # Rejected at triage: the main room hears the number and the MXID, not the name.
    await w.apply(w.command(CHAIR, "!cb reject 1 We admit people with a background.", room=MAIN))
    assert "evil.example" not in _text(await _sent_to(w, MAIN))


async def test_appeal_limit_one_open_appeal_per_person_and_decision(opened: World) -> None:
    w = opened
    await w.apply(w.command(CHAIR, f"!cb decide decline {WHY}"))
    appeals = [w.command(ERIN, f"!cb appeal 1 {PHISH} attempt {n}", room="!e:x") for n in range(30)]
    for appeal in appeals:
        w.clock.advance(60_000)  # thirty in thirty minutes
        await w.apply(appeal)
    assert await w.scalar("SELECT count(*) FROM appeals") == 1
    refusal = (await w.reply_to(appeals[1].event_id))["body"]
    assert "your appeal #1 of this decision is still open" in refusal
    chair_notes = [i for i in await _sent_to(w, dm(CHAIR)) if "Appeal #" in i.payload["body"]]
    assert len(chair_notes) == 1
    # Another person may appeal the same decision; the digest says an appeal is open, not
    # what it says.
    await w.apply(w.command(ALICE, "!cb appeal 1 The region was not heard.", room=MAIN))
    assert await w.scalar("SELECT count(*) FROM appeals") == 2
    await w.apply(w.command(CHAIR, "!cb digest", room=MAIN))
    [digest] = await w.messages("digest")
    assert "appeal #1 of request #1 by @erin:x" in digest.payload["body"]
    assert "evil.example" not in digest.payload["body"]
    assert "region was not heard" not in digest.payload["body"]
    # Once a chair answered, the same person may appeal that decision again.
    await w.apply(w.command(CHAIR, f"!cb appeal-answer 1 denied {WHY}", room=MAIN))
    again = w.command(ERIN, "!cb appeal 1 New facts.", room="!e:x")
    await w.apply(again)
    assert await w.acks(again.event_id) == ["✅"]


# ---- 7. unbounded direct-chat invites -------------------------------------------------------


class InviteGateway:
    """Just what accepting and leaving invites needs: joins and leaves are recorded."""

    crypto = None

    def __init__(self) -> None:
        self.joined: set[str] = set()

    async def join(self, room: str) -> str:
        self.joined.add(room)
        return room

    async def leave(self, room_id: str) -> None:
        self.joined.discard(room_id)


async def _invite(w: World, gateway: InviteGateway, *invites: Invite) -> set[str]:
    syncer = wire_syncer(w, gateway)
    for invite in invites:
        syncer._pending_invites[invite.room_id] = invite
    await syncer._handle_invites()
    return gateway.joined


async def test_invite_flood_one_direct_chat_per_outsider(world: World) -> None:
    gateway = InviteGateway()
    flood = [Invite(f"!m{n}:x", MALLORY, True) for n in range(2_000)]
    joined = await _invite(world, gateway, *flood)
    # Each new one replaced the one before: the bot stays in Mallory's newest chat only.
    assert joined == {"!m1999:x"}
    assert await world.scalar("SELECT count(*) FROM dm_rooms") == 1
    # A member keeps every chat they open with the bot.
    await _invite(world, gateway, Invite("!a1:x", ALICE, True), Invite("!a2:x", ALICE, True))
    assert {"!a1:x", "!a2:x"} <= joined


async def test_invite_flood_per_server_cap(tmp_path: Path) -> None:
    w = await make_world(tmp_path / "bot.db", dm_rooms_per_server=5)
    try:
        gateway = InviteGateway()
        sybils = [Invite(f"!s{n}:evil", f"@sybil{n}:evil.example", True) for n in range(50)]
        joined = await _invite(w, gateway, *sybils)
        assert len(joined) == 5  # the rest are refused
        # Another server's outsider, and a member of the evil server, still get in.
        member_of_evil = "@honest:evil.example"
        async with w.db.transaction() as tx:
            await Repository(tx).seed_member("main", member_of_evil, "academia", "europe", T0)
        await _invite(
            w,
            gateway,
            Invite("!other:x", "@newcomer:elsewhere.example", True),
            Invite("!honest:x", member_of_evil, True),
        )
        assert {"!other:x", "!honest:x"} <= joined
        assert len(joined) == 7
    finally:
        await w.db.close()


async def test_invite_flood_unused_direct_chats_are_pruned(world: World) -> None:
    w = world
    gateway = InviteGateway()
    await _invite(
        w,
        gateway,
        Invite("!idle:x", "@idle:y", True),
        Invite("!busy:x", "@busy:y", True),
        Invite("!applicant:x", MALLORY, True),
        Invite("!alice:x", ALICE, True),
        Invite("!recent:x", "@recent:y", True),
    )
    await w.apply(w.command(MALLORY, "!cb apply I run a registry.", room="!applicant:x"))
    await w.apply(w.command("@idle:y", "!cb apply I run an IXP.", room="!idle:x"))
    await w.apply(w.command(CHAIR, "!cb reject 2 Out of scope.", room=MAIN))
    await w.apply(w.command("@recent:y", "!cb apply I run a CDN.", room="!recent:x"))
    w.clock.advance(31 * DAY)
    await w.apply(w.command("@busy:y", "!cb help", room="!busy:x"))
    # Turned down only now: they may appeal, and hear the answer in that chat.
    await w.apply(w.command(CHAIR, "!cb reject 3 Out of scope.", room=MAIN))
    w.clock.advance(DAY)
    # The hourly look (here: a new syncer's first) leaves the chat nobody used (its user's
    # application was turned down a month ago); the recently used one, the applicant's
    # (undecided), the one of an applicant turned down recently and the member's stay.
    joined = await _invite(w, gateway)
    assert joined == {"!busy:x", "!applicant:x", "!alice:x", "!recent:x"}
    async with w.db.transaction() as tx:
        assert await Repository(tx).dm_room("@idle:y") is None


# ---- limits that do not punish honest users ---------------------------------------------------


@given(st.lists(st.integers(HUMAN_PACE_MS, 10 * HUMAN_PACE_MS), max_size=200))
def test_honest_applicant_at_a_human_pace_is_never_refused(gaps: list[int]) -> None:
    limiter = RateLimiter()
    now = T0
    for gap in gaps:
        now += gap
        assert limiter.check("@new:x", APPLICANT_TIER, now).admitted


def test_honest_applicant_tier_still_stops_a_script() -> None:
    limiter = RateLimiter()
    verdicts = [limiter.check("@bot:x", APPLICANT_TIER, T0 + n * 100).verdict for n in range(40)]
    assert verdicts.count(Verdict.ADMIT) <= APPLICANT_TIER.burst + 2
    # 40 commands in 4 s: the burst and two refills; one "too many" after each, then silence.
    assert verdicts.count(Verdict.REFUSE) <= 3
    assert verdicts.count(Verdict.REFUSE_SILENTLY) >= 25


async def test_honest_applicant_answers_the_intake_questions_one_after_another(
    world: World,
) -> None:
    """A new user's whole intake, each step 2 s after the bot's answer (as fast as a person
    pastes the command the bot suggests), then eight members' questions answered one after
    another: never "Too many commands"."""
    w = world
    mine = "!dm-newcomer:x"
    newcomer = "@newcomer:elsewhere.example"
    await w.services.dms.remember(newcomer, mine)
    steps = [
        "!cb help",
        "!cb help apply",
        "!cb apply I run a regional registry.",
        "!cb apply - --country Kenya",
        "!cb apply - --stakeholder technical-community",
        "!cb apply - --background 'AFRINIC member since 2015; RFC 9234'",
        "!cb affirm 1",
        "!cb status",
        "!cb apply Amended: I run a regional registry and an IXP.",
        "!cb status 1",
    ]
    sent = []
    for body in steps:
        w.clock.advance(HUMAN_PACE_MS)
        command = w.command(newcomer, body, room=mine, ts=w.clock.now_ms())
        await w.apply(command)
        sent.append(command)
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        questions = [await repo.add_question(1, ALICE, f"Question {n}?", T0) for n in range(8)]
    for qid in questions:
        w.clock.advance(HUMAN_PACE_MS)
        body = f"!cb answer {qid} Yes, since 2015."
        command = w.command(newcomer, body, room=mine, ts=w.clock.now_ms())
        await w.apply(command)
        sent.append(command)
    for command in sent:
        for body in await _bodies_to(w, command.event_id):
            assert "Too many commands" not in body, (command.body, body)
        assert await w.acks(command.event_id) == ["✅"], command.body
    # The second `apply` amended the first: one application.
    assert await w.scalar("SELECT count(*) FROM requests") == 1
    assert "an IXP" in (await w.request(1)).statement


async def _bodies_to(w: World, event_id: str) -> list[str]:
    return [str(p["body"]) for p in await w.replies_to(event_id)]
