"""Objections: each one is tracked until the chair disposes of it (RFC 7282 §3)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ObjectionState(StrEnum):
    """An objection is open until disposed of; the dispositions are RFC 7282's vocabulary."""

    OPEN = "open"
    ACCOMMODATED = "accommodated"  # the issue was resolved to the objector's satisfaction
    ADDRESSED = "addressed"  # considered and answered, not accepted: the objector is "in the rough"
    DUPLICATE = "duplicate"  # the same issue as another objection
    WITHDRAWN = "withdrawn"  # the objector withdrew it

    @property
    def is_open(self) -> bool:
        """True while the objection still blocks consensus."""
        return self is ObjectionState.OPEN


DISPOSITIONS: tuple[ObjectionState, ...] = (
    ObjectionState.ACCOMMODATED,
    ObjectionState.ADDRESSED,
    ObjectionState.DUPLICATE,
    ObjectionState.WITHDRAWN,
)


@dataclass(frozen=True, slots=True)
class Objection:
    """One member's objection on one request, with its disposition once made."""

    id: int
    request_id: int
    member: str
    reason: str | None
    state: ObjectionState
    rationale: str | None = None
    disposed_by: str | None = None
    disposed_at: int | None = None
    reason_asked: bool = False
    duplicate_of: int | None = None

    @property
    def disposed_by_chair(self) -> bool:
        """True when someone other than the objector disposed of it."""
        return self.disposed_by is not None and self.disposed_by != self.member

    @property
    def needs_reason(self) -> bool:
        """An objection must say why; a bare 👎 is recorded and the member is asked."""
        return not (self.reason and self.reason.strip())


@dataclass(frozen=True, slots=True)
class ObjectionEvent:
    """One step in an objection's life: raised, reason, disposed, contested."""

    objection_id: int
    kind: str
    by: str
    state: str | None  # the disposition, for `disposed`
    text: str | None  # the reason, rationale or contest
    at: int


class ObjectionStep(StrEnum):
    """What a member's new current position does to their objection."""

    NONE = "none"
    RAISE = "raise"  # open a new objection
    GIVE_REASON = "give-reason"  # the open objection gets (a new) reason
    WITHDRAW = "withdraw"  # the objector moved away from `object`


def objection_step(
    objecting: bool,
    reason: str | None,
    raised_at: int | None,
    open_objection: Objection | None,
    latest: Objection | None,
) -> ObjectionStep:
    """How a member's objection follows their current position.

    `objecting`: the current position is `object`; `reason` its reason; `raised_at` when (bot
    clock) the input holding it was received. A chair's disposition covers every objecting
    input received before it, so only a newer `object` opens a new objection after one.
    """
    if objecting:
        settled = (
            latest is not None
            and latest.disposed_by_chair
            and latest.disposed_at is not None
            and raised_at is not None
            and raised_at <= latest.disposed_at
        )
        if open_objection is None:
            return ObjectionStep.NONE if settled else ObjectionStep.RAISE
        if reason and reason != open_objection.reason:
            return ObjectionStep.GIVE_REASON
        return ObjectionStep.NONE
    return ObjectionStep.NONE if open_objection is None else ObjectionStep.WITHDRAW
