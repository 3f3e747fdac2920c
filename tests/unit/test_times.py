"""`format_when`: one way to show a moment, in every zone and across DST changes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.clock_rules import format_local, format_when
from bot.domain.durations import MAX_TS, format_utc


def ms(*parts: int) -> int:
    """Milliseconds of a UTC date-time."""
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)


NOW = ms(2027, 1, 10, 12, 0)  # a day in January 2027: moments in 2027 show no year
FRIDAY_8_UTC = ms(2027, 1, 29, 8, 0)


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("UTC", "Fri 29 Jan 08:00 UTC"),
        ("Europe/Paris", "Fri 29 Jan 09:00 CET (08:00 UTC)"),
        ("Asia/Tokyo", "Fri 29 Jan 17:00 JST (08:00 UTC)"),
        ("America/New_York", "Fri 29 Jan 03:00 EST (08:00 UTC)"),
        ("Asia/Kolkata", "Fri 29 Jan 13:30 IST (08:00 UTC)"),
        # Chatham keeps summer time in January; the tz database has no letters for it.
        ("Pacific/Chatham", "Fri 29 Jan 21:45 UTC+13:45 (08:00 UTC)"),
    ],
)
def test_each_zone(tz: str, expected: str) -> None:
    assert format_when(FRIDAY_8_UTC, tz, now_ms=NOW) == expected
    assert format_when(FRIDAY_8_UTC, ZoneInfo(tz), now_ms=NOW) == expected


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("UTC", "Thu 29 Jul 04:30 UTC"),
        ("Europe/Paris", "Thu 29 Jul 06:30 CEST (04:30 UTC)"),
        ("Asia/Tokyo", "Thu 29 Jul 13:30 JST (04:30 UTC)"),
        # The UTC side is on another day than the local one: it names its day.
        ("America/New_York", "Thu 29 Jul 00:30 EDT (04:30 UTC)"),
        ("Asia/Kolkata", "Thu 29 Jul 10:00 IST (04:30 UTC)"),
        ("Pacific/Chatham", "Thu 29 Jul 17:15 UTC+12:45 (04:30 UTC)"),
    ],
)
def test_each_zone_in_the_northern_summer(tz: str, expected: str) -> None:
    assert format_when(ms(2027, 7, 29, 4, 30), tz, now_ms=NOW) == expected


def test_the_utc_side_names_its_day_when_the_dates_differ() -> None:
    late_friday_utc = ms(2027, 1, 29, 20, 0)
    assert format_when(late_friday_utc, "Asia/Tokyo", now_ms=NOW) == (
        "Sat 30 Jan 05:00 JST (Fri 20:00 UTC)"
    )
    early_saturday_utc = ms(2027, 1, 30, 3, 0)
    assert format_when(early_saturday_utc, "America/New_York", now_ms=NOW) == (
        "Fri 29 Jan 22:00 EST (Sat 03:00 UTC)"
    )


def test_without_utc_beside() -> None:
    assert format_when(FRIDAY_8_UTC, "Europe/Paris", utc_beside=False, now_ms=NOW) == (
        "Fri 29 Jan 09:00 CET"
    )
    assert format_when(FRIDAY_8_UTC, "UTC", utc_beside=False, now_ms=NOW) == (
        "Fri 29 Jan 08:00 UTC"
    )


# --------------------------------------------------------------------------- the year


def test_the_year_is_shown_outside_the_current_year() -> None:
    in_2026 = ms(2026, 12, 20, 12, 0)
    assert format_when(FRIDAY_8_UTC, "Europe/Paris", now_ms=in_2026) == (
        "Fri 29 Jan 2027 09:00 CET (08:00 UTC)"
    )
    last_year = ms(2026, 1, 29, 8, 0)
    assert format_when(last_year, "UTC", now_ms=NOW) == "Thu 29 Jan 2026 08:00 UTC"


def test_without_now_the_year_is_always_shown() -> None:
    assert format_when(FRIDAY_8_UTC, "Europe/Paris") == "Fri 29 Jan 2027 09:00 CET (08:00 UTC)"


def test_the_current_year_is_the_one_in_the_shown_zone() -> None:
    # 23:30 UTC on New Year's Eve is already 1 January in Tokyo, like "now" there.
    now = ms(2027, 1, 1, 0, 0)
    moment = ms(2026, 12, 31, 23, 30)
    assert format_when(moment, "Asia/Tokyo", now_ms=now) == "Fri 1 Jan 08:30 JST (Thu 23:30 UTC)"
    assert format_when(moment, "UTC", now_ms=now) == "Thu 31 Dec 2026 23:30 UTC"


# --------------------------------------------------------------------------- DST changes


def test_european_spring_change_skips_the_hour_that_does_not_exist() -> None:
    # Sunday 29 March 2026: at 01:00 UTC Paris goes from 02:00 CET to 03:00 CEST.
    assert format_when(ms(2026, 3, 29, 0, 59), "Europe/Paris", now_ms=ms(2026, 3, 1)) == (
        "Sun 29 Mar 01:59 CET (00:59 UTC)"
    )
    assert format_when(ms(2026, 3, 29, 1, 0), "Europe/Paris", now_ms=ms(2026, 3, 1)) == (
        "Sun 29 Mar 03:00 CEST (01:00 UTC)"
    )
    # No moment of that night is shown at 02:xx, a local time that does not exist.
    shown = [
        format_when(ms(2026, 3, 29, 0, 0) + minute * 60_000, "Europe/Paris", now_ms=NOW)
        for minute in range(180)
    ]
    assert not [s for s in shown if " 02:" in s.split("(")[0]]


def test_european_autumn_change_tells_the_two_same_local_times_apart() -> None:
    # Sunday 25 October 2026: 02:30 happens twice in Paris, first in summer time.
    first = format_when(ms(2026, 10, 25, 0, 30), "Europe/Paris", now_ms=ms(2026, 10, 1))
    second = format_when(ms(2026, 10, 25, 1, 30), "Europe/Paris", now_ms=ms(2026, 10, 1))
    assert first == "Sun 25 Oct 02:30 CEST (00:30 UTC)"
    assert second == "Sun 25 Oct 02:30 CET (01:30 UTC)"


def test_us_spring_and_autumn_changes() -> None:
    march = ms(2026, 3, 1)
    # Sunday 8 March 2026, 2:00 EST becomes 3:00 EDT (07:00 UTC).
    assert format_when(ms(2026, 3, 8, 6, 59), "America/New_York", now_ms=march) == (
        "Sun 8 Mar 01:59 EST (06:59 UTC)"
    )
    assert format_when(ms(2026, 3, 8, 7, 0), "America/New_York", now_ms=march) == (
        "Sun 8 Mar 03:00 EDT (07:00 UTC)"
    )
    # Sunday 1 November 2026, 01:30 happens twice.
    assert format_when(ms(2026, 11, 1, 5, 30), "America/New_York", now_ms=march) == (
        "Sun 1 Nov 01:30 EDT (05:30 UTC)"
    )
    assert format_when(ms(2026, 11, 1, 6, 30), "America/New_York", now_ms=march) == (
        "Sun 1 Nov 01:30 EST (06:30 UTC)"
    )


def test_an_hour_apart_in_utc_is_an_hour_apart_in_the_text_across_the_change() -> None:
    # 00:30 and 01:30 UTC across the autumn change: same local clock, different UTC.
    texts = {format_when(ms(2026, 10, 25, hour, 30), "Europe/Paris", now_ms=NOW) for hour in (0, 1)}
    assert len(texts) == 2


# --------------------------------------------------------------------------- robustness


def test_an_unknown_zone_name_falls_back_to_utc_and_says_so() -> None:
    assert format_when(FRIDAY_8_UTC, "Mars/Olympus_Mons", now_ms=NOW) == "Fri 29 Jan 08:00 UTC"


def test_out_of_range_moments_do_not_raise() -> None:
    assert format_when(MAX_TS, "Asia/Tokyo") == "Fri 31 Dec 9999 23:59 UTC"
    assert format_when(10**20, "Pacific/Kiritimati", now_ms=-1) == "Fri 31 Dec 9999 23:59 UTC"
    assert format_when(-5, "America/New_York") == "Wed 31 Dec 1969 19:00 EST (Thu 00:00 UTC)"


def test_the_names_do_not_follow_the_process_locale() -> None:
    import locale

    before = locale.setlocale(locale.LC_TIME)
    try:
        locale.setlocale(locale.LC_TIME, "fr_FR.UTF-8")
    except locale.Error:
        pytest.skip("no French locale on this machine")
    try:
        assert format_when(FRIDAY_8_UTC, "UTC", now_ms=NOW) == "Fri 29 Jan 08:00 UTC"
    finally:
        locale.setlocale(locale.LC_TIME, before)


_SHAPE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}( \d{4})? \d{2}:\d{2} \S+"
    r"( \(((Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?\d{2}:\d{2} UTC\))?"
)


@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from(
        ["UTC", "Europe/Paris", "Asia/Tokyo", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]
    ),
    st.integers(min_value=0, max_value=MAX_TS),
)
def test_every_moment_has_the_same_shape(moment: int, tz: str, now: int) -> None:
    text = format_when(moment, tz, now_ms=now)
    assert _SHAPE.fullmatch(text), text


def test_the_older_formatters_still_work() -> None:
    moment = ms(2026, 11, 23, 16, 44)
    assert format_local(moment, ZoneInfo("Europe/Paris")) == "2026-11-23 17:44 CET (16:44 UTC)"
    assert format_utc(moment) == "2026-11-23 16:44 UTC"
