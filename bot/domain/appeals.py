"""Appeals of a decision: any member or the applicant, within a window; a chair answers.

The IESG's appeal practice (RFC 2026 §6.5) as the anchor: an appeal is recorded, the chairs
must answer it with a rationale, and an upheld appeal reopens the question. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.text import N_, Phrase, Span, phrase


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
) -> Phrase | None:
    """Why an appeal cannot be lodged now, or None.

    `already_open`: the number of this person's appeal of the same decision that a chair
    has not answered yet. One at a time: each appeal is a message to every chair, so a
    second one before the answer would only repeat the first (or flood them)."""
    if decided_at is None:
        return Phrase(N_("only a decided request can be appealed"))
    if not entitled:
        return Phrase(N_("only members and the applicant can appeal a decision"))
    if window_ms is not None and now > decided_at + window_ms:
        return phrase(
            N_("the appeal window (%(window)s after the outcome) has closed"),
            window=Span(window_ms),
        )
    if already_open is not None:
        return phrase(
            N_(
                "your appeal #%(id)s of this decision is still open; a chair answers it "
                "before you can appeal it again"
            ),
            id=already_open,
        )
    return None
