"""Hums (RFC 7282 §4): the temperature of the room, never a count of names.

Only the loudness of each side is ever reported, and only once the ballot is closed and
enough members hummed that no single hum can be told apart.

Why only at close: a live report lets anyone who watches it change tell what the last hum
was (and a member who knows when a colleague hummed learns how). Why a minimum: with few
hums, "against: loud" can name its author. The minimum is `process.hum_min` in the config
(at least MIN_HUMS_TO_REPORT, by default DEFAULT_HUM_MIN).

Why a rule across reports (`hum_report_given`): the hums are counted again at each close, and
the hums of members removed or recused in between drop out. Two reports a reopen apart would
then differ by exactly the hums of those few members: remove one, close again, and "for:
soft, against: soft" becoming "for: loud, against: none" tells that member's hum. So once a
report has been given for a request, a later one is given only when the hums counted differ
from those of every earlier report in none or in at least the minimum of hummers; otherwise
the last report given is repeated, marked as such.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from bot.domain.text import N_, Phrase, phrase

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


# How each loudness is said (the words `soft` and `loud` of the hum command stay English).
LOUDNESS_WORDS: dict[Loudness, str] = {
    Loudness.NONE: N_("none"),
    Loudness.SOFT: N_("soft"),
    Loudness.LOUD: N_("loud"),
}


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
    held: bool = False  # an earlier report repeated: too few hums changed since to report anew

    def describe(self) -> str:
        """One line for summaries and status, in English (the machine-readable block)."""
        return self.phrase().say()

    def phrase(self) -> Phrase:
        """The line as a phrase, for the reader's language."""
        if self.ballot_open:
            return Phrase(N_("hums are reported when the ballot closes"))
        if not self.reported:
            return Phrase(N_("too few hums to report"))
        line = phrase(
            N_("for: %(for_side)s, against: %(against_side)s"),
            for_side=Phrase(LOUDNESS_WORDS[self.for_]),
            against_side=Phrase(LOUDNESS_WORDS[self.against]),
        )
        if self.held:
            return phrase(
                N_("%(line)s (as reported before: too few hums changed since)"), line=line
            )
        return line


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


def hum_report_given(
    hums: Mapping[str, Hum],
    given: Sequence[Mapping[str, Hum]],
    *,
    closed: bool = True,
    minimum: int = MIN_HUMS_TO_REPORT,
) -> tuple[HumReport, bool]:
    """The report on `hums` (by anonymous hummer key, those that count now) after the reports
    already `given` for the request (the hums each was made from, oldest first).

    A new report is given only when, against every earlier one, the hums differ (a hummer
    added, dropped, or changed) in none or in at least `minimum` hummers (never fewer than
    MIN_HUMS_TO_REPORT): a smaller difference would isolate those few hums. Otherwise the
    last report given is repeated, marked `held`. Returns the report and whether it is a new
    one the caller must remember (append `hums` to `given`).
    """
    report = hum_report(list(hums.values()), closed=closed, minimum=minimum)
    if not closed or not given:
        return report, report.reported
    floor = max(minimum, MIN_HUMS_TO_REPORT)
    differences = [_changed(earlier, hums) for earlier in given]
    if any(0 < d < floor for d in differences):
        last = hum_report(list(given[-1].values()), minimum=minimum)
        return replace(last, held=True), False
    return report, report.reported and all(differences)


def _changed(before: Mapping[str, Hum], after: Mapping[str, Hum]) -> int:
    """How many hummers' hums differ between two reports' hums."""
    return sum(1 for key in before.keys() | after.keys() if before.get(key) != after.get(key))
