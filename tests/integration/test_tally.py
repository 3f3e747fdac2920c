"""One visible tally, against a real Synapse: a member changing 👍 → 🤔 → 👎 leaves one
position reaction of theirs, the pinned tally's last edit shows the truth, and a redraft is
an edit of the draft."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.sim_member import Event, bot_message
from bot.devtools.synapse import LocalSynapse
from tests.integration.harness import Group, running_group
from tests.integration.test_process import command, open_request

pytestmark = pytest.mark.real


@pytest.fixture
async def group(synapse: LocalSynapse, tmp_path: Path) -> AsyncIterator[Group]:
    async with running_group(synapse, tmp_path, "tally") as g:
        yield g


def edits_of(events: list[Event], target: str) -> list[dict[str, Any]]:
    return [
        e["content"]
        for e in events
        if e.get("content", {}).get("m.relates_to", {}).get("rel_type") == "m.replace"
        and e["content"]["m.relates_to"].get("event_id") == target
    ]


async def test_one_visible_tally(group: Group) -> None:
    chair, alice, bob = group.chair, group.members["alice"], group.members["bob"]
    room, ballot = await open_request(group, "--deadline 1h")
    tally = await alice.wait_for(bot_message("tally", 1), room_id=room)
    pinned = await alice.gateway.state_event(room, "m.room.pinned_events")
    for _ in range(20):  # the pin follows the tally's sending
        if pinned and pinned.get("pinned") == [tally["event_id"]]:
            break
        await asyncio.sleep(0.5)
        pinned = await alice.gateway.state_event(room, "m.room.pinned_events")
    assert pinned == {"pinned": [tally["event_id"]]}

    for key in ("👍", "🤔", "👎"):
        await alice.react(room, ballot["event_id"], key)
        await asyncio.sleep(1.0)
    await asyncio.sleep(5.0)  # the live tally is edited every few seconds
    live = [
        ev
        for ev in await alice.gateway.reactions(room, ballot["event_id"])
        if ev.get("sender") == alice.user_id
    ]
    assert [ev["content"]["m.relates_to"]["key"] for ev in live] == ["👎"]
    await alice.sync(0)
    last = edits_of(alice.events.get(room, []), tally["event_id"])[-1]["m.new_content"]
    counts = last["consensus_bot"]["counts"]
    assert (counts["support"], counts["concern"], counts["object"]) == (0, 0, 1)

    # A disposition after the close changes the draft: it is edited, not posted again.
    await bob.react(room, ballot["event_id"], "👍")
    await command(chair, room, "!cb close")
    draft = await chair.wait_for(bot_message("summary", 1), room_id=room)
    objection = draft["content"]["consensus_bot"]["open_objections"]
    assert objection == 1
    await command(
        chair, room, "!cb dispose 1 addressed Alice's worry is answered by the charter's rule."
    )
    await asyncio.sleep(2.0)
    await chair.sync(0)
    drafts = [
        e
        for e in chair.events.get(room, [])
        if bot_message("summary", 1)(e) and "m.new_content" not in e.get("content", {})
    ]
    assert len(drafts) == 1
    edited = edits_of(chair.events.get(room, []), draft["event_id"])
    assert edited
    assert edited[-1]["m.new_content"]["consensus_bot"]["open_objections"] == 0
