"""A sync batch's unit of work at the storage edge: read its working set once, write once.

A sync batch of reactions, poll answers and redactions used to cost six to eight statements
per event (`member_rows` alone four point queries), each a hand-off to the database thread
on SQLite and a network round trip on PostgreSQL. Here the batch's working set is read in a
constant number of bulk queries (`BatchRepository.preload`), the services decide on it in
memory with the pure domain rules, and the writes they make are held back and sent as one
`executemany` per statement (`DeferringTx.flush`). So a batch costs about twenty calls to the
database whatever its size.

Two rules keep it exact:

- Every read or write that is not served from the working set flushes the held-back writes
  first (`DeferringTx`): whatever the services ask the database, it answers with everything
  the batch did so far. The working set itself is updated by the writes that change it.
- Every write that does not go through the working set (a command closing a ballot or
  removing a member, an encrypted event kept for its key) ends it (`invalidate`): the
  batch apply (`bot.services.batches`) preloads again for the events after it. Commands at
  human rate cost a few statements each; positions, by reaction, poll or command, cost
  none of their own.

The repository still decides nothing: it stores, loads and remembers what it loaded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from bot.domain.counting import Redaction
from bot.domain.ledger import PositionInput
from bot.domain.objections import Objection, ObjectionState
from bot.domain.request import Request
from storage.backend import Params, Tx
from storage.repo import (
    Member,
    MemberRows,
    Repository,
    enqueue_row,
    input_row,
    redaction_row,
)
from storage.rows import Row

Pair = tuple[int, str]  # (request ID, member)
_NO_ROWS = MemberRows([], [], [], None, None)  # never changed: `replace` makes new values


def _flush_rank(sql: str) -> int:
    """The order in which held-back statements are flushed: new objections first (their
    history rows refer to them), then the other inserts, then the updates (which may touch a
    row inserted in the same batch). Within one statement the order is kept; statements of
    one kind touch distinct tables or distinct columns, so the rest of the order does not
    matter."""
    head = sql.lstrip()[:40].upper()
    if head.startswith("INSERT INTO OBJECTIONS("):
        return 0
    return 1 if head.startswith("INSERT") else 2


class DeferringTx:
    """A `Tx` whose `defer`red writes wait until the next other call (or `flush`)."""

    def __init__(self, tx: Tx, on_write: Callable[[], None]) -> None:
        self._tx = tx
        self._held: dict[str, list[Params]] = {}
        self._on_write = on_write  # told of every write that was not held back

    def defer(self, sql: str, params: Params) -> None:
        """Hold a write back until the next read or write, or the flush."""
        self._held.setdefault(sql, []).append(params)

    @property
    def unflushed(self) -> Tx:
        """The transaction itself, for a read whose held-back changes the caller overlays
        itself (`BatchRepository.objections`)."""
        return self._tx

    async def flush(self) -> None:
        """Send the held-back writes: one `executemany` per statement."""
        if not self._held:
            return
        held, self._held = self._held, {}
        for sql in sorted(held, key=_flush_rank):  # sorted() is stable: first seen first
            await self._tx.executemany(sql, held[sql])

    async def execute(self, sql: str, params: Params = ()) -> int:
        """See `storage.backend.Tx`."""
        await self.flush()
        try:
            return await self._tx.execute(sql, params)
        finally:
            self._on_write()

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """See `storage.backend.Tx`."""
        await self.flush()
        try:
            await self._tx.executemany(sql, rows)
        finally:
            self._on_write()

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """See `storage.backend.Tx`."""
        await self.flush()
        return await self._tx.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> Sequence[Row]:
        """See `storage.backend.Tx`."""
        await self.flush()
        return await self._tx.fetchall(sql, params)

    async def tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """See `storage.backend.Tx`."""
        await self.flush()
        return await self._tx.tuples(sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        """See `storage.backend.Tx`."""
        await self.flush()
        return await self._tx.fetchval(sql, params)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """See `storage.backend.Tx` (what was held back before it is not part of it)."""
        await self.flush()
        async with self._tx.savepoint():
            yield
            await self.flush()


@dataclass
class _WorkingSet:
    """What `preload` read, kept up to date by the batch's own writes."""

    requests: dict[int, Request] = field(default_factory=dict)
    by_ballot: dict[str, int] = field(default_factory=dict)
    by_poll: dict[str, int] = field(default_factory=dict)
    by_room: dict[str, int] = field(default_factory=dict)  # 0: asked, no request's room
    # The senders' roster entries, by group (a sender on no roster has an empty mapping).
    roster: dict[str, dict[str, Member]] = field(default_factory=dict)
    languages: dict[str, str | None] = field(default_factory=dict)  # the senders' choices
    # Every event asked about: its input, or None when it is not one (yet).
    inputs: dict[str, tuple[int, PositionInput] | None] = field(default_factory=dict)
    redactions: set[str] = field(default_factory=set)  # recorded redaction events (asked)
    asked_redactions: set[str] = field(default_factory=set)
    pairs: set[Pair] = field(default_factory=set)  # the (request, member) pairs read
    members: dict[Pair, MemberRows] = field(default_factory=dict)  # those with rows
    asked_purposes: frozenset[str] = frozenset()
    purposes: set[tuple[int, str]] = field(default_factory=set)  # pending, of `requests`
    # The objections of the pairs, by request, then by number (ascending); all of a
    # request's once `objections(request)` was asked (`complete`).
    objections: dict[int, dict[int, Objection]] = field(default_factory=dict)
    complete: set[int] = field(default_factory=set)
    objection_request: dict[int, int] = field(default_factory=dict)  # number -> request
    last_objection: int = 0


@dataclass(frozen=True, slots=True)
class BatchNeeds:
    """What a run of events will ask for (see `BatchRepository.preload`)."""

    ballots: frozenset[str]  # ballot events reacted to
    polls: frozenset[str]  # polls answered
    inputs: frozenset[str]  # events that are or may be inputs (the run's own, the redacted)
    redactions: frozenset[str]  # the run's redaction events
    senders: frozenset[str]  # who sent the run's events
    rooms: frozenset[str]  # where they were sent
    # Whose rows on which request the run will read: ("ballot" | "poll" | "room", the
    # ballot, poll or room, the sender); the redacted inputs' authors are added.
    asks: frozenset[tuple[str, str, str]]
    purposes: frozenset[str]  # pending outbox purposes to know (e.g. the senders' tidy-ups)


class BatchRepository(Repository):
    """A `Repository` that answers a batch's reads from its preloaded working set and
    holds its writes back (see the module docstring). Without `preload` it is a plain one."""

    def __init__(self, tx: Tx) -> None:
        # Every write that does not go through the working set ends it: whatever it changed
        # (a command closing a ballot, a member removed) is read again from the database.
        self._deferring = DeferringTx(tx, on_write=self.invalidate)
        super().__init__(self._deferring)
        self._set: _WorkingSet | None = None

    @property
    def loaded(self) -> bool:
        """Whether a working set is in use."""
        return self._set is not None

    def invalidate(self) -> None:
        """Forget the working set (something may change it behind the batch's writes)."""
        self._set = None

    async def flush(self) -> None:
        """Write what is held back."""
        await self._deferring.flush()

    async def preload(self, needs: BatchNeeds) -> None:
        """Read a run's working set: its requests, its inputs and redactions, every
        (request, sender) pair's rows, the pending purposes, in a constant number of queries
        (a few more per 500 members)."""
        ws = _WorkingSet(asked_purposes=needs.purposes)
        known = await self.inputs_by_events(sorted(needs.inputs))
        ws.inputs = {event_id: known.get(event_id) for event_id in needs.inputs}
        ws.asked_redactions = set(needs.redactions)
        ws.redactions = await self.redactions_among(sorted(needs.redactions))
        found = await self.requests_for_events(
            sorted(needs.ballots), sorted(needs.polls), sorted(needs.rooms), sorted(needs.inputs)
        )
        for req in found:
            ws.requests[req.id] = req
            if req.ballot_event_id:
                ws.by_ballot[req.ballot_event_id] = req.id
            if req.poll_event_id:
                ws.by_poll[req.poll_event_id] = req.id
            if req.room_id:
                ws.by_room[req.room_id] = req.id
        for event_id in needs.ballots - ws.by_ballot.keys():
            ws.by_ballot[event_id] = 0  # asked, and no request's ballot
        for event_id in needs.polls - ws.by_poll.keys():
            ws.by_poll[event_id] = 0
        for room_id in needs.rooms - ws.by_room.keys():
            ws.by_room[room_id] = 0
        senders = await self.senders(sorted(needs.senders))
        ws.roster = {user_id: senders[user_id][0] for user_id in needs.senders}
        ws.languages = {user_id: senders[user_id][1] for user_id in needs.senders}
        where = {"ballot": ws.by_ballot, "poll": ws.by_poll, "room": ws.by_room}
        ws.pairs = {(rid, item.member) for rid, item in known.values()}
        for kind, key, sender in needs.asks:
            rid = where[kind].get(key, 0)
            if rid:
                ws.pairs.add((rid, sender))
        ws.members = await self.member_rows_many(sorted(ws.pairs))
        ws.objections = {rid: {} for rid in ws.requests}
        for rid, objections in (await self.objections_of_pairs(sorted(ws.pairs))).items():
            ws.objections[rid] = {o.id: o for o in objections}
            ws.objection_request.update((o.id, rid) for o in objections)
        ws.purposes = await self.pending_purposes(sorted(ws.requests), sorted(needs.purposes))
        ws.last_objection = await self.last_objection_id()
        self._set = ws

    # --- reads served from the working set ---------------------------------------------

    async def request(self, request_id: int) -> Request | None:
        """See `Repository.request`."""
        ws = self._set
        if ws is not None and request_id in ws.requests:
            return ws.requests[request_id]
        return await super().request(request_id)

    async def request_by_ballot(self, event_id: str) -> Request | None:
        """See `Repository.request_by_ballot`."""
        ws = self._set
        if ws is not None and event_id in ws.by_ballot:
            return ws.requests.get(ws.by_ballot[event_id])
        return await super().request_by_ballot(event_id)

    async def request_by_room(self, room_id: str) -> Request | None:
        """See `Repository.request_by_room`."""
        ws = self._set
        if ws is not None and room_id in ws.by_room:
            return ws.requests.get(ws.by_room[room_id])
        return await super().request_by_room(room_id)

    async def member(self, group_id: str, user_id: str) -> Member | None:
        """See `Repository.member`."""
        ws = self._set
        if ws is not None and user_id in ws.roster:
            return ws.roster[user_id].get(group_id)
        return await super().member(group_id, user_id)

    async def language(self, user_id: str) -> str | None:
        """See `Repository.language`."""
        ws = self._set
        if ws is not None and user_id in ws.languages:
            return ws.languages[user_id]
        return await super().language(user_id)

    async def request_by_poll(self, event_id: str) -> Request | None:
        """See `Repository.request_by_poll`."""
        ws = self._set
        if ws is not None and event_id in ws.by_poll:
            return ws.requests.get(ws.by_poll[event_id])
        return await super().request_by_poll(event_id)

    async def input_by_event(self, event_id: str) -> tuple[int, PositionInput] | None:
        """See `Repository.input_by_event`."""
        ws = self._set
        if ws is not None and event_id in ws.inputs:
            return ws.inputs[event_id]
        return await super().input_by_event(event_id)

    async def member_rows(self, request_id: int, member: str) -> MemberRows:
        """See `Repository.member_rows`."""
        ws = self._set
        rows = self._rows(request_id, member)
        if ws is None or rows is None:
            return await super().member_rows(request_id, member)
        mine = [o for o in ws.objections[request_id].values() if o.member == member]
        return MemberRows(
            list(rows.eligible),
            list(rows.inputs),
            list(rows.redactions),
            # As `Repository.member_rows` reads them: the latest open one, the latest one.
            next((o for o in reversed(mine) if o.state is ObjectionState.OPEN), None),
            mine[-1] if mine else None,
        )

    async def objections(self, request_id: int) -> list[Objection]:
        """See `Repository.objections`."""
        ws = self._set
        if ws is None or request_id not in ws.objections:
            return await super().objections(request_id)
        if request_id not in ws.complete:
            # The others, read without flushing: every held-back change to an objection is
            # in the working set, which wins over what is stored.
            stored = await Repository(self._deferring.unflushed).objections(request_id)
            merged = {o.id: o for o in stored} | ws.objections[request_id]
            ws.objections[request_id] = dict(sorted(merged.items()))
            ws.objection_request.update((oid, request_id) for oid in merged)
            ws.complete.add(request_id)
        return list(ws.objections[request_id].values())

    async def objection(self, objection_id: int) -> Objection | None:
        """See `Repository.objection`."""
        ws = self._set
        if ws is not None and objection_id in ws.objection_request:
            return ws.objections[ws.objection_request[objection_id]][objection_id]
        return await super().objection(objection_id)

    async def pending_purpose(self, request_id: int, purpose: str) -> bool:
        """See `Repository.pending_purpose`."""
        ws = self._set
        if ws is not None and request_id in ws.requests and purpose in ws.asked_purposes:
            return (request_id, purpose) in ws.purposes
        return await super().pending_purpose(request_id, purpose)

    # --- writes held back, the working set kept in step ---------------------------------

    async def add_input(self, request_id: int, item: PositionInput, now: int) -> bool:
        """See `Repository.add_input`."""
        ws = self._set
        pair = (request_id, item.member)
        rows = self._rows(request_id, item.member)
        if ws is None or rows is None or item.event_id not in ws.inputs:
            return await super().add_input(request_id, item, now)  # the write ends the set
        if ws.inputs[item.event_id] is not None:
            return False  # recorded before (the unique event ID)
        self._deferring.defer(*input_row(request_id, item, now))
        stored = item.recorded(now)  # as `Repository.inputs` reads it back
        ws.inputs[item.event_id] = (request_id, stored)
        ws.members[pair] = MemberRows(
            rows.eligible, [*rows.inputs, stored], rows.redactions, None, None
        )
        return True

    async def add_redaction(self, redaction: Redaction) -> bool:
        """See `Repository.add_redaction`."""
        ws = self._set
        if ws is None or redaction.event_id not in ws.asked_redactions:
            return await super().add_redaction(redaction)  # the write ends the set
        if redaction.event_id in ws.redactions:
            return False
        ws.redactions.add(redaction.event_id)
        self._deferring.defer(*redaction_row(redaction))
        self._note_redaction(redaction)
        return True

    def _note_redaction(self, redaction: Redaction) -> None:
        """A new redaction joins the rows of the member whose input it redacts."""
        ws = self._set
        assert ws is not None
        if redaction.redacts not in ws.inputs:
            self.invalidate()  # not asked about: it may redact any preloaded input
            return
        target = ws.inputs[redaction.redacts]
        if target is None:
            return  # not an input (or not seen yet: the stored redaction waits for it)
        pair = (target[0], target[1].member)
        rows = self._rows(*pair)
        if rows is not None:
            found = sorted([*rows.redactions, redaction], key=lambda r: (r.recorded_at, r.event_id))
            ws.members[pair] = replace(rows, redactions=found)

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
        """See `Repository.enqueue` (a new transaction ID never conflicts)."""
        ws = self._set
        if ws is None:
            return await super().enqueue(
                txn_id,
                op,
                payload,
                now,
                request_id=request_id,
                room_id=room_id,
                target=target,
                purpose=purpose,
            )
        self._deferring.defer(
            *enqueue_row(txn_id, op, payload, now, request_id, room_id, target, purpose)
        )
        if request_id is not None and purpose is not None:
            ws.purposes.add((request_id, purpose))
        return True

    async def add_objection(
        self, request_id: int, member: str, event_id: str, reason: str | None, now: int
    ) -> int:
        """See `Repository.add_objection` (numbered from the working set's last number)."""
        ws = self._set
        if ws is None or request_id not in ws.objections:
            return await super().add_objection(request_id, member, event_id, reason, now)
        ws.last_objection += 1
        oid = ws.last_objection
        self._deferring.defer(
            "INSERT INTO objections(id, request_id, member, event_id, reason, state, "
            "created_at) VALUES (?, ?, ?, ?, ?, 'open', ?)",
            (oid, request_id, member, event_id, reason, now),
        )
        self._defer_history(oid, "raised", member, None, reason, now)
        ws.objections[request_id][oid] = Objection(
            oid, request_id, member, reason, ObjectionState.OPEN
        )
        ws.objection_request[oid] = request_id
        return oid

    async def set_objection_reason(
        self, objection_id: int, reason: str, by: str = "", now: int = 0
    ) -> None:
        """See `Repository.set_objection_reason`."""
        if not self._holds_objection(objection_id):
            await super().set_objection_reason(objection_id, reason, by, now)
            return
        self._deferring.defer(
            "UPDATE objections SET reason = ? WHERE id = ?", (reason, objection_id)
        )
        self._defer_history(objection_id, "reason", by, None, reason, now)
        self._change_objection(objection_id, reason=reason)

    async def dispose_objection(
        self,
        objection_id: int,
        state: ObjectionState,
        by: str,
        rationale: str | None,
        now: int,
        duplicate_of: int | None = None,
    ) -> None:
        """See `Repository.dispose_objection`."""
        if not self._holds_objection(objection_id):
            await super().dispose_objection(objection_id, state, by, rationale, now, duplicate_of)
            return
        self._deferring.defer(
            "UPDATE objections SET state = ?, disposed_by = ?, rationale = ?, disposed_at = ?, "
            "duplicate_of = ? WHERE id = ?",
            (state.value, by, rationale, now, duplicate_of, objection_id),
        )
        self._defer_history(objection_id, "disposed", by, state.value, rationale, now)
        self._change_objection(
            objection_id,
            state=state,
            disposed_by=by,
            rationale=rationale,
            disposed_at=now,
            duplicate_of=duplicate_of,
        )

    async def mark_reason_asked(self, objection_id: int) -> None:
        """See `Repository.mark_reason_asked`."""
        if not self._holds_objection(objection_id):
            await super().mark_reason_asked(objection_id)
            return
        self._deferring.defer(
            "UPDATE objections SET reason_asked = 1 WHERE id = ?", (objection_id,)
        )
        self._change_objection(objection_id, reason_asked=True)

    def _defer_history(
        self, objection_id: int, kind: str, by: str, state: str | None, text: str | None, at: int
    ) -> None:
        self._deferring.defer(
            "INSERT INTO objection_events(objection_id, kind, by, state, text, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (objection_id, kind, by, state, text, at),
        )

    def _holds_objection(self, objection_id: int) -> bool:
        """Whether the working set holds this objection."""
        return self._set is not None and objection_id in self._set.objection_request

    def _change_objection(self, objection_id: int, **changes: Any) -> None:
        """Apply a held-back change to the working set's copy of the objection."""
        ws = self._set
        assert ws is not None
        held = ws.objections[ws.objection_request[objection_id]]
        held[objection_id] = replace(held[objection_id], **changes)

    def _rows(self, request_id: int, member: str) -> MemberRows | None:
        """The working set's rows of a pair (empty when it has none), or None when the pair
        is not in it."""
        ws = self._set
        pair = (request_id, member)
        if ws is None or pair not in ws.pairs:
            return None
        return ws.members.get(pair, _NO_ROWS)
