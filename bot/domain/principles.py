"""The six participation principles every request card shows (docs/design/process.md)."""

from __future__ import annotations

PRINCIPLES: tuple[tuple[str, str], ...] = (
    (
        "Independence",
        "each stakeholder group defines its own processes; the group represents no single "
        "participant and excludes no other group",
    ),
    ("Community", "a shared vision of an open, accessible Internet that benefits everyone"),
    ("Transparency", "the group works in the open"),
    ("Participation", "effective participation of all relevant stakeholders from all regions"),
    (
        "Technical relevance and excellence",
        "contributions rest on technical knowledge and rough consensus",
    ),
    ("Collaboration", "working with governments, organisations and all sectors of society"),
)
