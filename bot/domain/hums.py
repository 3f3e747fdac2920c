"""Hums (RFC 7282 §4): the temperature of the room, never a count of names.

Only the loudness of each side is ever reported, and nothing at all until enough members
hummed that no single hum can be told apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# Fewer hums than this are not reported at all: a lone hum would identify its author.
MIN_HUMS_TO_REPORT = 3


class Side(StrEnum):
    """Which side a hum is for."""

    FOR = "for"
    AGAINST = "against"


class Strength(StrEnum):
    """How strongly."""

    SOFT = "soft"
    LOUD = "loud"


class Loudness(StrEnum):
    """How loud one side sounds in the room."""

    NONE = "none"
    SOFT = "soft"
    LOUD = "loud"


@dataclass(frozen=True, slots=True)
class Hum:
    """One (anonymous) hum."""

    side: Side
    strength: Strength


@dataclass(frozen=True, slots=True)
class HumReport:
    """What the room hears."""

    reported: bool  # False: too few hums to say anything
    for_: Loudness
    against: Loudness

    def describe(self) -> str:
        """One line for summaries and status."""
        if not self.reported:
            return "too few hums yet to report"
        return f"for: {self.for_.value}, against: {self.against.value}"


def _weight(hum: Hum) -> int:
    return 2 if hum.strength is Strength.LOUD else 1


def hum_report(hums: Sequence[Hum]) -> HumReport:
    """Each side's loudness: loud when it carries at least two thirds of all the volume."""
    if len(hums) < MIN_HUMS_TO_REPORT:
        return HumReport(False, Loudness.NONE, Loudness.NONE)
    score = {side: sum(_weight(h) for h in hums if h.side is side) for side in Side}
    total = sum(score.values())

    def level(side: Side) -> Loudness:
        if score[side] == 0:
            return Loudness.NONE
        return Loudness.LOUD if 3 * score[side] >= 2 * total else Loudness.SOFT

    return HumReport(True, level(Side.FOR), level(Side.AGAINST))
