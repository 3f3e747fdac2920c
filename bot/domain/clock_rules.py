"""Time rules that respect every region: quiet hours and local times in messages."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.durations import clamp_ts

QUIET_START = time(22, 0)
QUIET_END = time(7, 0)


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """A time zone by IANA name, or the fallback when unknown."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _local(ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(tz)


def in_quiet_hours(ms: int, tz: ZoneInfo) -> bool:
    """True between 22:00 and 07:00 local time."""
    t = _local(ms, tz).time()
    return t >= QUIET_START or t < QUIET_END


def reminder_time(due_ms: int, tz: ZoneInfo, not_before_ms: int) -> int:
    """When to send a reminder due at `due_ms` to someone in `tz`.

    A reminder that would arrive in the member's night is moved earlier, to 21:30 local time
    the evening before, when that is still after `not_before_ms`; otherwise it stays at
    `due_ms` (a reminder late at night beats none).
    """
    if not in_quiet_hours(due_ms, tz):
        return due_ms
    local = _local(due_ms, tz)
    evening = local.date() if local.time() >= QUIET_START else local.date() - timedelta(days=1)
    moved = datetime.combine(evening, time(21, 30), tzinfo=tz)
    moved_ms = int(moved.timestamp() * 1000)
    return moved_ms if not_before_ms <= moved_ms < due_ms else due_ms


def format_local(ms: int, tz: ZoneInfo) -> str:
    """`2026-11-23 17:44 CET (16:44 UTC)`, or just UTC when the zone is UTC."""
    utc = _local(ms, ZoneInfo("UTC"))
    if tz.key == "UTC":
        return utc.strftime("%Y-%m-%d %H:%M UTC")
    local = _local(ms, tz)
    return f"{local.strftime('%Y-%m-%d %H:%M %Z')} ({utc.strftime('%H:%M UTC')})"


# English names on purpose: `strftime("%a")` follows the process locale, and a message must
# read the same whichever machine the bot runs on.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_UTC = ZoneInfo("UTC")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _zone_label(moment: datetime) -> str:
    """The zone abbreviation in force at `moment` (`CET`, `CEST`, `EDT`, `JST`, `IST`).

    The tz database writes a numeric abbreviation (`+1345`, `-03`) for zones that have no
    established one; that reads like a stray number beside a time, so it becomes `UTC+13:45`
    or `UTC-3`.
    """
    name = moment.tzname() or ""
    if name and name[0] not in "+-":
        return name
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}:{rest:02d}" if rest else f"UTC{sign}{hours}"


def _day(moment: datetime, with_year: bool) -> str:
    text = f"{_WEEKDAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]}"
    return f"{text} {moment.year}" if with_year else text


def format_when(
    ms: int,
    tz: ZoneInfo | str,
    *,
    utc_beside: bool = True,
    now_ms: int | None = None,
) -> str:
    """A moment as members read it: `Fri 29 Jan 09:00 CET (08:00 UTC)`.

    Weekday, day, month, 24-hour time and the zone's abbreviation at that moment (so the two
    02:30s of an autumn DST change read `02:30 CEST` and `02:30 CET`), then the same moment in
    UTC, which everyone in a group spread over many zones can convert from. In UTC itself it
    is just `Fri 29 Jan 08:00 UTC`. When the UTC side falls on another day, it names that
    day: `Fri 29 Jan 23:30 EST (Sat 04:30 UTC)`, so nobody is off by a day.

    The year is added when the moment is not in the year of `now_ms` (both taken in `tz`):
    `Mon 4 Jan 2027 09:00 CET (08:00 UTC)` on 20 December. The messages that show these times
    (deadlines, reminders, digests) are about the coming weeks, where the weekday and date
    are enough and a year is noise; across a new year, or for a past moment, the year is what
    makes the date unambiguous. Without `now_ms` the year is always shown: a caller that
    does not know when the text is read (an exported record, say) gets the complete form.

    `tz` is a `ZoneInfo` or an IANA name; an unknown name falls back to UTC, which the text
    then says. Total for any int: a moment outside what a date can show is shown as the
    nearest one that can (see `clamp_ts`).
    """
    zone_info = tz if isinstance(tz, ZoneInfo) else zone(tz)
    ms, _ = clamp_ts(ms)
    utc = _local(ms, _UTC)
    try:
        local = _local(ms, zone_info)
    except OverflowError:  # the last moments of year 9999 east of Greenwich
        local = utc
    with_year = True
    if now_ms is not None:
        now, _ = clamp_ts(now_ms)
        try:
            with_year = _local(now, zone_info).year != local.year
        except OverflowError:
            with_year = True
    label = _zone_label(local)
    text = f"{_day(local, with_year)} {local:%H:%M} {label}"
    if label == "UTC" or not utc_beside:
        return text
    if utc.date() == local.date():
        return f"{text} ({utc:%H:%M} UTC)"
    return f"{text} ({_WEEKDAYS[utc.weekday()]} {utc:%H:%M} UTC)"
