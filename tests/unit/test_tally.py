"""One visible tally: a pinned live tally edited as positions change, no seeded reactions,
superseded reactions tidied away by the bot (and never counted again)."""

from __future__ import annotations

from bot.domain.counting import Status
from storage.repo import Repository
from tests.unit.test_engine import ALICE, BOB, ROOM, World


async def sent(w: World, op: str) -> None:
    """Play the outbox sender for every pending `op`: record a result and its hooks."""
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        for item in await repo.pending_outbox(10_000):
            if item.op == op:
                result = f"$sent-{item.id}"
                await w.services.hooks.on_sent(repo, item, result, w.clock.now_ms())
                await repo.outbox_done(item.id, result, w.clock.now_ms())


async def test_a_change_of_reaction_tidies_the_old_one_and_edits_the_tally(
    opened: World,
) -> None:
    w = opened
    thumbs_up = w.reaction(ALICE, "👍")
    await w.apply(thumbs_up)
    await w.services.groups.first.calendar.refresh_tallies()
    w.clock.advance(1_000)
    thinking = w.reaction(ALICE, "🤔")
    await w.apply(thinking)
    await w.services.groups.first.calendar.refresh_tallies()
    redactions = [i for i in await w.pending() if i.op == "redact"]
    assert [i.target for i in redactions] == [thumbs_up.event_id]
    await sent(w, "redact")
    w.clock.advance(1_000)
    await w.apply(w.reaction(ALICE, "👎"))
    assert [i.target for i in await w.pending() if i.op == "redact"] == [thinking.event_id]
    await sent(w, "redact")
    await w.services.groups.first.calendar.refresh_tallies()
    await w.services.groups.first.calendar.refresh_tallies()  # nothing changed since: no edit
    # Each refresh after a change edited the tally once; the last edit shows the truth.
    edits = [i for i in await w.pending() if i.op == "edit" and i.target == "tally"]
    assert len(edits) == 3
    counts = edits[-1].payload["m.new_content"]["consensus_bot"]["counts"]
    assert (counts["support"], counts["concern"], counts["object"]) == (0, 0, 1)


async def test_a_tidied_reaction_never_counts_again(opened: World) -> None:
    w = opened
    old = w.reaction(BOB, "👍")
    await w.apply(old)
    w.clock.advance(1_000)
    new = w.reaction(BOB, "🤔")
    await w.apply(new)
    await sent(w, "redact")
    # Bob removes his latest reaction: the ballot shows none of his, so he has no position.
    w.clock.advance(1_000)
    await w.apply(w.redaction(BOB, new.event_id))
    assert BOB not in await w.positions()
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        req = await repo.request(1)
        assert req is not None
        tally = await w.services.groups.first.ballots.count(repo, req)
    assert tally.status[old.event_id] is Status.TIDIED
    assert tally.status[new.event_id] is Status.RETRACTED


async def test_a_burst_marks_the_tally_once_and_one_edit_follows(opened: World) -> None:
    w = opened
    await w.apply(*(w.reaction(who, "👍") for who in (ALICE, BOB)))
    await w.apply(w.reaction(ALICE, "🤔"))
    assert [i for i in await w.pending() if i.op == "edit"] == []  # not on the batch path
    await w.services.groups.first.calendar.refresh_tallies()
    [edit] = [i for i in await w.pending() if i.op == "edit" and i.target == "tally"]
    counts = edit.payload["m.new_content"]["consensus_bot"]["counts"]
    assert (counts["support"], counts["concern"]) == (1, 1)


async def test_the_tally_is_pinned_once_posted(opened: World) -> None:
    w = opened
    await sent(w, "message")
    pins = [i for i in await w.pending() if i.op == "state"]
    assert [p.payload["type"] for p in pins] == ["m.room.pinned_events"]
    assert pins[0].room_id == ROOM
    req = await w.request()
    assert pins[0].payload["content"] == {"pinned": [req.tally_event_id]}
