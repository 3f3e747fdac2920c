"""The record is the decision: the draft, `status`, the summary block and every export agree,
and a decided request's record never changes (bytes and head), whatever happens after.

Hypothesis drives a request through random interleavings of reactions, commands, redactions
(by anyone, from any room), back-dated late inputs, roster removals and restarts, before and
after the close and after the decision; the engine runs over a real SQLite file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.record import render_json, verify_json
from bot.services.export import export_record, render
from storage.database import Database
from storage.repo import Repository
from tests.unit.test_engine import (
    ALICE,
    BOB,
    CAROL,
    CHAIR,
    DAVE,
    MALLORY,
    ROOM,
    World,
    make_services,
    make_settings,
    make_world,
)

PEOPLE = (ALICE, BOB, CAROL, DAVE, MALLORY, CHAIR)
KEYS = ("👍", "👌", "🤔", "👎", "🤐", "✅", "✋")
COMMANDS = (
    "support Good work.",
    "no-objection",
    "concern Not sure.",
    "object No track record.",
    "abstain",
    "recuse Conflict.",
    "withdraw",
)
OTHER_ROOM = "!elsewhere:x"
SKEW = 5 * 60_000

op = st.one_of(
    st.tuples(st.just("react"), st.integers(0, 5), st.integers(0, len(KEYS) - 1)),
    st.tuples(st.just("command"), st.integers(0, 5), st.integers(0, len(COMMANDS) - 1)),
    st.tuples(st.just("redact"), st.integers(0, 5), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("backdated"), st.integers(0, 3), st.integers(0, len(KEYS) - 1)),
    st.tuples(st.just("remove"), st.integers(0, 3)),
    st.tuples(
        st.just("restart"),
    ),
)
phases = st.tuples(st.lists(op, max_size=12), st.lists(op, max_size=8), st.lists(op, max_size=8))


class Run:
    """One scenario over a World, remembering what it sent so redactions can aim at it."""

    def __init__(self, world: World, path: Path) -> None:
        self.w = world
        self.path = path
        self.sent: list[str] = []
        self.closed_at: int | None = None

    async def restart(self) -> None:
        await self.w.db.close()
        db = Database(self.path)
        await db.open()
        self.w.db = db
        self.w.services = make_services(make_settings(), db, self.w.clock)

    async def step(self, action: tuple[Any, ...]) -> None:
        w = self.w
        w.clock.advance(7_000)
        kind = action[0]
        if kind == "react":
            event = w.reaction(PEOPLE[action[1]], KEYS[action[2]], ts=w.clock.now_ms())
        elif kind == "command":
            body = f"!cb {COMMANDS[action[2]]}"
            event = w.command(PEOPLE[action[1]], body, ts=w.clock.now_ms())  # type: ignore[assignment]
        elif kind == "redact":
            if not self.sent:
                return
            target = self.sent[action[2] % len(self.sent)]
            room = ROOM if action[3] else OTHER_ROOM
            event = w.redaction(PEOPLE[action[1]], target, room=room, ts=w.clock.now_ms())  # type: ignore[assignment]
        elif kind == "backdated":
            # Stamped before the close (or an hour ago), received now.
            stamp = (self.closed_at or w.clock.now_ms()) - 3_600_000
            event = w.reaction(PEOPLE[action[1]], KEYS[action[2]], ts=stamp)
        elif kind == "remove":
            event = w.command(CHAIR, f"!cb member remove {PEOPLE[action[1]]}", room="!main:x")  # type: ignore[assignment]
        else:
            await self.restart()
            return
        self.sent.append(event.event_id)
        await w.apply(event)

    async def export(self) -> dict[str, Any]:
        async with self.w.db.transaction() as tx:
            return await export_record(
                Repository(tx), 1, group_name="Test Group", quorum=0.5, skew_ms=SKEW
            )

    async def status(self) -> dict[str, Any]:
        ask = self.w.command(CHAIR, "!cb status")
        await self.w.apply(ask)
        data: dict[str, Any] = (await self.w.reply_to(ask.event_id))["consensus_bot"]
        return data


def agree(record: dict[str, Any], block: dict[str, Any]) -> None:
    """A summary/status `consensus_bot` block says what the record says."""
    sense = record["sense"]
    assert block["counts"] == sense["counts"]
    assert block["eligible"] == sense["eligible"]
    assert block["participated"] == sense["participated"]
    assert block["proposed_outcome"] == sense["proposal"]


def formats_agree(record: dict[str, Any]) -> None:
    text = render(record, "json")
    assert verify_json(text) == []
    assert json.loads(text) == record
    rows = list(csv.DictReader(io.StringIO(render(record, "csv"))))
    positions = [e for e in record["entries"] if e["type"] == "position"]
    assert len(rows) == len(positions)
    assert record["head"] in render(record, "md")


async def scenario(before: list[Any], closed: list[Any], decided: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bot.db"
        run = Run(await make_world(path), path)
        try:
            await run.w.open_request()
            for action in before:
                await run.step(action)
            await run.w.apply(run.w.command(CHAIR, "!cb close"))
            run.closed_at = (await run.w.request()).closed_at
            draft = (await run.w.messages("summary"))[-1].payload["consensus_bot"]
            run.w.clock.advance(SKEW + 1_000)  # from now on, everything is late
            for action in closed:
                await run.step(action)
            await run.w.apply(
                run.w.command(
                    CHAIR, "!cb decide admit The group agreed after the discussion on the list."
                )
            )
            [outcome, _, _] = await run.w.messages("outcome")
            record = await run.export()
            agree(record, draft)
            agree(record, await run.status())
            formats_agree(record)
            assert outcome.payload["consensus_bot"]["record_head"] == record["head"]
            frozen = render_json(record)
            for action in decided:
                await run.step(action)
            after = await run.export()
            assert render_json(after) == frozen
            agree(after, await run.status())
        finally:
            await run.w.db.close()


@settings(max_examples=40, deadline=None)
@given(phases)
def test_the_record_is_the_decision(plan: tuple[list[Any], list[Any], list[Any]]) -> None:
    asyncio.run(scenario(*plan))
