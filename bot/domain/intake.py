"""What an application must hold before a chair can put it to the members (the charter:
demonstrated background, commitment to the six principles), and the order it is asked in.

Pure: standard library only.
"""

from __future__ import annotations

from bot.domain.request import Applicant, Request
from bot.domain.text import N_

# (field, how the bot asks for it), in the order it asks, one at a time. The field names are
# catalog messages too (N_ below marks them), shown as the "(then: …)" of the next question.
FIELD_NAMES: tuple[str, ...] = (
    N_("country"),
    N_("stakeholder"),
    N_("background"),
    N_("affirmation"),
)
REQUIRED: tuple[tuple[str, str], ...] = (
    # The questions are catalog messages: the edge asks them in the applicant's language.
    ("country", N_("which country are you in")),
    ("stakeholder", N_("which stakeholder group you belong to")),
    ("background", N_("your background: the Internet resources and roles, with links")),
    ("affirmation", N_("please affirm the six participation principles")),
)


def incomplete(applicant: Applicant) -> list[str]:
    """What a request filed for someone lacks before members can judge it (the
    affirmation is the applicant's own act and does not hold a member's request back)."""
    have = {
        "country": bool(applicant.country),
        "stakeholder": bool(applicant.stakeholder),
        "background": bool(applicant.background),
    }
    return [name for name, _ in REQUIRED if name in have and not have[name]]


def missing_fields(req: Request) -> list[tuple[str, str]]:
    """The required fields a request still lacks, in the order the bot asks for them.

    The affirmation is the applicant's own act: a request filed by someone else lacks it
    until the applicant affirms (the card says so meanwhile).
    """
    a = req.applicant
    have = {
        "country": bool(a.country),
        "stakeholder": bool(a.stakeholder),
        "background": bool(a.background),
        "affirmation": req.affirmed_at is not None,
    }
    return [(name, ask) for name, ask in REQUIRED if not have[name]]
