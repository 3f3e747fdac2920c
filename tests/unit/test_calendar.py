"""Time-driven work with a manual clock and a fake scheduler: no test sleeps for a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain.clock_rules import format_local, in_quiet_hours, reminder_time, zone
from bot.domain.lifecycle import RequestState
from bot.services.calendar import DAY_MS
from bot.services.clock import SystemClock
from bot.services.deadlines import Timers
from storage.repo import Repository
from tests.unit.test_engine import ALICE, BOB, CAROL, DAVE, MAIN, World

HOUR = 3_600_000


class FakeTimers:
    """Records what the engine schedules; the test fires jobs by hand."""

    def __init__(self) -> None:
        self.jobs: dict[str, tuple[int, Callable[..., Awaitable[None]], tuple[Any, ...]]] = {}
        self.crons: dict[str, dict[str, str]] = {}
        self.intervals: dict[str, float] = {}

    def at(
        self, job_id: str, when_ms: int, func: Callable[..., Awaitable[None]], *args: Any
    ) -> None:
        self.jobs[job_id] = (when_ms, func, args)

    def cancel(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)

    def cancel_prefix(self, prefix: str) -> None:
        for job_id in [j for j in self.jobs if j.startswith(prefix)]:
            del self.jobs[job_id]

    def cron(self, job_id: str, fields: dict[str, str], tz: ZoneInfo, func: Any) -> None:
        self.crons[job_id] = fields

    def every(self, job_id: str, seconds: float, func: Any) -> None:
        self.intervals[job_id] = seconds

    next_cron_ms = staticmethod(Timers.next_cron_ms)

    def due(self, prefix: str = "") -> dict[str, int]:
        return {j: when for j, (when, _, _) in self.jobs.items() if j.startswith(prefix)}

    async def fire(self, job_id: str) -> None:
        _, func, args = self.jobs[job_id]
        await func(*args)


@pytest.fixture
def timers(opened: World) -> FakeTimers:
    fake = FakeTimers()
    opened.services.groups.first.calendar.timers = fake  # type: ignore[assignment]
    return fake


async def reschedule(world: World, **settings: Any) -> None:
    from dataclasses import replace

    world.services.groups.first.calendar.settings = replace(
        world.services.groups.first.calendar.settings, **settings
    )
    async with world.db.transaction() as tx:
        repo = Repository(tx)
        req = await repo.request(1)
        assert req is not None
        await world.services.groups.first.calendar.schedule(repo, req)


def ms(year: int, month: int, day: int, hour: int, minute: int = 0, tz: str = "UTC") -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


# --- quiet hours, pure --------------------------------------------------------------------


def test_a_reminder_due_in_the_night_moves_to_the_evening_before() -> None:
    tokyo = zone("Asia/Tokyo")
    due = ms(2026, 11, 25, 3, tz="Asia/Tokyo")
    moved = reminder_time(due, tokyo, not_before_ms=0)
    assert moved == ms(2026, 11, 24, 21, 30, tz="Asia/Tokyo")
    assert not in_quiet_hours(moved, tokyo)


def test_a_reminder_late_in_the_evening_moves_earlier_the_same_evening() -> None:
    lagos = zone("Africa/Lagos")
    due = ms(2026, 11, 24, 23, 15, tz="Africa/Lagos")
    assert reminder_time(due, lagos, 0) == ms(2026, 11, 24, 21, 30, tz="Africa/Lagos")


def test_a_daytime_reminder_stays_and_one_that_cannot_move_stays_too() -> None:
    berlin = zone("Europe/Berlin")
    noon = ms(2026, 11, 24, 12, tz="Europe/Berlin")
    assert reminder_time(noon, berlin, 0) == noon
    night = ms(2026, 11, 25, 2, tz="Europe/Berlin")
    opened_after_evening = ms(2026, 11, 24, 23, tz="Europe/Berlin")
    assert reminder_time(night, berlin, opened_after_evening) == night  # better late than never


def test_local_times_show_utc_too() -> None:
    when = ms(2026, 11, 24, 12)
    assert format_local(when, zone("UTC")) == "2026-11-24 12:00 UTC"
    assert format_local(when, zone("Asia/Tokyo")) == "2026-11-24 21:00 JST (12:00 UTC)"
    assert zone("Not/AZone").key == "UTC"


def test_timers_refuse_a_job_that_is_not_async() -> None:
    """APScheduler 3 runs a plain callable returning a coroutine in a thread and silently
    drops the coroutine: such a job would never run. The timers refuse it outright."""

    async def job() -> None:
        return None

    timers = Timers(SystemClock())
    with pytest.raises(TypeError, match="async"):
        timers.at("x", 0, lambda: job())
    with pytest.raises(TypeError, match="async"):
        timers.every("y", 1, lambda: job())


async def test_real_timers_run_an_async_job_and_clamp_a_past_time_to_now() -> None:
    ran = asyncio.Event()

    async def job(value: int) -> None:
        assert value == 7
        ran.set()

    timers = Timers(SystemClock())
    timers.start()
    try:
        timers.at("past", 0, job, 7)  # overdue: runs at once, not skipped as a misfire
        await asyncio.wait_for(ran.wait(), 5)
    finally:
        timers.stop()


def test_next_cron_in_the_group_time_zone() -> None:
    fields = {"minute": "0", "hour": "9", "day": "*", "month": "*", "day_of_week": "mon"}
    monday_nine_tokyo = ms(2026, 11, 30, 9, tz="Asia/Tokyo")
    after = ms(2026, 11, 24, 0)
    assert Timers.next_cron_ms(fields, zone("Asia/Tokyo"), after) == monday_nine_tokyo


# --- reminders through the engine --------------------------------------------------------


async def test_reminders_are_scheduled_per_offset_and_zone(
    opened: World, timers: FakeTimers
) -> None:
    async with opened.db.transaction() as tx:
        await Repository(tx).set_member_tz(ALICE, "Asia/Tokyo")
    req = await opened.request()
    # Put the deadline where 24 h before it is 03:00 in Tokyo and daytime in Europe.
    deadline = ms(2027, 2, 2, 18)  # 03:00 JST on Feb 3; the 24h reminder: 18:00 UTC Feb 1
    async with opened.db.transaction() as tx:
        await Repository(tx).update_request(req.id, deadline_at=deadline)
    opened.clock.now = ms(2027, 1, 20, 12)  # the world opened its ballot on 2027-01-15
    await reschedule(opened, reminders_ms=(48 * HOUR, 24 * HOUR), group_tz="Europe/Berlin")
    due = timers.due("req:1:remind:")
    assert len(due) == 4  # two offsets x (Tokyo, everyone else)
    slot24 = {j: w for j, w in due.items() if f":{24 * HOUR}@" in j}
    # Tokyo's moves to 21:30 JST the evening before (12:30 UTC); everyone else's stays.
    assert sorted(slot24.values()) == [ms(2027, 2, 1, 12, 30), deadline - 24 * HOUR]
    assert timers.due("req:1:deadline") == {"req:1:deadline": deadline}


async def test_a_reminder_goes_only_to_members_without_a_position_and_only_once(
    opened: World, timers: FakeTimers
) -> None:
    await opened.apply(opened.reaction(ALICE, "👍"), opened.command(BOB, "!cb concern Hmm."))
    await reschedule(opened, reminders_ms=(24 * HOUR,))
    [job] = list(timers.due("req:1:remind:"))
    await timers.fire(job)
    await timers.fire(job)  # a double wake-up sends nothing twice
    reminders = await opened.messages("reminder")
    assert sorted(r.room_id or "" for r in reminders) == [f"dm:{CAROL}", f"dm:{DAVE}"]
    body = reminders[0].payload["body"]
    assert "!cb support --request 1" in body
    assert reminders[0].payload["m.mentions"]["user_ids"][0] in (CAROL, DAVE)


async def test_the_last_reminder_tells_the_chairs_about_silent_groups(
    opened: World, timers: FakeTimers
) -> None:
    await opened.apply(opened.reaction(ALICE, "👍"))
    await reschedule(opened, reminders_ms=(24 * HOUR,))
    [job] = list(timers.due("req:1:remind:"))
    await timers.fire(job)
    notes = [
        m
        for m in await opened.messages("reply")
        if m.payload["consensus_bot"].get("event") == "silent-groups"
    ]
    assert len(notes) == 1
    assert "extend" in notes[0].payload["body"]


async def test_a_moved_deadline_drops_the_old_slots(opened: World, timers: FakeTimers) -> None:
    await reschedule(opened, reminders_ms=(24 * HOUR,))
    [old] = list(timers.due("req:1:remind:"))
    _, func, args = timers.jobs[old]
    extend = opened.command("@chair:x", "!cb extend 3d")
    await opened.apply(extend)
    assert old not in timers.jobs
    await func(*args)  # the old job fires anyway (it was already running): nothing is sent
    assert await opened.messages("reminder") == []


async def test_an_overdue_deadline_fires_once(opened: World, timers: FakeTimers) -> None:
    req = await opened.request()
    opened.clock.now = req.deadline_at + DAY_MS  # the bot was down past the deadline
    await opened.services.groups.first.calendar.restore()
    _, fire, args = timers.jobs["req:1:deadline"]
    await fire(*args)
    await fire(*args)  # a double wake-up
    assert len(await opened.messages("summary")) == 1
    assert (await opened.request()).state is RequestState.DRAFTED


# --- digests and nudges ------------------------------------------------------------------


async def test_the_digest_lists_open_waiting_and_decided(opened: World, timers: FakeTimers) -> None:
    await opened.services.groups.first.calendar.fire_digest()
    [digest] = await opened.messages("digest")
    assert digest.room_id == MAIN
    assert digest.payload["consensus_bot"]["open"] == [1]
    assert "Open for positions" in digest.payload["body"]


async def test_a_missed_digest_is_posted_once_at_start(opened: World, timers: FakeTimers) -> None:
    fields = {"minute": "0", "hour": "9", "day": "*", "month": "*", "day_of_week": "*"}
    await reschedule(opened, digest_cron=fields)
    calendar = opened.services.groups.first.calendar
    assert await calendar.catch_up_digest() is False  # first start: nothing was missed
    opened.clock.advance(3 * DAY_MS)  # down for three days: three slots missed
    assert await calendar.catch_up_digest() is True
    assert await calendar.catch_up_digest() is False
    assert len(await opened.messages("digest")) == 1


async def test_chairs_are_nudged_once_a_day_about_a_waiting_draft(
    opened: World, timers: FakeTimers
) -> None:
    await opened.apply(opened.command("@chair:x", "!cb close"))
    calendar = opened.services.groups.first.calendar

    def nudges() -> Awaitable[list[Any]]:
        async def get() -> list[Any]:
            return [
                m
                for m in await opened.messages("reply")
                if m.payload["consensus_bot"].get("event") == "nudge"
            ]

        return get()

    await calendar.nudge_chairs()
    assert await nudges() == []  # not a day yet
    opened.clock.advance(DAY_MS + 1)
    await calendar.nudge_chairs()
    await calendar.nudge_chairs()
    assert len(await nudges()) == 1
    opened.clock.advance(DAY_MS + 1)
    await calendar.nudge_chairs()
    assert len(await nudges()) == 2


def test_day_constant() -> None:
    assert datetime.fromtimestamp(DAY_MS / 1000, tz=UTC).day == 2
