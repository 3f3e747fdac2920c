"""The position ledger: every input a member gave, append-only.

A member's inputs are reactions on the ballot, commands and poll responses; a `withdraw` is
an input with no position. Which inputs count, and which one is a member's current position,
is decided in one place: `bot.domain.counting`.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    room_id: str = ""  # where it was received ("" when unknown: an old row)
    recorded_at: int | None = None  # the bot's clock when it was received

    def recorded(self, at: int) -> PositionInput:
        """This input as the ledger keeps it: received at `at` (the bot's clock)."""
        return PositionInput(
            self.event_id,
            self.member,
            self.position,
            self.ts,
            self.source,
            self.reason,
            self.room_id,
            at,
        )


def count_positions(current: Mapping[str, Position]) -> dict[Position, int]:
    """Counts per position, every position present (zero when nobody took it)."""
    counts = dict.fromkeys(Position, 0)
    for position in current.values():
        counts[position] += 1
    return counts
