"""The lifecycle of a participation request as explicit state transitions."""

from __future__ import annotations

from enum import StrEnum

from bot.domain.errors import Refusal
from bot.domain.sense import Proposal
from bot.domain.text import N_


class RequestState(StrEnum):
    """Where a request stands."""

    TRIAGE = "triage"  # an application waiting for a chair: nothing sent to members yet
    PENDING = "pending"  # filed; its room is being created
    OPEN = "open"  # ballot open: positions are taken
    DRAFTED = "drafted"  # ballot closed; the draft sense awaits the chair
    DECIDED = "decided"  # the chair confirmed or decided; outcome announced
    BLOCKED = "blocked"  # the bot lost control of the room (kicked, encryption on, ...)
    CANCELLED = "cancelled"  # rejected at triage, or cancelled by its filer or a chair


# Requests that hold their applicant: a second request for them is refused meanwhile.
IN_PROGRESS: tuple[RequestState, ...] = (
    RequestState.TRIAGE,
    RequestState.PENDING,
    RequestState.OPEN,
    RequestState.DRAFTED,
)
# Requests whose room is in use: the members of the group read and speak there.
DISCUSSED: tuple[RequestState, ...] = (RequestState.OPEN, RequestState.DRAFTED)
# Requests whose record is frozen: it never changes again (until a reopen of a decision).
FINAL: tuple[RequestState, ...] = (RequestState.DECIDED, RequestState.CANCELLED)
# Requests not decided or cancelled yet (`list`, the digest).
UNDECIDED: tuple[RequestState, ...] = (*IN_PROGRESS, RequestState.BLOCKED)


class Action(StrEnum):
    """Things that move a request from one state to another."""

    ACCEPT = "accept"
    CANCEL = "cancel"
    ROOM_READY = "room-ready"
    CLOSE = "close"
    CONFIRM = "confirm"
    DECIDE = "decide"
    REOPEN = "reopen"
    BLOCK = "block"


class Outcome(StrEnum):
    """The chair's decision."""

    ADMIT = "admit"
    DECLINE = "decline"
    NO_CONSENSUS = "no-consensus"


class LifecycleError(Refusal):
    """A transition that is not allowed now; the message is fit to show the chair."""


_TRANSITIONS: dict[tuple[RequestState, Action], RequestState] = {
    (RequestState.TRIAGE, Action.ACCEPT): RequestState.PENDING,
    (RequestState.TRIAGE, Action.CANCEL): RequestState.CANCELLED,
    (RequestState.PENDING, Action.CANCEL): RequestState.CANCELLED,
    (RequestState.OPEN, Action.CANCEL): RequestState.CANCELLED,
    (RequestState.DRAFTED, Action.CANCEL): RequestState.CANCELLED,
    (RequestState.BLOCKED, Action.CANCEL): RequestState.CANCELLED,
    (RequestState.PENDING, Action.ROOM_READY): RequestState.OPEN,
    (RequestState.OPEN, Action.CLOSE): RequestState.DRAFTED,
    (RequestState.DRAFTED, Action.CONFIRM): RequestState.DECIDED,
    (RequestState.OPEN, Action.DECIDE): RequestState.DECIDED,
    (RequestState.DRAFTED, Action.DECIDE): RequestState.DECIDED,
    (RequestState.BLOCKED, Action.DECIDE): RequestState.DECIDED,  # the chair can still decide
    (RequestState.DRAFTED, Action.REOPEN): RequestState.OPEN,
    (RequestState.DECIDED, Action.REOPEN): RequestState.OPEN,
    (RequestState.PENDING, Action.BLOCK): RequestState.BLOCKED,
    (RequestState.OPEN, Action.BLOCK): RequestState.BLOCKED,
    (RequestState.DRAFTED, Action.BLOCK): RequestState.BLOCKED,
}

_WHY_NOT: dict[Action, str] = {
    Action.ACCEPT: N_("it is not waiting for triage"),
    Action.CANCEL: N_("it is already decided or cancelled"),
    Action.ROOM_READY: N_("the request's room is already set up"),
    Action.CLOSE: N_("the ballot is not open"),
    Action.CONFIRM: N_(
        "there is no draft sense of the room to confirm yet (close the ballot first)"
    ),
    Action.DECIDE: N_("the request is already decided (reopen it first)"),
    Action.REOPEN: N_("the ballot is still open"),
    Action.BLOCK: N_("the request is already decided"),
}


def transition(state: RequestState, action: Action) -> RequestState:
    """The state after `action`, or LifecycleError saying why it cannot happen now."""
    try:
        return _TRANSITIONS[(state, action)]
    except KeyError:
        raise LifecycleError(_WHY_NOT[action]) from None


def outcome_for(proposal: Proposal) -> Outcome:
    """The outcome a chair's `confirm` records for a draft; refuses a draft with open objections."""
    if proposal is Proposal.NO_CONSENSUS_YET:
        raise LifecycleError(
            N_("objections are still open: dispose of each, or decide with a rationale")
        )
    if proposal is Proposal.ROUGH_CONSENSUS_ADMIT:
        return Outcome.ADMIT
    return Outcome.NO_CONSENSUS
