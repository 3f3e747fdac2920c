"""Time rules that respect every region: quiet hours and local times in messages."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
