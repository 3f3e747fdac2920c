"""A participation request as the domain sees it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.lifecycle import Outcome, RequestState
from bot.domain.sense import Proposal


@dataclass(frozen=True, slots=True)
class Applicant:
    """Who asks to participate, as filed."""

    applicant: str  # a Matrix user ID or a name
    name: str | None = None
    org: str | None = None
    stakeholder: str | None = None
    region: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    kind: str | None = None  # "individual" | "organisation"
    representative: str | None = None  # who represents an organisation
    background: str | None = None  # Internet resources and roles, with links

    @property
    def user_id(self) -> str | None:
        """The applicant's Matrix user ID, when one was given."""
        a = self.applicant
        return a if a.startswith("@") and ":" in a else None

    @property
    def display(self) -> str:
        """How to name the applicant in messages."""
        if self.name and self.name != self.applicant:
            return f"{self.name} ({self.applicant})"
        return self.applicant


@dataclass(frozen=True, slots=True)
class Request:
    """A participation request and where it stands."""

    id: int  # the bot-wide key every table refers to; members never see it
    group_id: str  # the group the request was made to
    number: int  # `#N`: the request's number in its group
    applicant: Applicant
    statement: str
    filed_by: str
    self_applied: bool
    state: RequestState
    room_id: str | None
    ballot_event_id: str | None
    deadline_at: int
    created_at: int
    opened_at: int | None = None
    closed_at: int | None = None
    proposal: Proposal | None = None
    outcome: Outcome | None = None
    decided_by: str | None = None
    rationale: str | None = None
    decided_at: int | None = None
    poll_event_id: str | None = None
    nudged_at: int | None = None
    draft_event_id: str | None = None  # the current round's draft, edited in place
    early_rationale: str | None = None  # why a chair acted before the minimum deadline
    tally_event_id: str | None = None  # the live tally, pinned and edited
    affirmed_at: int | None = None  # when the applicant affirmed the six principles
    card_event_id: str | None = None  # the request card, edited when the request is edited
    # The applicant's answer to whether their name and organisation may be published
    # (`[publish]`); None: not answered, which publishes neither.
    publish_consent: bool | None = None

    @property
    def title(self) -> str:
        """Short title: 'Request #3: Jane Doe (@jane:example.org)'."""
        return f"Request #{self.number}: {self.applicant.display}"

    @property
    def triage_title(self) -> str:
        """'Request #3 from @jane:example.org': the title before a chair accepted it, where
        others read it (the main room, the digest), with no text the applicant chose; a
        request filed for a name says who filed it instead."""
        who = self.applicant.user_id
        return f"Request #{self.number} " + (f"from {who}" if who else f"filed by {self.filed_by}")
