"""Every command of the table runs through the engine: the ones not covered elsewhere."""

from __future__ import annotations

from pathlib import Path

from bot.domain.positions import Position
from commands.table import COMMANDS
from storage.repo import Repository
from tests.unit.test_engine import ALICE, BOB, CHAIR, MAIN, MALLORY, World, make_world

HERE = Path(__file__).resolve().parent


def test_every_command_has_a_fast_test_of_its_handler() -> None:
    texts = "".join(p.read_text(encoding="utf-8") for p in HERE.glob("test_*.py"))
    missing = [c.name for c in COMMANDS if f"!cb {c.name}" not in texts]
    assert missing == []


async def test_help_lists_commands_and_explains_one(opened: World) -> None:
    general = opened.command(MALLORY, "!cb help", room=MAIN)
    one = opened.command(ALICE, "!cb help object")
    await opened.apply(general, one)
    assert "!cb object" in (await opened.reply_to(general.event_id))["body"]
    assert "reason" in (await opened.reply_to(one.event_id))["body"].lower()


async def test_abstain_and_list_and_members(opened: World) -> None:
    await opened.apply(opened.command(ALICE, "!cb abstain Conflict of schedule."))
    assert (await opened.positions())[ALICE] is Position.ABSTAIN
    listing = opened.command(BOB, "!cb list", room=MAIN)
    roster = opened.command(BOB, "!cb members", room=MAIN)
    await opened.apply(listing, roster)
    assert "#1" in (await opened.reply_to(listing.event_id))["body"]
    body = (await opened.reply_to(roster.event_id))["body"]
    assert ALICE in body
    assert CHAIR in body


async def test_member_remove_takes_them_off_the_count(opened: World) -> None:
    await opened.apply(opened.reaction(BOB, "👍"))
    remove = opened.command(CHAIR, f"!cb member remove {BOB}", room=MAIN)
    await opened.apply(remove)
    assert await opened.acks(remove.event_id) == ["✅"]
    again = opened.command(CHAIR, f"!cb member remove {BOB}", room=MAIN)
    await opened.apply(again)
    assert await opened.acks(again.event_id) == ["❌"]
    close = opened.command(CHAIR, "!cb close")
    await opened.apply(close)
    [summary] = await opened.messages("summary")
    assert summary.payload["consensus_bot"]["eligible"] == 3  # bob no longer counts


async def test_deadline_is_set_and_refused_below_the_minimum(tmp_path: Path) -> None:
    opened = await make_world(tmp_path / "bot.db", min_deadline_ms=72 * 3_600_000)
    await opened.open_request()
    soon = opened.command(CHAIR, "!cb deadline 1m")
    later = opened.command(CHAIR, "!cb deadline 10d")
    await opened.apply(soon, later)
    assert await opened.acks(soon.event_id) == ["❌"]
    refusal = (await opened.reply_to(soon.event_id))["body"]
    assert "minimum time" in refusal
    assert "--early RATIONALE" in refusal
    assert await opened.acks(later.event_id) == ["✅"]
    assert (await opened.request()).deadline_at == opened.clock.now + 10 * 86_400_000
    # With a rationale of substance the chair may close early; it is recorded.
    early = opened.command(
        CHAIR, "!cb deadline 1h --early 'The applicant withdrew and asked us to close quickly.'"
    )
    await opened.apply(early)
    assert await opened.acks(early.event_id) == ["✅"]
    assert (await opened.request()).early_rationale.startswith("The applicant withdrew")
    await opened.db.close()


async def test_remind_and_digest_queue_their_messages(opened: World) -> None:
    await opened.apply(opened.reaction(ALICE, "👍"))
    remind = opened.command(CHAIR, "!cb remind")
    digest = opened.command(CHAIR, "!cb digest", room=MAIN)
    await opened.apply(remind, digest)
    assert "Reminded 3" in (await opened.reply_to(remind.event_id))["body"]
    assert len(await opened.messages("reminder")) == 3
    assert len(await opened.messages("digest")) == 1


async def test_export_queues_a_file_with_the_records_head(opened: World) -> None:
    export = opened.command(ALICE, "!cb export --format csv")
    await opened.apply(export)
    assert await opened.acks(export.event_id) == ["✅"]
    [item] = [i for i in await opened.pending() if i.op == "file"]
    assert item.payload["filename"].endswith(".csv")
    assert item.payload["caption"]["consensus_bot"]["head"]


async def test_apply_by_direct_message_files_a_self_application(tmp_path: Path) -> None:
    world = await make_world(tmp_path / "db.sqlite")
    try:
        dm = "!dm-mallory:x"
        await world.services.dms.remember(MALLORY, dm)
        application = world.command(MALLORY, "!cb apply --org 'Mal Org' I want to help.", room=dm)
        await world.apply(application)
        assert await world.acks(application.event_id) == ["✅"]
        async with world.db.transaction() as tx:
            req = await Repository(tx).request(1)
        assert req is not None
        assert req.self_applied
        assert req.applicant.applicant == MALLORY
        # Applying again while it waits for triage completes the same application.
        twice = world.command(MALLORY, "!cb apply - --country Kenya", room=dm)
        await world.apply(twice)
        assert "Updated your application #1" in (await world.reply_to(twice.event_id))["body"]
        async with world.db.transaction() as tx:
            req = await Repository(tx).request(1)
        assert req is not None
        assert (req.applicant.country, req.applicant.region) == ("KE", "africa")
        assert req.statement == "I want to help."
    finally:
        await world.db.close()


async def test_member_add_and_remove_invite_and_take_out_of_open_rooms(opened: World) -> None:
    """Who is in a request's room follows the roster, so the bot's encrypted messages there
    reach a member added mid-ballot and stop reaching one removed (issue 20)."""
    room = (await opened.request()).room_id
    assert room is not None
    add = opened.command(
        CHAIR, "!cb member add @late:x --stakeholder academia --country Kenya", room=MAIN
    )
    await opened.apply(add)
    invites = {
        (i.room_id, i.payload["user_id"]) for i in await opened.pending() if i.op == "invite"
    }
    assert {(MAIN, "@late:x"), (room, "@late:x")} <= invites
    again = opened.command(CHAIR, "!cb member add @late:x --stakeholder academia", room=MAIN)
    await opened.apply(again)  # an update of an active member invites nobody again
    assert len([i for i in await opened.pending() if i.op == "invite"]) == len(invites)

    await opened.apply(opened.command(CHAIR, f"!cb member remove {BOB}", room=MAIN))
    kicks = [i for i in await opened.pending() if i.op == "kick"]
    # Out of the open rooms and of the main room (whose members may join request rooms).
    assert [(k.room_id, k.payload["user_id"]) for k in kicks] == [(room, BOB), (MAIN, BOB)]
    await opened.apply(opened.command(CHAIR, f"!cb member remove {CHAIR}", room=MAIN))
    assert len([i for i in await opened.pending() if i.op == "kick"]) == 2  # not a chair
