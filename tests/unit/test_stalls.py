"""Issue 22, no long event-loop stalls: the heavy work moved off the loop or split per ballot
gives exactly what it gave before (the measurement itself is `python -m bench stalls`)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.domain.record import build_record
from bot.domain.record_render import render_json
from bot.services import ballots as ballots_module
from bot.services.calendar import LAST_DIGEST
from bot.services.export import _dated_objections
from bot.services.outbox import Outbox
from bot.services.plans import AfterCommit
from storage.repo import Repository
from tests.unit.test_engine import ALICE, BOB, CAROL, CHAIR, DAVE, World


class _Rollback(Exception):
    """Raised to undo a transaction after reading what it queued."""


@pytest.fixture
def off_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ballot counts as big: counting, drafting and hum keys run in a thread."""
    monkeypatch.setattr(ballots_module, "OFF_LOOP_ROWS", 0)


async def _three_ballots(w: World) -> None:
    """Request 1 open (with an objection), 2 open, 3 open; positions on each."""
    assert await w.open_request("!req2:x", "$ballot2", applicant="@fred:x") == 2
    assert await w.open_request("!req3:x", "$ballot3", applicant="@gina:x") == 3
    await w.apply(
        w.reaction(ALICE, "👍"),
        w.reaction(BOB, "👎"),
        w.command(BOB, "!cb object The statement says nothing about the work."),
        w.reaction(CAROL, "👍", room="!req2:x", target="$ballot2"),
        w.reaction(DAVE, "🤔", room="!req3:x", target="$ballot3"),
    )


async def _digest_in_one_transaction(w: World) -> str:
    """The digest as it was posted before: every ballot counted inside one transaction
    (`post_digest` without counts), counted on the loop; rolled back afterwards."""
    now = w.clock.now_ms()
    body = ""
    try:
        async with w.db.transaction() as tx:
            repo = Repository(tx)
            await w.services.groups.first.calendar.post_digest(
                repo, Outbox(repo, now, AfterCommit()), now
            )
            [item] = [
                i
                for i in await repo.pending_outbox(10_000)
                if i.op == "message" and i.payload["consensus_bot"]["kind"] == "digest"
            ]
            body = str(item.payload["body"])
            raise _Rollback
    except _Rollback:
        pass
    return body


async def test_the_per_ballot_digest_says_what_the_one_transaction_digest_said(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = opened
    await _three_ballots(w)
    monkeypatch.setattr(ballots_module, "OFF_LOOP_ROWS", 10**9)  # on the loop, as before
    before = await _digest_in_one_transaction(w)
    assert "Open for positions" in before
    assert re.search(r"#1 .* 2/\d+ took part; 1 objection open", before)
    assert re.search(r"#2 .* 1/\d+ took part\n", before)
    monkeypatch.setattr(ballots_module, "OFF_LOOP_ROWS", 0)  # counted off the loop
    await w.services.groups.first.calendar.fire_digest()
    [digest] = await w.messages("digest")
    assert digest.payload["body"] == before
    assert digest.payload["consensus_bot"]["open"] == [1, 2, 3]
    assert (
        await w.scalar("SELECT value FROM meta WHERE key = ?", (f"{LAST_DIGEST}:main",)) is not None
    )


async def test_the_digest_counts_a_ballot_opened_after_the_per_ballot_counts(
    opened: World, off_loop: None
) -> None:
    w = opened
    await _three_ballots(w)
    expected = await _digest_in_one_transaction(w)
    counts = await w.services.groups.first.calendar.open_counts()
    assert sorted(counts) == [1, 2, 3]
    del counts[2]  # as if request 2 opened after its turn: counted in the digest's transaction
    now = w.clock.now_ms()
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        await w.services.groups.first.calendar.post_digest(
            repo, Outbox(repo, now, AfterCommit()), now, counts
        )
    [digest] = await w.messages("digest")
    assert digest.payload["body"] == expected


async def _inline_record(repo: Repository, w: World, request_id: int) -> dict[str, Any]:
    """The record `live_record` builds, built here on the loop from the same rows."""
    s = w.services.settings
    req = await repo.request(request_id)
    assert req is not None
    rows = await repo.rows(request_id)
    frozen = await repo.frozen_records(request_id)
    record: dict[str, Any] = build_record(
        group=s.group_name,
        request=req,
        eligible=rows.snapshot,
        removed=rows.removed,
        inputs=rows.inputs,
        redactions=rows.redactions,
        objections=await _dated_objections(repo, request_id),
        quorum=s.quorum,
        skew_ms=s.clock_skew_ms,
        appeal_window_ms=s.appeal_window_ms,
        hums=await w.services.groups.first.ballots.hum_aggregate(repo, req),
        segment=len(frozen) + 1,
        previous_head=frozen[-1].head if frozen else None,
        tidier=s.bot_user_id,
        history=await repo.objection_history(request_id),
        appeals=await repo.appeals(request_id),
        edits=await repo.edits(request_id),
        carried=None,
    )
    return record


async def test_stall_free_live_record_is_the_record_built_on_the_loop(
    opened: World, off_loop: None
) -> None:
    w = opened
    await _three_ballots(w)
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        req = await repo.request(1)
        assert req is not None
        threaded = await w.services.groups.first.ballots.record(repo, req)
        inline = await _inline_record(repo, w, 1)
    assert render_json(threaded) == render_json(inline)
    assert threaded["head"] == inline["head"]


async def test_stall_free_decide_freezes_the_bytes_and_head_built_on_the_loop(
    opened: World, off_loop: None
) -> None:
    w = opened
    await _three_ballots(w)
    decide = w.command(CHAIR, "!cb decide decline Not a fit for the group yet, by its charter.")
    await w.apply(decide)
    assert await w.acks(decide.event_id) == ["✅"]
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        [frozen] = await repo.frozen_records(1)

        # The decided request's record rebuilt on the loop: segment 1, as at the decision.
        async def no_frozen(request_id: int) -> list[Any]:
            return []

        repo.frozen_records = no_frozen  # type: ignore[method-assign]
        inline = await _inline_record(repo, w, 1)
    assert frozen.body == render_json(inline)
    assert frozen.head == inline["head"] == json.loads(frozen.body)["head"]


async def test_stall_free_tally_refresh_edits_every_dirty_ballot_once(
    opened: World, off_loop: None
) -> None:
    w = opened
    await _three_ballots(w)
    async with w.db.transaction() as tx:
        await Repository(tx).mark_tally_dirty([1, 2, 3])
    await w.services.groups.first.calendar.refresh_tallies()
    edits = sorted(
        i.request_id for i in await w.pending() if i.op == "edit" and i.target == "tally"
    )
    assert edits == [1, 2, 3]
    assert await w.scalar("SELECT count(*) FROM requests WHERE tally_dirty = 1") == 0


async def test_stall_free_tally_refresh_keeps_the_mark_of_a_failed_edit(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = opened
    await _three_ballots(w)
    async with w.db.transaction() as tx:
        await Repository(tx).mark_tally_dirty([1, 2, 3])
    retally = w.services.groups.first.ballots.retally

    async def failing(repo: Repository, out: Outbox, now: int, ids: list[int]) -> None:
        if 2 in ids:
            raise RuntimeError("a bug in ballot 2's tally")
        await retally(repo, out, now, ids)

    monkeypatch.setattr(w.services.groups.first.ballots, "retally", failing)
    with pytest.raises(RuntimeError):
        await w.services.groups.first.calendar.refresh_tallies()
    async with w.db.transaction() as tx:
        dirty = await Repository(tx).dirty_tallies("main")
    assert dirty == [2, 3]  # 1 was edited; 2 failed and 3 was not reached: both stay marked
