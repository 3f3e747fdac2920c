"""A hum is not learned across a reopen (issue 21, item 4).

The hums are counted again at each close and drop those of members removed or recused in
between; a later report differing from an earlier one in fewer than `hum_min` hummers would
tell their hums. Such a report is held: the last one given is repeated."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.hums import (
    MIN_HUMS_TO_REPORT,
    Hum,
    Loudness,
    Side,
    Strength,
    hum_report,
    hum_report_given,
)
from tests.unit.test_engine import ALICE, BOB, CAROL, CHAIR, DAVE, World, make_world

SOFT_FOR = Hum(Side.FOR, Strength.SOFT)
SOFT_AGAINST = Hum(Side.AGAINST, Strength.SOFT)
LOUD_AGAINST = Hum(Side.AGAINST, Strength.LOUD)
FIRST = {"a": SOFT_FOR, "b": SOFT_FOR, "c": SOFT_FOR, "d": LOUD_AGAINST}


def test_hum_reopen_a_difference_of_one_hum_is_held() -> None:
    report, new = hum_report_given(FIRST, [])
    assert new
    assert report.describe() == "for: soft, against: soft"
    without_d = {k: v for k, v in FIRST.items() if k != "d"}
    # Alone, these three hums would read "for: loud, against: none": d's hum, told.
    alone, _ = hum_report_given(without_d, [], minimum=3)
    assert (alone.for_, alone.against) == (Loudness.LOUD, Loudness.NONE)
    later, new = hum_report_given(without_d, [FIRST], minimum=3)
    assert not new
    assert later.held
    assert (later.for_, later.against) == (Loudness.SOFT, Loudness.SOFT)
    assert later.describe().startswith("for: soft, against: soft (as reported before")
    # The same hums again: the same report, nothing new to remember.
    again, new = hum_report_given(FIRST, [FIRST], minimum=3)
    assert (again, new) == (report, False)


def test_hum_reopen_enough_changed_hums_give_a_new_report() -> None:
    changed = {**FIRST, "a": SOFT_AGAINST, "b": SOFT_AGAINST, "c": SOFT_AGAINST}
    report, new = hum_report_given(changed, [FIRST], minimum=3)
    assert new
    assert not report.held
    assert (report.for_, report.against) == (Loudness.NONE, Loudness.LOUD)
    # ... but not when it is one hum away from any report given before.
    near_first = {**FIRST, "a": SOFT_AGAINST}
    held, new = hum_report_given(near_first, [FIRST, changed], minimum=3)
    assert held.held
    assert not new
    assert (held.for_, held.against) == (report.for_, report.against)  # the last given


ONE_HUM = st.builds(Hum, st.sampled_from(Side), st.sampled_from(Strength))
HUMS = st.dictionaries(st.sampled_from("abcdefgh"), ONE_HUM, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(HUMS, min_size=1, max_size=6), st.integers(MIN_HUMS_TO_REPORT, 5))
def test_hum_reopen_no_two_reports_isolate_fewer_than_the_minimum(
    rounds: list[dict[str, Hum]], minimum: int
) -> None:
    """Whatever the hums at each close, every two reports given differ in no hummer or in
    at least `minimum`, and each report shown is one that was given."""
    given_hums: list[dict[str, Hum]] = []
    shown = []
    for hums in rounds:
        report, new = hum_report_given(hums, given_hums, minimum=minimum)
        if new:
            given_hums.append(hums)
        shown.append(report)
    for i, first in enumerate(given_hums):
        for second in given_hums[i + 1 :]:
            differ = sum(1 for k in first.keys() | second.keys() if first.get(k) != second.get(k))
            assert differ == 0 or differ >= minimum
    reported = [(r.for_, r.against) for r in shown if r.reported]
    possible = {(r.for_, r.against) for r in (hum_report(list(h.values())) for h in given_hums)}
    assert set(reported) <= possible


async def _hum_then_close(world: World) -> None:
    hums = {ALICE: "for soft", BOB: "for soft", CAROL: "for soft", DAVE: "against loud"}
    for member, hum in hums.items():
        dm = f"!dm-{member[1:]}"
        await world.services.dms.remember(member, dm)
        await world.apply(world.command(member, f"!cb hum {hum} --request 1", room=dm))
    await world.apply(world.command(CHAIR, "!cb close"))


async def _draft_hums(world: World) -> str:
    drafts = await world.messages("summary")
    return str(drafts[-1].payload["consensus_bot"]["hums"])


async def test_hum_reopen_removing_a_member_does_not_tell_their_hum() -> None:
    world = await make_world(Path(tempfile.mkdtemp()) / "db.sqlite", hum_min=3)
    try:
        await world.open_request()
        await _hum_then_close(world)
        assert await _draft_hums(world) == "for: soft, against: soft"
        await world.apply(world.command(CHAIR, "!cb reopen 48h"))
        await world.apply(world.command(CHAIR, f"!cb member remove {DAVE}"))
        await world.apply(world.command(CHAIR, "!cb close"))
        second = await _draft_hums(world)
        assert "loud" not in second
        assert second.startswith("for: soft, against: soft (as reported before")
    finally:
        await world.db.close()


async def test_hum_reopen_a_public_recusal_does_not_tell_the_hum() -> None:
    world = await make_world(Path(tempfile.mkdtemp()) / "db.sqlite", hum_min=3)
    try:
        await world.open_request()
        await _hum_then_close(world)
        await world.apply(world.command(CHAIR, "!cb reopen 48h"))
        await world.apply(world.command(DAVE, "!cb recuse I work with Erin."))
        await world.apply(world.command(CHAIR, "!cb close"))
        assert (await _draft_hums(world)).startswith("for: soft, against: soft (as reported")
        # Three hums changing after a further reopen are enough for a new report.
        await world.apply(world.command(CHAIR, "!cb reopen 48h"))
        for member in (ALICE, BOB, CAROL):
            room = f"!dm-{member[1:]}"
            await world.apply(world.command(member, "!cb hum against soft --request 1", room=room))
        await world.apply(world.command(CHAIR, "!cb close"))
        assert await _draft_hums(world) == "for: none, against: loud"
    finally:
        await world.db.close()
