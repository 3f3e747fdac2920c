"""Durations (`90s`, `45m`, `12h`, `14d`) and points in time (a duration from now or ISO 8601).

All times in the domain are integer milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.domain.errors import Refusal

_UNITS_MS: dict[str, int] = {
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_DURATION = re.compile(r"(\d{1,7})([smhdw])")
_DURATION_FULL = re.compile(r"(?:\d{1,7}[smhdw])+")
# Longer than any sensible ballot, short enough that ms arithmetic never overflows SQLite.
MAX_DURATION_MS = 3_650 * 86_400_000


class DurationError(Refusal, ValueError):
    """A duration or time could not be understood; the message is fit to show a user."""


def parse_duration(text: str) -> int:
    """Parse `90s`, `45m`, `12h`, `14d`, `2w` or a combination like `1d12h` into milliseconds."""
    cleaned = text.strip().lower()
    if not cleaned or not _DURATION_FULL.fullmatch(cleaned):
        raise DurationError(f"'{text}' is not a duration (use e.g. 90s, 45m, 12h, 14d)")
    total = sum(int(n) * _UNITS_MS[unit] for n, unit in _DURATION.findall(cleaned))
    if total <= 0:
        raise DurationError(f"'{text}' is not a positive duration")
    if total > MAX_DURATION_MS:
        raise DurationError(f"'{text}' is longer than ten years")
    return total


def parse_when(text: str, now_ms: int) -> int:
    """Parse WHEN: a duration from `now_ms`, or an ISO 8601 date-time (UTC when no offset)."""
    try:
        return now_ms + parse_duration(text)
    except DurationError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DurationError(
            f"'{text}' is neither a duration (e.g. 14d) nor an ISO 8601 time "
            "(e.g. 2026-12-01T12:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def format_duration(ms: int) -> str:
    """Render milliseconds compactly and readably: `3d 4h`, `45m`, `12s`."""
    if ms < 0:
        ms = 0
    seconds = ms // 1000
    days, rem = divmod(seconds, 86_400)
    hours, rem = divmod(rem, 3_600)
    minutes, secs = divmod(rem, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m")) if v]
    if secs and not days:
        parts.append(f"{secs}s")
    return " ".join(parts[:2]) or "0s"


# The moments an ISO 8601 date (and Python's datetime) can be written for:
# 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z.
MIN_TS = 0
MAX_TS = 253_402_300_799_999


def clamp_ts(ms: int) -> tuple[int, bool]:
    """`ms` moved into [MIN_TS, MAX_TS], and whether it had to be moved.

    Total for any int: a stored time out of that range (a corrupt row, a forged event) is
    shown as the nearest moment that can be written, never a crash.
    """
    if ms < MIN_TS:
        return MIN_TS, True
    if ms > MAX_TS:
        return MAX_TS, True
    return ms, False


def format_utc(ms: int) -> str:
    """Render a moment as `2026-11-23 15:44 UTC`."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
