"""Positions a member can take on a participation request, and how reactions map to them."""

from __future__ import annotations

import unicodedata
from enum import StrEnum


class Position(StrEnum):
    """A member's position on a request (after the IESG ballot positions)."""

    SUPPORT = "support"
    NO_OBJECTION = "no-objection"
    CONCERN = "concern"
    OBJECT = "object"
    ABSTAIN = "abstain"
    RECUSE = "recuse"

    @property
    def blocking(self) -> bool:
        """Only an objection blocks consensus until the chair disposes of it."""
        return self is Position.OBJECT

    @property
    def label(self) -> str:
        """Human label, e.g. 'no objection'."""
        return self.value.replace("-", " ")


# Display order everywhere (summary, status, legend).
POSITION_ORDER: tuple[Position, ...] = tuple(Position)

DEFAULT_REACTIONS: dict[str, Position] = {
    "👍": Position.SUPPORT,
    "✅": Position.SUPPORT,
    "👌": Position.NO_OBJECTION,
    "🤔": Position.CONCERN,
    "👎": Position.OBJECT,
    "✋": Position.OBJECT,
    "🤐": Position.ABSTAIN,
}

# The first emoji per position is the one the legend shows and the bot seeds on the ballot.
LEGEND: tuple[tuple[str, Position], ...] = (
    ("👍", Position.SUPPORT),
    ("👌", Position.NO_OBJECTION),
    ("🤔", Position.CONCERN),
    ("👎", Position.OBJECT),
    ("🤐", Position.ABSTAIN),
)

_VARIATION_SELECTORS = {0xFE0E, 0xFE0F}
_SKIN_TONES = range(0x1F3FB, 0x1F400)


def normalize_emoji(key: str) -> str:
    """Strip variation selectors, skin-tone modifiers and surrounding space from a reaction key."""
    kept = [
        ch
        for ch in unicodedata.normalize("NFC", key)
        if ord(ch) not in _VARIATION_SELECTORS and ord(ch) not in _SKIN_TONES
    ]
    return "".join(kept).strip()


def position_for_reaction(key: str, table: dict[str, Position] | None = None) -> Position | None:
    """The position a reaction key stands for, or None when it is not a ballot reaction."""
    mapping = DEFAULT_REACTIONS if table is None else table
    return mapping.get(normalize_emoji(key))
