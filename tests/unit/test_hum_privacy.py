"""Hums are anonymous: no rendered text, stored row or reply tells who hummed what."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_engine import ALICE, BOB, CAROL, CHAIR, DAVE, World, make_world

MEMBERS = (ALICE, BOB, CAROL, DAVE)
HUM = st.tuples(st.sampled_from(["for", "against"]), st.sampled_from(["soft", "loud"]))


async def run(hums: dict[str, tuple[str, str]]) -> tuple[World, list[str]]:
    directory = tempfile.mkdtemp()
    world = await make_world(Path(directory) / "db.sqlite")
    await world.open_request()
    commands = []
    for member, (side, strength) in hums.items():
        dm = f"!dm-{member[1:]}"
        await world.engine.remember_dm(member, dm)
        command = world.command(member, f"!cb hum {side} {strength} --request 1", room=dm)
        commands.append(command.event_id)
        await world.apply(command)
    await world.apply(world.command(CHAIR, "!cb close"))
    return world, commands


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(st.sampled_from(MEMBERS), HUM, min_size=1, max_size=4))
def test_no_text_tells_who_hummed_what(hums: dict[str, tuple[str, str]]) -> None:
    async def check() -> None:
        world, commands = await run(hums)
        try:
            replies = [await world.reply_to(c) for c in commands]
            # Every hummer gets the same answer whatever they hummed: nothing to overhear.
            assert len({r["body"] for r in replies}) == 1
            assert all(
                "for" not in r["body"].split() and "against" not in r["body"].split()
                for r in replies
            )
            for item in await world.messages():
                body = item.payload.get("body", "")
                hums_field = str(item.payload["consensus_bot"].get("hums", ""))
                assert "@" not in hums_field
                for line in body.splitlines():
                    if line.startswith("Hums:"):
                        assert "@" not in line, line
            stored = await world.scalar("SELECT group_concat(hummer) FROM hums")
            assert all(m not in (stored or "") for m in MEMBERS)
            assert await world.scalar("SELECT count(*) FROM hums") == len(hums)
        finally:
            await world.db.close()

    asyncio.run(check())
