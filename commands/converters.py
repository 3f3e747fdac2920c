"""Typed argument converters: each turns one word into a value or raises `ConversionError`.

Error messages are one sentence fit to show a user; any user text they repeat is shortened
and stripped of control characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote

from bot.domain.durations import DurationError, parse_duration, parse_when
from commands.spec import ConversionError

_MAX_SHOWN = 40
_MAX_USER_ID = 255
_MAX_NAME = 200
_MAX_INT = 2_000_000_000

# Matrix user IDs: `@localpart:server_name`. The localpart is printable ASCII without `:`
# (historical IDs allow more than today's a-z0-9._=-/+); the server is a DNS name, IPv4 or
# bracketed IPv6 literal, with an optional port.
_USER_ID = re.compile(
    r"@[\x21-\x39\x3b-\x7e]+:(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::[0-9]{1,5})?",
    re.ASCII,
)
_MATRIX_TO = "https://matrix.to/#/"
_NUMBER = re.compile(r"#?([0-9]{1,10})", re.ASCII)


def shown(text: str) -> str:
    """Quote user text for an error message: control characters removed, at most 40 chars."""
    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text[: _MAX_SHOWN + 1]
    )
    if len(cleaned) > _MAX_SHOWN:
        cleaned = cleaned[: _MAX_SHOWN - 1] + "…"
    return f"'{cleaned}'"


def is_user_id(text: str) -> bool:
    """Whether `text` is a well-formed Matrix user ID such as `@alice:example.org`."""
    return len(text) <= _MAX_USER_ID and _USER_ID.fullmatch(text) is not None


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
                f"{shown(text)} is not a Matrix user ID (they look like @name:example.org)."
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
                f"{shown(text)} is not a complete Matrix user ID (use @name:example.org), "
                "or quote a name."
            )
        if not name:
            raise ConversionError("The applicant's name is empty.")
        if len(name) > _MAX_NAME or _has_control(name):
            raise ConversionError(f"{shown(text)} is not a usable name.")
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
            raise ConversionError("An empty value is not allowed here.")
        if len(value) > self.max_length:
            raise ConversionError(f"{shown(text)} is longer than {self.max_length} characters.")
        if _has_control(value):
            raise ConversionError(f"{shown(text)} contains control characters.")
        return value


@dataclass(frozen=True, slots=True)
class DurationArg:
    """A duration such as `90s`, `45m`, `12h`, `14d`, `2w` or `1d12h`, as milliseconds."""

    metavar: str = "DURATION"

    def convert(self, text: str, now_ms: int) -> int:
        """Return the duration in milliseconds."""
        try:
            return parse_duration(text)
        except (DurationError, ValueError, OverflowError):
            raise ConversionError(
                f"{shown(text)} is not a duration (use e.g. 90s, 45m, 12h, 14d)."
            ) from None


@dataclass(frozen=True, slots=True)
class WhenArg:
    """A moment: a duration from now (`14d`) or an ISO 8601 time, as absolute epoch ms (UTC).

    Moments in the past are refused: a deadline there is almost always a typo.
    """

    metavar: str = "WHEN"

    def convert(self, text: str, now_ms: int) -> int:
        """Return the moment in milliseconds since the epoch."""
        try:
            moment = parse_when(text, now_ms)
        except (DurationError, ValueError, OverflowError, OSError):
            raise ConversionError(
                f"{shown(text)} is neither a duration (e.g. 14d) nor an ISO 8601 time "
                "(e.g. 2030-12-01T12:00Z)."
            ) from None
        if moment <= now_ms:
            raise ConversionError(f"{shown(text)} is in the past.")
        return moment


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
        raise ConversionError(f"{shown(text)} is not one of: {', '.join(self.values)}.")


@dataclass(frozen=True, slots=True)
class PositiveInt:
    """A positive whole number, written `7` or `#7` (request and objection numbers)."""

    metavar: str = "N"
    what: str = "number"

    def convert(self, text: str, now_ms: int) -> int:
        """Return the number."""
        match = _NUMBER.fullmatch(unicodedata.normalize("NFKC", text).strip())
        value = int(match.group(1)) if match else 0
        if not 0 < value <= _MAX_INT:
            raise ConversionError(f"{shown(text)} is not a {self.what} (write e.g. 7 or #7).")
        return value
