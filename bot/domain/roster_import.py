"""Importing a roster from a CSV file: every row read and checked, then what would change.

The file has a header naming the columns `user_id`, `stakeholder` and `region` (in any order),
and optionally `country` (read and ignored for now). Every row is checked — a Matrix user ID,
a stakeholder group and a region from `bot.domain.taxonomy`, no user listed twice — and every
problem is reported with its line number, so an operator fixes the file in one go. Nothing is
imported unless every row is valid. Pure: the caller reads the file and the roster.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.mxid import is_user_id
from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS

REQUIRED_COLUMNS: tuple[str, ...] = ("user_id", "stakeholder", "region")
OPTIONAL_COLUMNS: tuple[str, ...] = ("country",)

_MAX_SHOWN = 60


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One valid row: a member to add or update, and the line it came from."""

    line: int
    user_id: str
    stakeholder: str
    region: str


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why a line of the file cannot be imported."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class ParsedRoster:
    """The rows of a file that are valid, and every problem found (import only without any)."""

    rows: tuple[RosterRow, ...]
    problems: tuple[RowProblem, ...]

    @property
    def ok(self) -> bool:
        """True when every row is valid (and the header too)."""
        return not self.problems


def _shown(text: str) -> str:
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    if len(cleaned) > _MAX_SHOWN:
        cleaned = cleaned[: _MAX_SHOWN - 1] + "…"
    return f"'{cleaned}'"


def _choice_problem(value: str, what: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    if not value:
        return f"{what} is empty; use one of: {', '.join(choices)}"
    return f"{_shown(value)} is not a {what}{hint}; use one of: {', '.join(choices)}"


def _header(cells: list[str]) -> tuple[dict[str, int], list[str]]:
    """Column name -> index, and the header's problems."""
    names = [cell.strip().lower() for cell in cells]
    known = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    problems: list[str] = []
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        if name not in known:
            problems.append(
                f"unknown column {_shown(name)}: the columns are "
                f"{', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}"
            )
        elif name in index:
            problems.append(f"column {name} is named twice")
        else:
            index[name] = position
    missing = [name for name in REQUIRED_COLUMNS if name not in index]
    if missing:
        problems.append(
            f"the header lacks {', '.join(missing)}: the first line must name the columns, "
            f"e.g. {','.join(REQUIRED_COLUMNS)}"
        )
    return index, problems


def _row_problems(user_id: str, stakeholder: str, region: str) -> list[str]:
    problems: list[str] = []
    if not is_user_id(user_id):
        what = "user_id is empty" if not user_id else f"{_shown(user_id)} is not a Matrix user ID"
        problems.append(f"{what} (expected @name:server)")
    if stakeholder not in STAKEHOLDER_GROUPS:
        problems.append(_choice_problem(stakeholder, "stakeholder group", STAKEHOLDER_GROUPS))
    if region not in REGIONS:
        problems.append(_choice_problem(region, "region", REGIONS))
    return problems


def parse_roster(text: str) -> ParsedRoster:
    """Read and check a roster CSV (the file's text, a byte-order mark already removed).

    Blank lines are skipped. Values are stripped; stakeholder groups and regions are taken
    case-insensitively and stored in lower case. Line numbers are those of the file (a quoted
    value running over several lines counts from its first line).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[RowProblem] = []
    rows: list[RosterRow] = []
    first_seen: dict[str, int] = {}
    columns: dict[str, int] | None = None
    width = 0
    line = 1
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RowProblem(reader.line_num or line, f"not readable as CSV: {exc}"))
            break
        if not any(cell.strip() for cell in cells):
            continue
        if columns is None:
            columns, header_problems = _header(cells)
            width = len(cells)
            if header_problems:
                problems += [RowProblem(line, message) for message in header_problems]
                break
            continue
        if len(cells) != width:
            problems.append(
                RowProblem(line, f"expected {width} values like the header, found {len(cells)}")
            )
            continue
        user_id = cells[columns["user_id"]].strip()
        stakeholder = cells[columns["stakeholder"]].strip().lower()
        region = cells[columns["region"]].strip().lower()
        found = _row_problems(user_id, stakeholder, region)
        if user_id in first_seen:
            found.append(f"{user_id} is listed twice (also on line {first_seen[user_id]})")
        else:
            first_seen[user_id] = line
        if found:
            problems += [RowProblem(line, message) for message in found]
        else:
            rows.append(RosterRow(line, user_id, stakeholder, region))
    if columns is None and not problems:
        problems.append(
            RowProblem(1, f"the file is empty: it needs a header ({','.join(REQUIRED_COLUMNS)})")
        )
    return ParsedRoster(tuple(rows), tuple(problems))


# --------------------------------------------------------------------------- what changes


@dataclass(frozen=True, slots=True)
class Existing:
    """A roster entry as it stands before the import."""

    stakeholder: str
    region: str
    active: bool


class Change(StrEnum):
    """What importing a row does to the roster."""

    ADD = "add"
    UPDATE = "update"
    REACTIVATE = "reactivate"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class PlannedRow:
    """A row and what importing it changes."""

    row: RosterRow
    change: Change
    before: Existing | None

    def describe(self) -> str:
        """`line 3: update @bob:example.org: region africa → europe`, and the like."""
        r, before = self.row, self.before
        head = f"line {r.line}: {self.change} {r.user_id}"
        if self.change is Change.UNCHANGED:
            return head
        if self.change is Change.UPDATE and before is not None:
            changes = [
                f"{what} {old or '(none)'} → {new}"
                for what, old, new in (
                    ("stakeholder", before.stakeholder, r.stakeholder),
                    ("region", before.region, r.region),
                )
                if old != new
            ]
            return f"{head}: {', '.join(changes)}"
        return f"{head} ({r.stakeholder}, {r.region})"


def plan_import(rows: Iterable[RosterRow], existing: Mapping[str, Existing]) -> list[PlannedRow]:
    """What importing `rows` does, given the roster entries of those users (absent: new)."""
    plan: list[PlannedRow] = []
    for row in rows:
        before = existing.get(row.user_id)
        if before is None:
            change = Change.ADD
        elif not before.active:
            change = Change.REACTIVATE
        elif (before.stakeholder, before.region) != (row.stakeholder, row.region):
            change = Change.UPDATE
        else:
            change = Change.UNCHANGED
        plan.append(PlannedRow(row, change, before))
    return plan


def summarize(plan: Sequence[PlannedRow], *, done: bool = False) -> str:
    """`2 to add, 1 to update, 0 to reactivate, 3 unchanged`, or with `done`
    `2 added, 1 updated, 0 reactivated, 3 unchanged`."""
    count = {change: 0 for change in Change}
    for planned in plan:
        count[planned.change] += 1
    words = (
        ("added", "updated", "reactivated") if done else ("to add", "to update", "to reactivate")
    )
    return (
        f"{count[Change.ADD]} {words[0]}, {count[Change.UPDATE]} {words[1]}, "
        f"{count[Change.REACTIVATE]} {words[2]}, {count[Change.UNCHANGED]} unchanged"
    )
