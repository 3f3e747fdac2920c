"""After-commit plans belong to the job's unit of work (issue #22), not to the `Outbox`.

A job's `AfterCommit` plan is made with its transaction, runs only once that transaction
committed, is dropped when it rolls back, and loses what an event planned inside a
savepoint that rolled back. `!cb digest` rides on it: the digest is posted after the
command's batch committed, each ballot counted in its own short transaction.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.matrix.events import LeftRoom, SyncBatch
from bot.services.batches import SYNC_TOKEN
from bot.services.handlers import Ctx, Reply
from bot.services.outbox import Outbox
from bot.services.plans import AfterCommit
from storage.backend import Tx
from storage.repo import Repository
from tests.unit.test_engine import ALICE, BOB, CAROL, CHAIR, DAVE, MAIN, ROOM, World


class _Spy:
    """What the plans ran: the timers followed and the digests fired."""

    def __init__(self, w: World, monkeypatch: pytest.MonkeyPatch) -> None:
        self.follows: list[set[int]] = []
        self.digests = 0
        calendar = w.services.groups.first.calendar
        follow, fire_digest = calendar.follow, calendar.fire_digest

        async def spy_follow(request_ids: Iterable[int]) -> None:
            ids = set(request_ids)
            if ids:
                self.follows.append(ids)
            await follow(ids)

        async def spy_digest() -> None:
            self.digests += 1
            await fire_digest()

        monkeypatch.setattr(calendar, "follow", spy_follow)
        monkeypatch.setattr(calendar, "fire_digest", spy_digest)


def _planner(request_id: int, *, fail: bool = False) -> Any:
    """A command handler that plans everything a plan holds, then fails or answers."""

    async def handler(ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        ctx.out.after.schedule_changed(request_id)
        ctx.out.after.redraft.add(request_id)
        ctx.out.after.republish = True
        ctx.out.after.digests.add("main")
        await ctx.repo.set_meta(f"planned-{request_id}", "yes")
        if fail:
            raise RuntimeError("boom")
        return Reply(True)

    return handler


async def test_after_commit_a_failing_events_plans_are_forgotten_with_its_savepoint(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = opened
    spy = _Spy(w, monkeypatch)
    monkeypatch.setitem(w.services.groups.first.handlers.table, "status", _planner(1, fail=True))
    monkeypatch.setitem(w.services.groups.first.handlers.table, "list", _planner(7))
    result = await w.apply(
        w.reaction(ALICE, "👍"), w.command(CAROL, "!cb status"), w.command(BOB, "!cb list")
    )
    # The batch was applied again event by event (its first attempt and that attempt's
    # plan rolled back); the failing event's plans went with its savepoint.
    assert (result.applied, result.failed) == (2, 1)
    assert spy.follows == [{7}]
    assert spy.digests == 1  # the surviving command's, once
    assert result.republish
    assert await w.scalar("SELECT value FROM meta WHERE key = 'planned-1'") is None


async def test_after_commit_a_rolled_back_batch_runs_no_plan(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = opened
    spy = _Spy(w, monkeypatch)
    monkeypatch.setitem(w.services.groups.first.handlers.table, "list", _planner(1))

    async def broken(*args: Any) -> None:
        raise RuntimeError("the transaction fails after its events")

    monkeypatch.setattr(w.services.batches, "_on_left", broken)
    batch = SyncBatch(
        next_batch="never-stored",
        events=[w.command(BOB, "!cb list")],
        left=[LeftRoom(ROOM, "leave", CHAIR, None)],
    )
    with pytest.raises(RuntimeError):
        await w.services.batches.apply_batch(batch)
    assert spy.follows == []
    assert spy.digests == 0
    assert await w.scalar("SELECT value FROM meta WHERE key = ?", (SYNC_TOKEN,)) is None
    assert await w.messages("digest") == []


async def test_after_commit_the_plan_runs_once_the_transaction_committed(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = opened
    monkeypatch.setitem(w.services.groups.first.handlers.table, "list", _planner(1))
    seen: list[str | None] = []
    follow = w.services.groups.first.calendar.follow

    async def reading_follow(request_ids: Iterable[int]) -> None:
        # A transaction of its own: inside the batch's it would wait for the writer for ever.
        async def read() -> str | None:
            async with w.db.transaction() as tx:
                return await Repository(tx).get_meta("planned-1")

        ids = set(request_ids)
        if ids:
            seen.append(await asyncio.wait_for(read(), 10))
        await follow(ids)

    monkeypatch.setattr(w.services.groups.first.calendar, "follow", reading_follow)
    await w.apply(w.command(BOB, "!cb list"))
    assert seen == ["yes"]


async def test_after_commit_the_outbox_is_a_queue_again(opened: World) -> None:
    plan = AfterCommit()
    async with opened.db.transaction() as tx:
        out = Outbox(Repository(tx), 0, plan)
        assert {"reschedule", "redraft", "retally", "republish"}.isdisjoint(vars(out))
        assert out.after is plan  # carried for the services, owned by the job
        assert not plan.ring
        await out.invite(ALICE, room_id=MAIN)
        assert plan.ring  # a queued row wakes the sender, once committed
        assert out.queued == 1


# ---- !cb digest: one short transaction per ballot --------------------------------------------


async def test_digest_command_counts_each_ballot_in_its_own_transaction(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = opened
    assert await w.open_request("!req2:x", "$ballot2", applicant="@fred:x") == 2
    assert await w.open_request("!req3:x", "$ballot3", applicant="@gina:x") == 3
    await w.apply(
        w.reaction(ALICE, "👍"),
        w.reaction(CAROL, "👍", room="!req2:x", target="$ballot2"),
        w.reaction(DAVE, "🤔", room="!req3:x", target="$ballot3"),
    )
    # Number every transaction; note which one the command ran in and which ones counted.
    numbers = itertools.count(1)
    current = [0]
    transaction = w.db.transaction

    @asynccontextmanager
    async def numbered() -> AsyncIterator[Tx]:
        async with transaction() as tx:
            outer, current[0] = current[0], next(numbers)
            try:
                yield tx
            finally:
                current[0] = outer

    counted_in: list[int] = []
    sense = w.services.groups.first.ballots.sense

    async def spy_sense(repo: Repository, req: Any) -> Any:
        counted_in.append(current[0])
        return await sense(repo, req)

    command_in: list[int] = []
    digest = w.services.groups.first.handlers.table["digest"]

    async def spy_digest(ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        command_in.append(current[0])
        return await digest(ctx, args)

    monkeypatch.setattr(w.db, "transaction", numbered)
    monkeypatch.setattr(w.services.groups.first.ballots, "sense", spy_sense)
    monkeypatch.setitem(w.services.groups.first.handlers.table, "digest", spy_digest)
    command = w.command(CHAIR, "!cb digest", room=MAIN)
    await w.apply(command)
    monkeypatch.undo()
    assert await w.acks(command.event_id) == ["✅"]
    [posted] = await w.messages("digest")
    assert posted.payload["consensus_bot"]["open"] == [1, 2, 3]
    # Three ballots, three transactions of their own, none of them the command's batch.
    [batch] = command_in
    assert len(counted_in) == 3
    assert len(set(counted_in)) == 3
    assert batch not in counted_in
    # It says what the scheduled digest says.
    await w.services.groups.first.calendar.fire_digest()
    first, second = await w.messages("digest")
    assert first.payload["body"] == second.payload["body"]
