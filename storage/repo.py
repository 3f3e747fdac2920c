"""Repositories: SQL in, domain values out. Every method runs inside a caller's transaction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

from bot.domain.appeals import Appeal
from bot.domain.counting import InputRow, Redaction
from bot.domain.ledger import PositionInput, Source
from bot.domain.lifecycle import Outcome, RequestState
from bot.domain.objections import Objection, ObjectionEvent, ObjectionState
from bot.domain.positions import Position
from bot.domain.request import Applicant, Request
from bot.domain.sense import Proposal, Voter
from storage.backend import Tx
from storage.rows import Row


@dataclass(frozen=True, slots=True)
class Member:
    """A roster entry."""

    user_id: str
    stakeholder: str
    region: str
    active: bool
    tz: str | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An operation waiting to be sent to the homeserver."""

    id: int
    txn_id: str
    op: str
    request_id: int | None
    room_id: str | None
    target: str | None
    purpose: str | None
    payload: dict[str, Any]
    attempts: int
    created_at: int = 0


# Above this many rows, a read's rows become objects off the event loop: for a request of
# 10,000 members that is about 60 ms of Python the loop would otherwise be blocked for
# (bench/stalls.py). Fewer cost less than the hand-off to a thread.
OFF_LOOP_ROWS = 2_000
_T = TypeVar("_T")


async def _convert(rows: Sequence[Row], convert: Callable[[Row], _T]) -> list[_T]:
    """`convert` each row: in a thread for many rows (they are plain values by now)."""
    if len(rows) <= OFF_LOOP_ROWS:
        return [convert(r) for r in rows]
    return await asyncio.to_thread(lambda: [convert(r) for r in rows])


def _eligible_row(r: Row) -> EligibleRow:
    return EligibleRow(
        Voter(r["user_id"], r["stakeholder"], r["region"], r["country"]), r["removed_at"]
    )


@dataclass(frozen=True, slots=True)
class EligibleRow:
    """A member of a request's eligible snapshot, and when they left the roster (None: on it)."""

    voter: Voter
    removed_at: int | None


@dataclass(frozen=True, slots=True)
class Rows:
    """Raw rows of a request (or of one member on it) for the counting rule."""

    eligible: list[EligibleRow]
    inputs: list[PositionInput]
    redactions: list[Redaction]

    @property
    def snapshot(self) -> list[Voter]:
        """The eligible snapshot taken when the ballot opened."""
        return [e.voter for e in self.eligible]

    @property
    def removed(self) -> dict[str, int]:
        """When members of the snapshot left the roster (those still on it are absent)."""
        return {e.voter.user_id: e.removed_at for e in self.eligible if e.removed_at is not None}


@dataclass(frozen=True, slots=True)
class PlainRows:
    """A request's rows for `bot.domain.counting.standing`, as plain tuples: what the draft
    and the live tally read, without a row object per member or input."""

    snapshot: list[Voter]  # the eligible snapshot taken when the ballot opened
    removed: dict[str, int]  # when members of it left the roster (those on it are absent)
    inputs: list[InputRow]
    redactions: list[Redaction]


@dataclass(frozen=True, slots=True)
class MemberRows(Rows):
    """One member's rows on a request, with their objections."""

    open_objection: Objection | None
    latest_objection: Objection | None


@dataclass(frozen=True, slots=True)
class HeldEvent:
    """An encrypted event kept until its key arrives."""

    event_id: str
    room_id: str
    sender: str
    ts: int
    received_at: int
    raw: str
    notified_at: int | None
    sender_key: str = ""  # the Megolm session it waits for ("" when unknown)
    session_id: str = ""


HELD_COLUMNS = (
    "event_id, room_id, sender, ts, received_at, raw, notified_at, sender_key, session_id"
)


def homeserver(user_id: str) -> str:
    """The server name of a Matrix user ID (`@local:server`)."""
    return user_id.partition(":")[2]


@dataclass(frozen=True, slots=True)
class FrozenRecord:
    """A decision record as stored when the chair decided."""

    request_id: int
    segment: int
    head: str
    body: str
    frozen_at: int


# A request's eligible snapshot with the time each member left the roster (NULL: still on it).
_ELIGIBLE = (
    "SELECT e.user_id, e.stakeholder, e.region, e.country, "
    "CASE WHEN m.active = 1 THEN NULL ELSE coalesce(m.removed_at, 0) END AS removed_at "
    "FROM eligible e LEFT JOIN members m ON m.user_id = e.user_id AND m.group_id = "
    "(SELECT q.group_id FROM requests q WHERE q.id = e.request_id) WHERE e.request_id = ?"
)


def _request(row: Row) -> Request:
    return Request(
        id=row["id"],
        group_id=row["group_id"],
        number=row["number"],
        applicant=Applicant(
            applicant=row["applicant"],
            name=row["name"],
            org=row["org"],
            stakeholder=row["stakeholder"],
            region=row["region"],
            country=row["country"],
            kind=row["kind"],
            representative=row["representative"],
            background=row["background"],
        ),
        statement=row["statement"],
        filed_by=row["filed_by"],
        self_applied=bool(row["self_applied"]),
        state=RequestState(row["state"]),
        room_id=row["room_id"],
        ballot_event_id=row["ballot_event_id"],
        deadline_at=row["deadline_at"],
        created_at=row["created_at"],
        opened_at=row["opened_at"],
        closed_at=row["closed_at"],
        proposal=Proposal(row["proposal"]) if row["proposal"] else None,
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
        decided_by=row["decided_by"],
        rationale=row["rationale"],
        decided_at=row["decided_at"],
        poll_event_id=row["poll_event_id"],
        nudged_at=row["nudged_at"],
        draft_event_id=row["draft_event_id"],
        early_rationale=row["early_rationale"],
        tally_event_id=row["tally_event_id"],
        affirmed_at=row["affirmed_at"],
        card_event_id=row["card_event_id"],
        publish_consent=None if row["publish_consent"] is None else bool(row["publish_consent"]),
    )


def _chunks(values: Sequence[Any], size: int = 500) -> list[list[Any]]:
    """`values` in lists of at most `size` (the placeholders of one `IN (…)`)."""
    return [list(values[i : i + size]) for i in range(0, len(values), size)]


def input_row(request_id: int, item: PositionInput, now: int) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters that append a position input (received at `now`)."""
    return (
        "INSERT INTO position_inputs(request_id, member, event_id, source, position, "
        "reason, ts, recorded_at, room_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(event_id) DO NOTHING",
        (
            request_id,
            item.member,
            item.event_id,
            item.source.value,
            item.position.value if item.position else None,
            item.reason,
            item.ts,
            now,
            item.room_id,
        ),
    )


def redaction_row(redaction: Redaction) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters that record a redaction."""
    return (
        "INSERT INTO redactions(event_id, redacts, room_id, sender, ts, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(event_id) DO NOTHING",
        (
            redaction.event_id,
            redaction.redacts,
            redaction.room_id,
            redaction.sender,
            redaction.ts,
            redaction.recorded_at,
        ),
    )


def enqueue_row(
    txn_id: str,
    op: str,
    payload: dict[str, Any],
    now: int,
    request_id: int | None,
    room_id: str | None,
    target: str | None,
    purpose: str | None,
) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters that queue one outgoing operation."""
    return (
        "INSERT INTO outbox(txn_id, op, request_id, room_id, target, purpose, payload, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(txn_id) DO NOTHING",
        (
            txn_id,
            op,
            request_id,
            room_id,
            target,
            purpose,
            json.dumps(payload, ensure_ascii=False),
            now,
        ),
    )


def _member(row: Row) -> Member:
    return Member(
        row["user_id"],
        row["stakeholder"],
        row["region"],
        bool(row["active"]),
        row["tz"],
        row["country"],
    )


def _pairs_table(pairs: Sequence[tuple[int, str]]) -> tuple[str, list[Any]]:
    """A `WITH pairs(r, m)` table of (request, member) pairs for a query to join, and its
    parameters: typed for PostgreSQL by its first row, and found through the tables'
    (request, member) indexes."""
    values = ", ".join(["(CAST(? AS BIGINT), CAST(? AS TEXT))"] + ["(?, ?)"] * (len(pairs) - 1))
    return f"WITH pairs(r, m) AS (VALUES {values}) ", [v for pair in pairs for v in pair]


def _input(row: Row) -> PositionInput:
    return PositionInput(
        event_id=row["event_id"],
        member=row["member"],
        position=Position(row["position"]) if row["position"] else None,
        ts=row["ts"],
        source=Source(row["source"]),
        reason=row["reason"],
        room_id=row["room_id"],
        recorded_at=row["recorded_at"],
    )


def _redaction(row: Row) -> Redaction:
    return Redaction(
        event_id=row["event_id"],
        redacts=row["redacts"],
        room_id=row["room_id"],
        sender=row["sender"],
        ts=row["ts"],
        recorded_at=row["recorded_at"] if row["recorded_at"] is not None else row["ts"],
    )


def _objection(row: Row) -> Objection:
    return Objection(
        id=row["id"],
        request_id=row["request_id"],
        member=row["member"],
        reason=row["reason"],
        state=ObjectionState(row["state"]),
        rationale=row["rationale"],
        disposed_by=row["disposed_by"],
        disposed_at=row["disposed_at"],
        reason_asked=bool(row["reason_asked"]),
        duplicate_of=row["duplicate_of"],
    )


def _appeal(row: Row) -> Appeal:
    return Appeal(
        id=row["id"],
        request_id=row["request_id"],
        segment=row["segment"],
        member=row["member"],
        reason=row["reason"],
        created_at=row["created_at"],
        state=row["state"],
        answered_by=row["answered_by"],
        rationale=row["rationale"],
        answered_at=row["answered_at"],
    )


class Repository:
    """All queries of the bot, bound to one transaction."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        # Requests already built from an identical row in this transaction: a sync batch
        # reads the same few requests for hundreds of reactions, and building one costs
        # more than the query. Keyed by the whole row, so any change makes a new value.
        self._requests: dict[tuple[Any, ...], Request] = {}

    def _request(self, row: Row) -> Request:
        key = tuple(row)
        known = self._requests.get(key)
        if known is None:
            known = self._requests[key] = _request(row)
        return known

    # --- meta -------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        """A value from the meta table (e.g. the sync token)."""
        value = await self.tx.fetchval("SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    async def set_meta(self, key: str, value: str) -> None:
        """Store a value in the meta table."""
        await self.tx.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- roster -----------------------------------------------------------------------

    async def upsert_member(
        self,
        group_id: str,
        user_id: str,
        stakeholder: str,
        region: str,
        now: int,
        added_by: str,
        country: str | None = None,
    ) -> None:
        """Add a member to a group's roster, or reactivate and update one (a country given
        replaces the known)."""
        await self.tx.execute(
            "INSERT INTO members(group_id, user_id, stakeholder, region, active, added_at, "
            "added_by, country) VALUES (?, ?, ?, ?, 1, ?, ?, ?) "
            "ON CONFLICT(group_id, user_id) DO UPDATE SET "
            "stakeholder = excluded.stakeholder, region = excluded.region, active = 1, "
            "removed_at = NULL, country = coalesce(excluded.country, members.country)",
            (group_id, user_id, stakeholder, region, now, added_by, country),
        )

    async def seed_member(
        self, group_id: str, user_id: str, stakeholder: str, region: str, now: int
    ) -> None:
        """Add a member from the config to a group's roster unless it already knows them.

        A chair's later `member remove` is not undone by a restart.
        """
        await self.tx.execute(
            "INSERT INTO members(group_id, user_id, stakeholder, region, active, added_at, "
            "added_by) VALUES (?, ?, ?, ?, 1, ?, 'config') "
            "ON CONFLICT(group_id, user_id) DO NOTHING",
            (group_id, user_id, stakeholder, region, now),
        )

    async def withdraw_admission(self, group_id: str, user_id: str, request_id: int) -> bool:
        """Undo the roster entry an admission made (on reopen); False if there was none."""
        changed = await self.tx.execute(
            "UPDATE members SET active = 0 WHERE group_id = ? AND user_id = ? AND added_by = ? "
            "AND active = 1",
            (group_id, user_id, f"admission:#{request_id}"),
        )
        return changed > 0

    async def request_for(
        self, group_id: str, applicant: str, states: Sequence[RequestState]
    ) -> Request | None:
        """The oldest request of a group for this applicant in one of these states."""
        marks = ",".join("?" for _ in states)
        row = await self.tx.fetchone(
            "SELECT * FROM requests WHERE group_id = ? AND applicant = ? "  # noqa: S608
            f"AND state IN ({marks}) ORDER BY id LIMIT 1",
            (group_id, applicant, *(s.value for s in states)),
        )
        return None if row is None else self._request(row)

    async def filed_by_applicant(self, applicant: str) -> list[Request]:
        """Requests for this applicant, newest first."""
        rows = await self.tx.fetchall(
            "SELECT * FROM requests WHERE applicant = ? ORDER BY id DESC", (applicant,)
        )
        return [self._request(r) for r in rows]

    async def add_edit(self, request_id: int, by: str, changes: dict[str, str], now: int) -> None:
        """Record an edit of a request (the record keeps every one)."""
        await self.tx.execute(
            "INSERT INTO request_edits(request_id, by, changes, at) VALUES (?, ?, ?, ?)",
            (request_id, by, json.dumps(changes, ensure_ascii=False, sort_keys=True), now),
        )

    async def edits(self, request_id: int) -> list[tuple[str, dict[str, str], int]]:
        """(by, changes, at) of every edit of a request, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT by, changes, at FROM request_edits WHERE request_id = ? ORDER BY id",
            (request_id,),
        )
        return [(r["by"], json.loads(r["changes"]), r["at"]) for r in rows]

    async def add_question(self, request_id: int, asked_by: str, question: str, now: int) -> int:
        """Record a member's question to the applicant; returns its number."""
        return await self.tx.execute(
            "INSERT INTO questions(request_id, asked_by, question, asked_at) VALUES (?, ?, ?, ?)",
            (request_id, asked_by, question, now),
        )

    async def question(self, question_id: int) -> tuple[int, str, str] | None:
        """(request ID, question, asked by) of a question."""
        row = await self.tx.fetchone("SELECT * FROM questions WHERE id = ?", (question_id,))
        return None if row is None else (row["request_id"], row["question"], row["asked_by"])

    async def answer_question(self, question_id: int, answer: str, now: int) -> None:
        """Record the applicant's answer."""
        await self.tx.execute(
            "UPDATE questions SET answer = ?, answered_at = ? WHERE id = ?",
            (answer, now, question_id),
        )

    async def filed_by(
        self, group_id: str, filer: str, *, since: int = 0, self_applied: bool = False
    ) -> list[Request]:
        """Requests a user filed with a group since a time (their own applications only, if
        asked): each group's budgets count its own."""
        rows = await self.tx.fetchall(
            "SELECT * FROM requests WHERE group_id = ? AND filed_by = ? AND created_at >= ? "
            "AND (? = 0 OR self_applied = 1) ORDER BY id",
            (group_id, filer, since, int(self_applied)),
        )
        return [self._request(r) for r in rows]

    async def deactivate_member(self, group_id: str, user_id: str, now: int) -> bool:
        """Mark a member removed from a group's roster now; False when not an active member."""
        changed = await self.tx.execute(
            "UPDATE members SET active = 0, removed_at = ? WHERE group_id = ? AND user_id = ? "
            "AND active = 1",
            (now, group_id, user_id),
        )
        return changed > 0

    async def member(self, group_id: str, user_id: str) -> Member | None:
        """A group's roster entry, active or not."""
        row = await self.tx.fetchone(
            "SELECT * FROM members WHERE group_id = ? AND user_id = ?", (group_id, user_id)
        )
        return None if row is None else _member(row)

    async def groups_of(self, user_id: str) -> list[str]:
        """The groups whose active roster lists this user, by id."""
        rows = await self.tx.fetchall(
            "SELECT group_id FROM members WHERE user_id = ? AND active = 1 ORDER BY group_id",
            (user_id,),
        )
        return [str(r[0]) for r in rows]

    async def group_ids(self) -> set[str]:
        """Every group id the database holds rows of (roster or requests)."""
        rows = await self.tx.fetchall(
            "SELECT group_id FROM members UNION SELECT group_id FROM requests"
        )
        return {str(r[0]) for r in rows}

    async def active_members(self, group_id: str) -> list[Member]:
        """A group's active roster, by user ID."""
        rows = await self.tx.fetchall(
            # lower() folds ASCII only, like SQLite's NOCASE did; the ID breaks ties.
            "SELECT * FROM members WHERE group_id = ? AND active = 1 "
            "ORDER BY lower(user_id), user_id",
            (group_id,),
        )
        return [
            Member(r["user_id"], r["stakeholder"], r["region"], True, r["tz"], r["country"])
            for r in rows
        ]

    async def set_member_tz(self, user_id: str, tz: str | None) -> None:
        """Remember a member's time zone (from their m.tz profile field)."""
        await self.tx.execute("UPDATE members SET tz = ? WHERE user_id = ?", (tz, user_id))

    async def member_zones(self, group_id: str) -> set[str | None]:
        """The distinct time zones of a group's active members (None and "" for unknown)."""
        rows = await self.tx.fetchall(
            "SELECT DISTINCT tz FROM members WHERE group_id = ? AND active = 1", (group_id,)
        )
        return {r[0] or None for r in rows}

    async def member_tzs(self, user_ids: Sequence[str]) -> dict[str, str | None]:
        """Time zone (or None when unknown) of each of these members."""
        found: dict[str, str | None] = dict.fromkeys(user_ids)
        ids = list(user_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" for _ in chunk)
            rows = await self.tx.fetchall(
                f"SELECT user_id, tz FROM members WHERE user_id IN ({marks})",  # noqa: S608
                chunk,
            )
            found.update({r[0]: (r[1] or None) for r in rows})
        return found

    async def request_by_filing(self, filed_event_id: str) -> Request | None:
        """The request filed by a given event, if any."""
        row = await self.tx.fetchone(
            "SELECT * FROM requests WHERE filed_event_id = ?", (filed_event_id,)
        )
        return None if row is None else self._request(row)

    async def create_request(
        self,
        group_id: str,
        applicant: Applicant,
        statement: str,
        filed_by: str,
        filed_event_id: str,
        self_applied: bool,
        deadline_at: int,
        now: int,
        state: RequestState = RequestState.PENDING,
    ) -> int:
        """Insert a request of a group (pending, or waiting for triage), numbered next in
        that group; returns its key (`Request.id`)."""
        return await self.tx.execute(
            "INSERT INTO requests(group_id, number, applicant, name, org, stakeholder, region, "
            "country, kind, representative, background, statement, "
            "filed_by, filed_event_id, self_applied, state, deadline_at, created_at) "
            "VALUES (?, (SELECT coalesce(max(number), 0) + 1 FROM requests WHERE group_id = ?), "
            "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                group_id,
                group_id,
                applicant.applicant,
                applicant.name,
                applicant.org,
                applicant.stakeholder,
                applicant.region,
                applicant.country,
                applicant.kind,
                applicant.representative,
                applicant.background,
                statement,
                filed_by,
                filed_event_id,
                int(self_applied),
                state.value,
                deadline_at,
                now,
            ),
        )

    async def request(self, request_id: int) -> Request | None:
        """A request by its key (`Request.id`)."""
        row = await self.tx.fetchone("SELECT * FROM requests WHERE id = ?", (request_id,))
        return None if row is None else self._request(row)

    async def request_numbered(self, group_id: str, number: int) -> Request | None:
        """A group's request by its number (`#N`, as members see it)."""
        row = await self.tx.fetchone(
            "SELECT * FROM requests WHERE group_id = ? AND number = ?", (group_id, number)
        )
        return None if row is None else self._request(row)

    async def request_by_room(self, room_id: str) -> Request | None:
        """The request whose room this is."""
        row = await self.tx.fetchone("SELECT * FROM requests WHERE room_id = ?", (room_id,))
        return None if row is None else self._request(row)

    async def request_by_poll(self, event_id: str) -> Request | None:
        """The request whose poll this is."""
        row = await self.tx.fetchone("SELECT * FROM requests WHERE poll_event_id = ?", (event_id,))
        return None if row is None else self._request(row)

    async def request_by_ballot(self, event_id: str) -> Request | None:
        """The request whose ballot message this is."""
        row = await self.tx.fetchone(
            "SELECT * FROM requests WHERE ballot_event_id = ?", (event_id,)
        )
        return None if row is None else self._request(row)

    async def requests(
        self, group_id: str | None, states: Sequence[RequestState] | None = None
    ) -> list[Request]:
        """A group's requests (None: every group's), newest first, optionally only in the
        given states."""
        # Conditions are added in Python: `? IS NULL` has no type PostgreSQL could infer.
        where: list[str] = []
        params: list[Any] = []
        if group_id is not None:
            where.append("group_id = ?")
            params.append(group_id)
        if states:
            where.append(f"state IN ({','.join('?' for _ in states)})")
            params += [s.value for s in states]
        sql = "SELECT * FROM requests" + (" WHERE " + " AND ".join(where) if where else "")  # noqa: S608
        rows = await self.tx.fetchall(sql + " ORDER BY id DESC", params)
        return [self._request(r) for r in rows]

    async def update_request(self, request_id: int, **fields: Any) -> None:
        """Set columns of a request (names come from code, never from users)."""
        allowed = {
            "state",
            "room_id",
            "ballot_event_id",
            "deadline_at",
            "opened_at",
            "closed_at",
            "proposal",
            "outcome",
            "decided_by",
            "rationale",
            "decided_at",
            "poll_event_id",
            "nudged_at",
            "draft_event_id",
            "early_rationale",
            "tally_event_id",
            "affirmed_at",
            "card_event_id",
            "publish_consent",
            "name",
            "org",
            "stakeholder",
            "region",
            "country",
            "kind",
            "representative",
            "background",
            "statement",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not request columns: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values = [v.value if hasattr(v, "value") else v for v in fields.values()]
        await self.tx.execute(
            f"UPDATE requests SET {assignments} WHERE id = ?",  # noqa: S608
            [*values, request_id],
        )

    # --- eligibility ------------------------------------------------------------------

    async def snapshot_eligible(self, request_id: int) -> int:
        """Record the active roster of the request's group as its eligible members; returns
        how many."""
        await self.tx.execute(
            "INSERT INTO eligible(request_id, user_id, stakeholder, region, country) "
            "SELECT CAST(? AS BIGINT), user_id, stakeholder, region, coalesce(country, '') "
            "FROM members WHERE active = 1 AND group_id = "
            "(SELECT group_id FROM requests WHERE id = ?) ON CONFLICT DO NOTHING",
            (request_id, request_id),
        )
        return int(
            await self.tx.fetchval(
                "SELECT count(*) FROM eligible WHERE request_id = ?", (request_id,)
            )
        )

    async def voters(self, request_id: int) -> list[Voter]:
        """The eligible snapshot's members that are still on the active roster (for invites)."""
        rows = await self._eligible(request_id)
        return [e.voter for e in rows if e.removed_at is None]

    async def _eligible(self, request_id: int, member: str | None = None) -> list[EligibleRow]:
        sql = _ELIGIBLE
        params: tuple[Any, ...] = (request_id,)
        if member is not None:
            sql += " AND e.user_id = ?"
            params = (request_id, member)
        rows = await self.tx.fetchall(sql + " ORDER BY e.user_id", params)
        return await _convert(rows, _eligible_row)

    # --- positions --------------------------------------------------------------------

    async def add_input(self, request_id: int, item: PositionInput, now: int) -> bool:
        """Append a position input, received now; False when its event was recorded before."""
        changed = await self.tx.execute(*input_row(request_id, item, now))
        return changed > 0

    async def inputs(self, request_id: int, member: str | None = None) -> list[PositionInput]:
        """A request's inputs (one member's when given), in the order they were received."""
        if member is None:
            rows = await self.tx.fetchall(
                "SELECT * FROM position_inputs WHERE request_id = ? ORDER BY id", (request_id,)
            )
        else:
            rows = await self.tx.fetchall(
                "SELECT * FROM position_inputs WHERE request_id = ? AND member = ? ORDER BY id",
                (request_id, member),
            )
        return await _convert(rows, _input)

    async def reaction_ids(self, request_id: int) -> list[str]:
        """Event IDs of a request's stored reaction inputs (what reconciliation compares with
        the server's relations; not whole inputs, which for every open request at start-up
        cost tens of megabytes)."""
        rows = await self.tx.fetchall(
            "SELECT event_id FROM position_inputs WHERE request_id = ? AND source = ? ORDER BY id",
            (request_id, Source.REACTION.value),
        )
        return [r[0] for r in rows]

    async def _redactions_of(
        self, request_id: int, member: str | None = None, *, turn: bool = False
    ) -> list[Redaction]:
        sql = (
            "SELECT r.* FROM redactions r JOIN position_inputs p ON p.event_id = r.redacts "
            "WHERE p.request_id = ?"
        )
        params: tuple[Any, ...] = (request_id,)
        if member is not None:
            sql += " AND p.member = ?"
            params = (request_id, member)
        if turn:
            await asyncio.sleep(0)  # a big request's reads: see `_after_a_turn`
        rows = await self.tx.fetchall(sql + " ORDER BY r.recorded_at, r.event_id", params)
        return [_redaction(r) for r in rows]

    async def rows(self, request_id: int) -> Rows:
        """Every row the counting rule needs for a request. The loop gets a turn between
        the reads: SQLite runs them inline, each some milliseconds for a big request."""
        eligible = await self._eligible(request_id)
        await asyncio.sleep(0)
        inputs = await self.inputs(request_id)
        return Rows(eligible, inputs, await self._redactions_of(request_id, turn=True))

    async def plain_rows(self, request_id: int) -> PlainRows:
        """Every row the counting rule needs for a request, as plain tuples (see `PlainRows`).

        What `rows` reads, more cheaply: the snapshot is read without a join, the members who
        left the roster since (a member missing from it reads as removed long ago, as `rows`
        has it) by a second query that returns only them, and the inputs come in no
        particular order, which the rule does not depend on (a property test holds it to that).
        """
        voter = partial(tuple.__new__, Voter)  # a Voter straight from its row's 4 columns
        snapshot = list(
            map(
                voter,
                await self.tx.tuples(
                    "SELECT user_id, stakeholder, region, country FROM eligible "
                    "WHERE request_id = ? ORDER BY user_id",
                    (request_id,),
                ),
            )
        )
        # Only the members of the snapshot no longer on the roster (rare), found by SQLite's
        # own index lookups: reading the whole roster into a set cost more than the rule.
        removed: dict[str, int] = {
            r[0]: r[1]
            for r in await self._after_a_turn(
                "SELECT e.user_id, coalesce(m.removed_at, 0) FROM eligible e "
                "LEFT JOIN members m ON m.user_id = e.user_id AND m.group_id = "
                "(SELECT group_id FROM requests WHERE id = ?) "
                "WHERE e.request_id = ? AND (m.active IS NULL OR m.active != 1)",
                (request_id, request_id),
            )
        }
        inputs = await self._after_a_turn(
            "SELECT event_id, member, position, ts, source, room_id, recorded_at "
            "FROM position_inputs WHERE request_id = ?",
            (request_id,),
        )
        return PlainRows(
            snapshot,
            removed,
            cast(list[InputRow], inputs),
            await self._redactions_of(request_id, turn=True),
        )

    async def _after_a_turn(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """`tx.tuples`, after giving the loop a turn: the reads of a big request, which SQLite
        runs inline, do not add up to one long stall."""
        await asyncio.sleep(0)
        return await self.tx.tuples(sql, params)

    async def member_rows(self, request_id: int, member: str) -> MemberRows:
        """One member's rows on a request: eligibility, inputs, redactions, objections."""
        # One read for both objections (a member has a handful on a request at most).
        found = await self.tx.fetchall(
            "SELECT * FROM objections WHERE request_id = ? AND member = ? ORDER BY id DESC",
            (request_id, member),
        )
        latest = _objection(found[0]) if found else None
        open_row = next((r for r in found if r["state"] == "open"), None)
        if open_row is None:
            opened = None
        elif open_row is found[0]:
            opened = latest  # the usual case: the latest objection is the open one
        else:
            opened = _objection(open_row)
        return MemberRows(
            await self._eligible(request_id, member),
            await self.inputs(request_id, member),
            await self._redactions_of(request_id, member),
            opened,
            latest,
        )

    # --- bulk reads: a sync batch's working set (storage.unit) ----------------------------

    async def requests_for_events(
        self,
        ballots: Sequence[str],
        polls: Sequence[str],
        rooms: Sequence[str],
        inputs: Sequence[str],
    ) -> list[Request]:
        """In one query: the requests whose ballot or poll is one of these events, in these
        rooms, or with an input among these events."""
        groups = [sorted(set(v)) for v in (ballots, polls, rooms, inputs)]
        if len(max(groups, key=len)) > 500:  # a batch is rarely this large: one per chunk
            found: dict[int, Request] = {}
            for i, group in enumerate(groups):
                for chunk in _chunks(group):
                    parts = [chunk if j == i else [] for j in range(4)]
                    for req in await self.requests_for_events(*parts):
                        found[req.id] = req
            return list(found.values())
        marks = [",".join("?" * len(g)) or "NULL" for g in groups]
        sql = (
            f"SELECT * FROM requests WHERE ballot_event_id IN ({marks[0]}) "  # noqa: S608
            f"OR poll_event_id IN ({marks[1]}) OR room_id IN ({marks[2]}) OR id IN "
            f"(SELECT request_id FROM position_inputs WHERE event_id IN ({marks[3]}))"
        )
        rows = await self.tx.fetchall(sql, [v for g in groups for v in g])
        return [self._request(r) for r in rows]

    async def inputs_by_events(
        self, event_ids: Sequence[str]
    ) -> dict[str, tuple[int, PositionInput]]:
        """(request ID, input) of each of these events that is a recorded input."""
        found: dict[str, tuple[int, PositionInput]] = {}
        for chunk in _chunks(sorted(set(event_ids))):
            marks = ",".join("?" * len(chunk))
            rows = await self.tx.fetchall(
                f"SELECT * FROM position_inputs WHERE event_id IN ({marks})",  # noqa: S608
                chunk,
            )
            for row in rows:
                found[row["event_id"]] = (int(row["request_id"]), _input(row))
        return found

    async def redactions_among(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events are recorded redactions."""
        found: set[str] = set()
        for chunk in _chunks(sorted(set(event_ids))):
            marks = ",".join("?" * len(chunk))
            rows = await self.tx.tuples(
                f"SELECT event_id FROM redactions WHERE event_id IN ({marks})",  # noqa: S608
                chunk,
            )
            found.update(r[0] for r in rows)
        return found

    async def member_rows_many(
        self, pairs: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], MemberRows]:
        """`member_rows` without the objections for these (request, member) pairs, those with
        rows only (the others have none), in three queries per 300 pairs: what a sync
        batch's positions are decided on."""
        eligible: dict[tuple[int, str], list[EligibleRow]] = {}
        inputs: dict[tuple[int, str], list[PositionInput]] = {}
        redactions: dict[tuple[int, str], list[Redaction]] = {}
        for chunk in _chunks(sorted(set(pairs)), 300):
            pairs_cte, params = _pairs_table(chunk)
            eligible_sql = (
                pairs_cte  # noqa: S608
                + "SELECT e.request_id, e.user_id, e.stakeholder, e.region, e.country, "
                "CASE WHEN m.active = 1 THEN NULL ELSE coalesce(m.removed_at, 0) END "
                "AS removed_at FROM pairs JOIN eligible e ON e.request_id = pairs.r "
                "AND e.user_id = pairs.m JOIN requests q ON q.id = e.request_id "
                "LEFT JOIN members m ON m.group_id = q.group_id AND m.user_id = e.user_id"
            )
            for row in await self.tx.fetchall(eligible_sql, params):
                voter = Voter(row["user_id"], row["stakeholder"], row["region"], row["country"])
                key = (int(row["request_id"]), row["user_id"])
                eligible.setdefault(key, []).append(EligibleRow(voter, row["removed_at"]))
            inputs_sql = (
                pairs_cte  # noqa: S608
                + "SELECT p.* FROM pairs JOIN position_inputs p ON p.request_id = pairs.r "
                "AND p.member = pairs.m ORDER BY p.id"
            )
            for row in await self.tx.fetchall(inputs_sql, params):
                key = (int(row["request_id"]), row["member"])
                inputs.setdefault(key, []).append(_input(row))
            redactions_sql = (
                pairs_cte + "SELECT p.request_id AS input_request, p.member AS input_member, r.* "
                "FROM pairs JOIN position_inputs p ON p.request_id = pairs.r "
                "AND p.member = pairs.m JOIN redactions r ON r.redacts = p.event_id "
                "ORDER BY r.recorded_at, r.event_id"
            )
            for row in await self.tx.fetchall(redactions_sql, params):
                key = (int(row["input_request"]), row["input_member"])
                redactions.setdefault(key, []).append(_redaction(row))
        # Only the pairs with rows: any other pair of these requests and members has none.
        return {
            key: MemberRows(
                eligible.get(key, []),
                inputs.get(key, []),
                redactions.get(key, []),
                None,  # the objections come with `objections_of_pairs`
                None,
            )
            for key in eligible.keys() | inputs.keys() | redactions.keys()
        }

    async def senders(
        self, user_ids: Sequence[str]
    ) -> dict[str, tuple[dict[str, Member], str | None]]:
        """Each user's roster entries by group (active or not; none when on no roster) and
        chosen language (None: the group's), in one query per 500 users."""
        found: dict[str, tuple[dict[str, Member], str | None]] = {}
        for chunk in _chunks(sorted(set(user_ids))):
            values = ", ".join(["(CAST(? AS TEXT))"] + ["(?)"] * (len(chunk) - 1))
            sql = (
                f"WITH s(u) AS (VALUES {values}) "  # noqa: S608
                "SELECT s.u AS sender, l.language AS chosen, m.* FROM s "
                "LEFT JOIN members m ON m.user_id = s.u LEFT JOIN languages l ON l.user_id = s.u"
            )
            for row in await self.tx.fetchall(sql, chunk):
                chosen = None if row["chosen"] is None else str(row["chosen"])
                entries = found.setdefault(row["sender"], ({}, chosen))[0]
                if row["user_id"] is not None:
                    entries[row["group_id"]] = _member(row)
        return found

    async def objections_of_pairs(
        self, pairs: Sequence[tuple[int, str]]
    ) -> dict[int, list[Objection]]:
        """Every objection of these (request, member) pairs, by request, oldest first."""
        found: dict[int, list[Objection]] = {}
        for chunk in _chunks(sorted(set(pairs)), 300):
            cte, params = _pairs_table(chunk)
            sql = (
                cte  # noqa: S608
                + "SELECT o.* FROM pairs JOIN objections o ON o.request_id = pairs.r "
                "AND o.member = pairs.m ORDER BY o.id"
            )
            for row in await self.tx.fetchall(sql, params):
                found.setdefault(int(row["request_id"]), []).append(_objection(row))
        for objections in found.values():
            objections.sort(key=lambda o: o.id)
        return found

    async def pending_purposes(
        self, request_ids: Sequence[int], purposes: Sequence[str]
    ) -> set[tuple[int, str]]:
        """(request ID, purpose) of the pending operations of these requests with one of
        these purposes."""
        found: set[tuple[int, str]] = set()
        rids = sorted(set(request_ids))
        if not rids:
            return found
        for chunk in _chunks(sorted(set(purposes))):
            sql = (
                "SELECT request_id, purpose FROM outbox WHERE state = 'pending' "  # noqa: S608
                f"AND request_id IN ({','.join('?' * len(rids))}) "
                f"AND purpose IN ({','.join('?' * len(chunk))})"
            )
            rows = await self.tx.tuples(sql, [*rids, *chunk])
            found.update((int(r[0]), str(r[1])) for r in rows)
        return found

    async def last_objection_id(self) -> int:
        """The highest objection number given so far (0 when none)."""
        return int(await self.tx.fetchval("SELECT coalesce(max(id), 0) FROM objections"))

    async def input_by_event(self, event_id: str) -> tuple[int, PositionInput] | None:
        """(request ID, input) recorded for an event."""
        row = await self.tx.fetchone(
            "SELECT * FROM position_inputs WHERE event_id = ?", (event_id,)
        )
        return None if row is None else (int(row["request_id"]), _input(row))

    async def add_redaction(self, redaction: Redaction) -> bool:
        """Record a redaction (whoever sent it, wherever); False when seen before."""
        changed = await self.tx.execute(*redaction_row(redaction))
        return changed > 0

    # --- records ----------------------------------------------------------------------

    async def freeze_record(
        self, request_id: int, segment: int, head: str, body: str, now: int
    ) -> None:
        """Store a decision record; a segment is written once and never replaced."""
        await self.tx.execute(
            "INSERT INTO records(request_id, segment, head, body, frozen_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (request_id, segment, head, body, now),
        )

    async def frozen_records(self, request_id: int) -> list[FrozenRecord]:
        """A request's frozen record segments, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT * FROM records WHERE request_id = ? ORDER BY segment", (request_id,)
        )
        return [
            FrozenRecord(r["request_id"], r["segment"], r["head"], r["body"], r["frozen_at"])
            for r in rows
        ]

    # --- objections -------------------------------------------------------------------

    async def objections(self, request_id: int) -> list[Objection]:
        """Every objection on a request, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT * FROM objections WHERE request_id = ? ORDER BY id", (request_id,)
        )
        return [_objection(r) for r in rows]

    async def objection(self, objection_id: int) -> Objection | None:
        """One objection by its number."""
        row = await self.tx.fetchone("SELECT * FROM objections WHERE id = ?", (objection_id,))
        return None if row is None else _objection(row)

    async def latest_objection(self, request_id: int, member: str) -> Objection | None:
        """The member's most recent objection on a request, in any state."""
        row = await self.tx.fetchone(
            "SELECT * FROM objections WHERE request_id = ? AND member = ? ORDER BY id DESC LIMIT 1",
            (request_id, member),
        )
        return None if row is None else _objection(row)

    async def open_objection(self, request_id: int, member: str) -> Objection | None:
        """The member's open objection on a request, if any."""
        row = await self.tx.fetchone(
            "SELECT * FROM objections WHERE request_id = ? AND member = ? AND state = 'open' "
            "ORDER BY id DESC LIMIT 1",
            (request_id, member),
        )
        return None if row is None else _objection(row)

    async def add_objection(
        self, request_id: int, member: str, event_id: str, reason: str | None, now: int
    ) -> int:
        """Open a new objection (and its history); returns its number."""
        # Numbered max + 1, never by the column's default: a sync batch numbers its new
        # objections itself (storage.unit), which a PostgreSQL identity would not follow.
        oid = await self.tx.execute(
            "INSERT INTO objections(id, request_id, member, event_id, reason, state, created_at) "
            "VALUES ((SELECT coalesce(max(id), 0) + 1 FROM objections), ?, ?, ?, ?, 'open', ?)",
            (request_id, member, event_id, reason, now),
        )
        await self._history(oid, "raised", member, None, reason, now)
        return oid

    async def set_objection_reason(
        self, objection_id: int, reason: str, by: str = "", now: int = 0
    ) -> None:
        """Give an open objection its (new) reason."""
        await self.tx.execute(
            "UPDATE objections SET reason = ? WHERE id = ?", (reason, objection_id)
        )
        await self._history(objection_id, "reason", by, None, reason, now)

    async def dispose_objection(
        self,
        objection_id: int,
        state: ObjectionState,
        by: str,
        rationale: str | None,
        now: int,
        duplicate_of: int | None = None,
    ) -> None:
        """Record a disposition."""
        await self.tx.execute(
            "UPDATE objections SET state = ?, disposed_by = ?, rationale = ?, disposed_at = ?, "
            "duplicate_of = ? WHERE id = ?",
            (state.value, by, rationale, now, duplicate_of, objection_id),
        )
        await self._history(objection_id, "disposed", by, state.value, rationale, now)

    async def contest_objection(self, objection_id: int, by: str, reason: str, now: int) -> None:
        """The objector contests the disposition: the objection is open again."""
        await self.tx.execute(
            "UPDATE objections SET state = 'open', disposed_by = NULL, rationale = NULL, "
            "disposed_at = NULL, duplicate_of = NULL WHERE id = ?",
            (objection_id,),
        )
        await self._history(objection_id, "contested", by, None, reason, now)

    async def mark_reason_asked(self, objection_id: int) -> None:
        """The objector was asked for the reason (once per objection)."""
        await self.tx.execute(
            "UPDATE objections SET reason_asked = 1 WHERE id = ?", (objection_id,)
        )

    async def _history(
        self, objection_id: int, kind: str, by: str, state: str | None, text: str | None, at: int
    ) -> None:
        await self.tx.execute(
            "INSERT INTO objection_events(objection_id, kind, by, state, text, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (objection_id, kind, by, state, text, at),
        )

    async def objection_history(self, request_id: int) -> list[ObjectionEvent]:
        """Every step of every objection on a request, in order."""
        rows = await self.tx.fetchall(
            "SELECT e.* FROM objection_events e JOIN objections o ON o.id = e.objection_id "
            "WHERE o.request_id = ? ORDER BY e.id",
            (request_id,),
        )
        return [
            ObjectionEvent(r["objection_id"], r["kind"], r["by"], r["state"], r["text"], r["at"])
            for r in rows
        ]

    # --- appeals ----------------------------------------------------------------------

    async def add_appeal(
        self, request_id: int, segment: int, member: str, reason: str, now: int
    ) -> int:
        """Record an appeal; returns its number."""
        return await self.tx.execute(
            "INSERT INTO appeals(request_id, segment, member, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (request_id, segment, member, reason, now),
        )

    async def appeal(self, appeal_id: int) -> Appeal | None:
        """One appeal by its number."""
        row = await self.tx.fetchone("SELECT * FROM appeals WHERE id = ?", (appeal_id,))
        return None if row is None else _appeal(row)

    async def appeals(
        self,
        request_id: int | None = None,
        *,
        open_only: bool = False,
        group_id: str | None = None,
    ) -> list[Appeal]:
        """Appeals of a request (or of all, or of a group's requests), oldest first; only
        unanswered ones if asked."""
        # Conditions are added in Python: `? IS NULL` has no type PostgreSQL could infer.
        where = ["state = 'open'"] if open_only else []
        params: tuple[Any, ...] = ()
        if request_id is not None:
            where.append("request_id = ?")
            params = (request_id,)
        if group_id is not None:
            where.append("request_id IN (SELECT id FROM requests WHERE group_id = ?)")
            params = (*params, group_id)
        sql = "SELECT * FROM appeals" + (" WHERE " + " AND ".join(where) if where else "")  # noqa: S608
        rows = await self.tx.fetchall(sql + " ORDER BY id", params)
        return [_appeal(r) for r in rows]

    async def answer_appeal(
        self, appeal_id: int, state: str, by: str, rationale: str, now: int
    ) -> None:
        """Record a chair's answer to an appeal."""
        await self.tx.execute(
            "UPDATE appeals SET state = ?, answered_by = ?, rationale = ?, answered_at = ? "
            "WHERE id = ?",
            (state, by, rationale, now, appeal_id),
        )

    async def delete_meta(self, key: str) -> None:
        """Remove a value from the meta table."""
        await self.tx.execute("DELETE FROM meta WHERE key = ?", (key,))

    # --- outbox -----------------------------------------------------------------------

    async def enqueue(
        self,
        txn_id: str,
        op: str,
        payload: dict[str, Any],
        now: int,
        *,
        request_id: int | None = None,
        room_id: str | None = None,
        target: str | None = None,
        purpose: str | None = None,
    ) -> bool:
        """Queue an outgoing operation; False if one with the same txn_id exists already."""
        changed = await self.tx.execute(
            *enqueue_row(txn_id, op, payload, now, request_id, room_id, target, purpose)
        )
        return changed > 0

    async def mark_tally_dirty(self, request_ids: Sequence[int]) -> None:
        """These ballots' live tallies are out of date."""
        await self.tx.executemany(
            "UPDATE requests SET tally_dirty = 1 WHERE id = ?", [(i,) for i in request_ids]
        )

    async def dirty_tallies(self, group_id: str) -> list[int]:
        """A group's ballots whose live tally is out of date (their marks stay:
        `tally_refreshed`)."""
        rows = await self.tx.fetchall(
            "SELECT id FROM requests WHERE tally_dirty = 1 AND group_id = ? ORDER BY id",
            (group_id,),
        )
        return [int(r[0]) for r in rows]

    async def tally_refreshed(self, request_id: int) -> None:
        """This ballot's live tally is up to date again (in the transaction that edits it)."""
        await self.tx.execute("UPDATE requests SET tally_dirty = 0 WHERE id = ?", (request_id,))

    async def pending_purpose(self, request_id: int, purpose: str) -> bool:
        """True when an operation of this purpose for the request waits in the outbox."""
        row = await self.tx.fetchone(
            "SELECT 1 FROM outbox WHERE request_id = ? AND purpose = ? AND state = 'pending'",
            (request_id, purpose),
        )
        return row is not None

    async def pending_outbox(self, limit: int = 50) -> list[OutboxItem]:
        """Operations not yet sent, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT * FROM outbox WHERE state = 'pending' ORDER BY id LIMIT ?", (limit,)
        )
        return [
            OutboxItem(
                id=r["id"],
                txn_id=r["txn_id"],
                op=r["op"],
                request_id=r["request_id"],
                room_id=r["room_id"],
                target=r["target"],
                purpose=r["purpose"],
                payload=json.loads(r["payload"]),
                attempts=r["attempts"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    async def outbox_done(
        self,
        item_id: int,
        result: str | None,
        now: int,
        *,
        keep_payload: bool = True,
        keep_where: bool = True,
    ) -> None:
        """Mark an operation sent; optionally forget its payload, and where it went."""
        await self.tx.execute(
            "UPDATE outbox SET state = 'sent', result = ?, sent_at = ?, "
            "attempts = attempts + 1 WHERE id = ?",
            (result if keep_where else None, now, item_id),
        )
        if not keep_payload:
            await self.tx.execute("UPDATE outbox SET payload = '{}' WHERE id = ?", (item_id,))
        if not keep_where:
            await self.tx.execute(
                "UPDATE outbox SET room_id = NULL, target = NULL, request_id = NULL WHERE id = ?",
                (item_id,),
            )

    async def upload(self, key: str) -> str | None:
        """The mxc:// URI of an earlier upload of unchanging content, if any."""
        value = await self.tx.fetchval("SELECT uri FROM uploads WHERE key = ?", (key,))
        return None if value is None else str(value)

    async def remember_upload(self, key: str, uri: str, now: int) -> None:
        """Remember where unchanging content was uploaded."""
        await self.tx.execute(
            "INSERT INTO uploads(key, uri, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (key, uri, now),
        )

    async def prune(self, before: int) -> int:
        """Forget sent or failed outbox rows, processed events and held encrypted events
        older than `before`."""
        sent = await self.tx.execute(
            "DELETE FROM outbox WHERE state != 'pending' AND coalesce(sent_at, created_at) < ?",
            (before,),
        )
        seen = await self.tx.execute(
            "DELETE FROM processed_events WHERE processed_at < ?", (before,)
        )
        # Encrypted events whose key never came in all that time will not be read.
        held = await self.tx.execute("DELETE FROM held_events WHERE received_at < ?", (before,))
        return sent + seen + held

    async def outbox_attempt(self, item_id: int, error: str, give_up: bool) -> None:
        """Count a failed attempt; `give_up` marks it failed for good."""
        await self.tx.execute(
            "UPDATE outbox SET attempts = attempts + 1, result = ?, state = ? WHERE id = ?",
            (error, "failed" if give_up else "pending", item_id),
        )

    # --- direct chats, hums, reminders --------------------------------------------------

    async def dm_room(self, user_id: str) -> str | None:
        """The newest of the bot's direct chats with a user, if one is known."""
        value = await self.tx.fetchval(
            # rowid: SQLite's own; PostgreSQL's dm_rooms has an identity column of that name.
            "SELECT room_id FROM dm_rooms WHERE user_id = ? ORDER BY created_at DESC, rowid DESC "
            "LIMIT 1",
            (user_id,),
        )
        return None if value is None else str(value)

    async def set_dm_room(self, user_id: str, room_id: str, now: int) -> None:
        """Remember a direct chat of the bot with a user (a room belongs to one user only)."""
        await self.tx.execute(
            "INSERT INTO dm_rooms(room_id, user_id, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (room_id, user_id, now),
        )

    async def is_dm_room(self, room_id: str, user_id: str) -> bool:
        """True when this room is the bot's direct chat with this user."""
        row = await self.tx.fetchone(
            "SELECT 1 FROM dm_rooms WHERE room_id = ? AND user_id = ?", (room_id, user_id)
        )
        return row is not None

    async def dm_group(self, room_id: str) -> str | None:
        """The group a direct chat was said to be about (`group ID`), if any."""
        value = await self.tx.fetchval(
            "SELECT group_id FROM dm_rooms WHERE room_id = ?", (room_id,)
        )
        return None if value is None else str(value)

    async def set_dm_group(self, room_id: str, group_id: str) -> None:
        """Remember which group a direct chat is about."""
        await self.tx.execute(
            "UPDATE dm_rooms SET group_id = ? WHERE room_id = ?", (group_id, room_id)
        )

    async def forget_dm_room(self, room_id: str) -> None:
        """Stop using a room as someone's direct chat (e.g. it turned out encrypted)."""
        await self.tx.execute("DELETE FROM dm_rooms WHERE room_id = ?", (room_id,))

    async def dm_rooms_of(self, user_id: str) -> list[str]:
        """Every direct chat of the bot with a user, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT room_id FROM dm_rooms WHERE user_id = ? ORDER BY created_at, rowid",
            (user_id,),
        )
        return [str(r["room_id"]) for r in rows]

    async def outsider_dm_count(self, server: str, but: str) -> int:
        """How many direct chats the bot has with users of `server` who are not active
        members, not counting `but`'s."""
        escaped = server.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        value = await self.tx.fetchval(
            "SELECT count(*) FROM dm_rooms d WHERE d.user_id LIKE ? ESCAPE '!' "
            "AND d.user_id != ? AND NOT EXISTS "
            "(SELECT 1 FROM members m WHERE m.user_id = d.user_id AND m.active = 1)",
            ("%:" + escaped, but),
        )
        return int(value or 0)

    async def idle_outsider_dms(
        self, before: int, busy: Sequence[RequestState], limit: int
    ) -> list[tuple[str, str]]:
        """(room_id, user_id) of direct chats with users who are not active members, made
        before `before`, with no event applied in them since then and no request of theirs
        in one of the `busy` states or decided since then; oldest first, at most `limit`."""
        marks = ",".join("?" for _ in busy)
        sql = (
            "SELECT d.room_id, d.user_id FROM dm_rooms d WHERE d.created_at < ? "  # noqa: S608
            "AND NOT EXISTS (SELECT 1 FROM members m WHERE m.user_id = d.user_id "
            "AND m.active = 1) "
            "AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.applicant = d.user_id "
            f"AND (r.state IN ({marks}) OR r.decided_at >= ?)) "  # placeholders only
            "AND d.room_id NOT IN "
            "(SELECT p.room_id FROM processed_events p WHERE p.processed_at >= ?) "
            "ORDER BY d.created_at, d.room_id LIMIT ?"
        )
        params = (before, *(s.value for s in busy), before, before, limit)
        rows = await self.tx.fetchall(sql, params)
        return [(str(r["room_id"]), str(r["user_id"])) for r in rows]

    async def set_hum(self, request_id: int, hummer: str, side: str, strength: str) -> None:
        """Record (or replace) an anonymous hum.

        The request's hums are written again, whole, in the order of their anonymous keys: a
        PostgreSQL table keeps rows in the order they were written (and `pg_dump` prints
        them so), which lined up with the times DMs were processed would say whose hum is
        whose. (SQLite's table is keyed by the anonymous key already.)"""
        rows = {h: (sd, st) for h, sd, st in await self.hums(request_id)}
        rows[hummer] = (side, strength)
        await self.tx.execute("DELETE FROM hums WHERE request_id = ?", (request_id,))
        await self.tx.executemany(
            "INSERT INTO hums(request_id, hummer, side, strength) VALUES (?, ?, ?, ?)",
            [(request_id, h, sd, st) for h, (sd, st) in sorted(rows.items())],
        )

    async def hums(self, request_id: int) -> list[tuple[str, str, str]]:
        """(hummer, side, strength) of every hum on a request, in no particular order."""
        rows = await self.tx.fetchall(
            "SELECT hummer, side, strength FROM hums WHERE request_id = ? "
            "ORDER BY side, strength, hummer",
            (request_id,),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def hums_stored(self) -> bool:
        """True when any hum is stored (their key must not change)."""
        return await self.tx.fetchone("SELECT 1 FROM hums LIMIT 1") is not None

    async def reminded(self, request_id: int, slot: str) -> set[str]:
        """Members already reminded for this slot."""
        rows = await self.tx.fetchall(
            "SELECT member FROM reminders_sent WHERE request_id = ? AND slot = ?",
            (request_id, slot),
        )
        return {r[0] for r in rows}

    async def mark_reminded(self, request_id: int, slot: str, member: str, now: int) -> None:
        """Record that a member was reminded for a slot."""
        await self.tx.execute(
            "INSERT INTO reminders_sent(request_id, slot, member, sent_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (request_id, slot, member, now),
        )

    async def decided_since(self, group_id: str, since: int) -> list[Request]:
        """A group's requests decided at or after `since`, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT * FROM requests WHERE group_id = ? AND state = 'decided' "
            "AND decided_at >= ? ORDER BY decided_at",
            (group_id, since),
        )
        return [self._request(r) for r in rows]

    # --- events -----------------------------------------------------------------------

    async def seen(self, event_id: str) -> bool:
        """True when the event was applied before."""
        row = await self.tx.fetchone(
            "SELECT 1 FROM processed_events WHERE event_id = ?", (event_id,)
        )
        return row is not None

    async def seen_among(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events were applied before (any number of IDs)."""
        found: set[str] = set()
        for start in range(0, len(event_ids), 500):  # stay far below SQLite's variable cap
            chunk = list(event_ids[start : start + 500])
            marks = ",".join("?" for _ in chunk)
            rows = await self.tx.fetchall(
                f"SELECT event_id FROM processed_events WHERE event_id IN ({marks})",  # noqa: S608
                chunk,
            )
            found.update(r[0] for r in rows)
        return found

    async def mark_processed_many(self, events: Sequence[tuple[str, str]], now: int) -> None:
        """Remember that these (event ID, room ID) were applied."""
        await self.tx.executemany(
            "INSERT INTO processed_events(event_id, room_id, processed_at) "
            "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(event_id, room_id, now) for event_id, room_id in events],
        )

    async def record_failure(
        self, event_id: str, room_id: str, ref: str, error: str, now: int
    ) -> None:
        """Set aside an event whose handling failed."""
        await self.tx.execute(
            "INSERT INTO failed_events(event_id, room_id, ref, error, failed_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(event_id) DO UPDATE SET "
            "room_id = excluded.room_id, ref = excluded.ref, error = excluded.error, "
            "failed_at = excluded.failed_at",
            (event_id, room_id, ref, error, now),
        )

    # --- encrypted events waiting for their key --------------------------------------------

    async def hold_event(
        self,
        event_id: str,
        room_id: str,
        sender: str,
        ts: int,
        received_at: int,
        raw: str,
        sender_key: str = "",
        session_id: str = "",
    ) -> None:
        """Keep an encrypted event that cannot be read yet, under the Megolm session it
        waits for (a second receipt changes nothing: the first receipt time stands)."""
        await self.tx.execute(
            "INSERT INTO held_events(event_id, room_id, sender, ts, received_at, raw, "
            "sender_key, session_id, server) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(event_id) DO NOTHING",
            (
                event_id,
                room_id,
                sender,
                ts,
                received_at,
                raw,
                sender_key,
                session_id,
                homeserver(sender),
            ),
        )

    async def held_events(self, limit: int = 1_000) -> list[HeldEvent]:
        """The oldest held events, in the order they were received."""
        rows = await self.tx.fetchall(
            f"SELECT {HELD_COLUMNS} FROM held_events "  # noqa: S608 - fixed column names
            "ORDER BY received_at, ts, event_id LIMIT ?",
            (limit,),
        )
        return [HeldEvent(*tuple(r)) for r in rows]

    async def held_sessions(self) -> list[tuple[str, str, str]]:
        """(room ID, sender key, session ID) of every Megolm session held events wait for
        (the caps keep the table, and so this list, bounded)."""
        rows = await self.tx.fetchall(
            "SELECT DISTINCT room_id, sender_key, session_id FROM held_events "
            "WHERE session_id <> ''"
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def held_in_sessions(self, sessions: Sequence[tuple[str, str, str]]) -> list[HeldEvent]:
        """The held events waiting for these (room ID, sender key, session ID) sessions,
        wherever they are in the table, in the order they were received; then the oldest
        few held without a session (from before version 7, or unparseable)."""
        wanted = set(sessions)
        found: list[HeldEvent] = []
        ids = sorted({s[2] for s in wanted})
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = await self.tx.fetchall(
                f"SELECT {HELD_COLUMNS} FROM held_events WHERE session_id IN ({marks})",  # noqa: S608
                tuple(chunk),
            )
            held = (HeldEvent(*tuple(r)) for r in rows)
            found += [h for h in held if (h.room_id, h.sender_key, h.session_id) in wanted]
        rows = await self.tx.fetchall(
            f"SELECT {HELD_COLUMNS} FROM held_events WHERE session_id = '' "  # noqa: S608
            "ORDER BY received_at, ts, event_id LIMIT 100"
        )
        found += [HeldEvent(*tuple(r)) for r in rows]
        return sorted(found, key=lambda h: (h.received_at, h.ts, h.event_id))

    async def held_due_notice(self, cutoff: int, limit: int = 1_000) -> list[HeldEvent]:
        """Held events received at or before `cutoff` whose senders were not told yet."""
        rows = await self.tx.fetchall(
            f"SELECT {HELD_COLUMNS} FROM held_events WHERE notified_at IS NULL "  # noqa: S608
            "AND received_at <= ? ORDER BY received_at, ts, event_id LIMIT ?",
            (cutoff, limit),
        )
        return [HeldEvent(*tuple(r)) for r in rows]

    async def held_counts(self, sender: str, room_id: str) -> tuple[int, int, int]:
        """How many encrypted events wait for their keys: of this sender, in this room, and
        from the sender's homeserver."""
        counts = []
        for column, value in (
            ("sender", sender),
            ("room_id", room_id),
            ("server", homeserver(sender)),
        ):
            sql = f"SELECT count(*) FROM held_events WHERE {column} = ?"  # noqa: S608 - fixed names
            counts.append(int(await self.tx.fetchval(sql, (value,))))
        return counts[0], counts[1], counts[2]

    async def release_held(self, event_ids: Sequence[str]) -> None:
        """Forget held events that were decrypted (and applied) or refused."""
        await self.tx.executemany(
            "DELETE FROM held_events WHERE event_id = ?", [(e,) for e in event_ids]
        )

    async def mark_held_notified(self, event_ids: Sequence[str], now: int) -> None:
        """Remember that the senders of these held events were told."""
        await self.tx.executemany(
            "UPDATE held_events SET notified_at = ? WHERE event_id = ?",
            [(now, e) for e in event_ids],
        )

    # --- the bot's end-to-end state (sealed rows; see bot/matrix/keystore.py) -------------

    async def crypto_state(self, device: str) -> list[tuple[str, str, str]]:
        """Every sealed row of a device's end-to-end state: (kind, key, value)."""
        rows = await self.tx.tuples(
            "SELECT kind, key, value FROM crypto_state WHERE device = ?", (device,)
        )
        return [(str(kind), str(key), str(value)) for kind, key, value in rows]

    async def save_crypto_state(
        self, device: str, changes: Sequence[tuple[str, str, str | None]]
    ) -> None:
        """Write changed rows (a None value deletes the row), in two bulk statements."""
        upserts = [(device, k, key, v) for k, key, v in changes if v is not None]
        deletes = [(device, k, key) for k, key, v in changes if v is None]
        if upserts:
            await self.tx.executemany(
                "INSERT INTO crypto_state(device, kind, key, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(device, kind, key) DO UPDATE SET value = excluded.value",
                upserts,
            )
        if deletes:
            await self.tx.executemany(
                "DELETE FROM crypto_state WHERE device = ? AND kind = ? AND key = ?", deletes
            )

    # --- each person's language (`!cb language`; bot/i18n) ---------------------------------

    async def language(self, user_id: str) -> str | None:
        """The language a person chose for their direct messages, or None (the group's)."""
        row = await self.tx.fetchone("SELECT language FROM languages WHERE user_id = ?", (user_id,))
        return None if row is None else str(row[0])

    async def languages_of(self, user_ids: Sequence[str]) -> dict[str, str]:
        """The chosen language of each of these people who chose one."""
        found: dict[str, str] = {}
        ids = list(user_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" for _ in chunk)
            rows = await self.tx.fetchall(
                f"SELECT user_id, language FROM languages WHERE user_id IN ({marks})",  # noqa: S608
                chunk,
            )
            found.update({str(r[0]): str(r[1]) for r in rows})
        return found

    async def set_language(self, user_id: str, language: str, now: int) -> None:
        """Remember the language a person chose (the last choice wins)."""
        await self.tx.execute(
            "INSERT INTO languages(user_id, language, set_at) VALUES (?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET language = excluded.language, "
            "set_at = excluded.set_at",
            (user_id, language, now),
        )
