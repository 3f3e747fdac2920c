"""What counts: the one rule that turns stored inputs into each member's current position.

Every reader of positions — the draft sense of the room, `status`, the digest, reminders, the
summary's machine-readable block, the decision record and every export format — calls
`count` and nothing else. The repository only returns raw rows (inputs, redactions with
their sender and room, the eligible snapshot); this module decides.

An input counts when:
- its author is on the eligible snapshot taken when the ballot opened and was still on the
  roster when the ballot closed (a member removed while it is open stops counting; a removal
  after the close changes nothing; removed members' inputs stay in the record);
- it reached the bot where it is valid: a reaction or poll answer in the request's own room;
  a command in the request room or by direct message with `--request`;
- it was received before the ballot closed, **on the bot's clock** (`recorded_at`). The
  sender's `origin_server_ts` is trusted only inside a window of `skew_ms` around the bot's
  receive time: an input received a little after the close (a slow sync) counts when its
  clamped timestamp is before the close; one received an hour late never does, whatever
  timestamp it carries. Late inputs are kept and shown as *late, not counted*.
- in a later record segment of the same decision (an appeal answered without a reopen), it
  was counted by that decision's frozen record (`Ballot.carried`): nothing that surfaces
  after a decision — say an encrypted input whose key was held back — counts in it.
- it was not retracted: a redaction by its **own author**, in the **same room**, itself
  received in time. Redactions by anyone else, or from another room, change nothing —
  except the bot's own tidying: when a member changes position by reaction the bot removes
  their superseded reaction, and such a *tidied* input can never become current again (so
  a member who then removes their latest reaction has no position, as the ballot shows).

A member's current position is their latest counting, unretracted input, ordered by
`(effective ts, origin ts, event ID)` where the effective ts is the origin timestamp clamped
into `[recorded_at - skew, recorded_at + skew]`; a withdrawal is an input with no position.
Order of arrival never matters, so replays, backfills and restarts converge.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.durations import clamp_ts
from bot.domain.ledger import PositionInput, Source
from bot.domain.objections import Objection
from bot.domain.positions import Position
from bot.domain.sense import Sense, Voter, determine

DEFAULT_SKEW_MS = 5 * 60_000  # how far a sender's clock is believed


class Status(StrEnum):
    """Why an input does or does not count."""

    COUNTED = "counted"  # it counts (it may still be superseded by a later one)
    LATE = "late"  # received after the ballot closed
    NOT_ELIGIBLE = "not-eligible"  # its author is not (or no longer) eligible
    WRONG_ROOM = "wrong-room"  # a reaction or poll answer outside the request's room
    RETRACTED = "retracted"  # its author redacted it, in its room, in time
    TIDIED = "tidied"  # superseded, and its reaction removed by the bot


@dataclass(frozen=True, slots=True)
class Redaction:
    """A redaction as stored: who removed what, where, and when the bot received it."""

    event_id: str
    redacts: str
    room_id: str
    sender: str
    ts: int  # origin_server_ts
    recorded_at: int  # the bot's clock


@dataclass(frozen=True, slots=True)
class Ballot:
    """What the rule needs to know of a request: its room and its window."""

    room_id: str | None
    closed_at: int | None  # None while the ballot is open
    skew_ms: int = DEFAULT_SKEW_MS
    tidier: str | None = None  # the bot: its redactions tidy superseded reactions away
    # A later record segment of the same decision (an appeal answered without a reopen):
    # the inputs its frozen record counted. No other input counts there, whatever its times
    # say (None: not such a segment).
    carried: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Tally:
    """The result of the rule over one request's rows."""

    voters: tuple[Voter, ...]  # eligible and still on the roster
    current: Mapping[str, PositionInput]  # member -> input holding their position
    status: Mapping[str, Status]  # input event ID -> why it does or does not count
    retracted_by: Mapping[str, Redaction]  # input event ID -> the redaction that retracted it

    @property
    def positions(self) -> dict[str, Position]:
        """Current position per member (members without one are absent)."""
        return {m: i.position for m, i in self.current.items() if i.position is not None}

    def sense(self, objections: Sequence[Objection], quorum: float) -> Sense:
        """The draft sense of the room from this tally."""
        return determine(self.voters, self.positions, objections, quorum)


def still_eligible(removed_at: int | None, ballot: Ballot) -> bool:
    """A member of the eligible snapshot counts unless removed from the roster before the
    ballot closed (or, while it is open, at all)."""
    if removed_at is None:
        return True
    return ballot.closed_at is not None and removed_at > ballot.closed_at


def effective_ts(origin_ts: int, recorded_at: int | None, skew_ms: int) -> int:
    """The origin timestamp, believed only within `skew_ms` of the bot's receive time."""
    if recorded_at is None:
        return clamp_ts(origin_ts)[0]
    low, high = recorded_at - skew_ms, recorded_at + skew_ms
    return clamp_ts(min(max(origin_ts, low), high))[0]


def order_key(item: PositionInput, skew_ms: int) -> tuple[int, int, str]:
    """How inputs of one member are ordered: effective ts, then origin ts, then event ID."""
    return _order(_row(item), skew_ms)


def in_time(ts: int, recorded_at: int | None, ballot: Ballot) -> bool:
    """True when something received at `recorded_at` (sent at `ts`) reached the open ballot."""
    if ballot.closed_at is None:
        return True
    received = ts if recorded_at is None else recorded_at
    if received <= ballot.closed_at:
        return True
    # A slow sync: received just after the close, sent (believably) before it.
    late_by = received - ballot.closed_at
    return (
        late_by <= ballot.skew_ms
        and effective_ts(ts, recorded_at, ballot.skew_ms) <= ballot.closed_at
    )


# One stored input as the rule reads it, plain values in this order: event ID, member,
# position (None: a withdrawal), origin ts, source, room ID, receive time (None: unknown).
# `Position` and `Source` are `StrEnum`s, so the stored strings and the enum members compare
# alike: a row can come straight from the database without building a `PositionInput`.
InputRow = tuple[str, str, str | None, int, str, str, int | None]
_POSITIONS = {p.value: p for p in Position}  # a dict lookup, not an enum call per row


def _row(item: PositionInput) -> InputRow:
    return (
        item.event_id,
        item.member,
        item.position,
        item.ts,
        item.source,
        item.room_id,
        item.recorded_at,
    )


def retractions(
    inputs: Iterable[PositionInput], redactions: Iterable[Redaction], ballot: Ballot
) -> dict[str, Redaction]:
    """Input event ID -> the first redaction that retracts it (own author, same room, in time)."""
    return _retractions([_row(i) for i in inputs], redactions, ballot)


def _retractions(
    rows: Iterable[InputRow], redactions: Iterable[Redaction], ballot: Ballot
) -> dict[str, Redaction]:
    ordered = sorted(
        redactions, key=lambda r: (effective_ts(r.ts, r.recorded_at, ballot.skew_ms), r.event_id)
    )
    if not ordered:
        return {}  # the usual case: no row needs indexing
    by_id = {row[0]: row for row in rows}
    found: dict[str, Redaction] = {}
    for r in ordered:
        row = by_id.get(r.redacts)
        if row is None or r.redacts in found:
            continue
        same_room = (row[5] or ballot.room_id) == r.room_id
        if r.sender == row[1] and same_room and in_time(r.ts, r.recorded_at, ballot):
            found[r.redacts] = r
    return found


def _rule(
    ballot: Ballot,
    voter_ids: Collection[str],
    rows: Sequence[InputRow],
    redactions: Sequence[Redaction],
) -> tuple[dict[str, Status], dict[str, int], dict[str, Redaction]]:
    """The rule itself, in one pass over plain rows: why each input does or does not count,
    the index in `rows` of each member's latest counting input, and the retractions."""
    retracted = _retractions(rows, redactions, ballot)
    tidied = {r.redacts for r in redactions if ballot.tidier and r.sender == ballot.tidier}
    skew, room, closed = ballot.skew_ms, ballot.room_id, ballot.closed_at is not None
    carried = ballot.carried
    command = Source.COMMAND.value
    status: dict[str, Status] = {}
    latest: dict[str, int] = {}
    for k, row in enumerate(rows):
        event_id, member, _, ts, source, room_id, recorded_at = row
        if member not in voter_ids:
            why = Status.NOT_ELIGIBLE
        elif source != command and room_id and room_id != room:
            why = Status.WRONG_ROOM  # a reaction or poll answer outside the request's room
        elif closed and not in_time(ts, recorded_at, ballot):
            why = Status.LATE
        elif carried is not None and event_id not in carried:
            why = Status.LATE  # not counted when the decision was recorded: never after
        elif event_id in retracted:
            why = Status.RETRACTED
        elif event_id in tidied:
            why = Status.TIDIED
        else:
            why = Status.COUNTED
        status[event_id] = why
        if why is not Status.COUNTED:
            continue
        best = latest.get(member)
        # Order keys are computed only when a member has more than one counting input.
        if best is None or _order(row, skew) > _order(rows[best], skew):
            latest[member] = k
    return status, latest, retracted


def _order(row: InputRow, skew_ms: int) -> tuple[int, int, str]:
    """`order_key` of a plain row."""
    return (effective_ts(row[3], row[6], skew_ms), row[3], row[0])


def _voters(
    ballot: Ballot, eligible: Sequence[Voter], removed: Mapping[str, int]
) -> tuple[Voter, ...]:
    """The snapshot's members who count: not removed from the roster before the close."""
    if not removed:  # the usual case: nobody of the snapshot left the roster
        return tuple(eligible)
    return tuple(v for v in eligible if still_eligible(removed.get(v.user_id), ballot))


def count(
    ballot: Ballot,
    eligible: Sequence[Voter],
    removed: Mapping[str, int],
    inputs: Iterable[PositionInput],
    redactions: Iterable[Redaction],
) -> Tally:
    """Apply the rule to a request's rows.

    `eligible` is the snapshot taken when the ballot opened; `removed` when members of it left
    the roster (absent: still on it); `inputs` every stored input of the request (or of some
    members), `redactions` every redaction aimed at them, whoever sent it.
    """
    voters = _voters(ballot, eligible, removed)
    items = list(inputs)
    status, latest, retracted = _rule(
        ballot, {v.user_id for v in voters}, [_row(i) for i in items], list(redactions)
    )
    current = {m: items[k] for m, k in latest.items() if items[k].position is not None}
    return Tally(voters, current, status, retracted)


@dataclass(frozen=True, slots=True)
class Standing:
    """Who counts on a request and where each stands: what the draft sense needs, and only
    that (no status per input, no `PositionInput` objects)."""

    voters: tuple[Voter, ...]  # eligible and still on the roster
    positions: dict[str, Position]  # current position per member (members without one absent)

    def sense(self, objections: Sequence[Objection], quorum: float) -> Sense:
        """The draft sense of the room from these positions."""
        return determine(self.voters, self.positions, objections, quorum)


def standing(
    ballot: Ballot,
    eligible: Sequence[Voter],
    removed: Mapping[str, int],
    inputs: Sequence[InputRow],
    redactions: Sequence[Redaction],
) -> Standing:
    """The rule over plain rows, as `count` applies it, for readers that need only each
    member's current position (the draft, the live tally, the digest): a ballot of 10,000
    members is counted without building a row object per input (benchmark 4).

    Arguments as for `count`, except that `inputs` are plain `InputRow`s.
    """
    voters = _voters(ballot, eligible, removed)
    _, latest, _ = _rule(ballot, {v.user_id for v in voters}, inputs, redactions)
    positions: dict[str, Position] = {}
    for member, k in latest.items():
        value = inputs[k][2]
        if value is not None:
            positions[member] = _POSITIONS[value]
    return Standing(voters, positions)
