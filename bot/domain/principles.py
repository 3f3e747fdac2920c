"""The six participation principles every request card shows (docs/design/process.md)."""

from __future__ import annotations

from bot.domain.text import N_

PRINCIPLES: tuple[tuple[str, str], ...] = (
    (
        N_("Independence"),
        N_(
            "each stakeholder group defines its own processes; the group represents no single "
            "participant and excludes no other group"
        ),
    ),
    (
        N_("Community"),
        N_("a shared vision of an open, accessible Internet that benefits everyone"),
    ),
    (N_("Transparency"), N_("the group works in the open")),
    (
        N_("Participation"),
        N_("effective participation of all relevant stakeholders from all regions"),
    ),
    (
        N_("Technical relevance and excellence"),
        N_("contributions rest on technical knowledge and rough consensus"),
    ),
    (
        N_("Collaboration"),
        N_("working with governments, organisations and all sectors of society"),
    ),
)
