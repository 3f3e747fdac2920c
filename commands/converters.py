"""Typed argument converters: each turns one word into a value or raises `ConversionError`.

Error messages are one sentence fit to show a user, a catalog message with named
placeholders (`ConversionError(N_("%(text)s is …"), text=…)`) said in the reader's language
by the edge; any user text they repeat is shortened and stripped of control characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from bot.domain.durations import DurationError, parse_duration
from bot.domain.mxid import is_user_id
from bot.domain.text import N_
from bot.i18n.catalog import Phrase
from commands.spec import ConversionError

_MAX_SHOWN = 40
_MAX_NAME = 200
_MAX_INT = 2_000_000_000

_MATRIX_TO = "https://matrix.to/#/"
_NUMBER = re.compile(r"#?([0-9]{1,10})", re.ASCII)

# The furthest ahead a WHEN (a deadline) may be, and the longest DURATION argument (extend,
# reopen). Anything longer is almost always a typo; `--deadline 9999-12-31` was accepted.
MAX_AHEAD_DAYS = 365
MAX_AHEAD_MS = MAX_AHEAD_DAYS * 86_400_000
# Real UTC offsets run from -12:00 to +14:00; Python accepts up to ±23:59.
MAX_UTC_OFFSET = timedelta(hours=14)
_ROUGH_DURATION = re.compile(r"\s*(?:[0-9]{1,20}[smhdw])+\s*", re.ASCII | re.IGNORECASE)
_ROUGH_PART = re.compile(r"([0-9]{1,20})([smhdw])", re.ASCII | re.IGNORECASE)
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def _rough_duration_ms(text: str) -> int | None:
    """What a duration-shaped text adds up to, without `parse_duration`'s limits (so that
    `5000d` can be called too long rather than unreadable); None when not duration-shaped."""
    if not _ROUGH_DURATION.fullmatch(text):
        return None
    return sum(int(n) * _UNIT_MS[unit.lower()] for n, unit in _ROUGH_PART.findall(text))


def shown(text: str) -> str:
    """Quote user text for an error message: control characters removed, at most 40 chars."""
    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text[: _MAX_SHOWN + 1]
    )
    if len(cleaned) > _MAX_SHOWN:
        cleaned = cleaned[: _MAX_SHOWN - 1] + "…"
    return f"'{cleaned}'"


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def _read_user_id(text: str) -> str | None:
    """The user ID in `text` (also from a matrix.to link), or None."""
    candidate = text.strip()
    if candidate.startswith(_MATRIX_TO):
        candidate = unquote(candidate[len(_MATRIX_TO) :].split("?", 1)[0])
    return candidate if is_user_id(candidate) else None


@dataclass(frozen=True, slots=True)
class UserId:
    """A Matrix user ID `@local:server`, kept as given (a matrix.to link is accepted too)."""

    metavar: str = "USER"

    def convert(self, text: str, now_ms: int) -> str:
        """Return the user ID or raise `ConversionError`."""
        user_id = _read_user_id(text)
        if user_id is None:
            raise ConversionError(
                N_("%(text)s is not a Matrix user ID (they look like @name:example.org)."),
                text=shown(text),
            )
        return user_id


@dataclass(frozen=True, slots=True)
class Applicant:
    """A Matrix user ID, or the name of someone without one (quote names with spaces).

    The value is a string; use `is_user_id` to tell the two apart.
    """

    metavar: str = "APPLICANT"

    def convert(self, text: str, now_ms: int) -> str:
        """Return the user ID or the name (inner whitespace collapsed)."""
        user_id = _read_user_id(text)
        if user_id is not None:
            return user_id
        name = " ".join(text.split())
        if name.startswith("@") and " " not in name:
            raise ConversionError(
                N_(
                    "%(text)s is not a complete Matrix user ID (use @name:example.org), "
                    "or quote a name."
                ),
                text=shown(text),
            )
        if not name:
            raise ConversionError(N_("The applicant's name is empty."))
        if len(name) > _MAX_NAME or _has_control(name):
            raise ConversionError(N_("%(text)s is not a usable name."), text=shown(text))
        return name


@dataclass(frozen=True, slots=True)
class Word:
    """Any non-empty text of one word, or several when quoted (names, organisations)."""

    metavar: str = "TEXT"
    max_length: int = _MAX_NAME

    def convert(self, text: str, now_ms: int) -> str:
        """Return the text with inner whitespace collapsed."""
        value = " ".join(text.split())
        if not value:
            raise ConversionError(N_("An empty value is not allowed here."))
        if len(value) > self.max_length:
            raise ConversionError(
                N_("%(text)s is longer than %(limit)s characters."),
                text=shown(text),
                limit=self.max_length,
            )
        if _has_control(value):
            raise ConversionError(N_("%(text)s contains control characters."), text=shown(text))
        return value


@dataclass(frozen=True, slots=True)
class DurationArg:
    """A duration such as `90s`, `45m`, `12h`, `14d`, `2w` or `1d12h`, as milliseconds; at
    most `max_ms` (MAX_AHEAD_DAYS by default)."""

    metavar: str = "DURATION"
    max_ms: int = MAX_AHEAD_MS

    def convert(self, text: str, now_ms: int) -> int:
        """Return the duration in milliseconds."""
        try:
            duration = parse_duration(text)
        except Exception:
            duration = None
        if duration is None or duration > self.max_ms:
            if (duration or _rough_duration_ms(text) or 0) > self.max_ms:
                raise ConversionError(
                    N_("%(text)s is longer than %(days)s days; use a shorter duration."),
                    text=shown(text),
                    days=_days(self.max_ms),
                ) from None
            raise ConversionError(
                N_("%(text)s is not a duration (use e.g. 90s, 45m, 12h, 14d)."), text=shown(text)
            ) from None
        return duration


def _days(ms: int) -> int:
    """Whole days in `ms`. The limits are MAX_AHEAD_DAYS (365): the messages say "days"."""
    return ms // 86_400_000


@dataclass(frozen=True, slots=True)
class WhenArg:
    """A moment: a duration from now (`14d`) or an ISO 8601 time, as absolute epoch ms (UTC).

    An ISO time without an offset is UTC; offsets beyond ±14:00 are refused. Moments in the
    past, or more than `max_ahead_ms` (MAX_AHEAD_DAYS) from now, are refused: a deadline there
    is almost always a typo. Every problem is a `ConversionError` (a usage message), never
    another exception.
    """

    metavar: str = "WHEN"
    max_ahead_ms: int = MAX_AHEAD_MS

    def convert(self, text: str, now_ms: int) -> int:
        """Return the moment in milliseconds since the epoch."""
        try:
            moment = _moment(text, now_ms)
        except ConversionError:
            raise
        except Exception:
            if (_rough_duration_ms(text) or 0) > self.max_ahead_ms:  # beyond parse_duration's
                raise self._too_far(text) from None
            raise ConversionError(
                N_(
                    "%(text)s is neither a duration (e.g. 14d) nor an ISO 8601 time "
                    "(e.g. 2030-12-01T12:00Z)."
                ),
                text=shown(text),
            ) from None
        if moment <= now_ms:
            raise ConversionError(N_("%(text)s is in the past."), text=shown(text))
        if moment - now_ms > self.max_ahead_ms:
            raise self._too_far(text)
        return moment

    def _too_far(self, text: str) -> ConversionError:
        return ConversionError(
            N_("%(text)s is more than %(days)s days from now; a deadline must be sooner."),
            text=shown(text),
            days=_days(self.max_ahead_ms),
        )


def _moment(text: str, now_ms: int) -> int:
    """WHEN as epoch ms: a duration from now, else an ISO 8601 time (UTC without offset).

    Raises ConversionError for an offset beyond ±14:00, anything else for unreadable text.
    """
    try:
        return now_ms + parse_duration(text)
    except DurationError:
        pass
    moment = datetime.fromisoformat(text.strip())
    offset = moment.utcoffset()
    if offset is None:
        moment = moment.replace(tzinfo=UTC)
    elif abs(offset) > MAX_UTC_OFFSET:
        raise ConversionError(
            N_("%(text)s has a UTC offset beyond ±14:00 (write e.g. 2030-12-01T12:00-05:00)."),
            text=shown(text),
        )
    # Exact integer arithmetic (no float rounding, no platform limits on timestamps).
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@dataclass(frozen=True, slots=True, init=False)
class Choice:
    """One of a fixed set of words, compared case-insensitively; the value is the canonical one."""

    values: tuple[str, ...]
    metavar: str

    def __init__(self, *values: str, metavar: str | None = None) -> None:
        """`Choice("for", "against")`; `metavar` defaults to `for|against`."""
        if not values:
            raise ValueError("a Choice needs at least one value")
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "metavar", metavar or "|".join(values))

    def convert(self, text: str, now_ms: int) -> str:
        """Return the matching value or raise with the list of choices."""
        wanted = text.strip().lower()
        for value in self.values:
            if value.lower() == wanted:
                return value
        raise ConversionError(
            N_("%(text)s is not one of: %(choices)s."),
            text=shown(text),
            choices=", ".join(self.values),
        )


@dataclass(frozen=True, slots=True)
class PositiveInt:
    """A positive whole number, written `7` or `#7` (request and objection numbers)."""

    metavar: str = "N"
    what: str = N_("number")
    """What the number is, a catalog message (`N_("request number")`): said in the error."""

    def convert(self, text: str, now_ms: int) -> int:
        """Return the number."""
        match = _NUMBER.fullmatch(unicodedata.normalize("NFKC", text).strip())
        value = int(match.group(1)) if match else 0
        if not 0 < value <= _MAX_INT:
            raise ConversionError(
                N_("%(text)s is not a %(what)s (write e.g. 7 or #7)."),
                text=shown(text),
                what=Phrase(self.what),
            )
        return value
