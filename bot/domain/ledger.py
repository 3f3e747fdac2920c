"""The position ledger: every input a member gave, and the position that is current.

A member's inputs are reactions on the ballot, commands and poll responses. The current
position is the latest *live* input (not redacted), ordered by (origin timestamp, event ID)
so the result never depends on the order in which events arrive: replays, backfills and
gap-filling all converge. A `withdraw` is an input with no position; a redaction removes
exactly the input it redacts, so what remains is what members see on the ballot.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.positions import Position


class Source(StrEnum):
    """Where a position input came from."""

    REACTION = "reaction"
    COMMAND = "command"
    POLL = "poll"


@dataclass(frozen=True, slots=True)
class PositionInput:
    """One input by one member on one request, identified by its Matrix event ID."""

    event_id: str
    member: str
    position: Position | None  # None: the member withdrew their position
    ts: int
    source: Source
    reason: str | None = None


def current_input(
    inputs: Iterable[PositionInput], redacted: Collection[str]
) -> PositionInput | None:
    """The member's latest live input, or None when nothing live remains.

    Returns the withdraw input itself when the latest live input is a withdrawal; use
    `current_position` for the position only.
    """
    latest: PositionInput | None = None
    for item in inputs:
        if item.event_id in redacted:
            continue
        if latest is None or (item.ts, item.event_id) > (latest.ts, latest.event_id):
            latest = item
    return latest


def current_position(
    inputs: Iterable[PositionInput], redacted: Collection[str]
) -> PositionInput | None:
    """The input that holds the member's current position, or None (no position)."""
    latest = current_input(inputs, redacted)
    if latest is None or latest.position is None:
        return None
    return latest


def current_positions(
    inputs: Iterable[PositionInput], redacted: Collection[str]
) -> dict[str, PositionInput]:
    """Current position per member over inputs of many members."""
    by_member: dict[str, list[PositionInput]] = {}
    for item in inputs:
        by_member.setdefault(item.member, []).append(item)
    result: dict[str, PositionInput] = {}
    for member, items in by_member.items():
        current = current_position(items, redacted)
        if current is not None:
            result[member] = current
    return result


def count_positions(current: Mapping[str, Position]) -> dict[Position, int]:
    """Counts per position, every position present (zero when nobody took it)."""
    counts = dict.fromkeys(Position, 0)
    for position in current.values():
        counts[position] += 1
    return counts
