"""Appeals of a decision: any member or the applicant, within a window; a chair answers.

The IESG's appeal practice (RFC 2026 §6.5) as the anchor: an appeal is recorded, the chairs
must answer it with a rationale, and an upheld appeal reopens the question. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.durations import format_duration
from bot.domain.text import N_


@dataclass(frozen=True, slots=True)
class Appeal:
    """An appeal of a decision (RFC 2026 §6.5 in spirit), answered by a chair."""

    id: int
    request_id: int
    segment: int  # the decision (record segment) appealed
    member: str
    reason: str
    created_at: int
    state: str  # open | upheld | denied
    answered_by: str | None = None
    rationale: str | None = None
    answered_at: int | None = None

    @property
    def is_open(self) -> bool:
        """True until a chair answered it."""
        return self.state == "open"


def appeal_problem(
    decided_at: int | None,
    window_ms: int | None,
    now: int,
    *,
    entitled: bool,
    already_open: int | None = None,
) -> str | None:
    """Why an appeal cannot be lodged now, or None.

    `already_open`: the number of this person's appeal of the same decision that a chair
    has not answered yet. One at a time: each appeal is a message to every chair, so a
    second one before the answer would only repeat the first (or flood them)."""
    if decided_at is None:
        return N_("only a decided request can be appealed")
    if not entitled:
        return N_("only members and the applicant can appeal a decision")
    if window_ms is not None and now > decided_at + window_ms:
        return f"the appeal window ({format_duration(window_ms)} after the outcome) has closed"
    if already_open is not None:
        return (
            f"your appeal #{already_open} of this decision is still open; a chair answers it "
            "before you can appeal it again"
        )
    return None
