"""Hums (RFC 7282 §4): the temperature of the room, never a count of names.

Only the loudness of each side is ever reported, and only once the ballot is closed and
enough members hummed that no single hum can be told apart.

Why only at close: a live report lets anyone who watches it change tell what the last hum
was (and a member who knows when a colleague hummed learns how). Why a minimum: with few
hums, "against: loud" can name its author. The minimum is `process.hum_min` in the config
(at least MIN_HUMS_TO_REPORT, by default DEFAULT_HUM_MIN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# The floor of any minimum: fewer hums than this are never reported, whatever the config
# says (a lone hum would identify its author).
MIN_HUMS_TO_REPORT = 3
# The default minimum (`process.hum_min`).
DEFAULT_HUM_MIN = 5


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

    reported: bool  # False: the ballot is open, or too few hums to say anything
    for_: Loudness
    against: Loudness
    ballot_open: bool = False  # not reported because the ballot is still open

    def describe(self) -> str:
        """One line for summaries and status."""
        if self.ballot_open:
            return "hums are reported when the ballot closes"
        if not self.reported:
            return "too few hums to report"
        return f"for: {self.for_.value}, against: {self.against.value}"


def _weight(hum: Hum) -> int:
    return 2 if hum.strength is Strength.LOUD else 1


def hum_report(
    hums: Sequence[Hum], *, closed: bool = True, minimum: int = MIN_HUMS_TO_REPORT
) -> HumReport:
    """Each side's loudness: loud when it carries at least two thirds of all the volume.

    Nothing is reported while the ballot is open (`closed=False`), nor at close when fewer
    than `minimum` hums were made (a `minimum` below MIN_HUMS_TO_REPORT counts as that
    floor). The answer depends only on how many hums of each side and strength there are,
    never on their order.

    Callers pass only the hums that count: those of members who were eligible for the
    request, are not recused from it, and are still active on the roster. A hum of anyone
    else must not tip a side, nor help reach the minimum.

    The defaults (`closed=True`, `minimum=MIN_HUMS_TO_REPORT`) keep the old behaviour for
    callers not yet updated; they should pass `closed=` the ballot's state and
    `minimum=` the config's `process.hum_min` (DEFAULT_HUM_MIN by default).
    """
    if not closed:
        return HumReport(False, Loudness.NONE, Loudness.NONE, ballot_open=True)
    if len(hums) < max(minimum, MIN_HUMS_TO_REPORT):
        return HumReport(False, Loudness.NONE, Loudness.NONE)
    score = {side: sum(_weight(h) for h in hums if h.side is side) for side in Side}
    total = sum(score.values())

    def level(side: Side) -> Loudness:
        if score[side] == 0:
            return Loudness.NONE
        return Loudness.LOUD if 3 * score[side] >= 2 * total else Loudness.SOFT

    return HumReport(True, level(Side.FOR), level(Side.AGAINST))
