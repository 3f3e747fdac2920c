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

import pytest

from bot.domain.positions import Position
from bot.matrix.events import EncryptedMessage, ReactionAdded, SyncBatch
from tests.unit.test_engine import ALICE, BALLOT, ROOM, World, make_world


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(tmp_path / "bot.db", encryption="on", undecryptable_notice_ms=60_000)
    assert await w.open_request() == 1
    try:
        yield w
    finally:
        await w.db.close()


def _sealed(event_id: str, ts: int) -> EncryptedMessage:
    raw = {"type": "m.room.encrypted", "event_id": event_id, "sender": ALICE, "content": {}}
    return EncryptedMessage(ROOM, event_id, ALICE, ts, json.dumps(raw))


async def test_a_held_event_is_applied_under_its_receipt_time_once(opened: World) -> None:
    w = opened
    received = w.clock.now
    await w.apply(_sealed("$late", received))
    await w.apply(_sealed("$late", received))  # delivered again (a restart, a gap)
    held = await w.engine.held()
    assert [(h.event_id, h.received_at) for h in held] == [("$late", received)]
    assert await w.positions() == {}

    # The key comes an hour later: the decrypted reaction counts as received back then.
    w.clock.advance(3_600_000)
    plain = ReactionAdded(ROOM, "$late", ALICE, received, BALLOT, "👍")
    batch = SyncBatch("", events=[plain], released=["$late"], received_at=received)
    await w.engine.apply_batch(batch)
    assert await w.positions() == {ALICE: Position.SUPPORT}
    [stored] = await w.inputs()
    assert stored.recorded_at == received
    assert await w.engine.held() == []

    # Neither a late copy of the decrypted event nor of the ciphertext counts again.
    await w.engine.apply_batch(SyncBatch("", events=[plain], released=["$late"]))
    await w.apply(_sealed("$late", received))
    assert len(await w.inputs()) == 1


async def test_the_sender_of_an_unreadable_event_is_told_once(opened: World) -> None:
    w = opened
    await w.apply(_sealed("$a", w.clock.now), _sealed("$b", w.clock.now))
    assert await w.engine.tell_unreadable() == 0  # not yet: keys often come a little late
    w.clock.advance(61_000)
    assert await w.engine.tell_unreadable() == 1  # one notice for both of alice's events
    assert await w.engine.tell_unreadable() == 0  # and never again
    notices = [
        m
        for m in await w.messages("reply")
        if m.payload["consensus_bot"].get("event") == "unreadable"
    ]
    assert len(notices) == 1
    assert ALICE in notices[0].payload["body"]


async def test_one_sender_cannot_fill_the_disk_with_unreadable_events(opened: World) -> None:
    from bot.services.engine import MAX_HELD_PER_SENDER

    w = opened
    flood = [_sealed(f"$f{n}", w.clock.now) for n in range(MAX_HELD_PER_SENDER + 25)]
    await w.apply(*flood)
    assert len(await w.engine.held()) == MAX_HELD_PER_SENDER


async def test_held_events_are_forgotten_after_the_retention(opened: World) -> None:
    from storage.repo import Repository

    w = opened
    await w.apply(_sealed("$old", w.clock.now))
    async with w.db.transaction() as tx:
        assert await Repository(tx).prune(w.clock.now + 1) >= 1
    assert await w.engine.held() == []
