"""Hums are anonymous: no rendered text, stored row or reply tells who hummed what."""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.hums import (
    DEFAULT_HUM_MIN,
    MIN_HUMS_TO_REPORT,
    Hum,
    HumReport,
    Loudness,
    Side,
    Strength,
    hum_report,
)
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
        await world.services.dms.remember(member, dm)
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


# ---- the domain rule: only at close, only from the minimum on -------------------------------

ONE_HUM = st.builds(Hum, st.sampled_from(list(Side)), st.sampled_from(list(Strength)))
NOT_OPEN = HumReport(False, Loudness.NONE, Loudness.NONE)


@settings(max_examples=200)
@given(st.lists(ONE_HUM, max_size=40), st.integers(min_value=-5, max_value=50))
def test_nothing_is_reported_while_the_ballot_is_open(hums: list[Hum], minimum: int) -> None:
    report = hum_report(hums, closed=False, minimum=minimum)
    assert report == HumReport(False, Loudness.NONE, Loudness.NONE, ballot_open=True)
    assert report.describe() == "hums are reported when the ballot closes"


@settings(max_examples=200)
@given(st.integers(min_value=3, max_value=30), st.data())
def test_at_close_fewer_than_the_minimum_reports_nothing(minimum: int, data: st.DataObject) -> None:
    hums = data.draw(st.lists(ONE_HUM, max_size=minimum - 1))
    report = hum_report(hums, closed=True, minimum=minimum)
    assert report == NOT_OPEN
    assert report.describe() == "too few hums to report"
    enough = hums + data.draw(st.lists(ONE_HUM, min_size=minimum - len(hums), max_size=minimum))
    assert hum_report(enough, closed=True, minimum=minimum).reported


@pytest.mark.parametrize("minimum", [-1, 0, 1, 2, 3])
def test_the_minimum_never_goes_below_three(minimum: int) -> None:
    two = [Hum(Side.AGAINST, Strength.LOUD), Hum(Side.FOR, Strength.SOFT)]
    assert not hum_report(two, closed=True, minimum=minimum).reported
    assert hum_report([*two, two[0]], closed=True, minimum=minimum).reported
    assert MIN_HUMS_TO_REPORT == 3


def test_the_config_default_is_five() -> None:
    four = [Hum(Side.FOR, Strength.SOFT)] * 4
    assert DEFAULT_HUM_MIN == 5
    assert not hum_report(four, closed=True, minimum=DEFAULT_HUM_MIN).reported
    assert hum_report([*four, four[0]], closed=True, minimum=DEFAULT_HUM_MIN).reported


def test_the_defaults_keep_the_old_behaviour_for_callers_not_yet_updated() -> None:
    three = [
        Hum(Side.FOR, Strength.LOUD),
        Hum(Side.FOR, Strength.SOFT),
        Hum(Side.AGAINST, Strength.SOFT),
    ]
    assert hum_report(three) == hum_report(three, closed=True, minimum=MIN_HUMS_TO_REPORT)
    assert hum_report(three).reported
    assert not hum_report(three[:2]).reported


@settings(max_examples=200)
@given(st.lists(ONE_HUM, max_size=30), st.randoms(use_true_random=False))
def test_the_report_depends_only_on_how_many_of_each_not_on_order(
    hums: list[Hum], rnd: random.Random
) -> None:
    shuffled = list(hums)
    rnd.shuffle(shuffled)
    assert hum_report(shuffled, minimum=5) == hum_report(hums, minimum=5)


@pytest.mark.parametrize(
    ("hums", "for_", "against"),
    [
        ("FL FL FL FL FL", Loudness.LOUD, Loudness.NONE),
        ("FS FS FS AS AS", Loudness.SOFT, Loudness.SOFT),  # 3 of 5: under two thirds
        ("FL FS FS AS AS", Loudness.LOUD, Loudness.SOFT),  # 4 of 6: exactly two thirds
        ("AL AL AL FS FS", Loudness.SOFT, Loudness.LOUD),
    ],
)
def test_loudness_is_two_thirds_of_the_volume(hums: str, for_: Loudness, against: Loudness) -> None:
    side = {"F": Side.FOR, "A": Side.AGAINST}
    strength = {"L": Strength.LOUD, "S": Strength.SOFT}
    parsed = [Hum(side[h[0]], strength[h[1]]) for h in hums.split()]
    report = hum_report(parsed, closed=True, minimum=5)
    assert report == HumReport(True, for_, against)
    assert report.describe() == f"for: {for_.value}, against: {against.value}"


@pytest.mark.pg
async def test_hum_rows_on_postgresql_do_not_keep_the_order_they_came_in(pg_dsn: str) -> None:
    """A `pg_dump` prints a table's rows in the order they lie in the heap: hums written in
    the order the DMs came would line up with the processed events' times. The hums of a
    request are kept in the order of their anonymous keys instead."""
    import asyncpg

    from storage.postgres import PostgresDatabase
    from storage.repo import Repository

    db = PostgresDatabase(pg_dsn)
    await db.open()
    try:
        keys = [f"{n:02d}-hmac" for n in (7, 3, 9, 1, 5)]
        conn = await asyncpg.connect(pg_dsn)
        try:
            # (a throwaway database: no request row is needed to store hums for request 1)
            await conn.execute("ALTER TABLE hums DROP CONSTRAINT IF EXISTS hums_request_id_fkey")
            for key in keys:  # one hum per DM, in the order they came
                async with db.transaction() as tx:
                    await Repository(tx).set_hum(1, key, "for", "soft")
            heap = [r["hummer"] for r in await conn.fetch("SELECT hummer FROM hums")]
        finally:
            await conn.close()
    finally:
        await db.close()
    assert heap == sorted(keys)
