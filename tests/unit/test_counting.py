"""The one counting rule, and the ways the old code let the record and the decision disagree."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.counting import (
    Ballot,
    Redaction,
    Status,
    count,
    effective_ts,
    in_time,
    standing,
)
from bot.domain.ledger import PositionInput, Source
from bot.domain.positions import Position
from bot.domain.record import verify_json
from bot.domain.sense import Voter
from bot.services.export import export_record, render
from storage.repo import Repository
from tests.unit.test_engine import (
    ALICE,
    BOB,
    CAROL,
    CHAIR,
    DAVE,
    ROOM,
    T0,
    World,
)

SKEW = 5 * 60_000
CLOSE = T0 + 1_000_000
VOTERS = [Voter(m, "academia", "europe") for m in (ALICE, BOB)]


def item(
    event_id: str,
    member: str,
    position: Position | None,
    ts: int,
    received: int,
    *,
    source: Source = Source.REACTION,
    room: str = ROOM,
) -> PositionInput:
    return PositionInput(event_id, member, position, ts, source, None, room, received)


# ---- the pure rule ------------------------------------------------------------------------


def test_lateness_is_judged_on_the_bot_clock() -> None:
    ballot = Ballot(ROOM, CLOSE, SKEW)
    # Sent an hour after the close, claiming an hour before it: late.
    assert not in_time(CLOSE - 3_600_000, CLOSE + 3_600_000, ballot)
    # Received a little after the close (a slow sync), sent before it: counts.
    assert in_time(CLOSE - 1_000, CLOSE + 2_000, ballot)
    # Received a little after the close, sent after it: late.
    assert not in_time(CLOSE + 1_000, CLOSE + 2_000, ballot)
    # Received before the close: counts, whatever it claims.
    assert in_time(CLOSE + 10**15, CLOSE - 1, ballot)
    assert in_time(0, 0, Ballot(ROOM, None, SKEW))


def test_a_sender_clock_is_believed_only_within_the_skew() -> None:
    assert effective_ts(T0 + 1_000, T0, SKEW) == T0 + 1_000
    assert effective_ts(T0 - 10 * SKEW, T0, SKEW) == T0 - SKEW
    assert effective_ts(10**15, T0, SKEW) == T0 + SKEW
    assert effective_ts(-(10**15), T0, SKEW) == T0 - SKEW


def test_a_backdated_input_cannot_jump_ahead_of_a_later_one() -> None:
    support = item("$s", ALICE, Position.SUPPORT, T0, T0)
    # Received later, stamped far in the past: it is still the later one.
    objection = item("$o", ALICE, Position.OBJECT, T0 - 10**9, T0 + 2 * SKEW)
    tally = count(Ballot(ROOM, None, SKEW), VOTERS, {}, [support, objection], [])
    assert tally.current[ALICE].event_id == "$o"
    # And one stamped in the far future cannot stay current over a later input.
    future = item("$f", BOB, Position.SUPPORT, 10**15, T0)
    later = item("$l", BOB, Position.CONCERN, T0 + 3 * SKEW, T0 + 3 * SKEW)
    tally = count(Ballot(ROOM, None, SKEW), VOTERS, {}, [future, later], [])
    assert tally.current[BOB].event_id == "$l"


def test_only_the_author_retracts_and_only_in_the_same_room() -> None:
    ballot = Ballot(ROOM, None, SKEW)
    vote = item("$v", ALICE, Position.SUPPORT, T0, T0)
    dm_command = item("$c", BOB, Position.OBJECT, T0, T0, source=Source.COMMAND, room="!dm:x")
    attempts = [
        Redaction("$r1", "$v", ROOM, BOB, T0 + 1, T0 + 1),  # someone else
        Redaction("$r2", "$v", "!other:x", ALICE, T0 + 1, T0 + 1),  # another room
        Redaction("$r3", "$c", ROOM, BOB, T0 + 1, T0 + 1),  # the command was in a DM
    ]
    tally = count(ballot, VOTERS, {}, [vote, dm_command], attempts)
    assert set(tally.current) == {ALICE, BOB}
    # The member deleting their own command message in the DM retracts it.
    own = Redaction("$r4", "$c", "!dm:x", BOB, T0 + 2, T0 + 2)
    tally = count(ballot, VOTERS, {}, [vote, dm_command], [*attempts, own])
    assert set(tally.current) == {ALICE}
    assert tally.status["$c"] is Status.RETRACTED


def test_a_retraction_after_the_close_is_late_too() -> None:
    vote = item("$v", ALICE, Position.SUPPORT, T0, T0)
    late = Redaction("$r", "$v", ROOM, ALICE, CLOSE + SKEW * 2, CLOSE + SKEW * 2)
    tally = count(Ballot(ROOM, CLOSE, SKEW), VOTERS, {}, [vote], [late])
    assert set(tally.current) == {ALICE}


def test_removed_members_count_until_they_leave_and_a_later_removal_changes_nothing() -> None:
    votes = [item("$a", ALICE, Position.SUPPORT, T0, T0), item("$b", BOB, Position.OBJECT, T0, T0)]
    open_ballot = Ballot(ROOM, None, SKEW)
    closed = Ballot(ROOM, CLOSE, SKEW)
    assert set(count(open_ballot, VOTERS, {BOB: T0 + 5}, votes, []).current) == {ALICE}
    assert set(count(closed, VOTERS, {BOB: CLOSE - 1}, votes, []).current) == {ALICE}
    assert set(count(closed, VOTERS, {BOB: CLOSE + 1}, votes, []).current) == {ALICE, BOB}


@given(
    st.lists(
        st.tuples(
            st.sampled_from([ALICE, BOB]),
            st.sampled_from([*Position, None]),
            st.integers(-(10**16), 10**16),
            st.integers(T0, T0 + 10 * SKEW),
        ),
        max_size=10,
    ),
    st.data(),
)
def test_the_rule_does_not_depend_on_arrival_order(
    rows: list[tuple[str, Position | None, int, int]], data: st.DataObject
) -> None:
    inputs = [item(f"$e{n}", m, p, ts, rec) for n, (m, p, ts, rec) in enumerate(rows)]
    ballot = Ballot(ROOM, T0 + 5 * SKEW, SKEW)
    first = count(ballot, VOTERS, {}, inputs, [])
    again = count(ballot, VOTERS, {}, data.draw(st.permutations(inputs)), [])
    assert first.current == again.current
    assert first.status == again.status


@given(
    st.lists(
        st.tuples(
            st.sampled_from([ALICE, BOB, CAROL]),
            st.sampled_from([*Position, None]),
            st.integers(-(10**16), 10**16),
            st.integers(T0, T0 + 10 * SKEW),
            st.sampled_from([ROOM, "!elsewhere:x", ""]),
            st.sampled_from(list(Source)),
        ),
        max_size=10,
    ),
    st.lists(st.tuples(st.integers(0, 9), st.sampled_from([ALICE, BOB, CHAIR])), max_size=4),
    st.sampled_from([None, T0 + 5 * SKEW]),
    st.dictionaries(st.sampled_from([ALICE, BOB]), st.integers(T0, T0 + 10 * SKEW), max_size=1),
    st.data(),
)
def test_standing_on_plain_rows_agrees_with_count(
    rows: list[tuple[str, Position | None, int, int, str, Source]],
    aimed: list[tuple[int, str]],
    closed_at: int | None,
    removed: dict[str, int],
    data: st.DataObject,
) -> None:
    """The draft's plain-row path is the same rule as `count`, in any order of its rows."""
    inputs = [
        PositionInput(f"$e{n}", m, p, ts, src, None, room, rec)
        for n, (m, p, ts, rec, room, src) in enumerate(rows)
    ]
    redactions = [
        Redaction(f"$r{k}", f"$e{n}", ROOM, sender, T0 + k, T0 + k)
        for k, (n, sender) in enumerate(aimed)
    ]
    ballot = Ballot(ROOM, closed_at, SKEW, tidier=CHAIR)
    tally = count(ballot, VOTERS, removed, inputs, redactions)
    plain = [
        (i.event_id, i.member, i.position, i.ts, i.source, i.room_id, i.recorded_at)
        for i in data.draw(st.permutations(inputs))
    ]
    now = standing(ballot, VOTERS, removed, plain, redactions)
    assert now.voters == tally.voters
    assert now.positions == tally.positions


# ---- through the engine --------------------------------------------------------------------


async def export(w: World) -> dict[str, Any]:
    async with w.db.transaction() as tx:
        return await export_record(Repository(tx), 1, group_name="G", quorum=0.5)


async def test_a_late_backdated_objection_is_recorded_as_late_and_never_counted(
    opened: World,
) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👍"), w.reaction(BOB, "👍"), w.reaction(CAROL, "👌"))
    await w.apply(w.command(CHAIR, "!cb close"))
    closed_at = (await w.request()).closed_at
    assert closed_at is not None
    w.clock.advance(3_600_000)  # an hour later, stamped an hour before the close
    await w.apply(w.reaction(DAVE, "👎", ts=closed_at - 3_600_000))
    assert DAVE not in await w.positions()
    [draft] = await w.messages("summary")  # no redraft
    assert draft.payload["consensus_bot"]["proposed_outcome"] == "rough-consensus-admit"
    record = await export(w)
    late = [e for e in record["entries"] if e["type"] == "position" and e["member"] == DAVE]
    assert late[0]["status"] == "late"
    assert late[0]["counted"] is False
    assert record["sense"]["counts"]["object"] == 0


@pytest.mark.parametrize("stamp", [10**15, -(10**12), 0])
async def test_absurd_timestamps_never_break_export_or_verify(opened: World, stamp: int) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👍", ts=stamp))
    record = await export(w)
    for fmt in ("json", "csv", "md"):
        assert render(record, fmt)  # type: ignore[arg-type]
    assert verify_json(render(record, "json")) == []
    [entry] = [e for e in record["entries"] if e["type"] == "position"]
    assert entry["origin_ts"] == stamp
    assert entry["clock_flag"] is not None


async def test_a_decision_freezes_the_record_and_a_reopen_chains_a_new_segment(
    opened: World,
) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👍"), w.reaction(BOB, "👎"))
    await w.apply(
        w.command(CHAIR, "!cb decide decline Not enough support yet from those who took part.")
    )
    first = await export(w)
    [outcome, _, _] = await w.messages("outcome")  # request room, main room, applicant
    assert outcome.payload["consensus_bot"]["record_head"] == first["head"]
    assert first["head"][:16] in outcome.payload["body"]
    # After the decision: a redaction, a reaction and a roster change change nothing.
    w.clock.advance(1_000)
    await w.apply(
        w.redaction(ALICE, "$ev0002"),
        w.reaction(CAROL, "👍"),
        w.command(CHAIR, f"!cb member remove {BOB}", room="!main:x"),
    )
    assert json.dumps(await export(w)) == json.dumps(first)
    # A reopen starts segment 2, chained to the frozen head; segment 1 stays stored.
    await w.apply(w.command(CHAIR, "!cb reopen 3d"))
    await w.apply(
        w.command(
            CHAIR, "!cb decide admit The concerns were answered on the list by the applicant."
        )
    )
    second = await export(w)
    assert (second["segment"], second["previous_head"]) == (2, first["head"])
    assert second["entries"][0]["prev"] == first["head"]
    assert verify_json(render(second, "json")) == []
    async with w.db.transaction() as tx:
        frozen = await Repository(tx).frozen_records(1)
    assert [f.head for f in frozen] == [first["head"], second["head"]]
    assert json.loads(frozen[0].body) == first


async def test_a_batch_of_positions_costs_the_same_database_calls_whatever_its_size(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync batch of reactions and redactions is read once and written once (issue #22):
    a batch eight times larger, with the same kinds of steps (positions taken, changed and
    retracted, objections raised and withdrawn, tidy-ups queued), makes exactly as many
    database calls, and few."""
    calls = [0]
    original = opened.db.transaction

    @asynccontextmanager
    async def counting() -> AsyncIterator[Any]:
        async with original() as tx:
            yield _CountingTx(tx, calls)

    monkeypatch.setattr(opened.db, "transaction", counting)

    async def cost(rounds: int) -> int:
        events: list[Any] = []
        for _ in range(rounds):
            for member in (ALICE, BOB, CAROL, DAVE):
                up = opened.reaction(member, "👍")
                down = opened.reaction(member, "👎")
                events += [up, down, opened.redaction(member, down.event_id)]
        calls[0] = 0
        result = await opened.apply(*events)
        assert result.failed == 0
        assert result.applied == len(events)
        return calls[0]

    small, large = await cost(1), await cost(8)
    assert large == small, (small, large)
    assert large <= 25, large


class _CountingTx:
    """A transaction that counts the calls made to it (each one a database round trip)."""

    def __init__(self, tx: Any, calls: list[int]) -> None:
        self._tx = tx
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._tx, name)
        if name == "savepoint":
            return found
        self._calls[0] += 1
        return found
