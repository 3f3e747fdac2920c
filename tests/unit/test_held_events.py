"""Encrypted events held until their key arrives (issue 14), through the engine.

A held event is stored in the batch's transaction, is not marked processed, and is applied
later under the time it was received, with its own event ID: a late key neither loses a
position nor makes it late, and a second delivery counts nothing twice. Senders of events
unreadable for too long are told once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.domain.ledger import PositionInput, Source
from bot.domain.positions import Position
from bot.domain.record import GENESIS, body_digest, chain, verify_segments
from bot.domain.record_render import render_json
from bot.matrix.crypto import Crypto
from bot.matrix.decode import decode_event
from bot.matrix.events import CommandText, EncryptedMessage, InboundEvent, ReactionAdded, SyncBatch
from bot.services import batches as batches_module
from bot.services.batches import MAX_HELD_PER_SENDER
from storage.repo import Repository
from tests.unit.test_crypto import World as CryptoWorld
from tests.unit.test_engine import (
    ALICE,
    BALLOT,
    BOB,
    BOT,
    CHAIR,
    DAVE,
    MAIN,
    ROOM,
    World,
    fresh_database,
    make_world,
    wire_syncer,
)
from tests.unit.test_process_rules import WHY, body, record

HOUR = 3_600_000


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(tmp_path / "bot.db", encryption="on", undecryptable_notice_ms=60_000)
    assert await w.open_request() == 1
    try:
        yield w
    finally:
        await w.db.close()


def _sealed(event_id: str, ts: int, sender: str = ALICE, room: str = ROOM) -> EncryptedMessage:
    raw = {"type": "m.room.encrypted", "event_id": event_id, "sender": sender, "content": {}}
    return EncryptedMessage(room, event_id, sender, ts, json.dumps(raw))


async def _release(w: World, plain: InboundEvent, received: int) -> None:
    """What the sync loop does when a held event's key arrives: its decrypted self, applied
    with the time the ciphertext was received."""
    batch = SyncBatch("", events=[plain], released=[plain.event_id], received_at=received)
    await w.services.batches.apply_batch(batch)


async def test_a_held_event_is_applied_under_its_receipt_time_once(opened: World) -> None:
    w = opened
    received = w.clock.now
    await w.apply(_sealed("$late", received))
    await w.apply(_sealed("$late", received))  # delivered again (a restart, a gap)
    held = await w.services.batches.held()
    assert [(h.event_id, h.received_at) for h in held] == [("$late", received)]
    assert await w.positions() == {}

    # The key comes an hour later: the decrypted reaction counts as received back then.
    w.clock.advance(3_600_000)
    plain = ReactionAdded(ROOM, "$late", ALICE, received, BALLOT, "👍")
    batch = SyncBatch("", events=[plain], released=["$late"], received_at=received)
    await w.services.batches.apply_batch(batch)
    assert await w.positions() == {ALICE: Position.SUPPORT}
    [stored] = await w.inputs()
    assert stored.recorded_at == received
    assert await w.services.batches.held() == []

    # Neither a late copy of the decrypted event nor of the ciphertext counts again.
    await w.services.batches.apply_batch(SyncBatch("", events=[plain], released=["$late"]))
    await w.apply(_sealed("$late", received))
    assert len(await w.inputs()) == 1


async def test_the_sender_of_an_unreadable_event_is_told_once(opened: World) -> None:
    w = opened
    await w.apply(_sealed("$a", w.clock.now), _sealed("$b", w.clock.now))
    assert await w.services.batches.tell_unreadable() == 0  # not yet: keys often come a little late
    w.clock.advance(61_000)
    assert await w.services.batches.tell_unreadable() == 1  # one notice for both of alice's events
    assert await w.services.batches.tell_unreadable() == 0  # and never again
    notices = [
        m
        for m in await w.messages("reply")
        if m.payload["consensus_bot"].get("event") == "unreadable"
    ]
    assert len(notices) == 1
    assert ALICE in notices[0].payload["body"]


async def test_one_sender_cannot_fill_the_disk_with_unreadable_events(opened: World) -> None:
    w = opened
    flood = [_sealed(f"$f{n}", w.clock.now) for n in range(MAX_HELD_PER_SENDER + 25)]
    await w.apply(*flood)
    assert len(await w.services.batches.held()) == MAX_HELD_PER_SENDER


async def test_held_events_are_forgotten_after_the_retention(opened: World) -> None:
    from storage.repo import Repository

    w = opened
    await w.apply(_sealed("$old", w.clock.now))
    async with w.db.transaction() as tx:
        assert await Repository(tx).prune(w.clock.now + 1) >= 1
    assert await w.services.batches.held() == []


# ---- a key held back (issue 21, item 1) ------------------------------------------------


async def test_withheld_key_released_after_the_close_is_late_and_never_counted(
    opened: World,
) -> None:
    """Two sessions, one "support" and one "object", sent before the close; their keys held
    back. Releasing either after the close records it late, at the key's arrival."""
    w = opened
    sent = w.clock.now
    await w.apply(_sealed("$support", sent), _sealed("$object", sent))
    w.clock.advance(60_000)
    await w.apply(w.command(CHAIR, "!cb close"))
    closed_at = (await w.request()).closed_at
    w.clock.advance(HOUR)  # she picks a side an hour after the close
    await _release(w, ReactionAdded(ROOM, "$object", ALICE, sent, BALLOT, "👎"), sent)
    assert await w.positions() == {}
    assert await w.objections() == []
    [stored] = await w.inputs()
    assert stored.recorded_at == w.clock.now > closed_at
    entry = next(e for e in (await record(w))["entries"] if e.get("event_id") == "$object")
    assert (entry["status"], entry["counted"]) == ("late", False)
    # The other session changes nothing either; nothing waits any more.
    await _release(w, ReactionAdded(ROOM, "$support", ALICE, sent, BALLOT, "👍"), sent)
    assert await w.positions() == {}
    assert await w.services.batches.held() == []


async def test_withheld_key_released_before_the_close_keeps_its_receipt_time(
    opened: World,
) -> None:
    """Before the close nothing changes: a late key counts under the ciphertext's receipt
    time, so a clear 👍 sent after the sealed 👎 stays the member's position."""
    w = opened
    sent = w.clock.now
    await w.apply(_sealed("$object", sent))
    w.clock.advance(10 * 60_000)
    await w.apply(w.reaction(ALICE, "👍", ts=w.clock.now))
    w.clock.advance(HOUR)
    await _release(w, ReactionAdded(ROOM, "$object", ALICE, sent, BALLOT, "👎"), sent)
    assert await w.positions() == {ALICE: Position.SUPPORT}
    late = next(i for i in await w.inputs() if i.event_id == "$object")
    assert late.recorded_at == sent


async def test_withheld_hum_counts_only_if_its_key_comes_before_the_close(opened: World) -> None:
    w = opened
    for member in (ALICE, BOB):
        await w.services.dms.remember(member, f"!dm-{member[1:]}")
    sent = w.clock.now
    await w.apply(
        _sealed("$hum-a", sent, sender=ALICE, room="!dm-alice:x"),
        _sealed("$hum-b", sent, sender=BOB, room="!dm-bob:x"),
    )
    w.clock.advance(HOUR)  # Alice's key comes an hour later, before the close
    await _release(
        w, CommandText("!dm-alice:x", "$hum-a", ALICE, sent, "!cb hum for --request 1"), sent
    )
    await w.apply(w.command(CHAIR, "!cb close"))
    w.clock.advance(HOUR)  # Bob's only after it
    await _release(
        w, CommandText("!dm-bob:x", "$hum-b", BOB, sent, "!cb hum against --request 1"), sent
    )
    async with w.db.transaction() as tx:
        hums = await Repository(tx).hums(1)
    assert [side for _, side, _ in hums] == ["for"]
    assert "not open" in await body(w, "$hum-b")


async def test_withheld_appeal_released_after_the_window_is_refused(opened: World) -> None:
    w = opened
    await w.apply(w.command(CHAIR, f"!cb decide decline {WHY}"))
    w.clock.advance(24 * HOUR)
    sent = w.clock.now  # day 1: well inside the 14-day window, but unreadable
    await w.apply(_sealed("$appeal", sent, sender=DAVE, room=MAIN))
    w.clock.advance(24 * 24 * HOUR)  # the key comes on day 25
    appeal = CommandText(MAIN, "$appeal", DAVE, sent, "!cb appeal 1 Nobody asked the Americas.")
    await _release(w, appeal, sent)
    assert "appeal window" in await body(w, "$appeal")
    async with w.db.transaction() as tx:
        assert await Repository(tx).appeals(1) == []


async def test_withheld_input_never_counts_in_a_later_segment_of_the_decision(
    opened: World, tmp_path: Path
) -> None:
    """Even an input stored as received before the close (as a released key once was) does
    not count in the segment an answered appeal adds, and `export --verify --previous`
    refuses a later segment rewritten to count it."""
    w = opened
    await w.apply(w.reaction(BOB, "👍"))
    await w.apply(w.command(CHAIR, f"!cb decide admit {WHY}"))
    first = await record(w)
    closed_at = (await w.request()).closed_at
    sneaked = PositionInput(
        "$sneak", ALICE, Position.OBJECT, closed_at - 1, Source.REACTION, None, ROOM
    )
    async with w.db.transaction() as tx:
        assert await Repository(tx).add_input(1, sneaked, closed_at - 1)
    await w.apply(w.command(DAVE, "!cb appeal 1 Nobody from the Americas was heard.", room=MAIN))
    await w.apply(w.command(CHAIR, f"!cb appeal-answer 1 denied {WHY}", room=MAIN))
    second = await record(w)
    assert second["segment"] == 2
    entry = next(e for e in second["entries"] if e.get("event_id") == "$sneak")
    assert (entry["status"], entry["counted"]) == ("late", False)
    assert second["sense"]["counts"] == first["sense"]["counts"]
    assert verify_segments(first, second) == []

    # A rewritten second segment that counts it is self-consistent, but does not continue
    # the first.
    forged = json.loads(json.dumps(second))
    for e in forged["entries"]:
        if e.get("event_id") == "$sneak":
            e.update(counted=True, status="counted")
    forged["sense"]["counts"]["object"] += 1
    items = [
        {k: v for k, v in e.items() if k not in ("seq", "at", "prev", "hash")}
        for e in forged["entries"]
    ]
    items[-1]["body"] = body_digest(forged)
    forged["entries"] = chain(items, forged["previous_head"] or GENESIS)
    forged["head"] = forged["entries"][-1]["hash"]
    problems = verify_segments(first, forged)
    assert any("$sneak" in p for p in problems)
    earlier, later = tmp_path / "first.json", tmp_path / "forged.json"
    earlier.write_text(render_json(first))
    later.write_text(render_json(forged))
    assert main(["export", "--verify", str(later), "--head", forged["head"]]) == 0
    assert main(["export", "--verify", str(later), "--previous", str(earlier)]) == 1
    honest = tmp_path / "second.json"
    honest.write_text(render_json(second))
    assert main(["export", "--verify", str(honest), "--previous", str(earlier)]) == 0
    with pytest.raises(SystemExit) as usage:
        main(["export", "--previous", str(earlier)])
    assert usage.value.code == 2


# ---- held-event starvation (issue 21, item 3) ------------------------------------------


class _KeyEdge:
    """The part of the gateway the sync loop's retry uses: the crypto edge."""

    def __init__(self, crypto: Crypto) -> None:
        self.crypto = crypto


def _seal(keys: CryptoWorld, sender: str, plain: dict[str, Any], **kw: Any) -> InboundEvent:
    """A real Megolm event `sender` sent to the request room, as the sync loop decodes it
    while its key is missing."""
    event = keys.encrypted(sender, plain, room=ROOM, key_shared=False, **kw)
    decoded = decode_event(ROOM, event, BOT, "!cb")
    assert isinstance(decoded, EncryptedMessage)
    assert decoded.session_id
    return decoded


async def test_a_flood_of_unreadable_events_cannot_starve_a_members_event(
    opened: World, tmp_path: Path
) -> None:
    """Five accounts with 200 events each whose keys never come sit before a member's event
    in the table; once her key arrives hers is released all the same."""
    w = opened
    keys = CryptoWorld(tmp_path)
    flood = [
        _seal(
            keys,
            f"@flood{n}:evil{n}.example",
            {"type": "m.room.message", "content": {}},
            session_room=f"!s{k // 50}",  # a new session every 50 (nio's limit is 100)
        )
        for n in range(5)
        for k in range(MAX_HELD_PER_SENDER)
    ]
    await w.apply(*flood)
    w.clock.advance(60_000)
    relates = {"rel_type": "m.annotation", "event_id": BALLOT, "key": "👍"}
    mine = _seal(
        keys, ALICE, {"type": "m.reaction", "room_id": ROOM, "content": {}}, relates=relates
    )
    await w.apply(mine)
    assert len(await w.services.batches.held()) == 1_000  # the oldest 1,000: hers is not among them
    syncer = wire_syncer(w, _KeyEdge(keys.crypto))
    assert await syncer.release_held() == 0  # no key yet: nothing moves
    keys.release(ALICE, ROOM)
    assert await syncer.release_held() == 1
    assert await w.positions() == {ALICE: Position.SUPPORT}
    async with w.db.transaction() as tx:
        assert len(await Repository(tx).held_sessions()) == 20  # the flood still waits


async def test_outsiders_cannot_starve_members_of_held_space(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per sender for all; per homeserver and per room for outsiders together; members keep
    their own allowance whatever outsiders did."""
    monkeypatch.setattr(batches_module, "MAX_HELD_PER_SENDER", 3)
    monkeypatch.setattr(batches_module, "MAX_HELD_PER_SERVER", 5)
    monkeypatch.setattr(batches_module, "MAX_HELD_PER_ROOM", 8)
    w = opened
    now = w.clock.now
    # Three outsiders of one homeserver: 3 + 2 (the homeserver's cap), the rest refused.
    one_server = [
        _sealed(f"$a{u}{n}", now, f"@out{u}:evil.example") for u in range(3) for n in range(3)
    ]
    await w.apply(*one_server)
    assert len(await w.services.batches.held()) == 5
    # Outsiders of other homeservers fill the room up to its cap.
    others = [
        _sealed(f"$b{u}{n}", now, f"@out:other{u}.example") for u in range(3) for n in range(3)
    ]
    await w.apply(*others)
    assert len(await w.services.batches.held()) == 8
    # A member still has her own allowance (per sender), and no more.
    await w.apply(*[_sealed(f"$m{n}", now, ALICE) for n in range(4)])
    held = await w.services.batches.held()
    assert sorted(h.event_id for h in held if h.sender == ALICE) == ["$m0", "$m1", "$m2"]


async def test_held_events_are_found_by_session_on_both_backends_no_starving(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The repository's side of the retry (SQLite and PostgreSQL): events are found by their
    session wherever they are in the table, counted per sender, room and homeserver."""
    db = fresh_database(backend, tmp_path, request)
    await db.open()
    try:
        async with db.transaction() as tx:
            repo = Repository(tx)
            for n in range(1_100):  # old events of sessions whose keys never come
                await repo.hold_event(f"$f{n}", ROOM, "@f:evil.example", n, n, "{}", "K", f"S{n}")
            await repo.hold_event("$old", ROOM, ALICE, 1, 0, "{}")  # from before version 7
            await repo.hold_event("$mine", ROOM, ALICE, 5_000, 5_000, "{}", "KA", "SA")
        async with db.transaction() as tx:
            repo = Repository(tx)
            assert ("!req1:x", "KA", "SA") in await repo.held_sessions()
            found = await repo.held_in_sessions([(ROOM, "KA", "SA"), (ROOM, "other", "S1")])
            assert [h.event_id for h in found] == ["$old", "$mine"]
            assert found[1].session_id == "SA"
            assert await repo.held_counts(ALICE, ROOM) == (2, 1_102, 2)
            assert await repo.held_counts("@g:evil.example", "!elsewhere:x") == (0, 0, 1_100)
    finally:
        await db.close()
