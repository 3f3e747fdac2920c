"""The fixed vocabularies of the multistakeholder model: stakeholder groups and ITU regions."""

from __future__ import annotations

STAKEHOLDER_GROUPS: tuple[str, ...] = (
    "government",
    "private-sector",
    "civil-society",
    "technical-community",
    "academia",
    "intergovernmental",
    "international-organization",
)

REGIONS: tuple[str, ...] = (
    "africa",
    "americas",
    "arab-states",
    "asia-pacific",
    "europe",
    "cis",
)
