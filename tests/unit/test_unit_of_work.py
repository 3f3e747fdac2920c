"""The batch as the unit of work (issue #22): a sync batch read once, decided in memory,
written once (storage.unit) gives exactly what applying its events one by one gives."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.positions import Position
from bot.matrix.events import InboundEvent, SyncBatch
from tests.unit.test_engine import ALICE, BOB, CAROL, DAVE, MALLORY, World, make_world

SENDERS = [ALICE, BOB, CAROL, DAVE, MALLORY]
KEYS = ["👍", "👎", "👌", "🤔", "✋", "🤐", "🎉"]
COMMANDS = [
    "!cb support",
    "!cb object it needs more thought",
    "!cb concern the region is not said",
    "!cb withdraw",
]

# (kind, sender index, choice): a reaction (key), a redaction of an earlier event, the same
# event delivered again, or a command.
_op = st.tuples(
    st.sampled_from(["react", "react", "react", "redact", "again", "command"]),
    st.integers(0, len(SENDERS) - 1),
    st.integers(0, 1_000),
)


def _events(w: World, ops: list[tuple[str, int, int]]) -> list[InboundEvent]:
    events: list[InboundEvent] = []
    for kind, who, choice in ops:
        sender = SENDERS[who]
        if kind == "react" or not events:
            events.append(w.reaction(sender, KEYS[choice % len(KEYS)]))
        elif kind == "redact":
            # One's own earlier event (a retraction) when there is one, else anyone's.
            own = [e for e in events if e.sender == sender] or events
            earlier = own[choice % len(own)]
            events.append(w.redaction(sender, earlier.event_id))
        elif kind == "again":
            events.append(events[choice % len(events)])
        else:
            events.append(w.command(sender, COMMANDS[choice % len(COMMANDS)]))
    return events


_STATE = {
    "position_inputs": "SELECT request_id, member, event_id, source, position, reason, ts, "
    "recorded_at, room_id FROM position_inputs ORDER BY id",
    "redactions": "SELECT * FROM redactions ORDER BY event_id",
    "objections": "SELECT * FROM objections ORDER BY id",
    "objection_events": "SELECT objection_id, kind, by, state, text, at FROM objection_events "
    "ORDER BY id",
    "outbox": "SELECT op, request_id, room_id, target, purpose, payload, state FROM outbox "
    "ORDER BY id",
    "requests": "SELECT id, state, tally_dirty FROM requests ORDER BY id",
    "processed": "SELECT event_id FROM processed_events ORDER BY event_id",
    "failed": "SELECT count(*) FROM failed_events",
}


async def _state(w: World) -> dict[str, list[tuple[Any, ...]]]:
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with w.db.transaction() as tx:
        for name, sql in _STATE.items():
            found[name] = [tuple(r) for r in await tx.fetchall(sql)]
    # Outbox payloads carry nothing random (transaction IDs are in their own column).
    found["outbox"] = [(*r[:5], json.loads(r[5]), r[6]) for r in found["outbox"]]
    return found


async def _compare(ops: list[tuple[str, int, int]], where: Path) -> None:
    batched = await make_world(where / "batched.db")
    one_by_one = await make_world(where / "one_by_one.db")
    try:
        for w in (batched, one_by_one):
            assert await w.open_request() == 1
        events = _events(batched, ops)
        result = await batched.services.batches.apply_batch(
            SyncBatch(next_batch="s1", events=events)
        )
        assert result.failed == 0
        batches = one_by_one.services.batches
        for event in events:
            # The path every event took before the unit of work: a plain repository, each
            # event in its own savepoint (the batch apply's isolating attempt), one batch each.
            await batches._apply_batch(
                SyncBatch(next_batch="s1", events=[event]),
                one_by_one.clock.now_ms(),
                False,
                isolate=True,
            )
        assert await _state(batched) == await _state(one_by_one)
    finally:
        await batched.db.close()
        await one_by_one.db.close()


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(_op, min_size=1, max_size=40))
def test_unit_of_work_batch_equals_event_by_event(ops: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_compare(ops, Path(tmp)))


async def test_unit_of_work_a_failing_position_leaves_the_others_applied_once(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One reaction of a batch of positions fails: the batch is applied again event by
    event, the failing one is set aside, and every other one is stored exactly once (what
    the first attempt held back is gone with its rollback)."""
    w = opened
    original = w.services.groups.first.ballots.record_input
    failing = w.reaction(CAROL, "👍")

    async def sometimes(repo: Any, out: Any, req: Any, item: Any, *args: Any, **kw: Any) -> Any:
        if item.event_id == failing.event_id:
            raise RuntimeError("boom")
        return await original(repo, out, req, item, *args, **kw)

    monkeypatch.setattr(w.services.groups.first.ballots, "record_input", sometimes)
    down = w.reaction(BOB, "👎")
    events = [w.reaction(ALICE, "👍"), down, failing, w.reaction(DAVE, "👌")]
    result = await w.apply(*events)
    assert (result.applied, result.failed) == (3, 1)
    assert await w.positions() == {
        ALICE: Position.SUPPORT,
        BOB: Position.OBJECT,
        DAVE: Position.NO_OBJECTION,
    }
    assert await w.scalar("SELECT count(*) FROM position_inputs") == 3
    assert await w.scalar("SELECT count(*) FROM objections") == 1
    queued = [(i.op, i.target, json.dumps(i.payload, sort_keys=True)) for i in await w.pending()]
    assert len(queued) == len(set(queued)), queued  # nothing queued twice
    assert await w.scalar("SELECT count(*) FROM failed_events") == 1
