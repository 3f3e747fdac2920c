"""The draft sense of the room: what the bot proposes to the chair, never a bare vote count.

Rules (docs/design/contract.md, "Determination"):
- eligible = members snapshotted when the ballot opened, minus those who recused;
- any objection not yet disposed of -> no-consensus-yet, listing what must be addressed;
- else participation below quorum -> insufficient-participation;
- else support and no-objection clearly outweigh concerns -> rough-consensus-admit,
  naming those whose objections were addressed but not accommodated ("in the rough");
- else no-consensus.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from bot.domain.countries import lookup
from bot.domain.objections import Objection, ObjectionState
from bot.domain.positions import Position
from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS

# "Clearly outweigh": at least twice as many support/no-objection as concerns, and at least one.
OUTWEIGH_FACTOR = 2
# Groups smaller than this show participation but not positions, so nobody is singled out.
MIN_GROUP_FOR_POSITIONS = 3


class Proposal(StrEnum):
    """The outcome the bot proposes to the chair."""

    NO_CONSENSUS_YET = "no-consensus-yet"
    INSUFFICIENT_PARTICIPATION = "insufficient-participation"
    ROUGH_CONSENSUS_ADMIT = "rough-consensus-admit"
    NO_CONSENSUS = "no-consensus"

    @property
    def label(self) -> str:
        """Human wording of the proposal."""
        return {
            Proposal.NO_CONSENSUS_YET: "no consensus yet: objections are still open",
            Proposal.INSUFFICIENT_PARTICIPATION: "insufficient participation",
            Proposal.ROUGH_CONSENSUS_ADMIT: "rough consensus to admit",
            Proposal.NO_CONSENSUS: "no consensus",
        }[self]


class Voter(NamedTuple):
    """A member eligible on a request, with the stakeholder group and region they belong to.

    A named tuple, not a dataclass: a ballot has up to tens of thousands of voters, read for
    every draft and live tally, and a tuple is built from a stored row for a fraction of the
    cost of a frozen dataclass (benchmark 4).
    """

    user_id: str
    stakeholder: str
    region: str
    country: str = ""  # ISO 3166-1 alpha-2, "" when not known


@dataclass(frozen=True, slots=True)
class GroupBreakdown:
    """Participation of one stakeholder group or region; positions hidden for small groups."""

    name: str
    members: int
    participated: int
    counts: Mapping[Position, int] | None  # None when the group is too small to show

    @property
    def silent(self) -> bool:
        """True when nobody of this group took a position."""
        return self.participated == 0


@dataclass(frozen=True, slots=True)
class Sense:
    """The draft sense of the room, computed purely from stored positions and objections."""

    proposal: Proposal
    counts: Mapping[Position, int]
    eligible: int
    participated: int
    quorum: float
    recused: tuple[str, ...]
    did_not_take_part: tuple[str, ...]
    open_objections: tuple[Objection, ...]
    in_the_rough: tuple[str, ...]
    by_stakeholder: tuple[GroupBreakdown, ...]
    by_region: tuple[GroupBreakdown, ...]
    silent_stakeholder_groups: tuple[str, ...] = field(default=())  # members, none took part
    unrepresented_stakeholder_groups: tuple[str, ...] = field(default=())  # no eligible members
    # Members from developing and least developed countries (UN M49), where countries are known.
    by_development: tuple[GroupBreakdown, ...] = field(default=())
    silent_regions: tuple[str, ...] = field(default=())  # regions with members, none took part

    @property
    def participation(self) -> float:
        """Share of eligible members who took a position (0 when nobody is eligible)."""
        return self.participated / self.eligible if self.eligible else 0.0


def _groups(
    names: Sequence[str], members: Mapping[str, int], counts: Mapping[str, dict[Position, int]]
) -> tuple[GroupBreakdown, ...]:
    rows = []
    for name in names:
        shown = counts[name] if members[name] >= MIN_GROUP_FOR_POSITIONS else None
        rows.append(GroupBreakdown(name, members[name], sum(counts[name].values()), shown))
    return tuple(rows)


def determine(
    voters: Sequence[Voter],
    positions: Mapping[str, Position],
    objections: Sequence[Objection],
    quorum: float,
) -> Sense:
    """Draft the sense of the room.

    `voters` are the members eligible when the ballot opened; `positions` the current
    position per member (others' positions are ignored); `objections` every objection on
    the request, any state.
    """
    # One pass over the voters (ballots have tens of thousands): the positions they hold
    # (others' are ignored), eligibility, who did not take part, and the breakdowns by
    # stakeholder group, region and development status.
    taken: dict[str, Position] = {}
    by_group = {name: 0 for name in STAKEHOLDER_GROUPS}
    by_place = {name: 0 for name in REGIONS}
    group_counts = {name: dict.fromkeys(Position, 0) for name in STAKEHOLDER_GROUPS}
    place_counts = {name: dict.fromkeys(Position, 0) for name in REGIONS}
    dev_members = dict.fromkeys((DEVELOPING, LEAST_DEVELOPED), 0)
    dev_counts = {name: dict.fromkeys(Position, 0) for name in dev_members}
    known_country = False
    countries: dict[str, tuple[bool, bool]] = {}  # code -> (developing, least developed)
    did_not: list[str] = []
    eligible = 0
    recuse = Position.RECUSE
    for user_id, stakeholder, region, country in voters:
        position = positions.get(user_id)
        if position is not None:
            taken[user_id] = position
            if position is recuse:
                continue
        eligible += 1
        if position is None:
            did_not.append(user_id)
        if stakeholder in by_group:
            by_group[stakeholder] += 1
            if position is not None:
                group_counts[stakeholder][position] += 1
        if region in by_place:
            by_place[region] += 1
            if position is not None:
                place_counts[region][position] += 1
        if not country:
            continue
        known_country = True
        kind = countries.get(country)
        if kind is None:  # `lookup` parses names: once per distinct country, not per voter
            found = lookup(country)
            kind = (found.developing, found.ldc) if found is not None else (False, False)
            countries[country] = kind
        developing, least = kind
        if developing:
            dev_members[DEVELOPING] += 1
            if position is not None:
                dev_counts[DEVELOPING][position] += 1
            if least:
                dev_members[LEAST_DEVELOPED] += 1
                if position is not None:
                    dev_counts[LEAST_DEVELOPED][position] += 1
    did_not.sort()
    recused = tuple(sorted(m for m, p in taken.items() if p is recuse))
    counts = dict.fromkeys(Position, 0)
    for p in taken.values():
        counts[p] += 1
    participated = len(taken) - len(recused)

    open_objections = tuple(o for o in objections if o.state is ObjectionState.OPEN)
    in_the_rough = tuple(
        sorted({o.member for o in objections if o.state is ObjectionState.ADDRESSED})
    )

    favour = counts[Position.SUPPORT] + counts[Position.NO_OBJECTION]
    if open_objections:
        proposal = Proposal.NO_CONSENSUS_YET
    elif eligible == 0 or participated / eligible < quorum:
        proposal = Proposal.INSUFFICIENT_PARTICIPATION
    elif favour >= max(1, OUTWEIGH_FACTOR * counts[Position.CONCERN]):
        proposal = Proposal.ROUGH_CONSENSUS_ADMIT
    else:
        proposal = Proposal.NO_CONSENSUS

    by_stakeholder = _groups(STAKEHOLDER_GROUPS, by_group, group_counts)
    by_region = _groups(REGIONS, by_place, place_counts)
    # Empty when no (not recused) voter's country is known.
    by_development = _groups(tuple(dev_members), dev_members, dev_counts) if known_country else ()
    return Sense(
        proposal=proposal,
        counts=counts,
        eligible=eligible,
        participated=participated,
        quorum=quorum,
        recused=recused,
        did_not_take_part=tuple(did_not),
        open_objections=open_objections,
        in_the_rough=in_the_rough if proposal is Proposal.ROUGH_CONSENSUS_ADMIT else (),
        by_stakeholder=by_stakeholder,
        by_region=by_region,
        silent_stakeholder_groups=tuple(g.name for g in by_stakeholder if g.members and g.silent),
        unrepresented_stakeholder_groups=tuple(g.name for g in by_stakeholder if not g.members),
        by_development=by_development,
        silent_regions=tuple(g.name for g in by_region if g.members and g.silent),
    )


DEVELOPING = "developing countries"
LEAST_DEVELOPED = "least developed countries"
