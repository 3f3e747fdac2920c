"""The decision record of a participation request: data, hash chain and verification.

A record is a plain JSON-able dict with a stable, documented schema (`docs/record.md`,
`docs/record-schema.json`). Its `entries` are the request's timeline in time order (filing,
opening, every position change, retractions, objections and their dispositions, closing, the
chair's decision) and end with one `snapshot` entry whose `body` is the SHA-256 of the
sections outside the timeline (`request`, `eligible`, `sense`, `outcome`, `hums`, ...).
Each entry carries the hash of the one before it, so the last hash (`head`) covers the
whole record: change any value and `verify_record` names what no longer matches.

A hash chain shows that a file is intact; it cannot stop someone from recomputing every hash
after an edit. Compare the head with one published elsewhere (the minutes print it) by
passing `head=` to `verify_record`.

The head depends only on what the record says, never on when it was exported, so exporting
the same request twice gives the same head.

Hums are anonymous: a record may carry only an aggregate (how loud each side was), never
who hummed what. The JSON, CSV and Markdown renderings are in `bot.domain.record_render`.
Pure: standard library and `bot.domain` only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from bot.domain.appeals import Appeal
from bot.domain.counting import (
    DEFAULT_SKEW_MS,
    Ballot,
    Redaction,
    Status,
    Tally,
    count,
    effective_ts,
)
from bot.domain.durations import clamp_ts
from bot.domain.ledger import PositionInput
from bot.domain.lifecycle import RequestState
from bot.domain.objections import Objection, ObjectionEvent
from bot.domain.positions import POSITION_ORDER
from bot.domain.record_render import render_json
from bot.domain.request import Request
from bot.domain.sense import GroupBreakdown, Sense, Voter

RECORD_SCHEMA = "consensus-bot/record/2"
GENESIS = "0" * 64  # the `prev` of the first entry
HEX64 = re.compile(r"[0-9a-f]{64}")

# Top-level fields, in the order a record is written. Everything but `entries` and `head` is
# covered by the `snapshot` entry's digest; `entries` and `head` are the chain itself.
BODY_KEYS: tuple[str, ...] = (
    "schema",
    "segment",
    "previous_head",
    "group",
    "request",
    "eligible",
    "sense",
    "outcome",
    "hums",
)
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "schema",
    "segment",
    "previous_head",
    "group",
    "request",
    "eligible",
    "entries",
    "sense",
    "outcome",
    "hums",
    "head",
)

# Entry types, in the order they sort when two share a timestamp.
ENTRY_TYPES: tuple[str, ...] = (
    "filed",
    "opened",
    "position",
    "retracted",
    "objection_raised",
    "objection_reason",
    "objection_disposed",
    "objection_contested",
    "edited",
    "closed",
    "decided",
    "cancelled",
    "appealed",
    "appeal_answered",
    "snapshot",
)
_RANK = {name: i for i, name in enumerate(ENTRY_TYPES)}

Record = dict[str, Any]


# --------------------------------------------------------------------------- input values


@dataclass(frozen=True, slots=True)
class DatedObjection:
    """An objection with the moments the domain value leaves out."""

    objection: Objection
    raised_at: int
    disposed_at: int | None = None
    event_id: str | None = None  # the position input that raised it


@dataclass(frozen=True, slots=True)
class HumAggregate:
    """How loud each side hummed (e.g. "none", "soft", "loud") — never who hummed."""

    for_side: str
    against_side: str


# --------------------------------------------------------------------------- primitives


def canonical_json(value: Any) -> str:
    """The canonical JSON text that hashes are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(value: Any) -> str:
    """Hex SHA-256 of the canonical JSON of `value`."""
    text = canonical_json(value)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The hash an entry must carry: SHA-256 of its canonical JSON without `hash`."""
    return sha256_hex({k: v for k, v in entry.items() if k != "hash"})


def body_digest(record: Mapping[str, Any]) -> str:
    """The digest the `snapshot` entry carries: SHA-256 of the sections outside the chain."""
    return sha256_hex({k: record.get(k) for k in BODY_KEYS})


def iso_utc(ms: int) -> str:
    """Milliseconds since the epoch as `2026-11-23T10:00:00Z` (to the second, for humans).

    Total for any int: a time before 1970 or after 9999 is written as the nearest moment
    that can be (`clamp_ts`); the record keeps the integer as it was stored.
    """
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=clamp_ts(ms)[0])
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str | None) -> str | None:
    """User text as stored, minus lone surrogates (which cannot be written as UTF-8)."""
    if value is None:
        return None
    return _SURROGATE.sub("\ufffd", value)


def _moment(name: str, ms: int | None) -> dict[str, Any]:
    return {name: ms, f"{name}_iso": None if ms is None else iso_utc(ms)}


# --------------------------------------------------------------------------- building


def _timeline(
    request: Request,
    eligible_count: int,
    inputs: Sequence[PositionInput],
    tally: Tally,
    objections: Sequence[DatedObjection],
    skew_ms: int,
    history: Sequence[ObjectionEvent],
    appeals: Sequence[Appeal],
    edits: Sequence[tuple[str, dict[str, str], int]],
) -> list[tuple[int, int, str, dict[str, Any]]]:
    """(ts, rank, tie-break, fields) for every timeline entry, unsorted."""
    items: list[tuple[int, int, str, dict[str, Any]]] = []

    def add(ts: int, kind: str, tie: str, fields: dict[str, Any]) -> None:
        items.append((clamp_ts(ts)[0], _RANK[kind], tie, {"type": kind, **fields}))

    add(
        request.created_at,
        "filed",
        "",
        {"by": _text(request.filed_by), "self_applied": request.self_applied},
    )
    if request.opened_at is not None:
        add(request.opened_at, "opened", "", {"eligible": eligible_count})
    for item in inputs:
        status = tally.status.get(item.event_id, Status.NOT_ELIGIBLE)
        received = item.ts if item.recorded_at is None else item.recorded_at
        at = effective_ts(item.ts, item.recorded_at, skew_ms)
        add(
            at,
            "position",
            f"{item.ts:024d}{item.event_id}",
            {
                "member": _text(item.member),
                "position": None if item.position is None else item.position.value,
                "reason": _text(item.reason),
                "source": item.source.value,
                "event_id": _text(item.event_id),
                "origin_ts": item.ts,
                "received_at": received,
                "counted": status in (Status.COUNTED, Status.RETRACTED, Status.TIDIED),
                "status": status.value,
                "clock_flag": _clock_flag(item.ts, at, received, skew_ms),
            },
        )
    by_event = {i.event_id: i for i in inputs}
    for target, r in tally.retracted_by.items():
        add(
            effective_ts(r.ts, r.recorded_at, skew_ms),
            "retracted",
            r.event_id,
            {
                "member": _text(by_event[target].member),
                "event_id": _text(target),
                "redaction": _text(r.event_id),
                "by": _text(r.sender),
            },
        )
    told = {e.objection_id for e in history}
    dated = {d.objection.id: d for d in objections}
    for step, e in enumerate(history):
        tie = f"{e.objection_id:020d}{step:08d}"
        known = dated.get(e.objection_id)
        member = None if known is None else known.objection.member
        if e.kind == "raised":
            raised_by = None if known is None else known.event_id
            add(
                e.at,
                "objection_raised",
                tie,
                {
                    "id": e.objection_id,
                    "member": _text(member),
                    "reason": _text(e.text),
                    "event_id": _text(raised_by),
                },
            )
        elif e.kind == "reason":
            add(e.at, "objection_reason", tie, {"id": e.objection_id, "reason": _text(e.text)})
        elif e.kind == "disposed":
            add(
                e.at,
                "objection_disposed",
                tie,
                {
                    "id": e.objection_id,
                    "state": e.state,
                    "by": _text(e.by),
                    "rationale": _text(e.text),
                },
            )
        elif e.kind == "contested":
            add(
                e.at,
                "objection_contested",
                tie,
                {"id": e.objection_id, "by": _text(e.by), "reason": _text(e.text)},
            )
    for d in objections:
        o = d.objection
        if o.id in told:
            continue  # its history says it all
        tie = f"{o.id:020d}"
        add(
            d.raised_at,
            "objection_raised",
            tie,
            {
                "id": o.id,
                "member": _text(o.member),
                "reason": _text(o.reason),
                "event_id": _text(d.event_id),
            },
        )
        if not o.state.is_open:
            add(
                d.disposed_at if d.disposed_at is not None else d.raised_at,
                "objection_disposed",
                tie,
                {
                    "id": o.id,
                    "state": o.state.value,
                    "by": _text(o.disposed_by),
                    "rationale": _text(o.rationale),
                },
            )
    if request.closed_at is not None:
        add(
            request.closed_at,
            "closed",
            "",
            {
                "proposal": None if request.proposal is None else request.proposal.value,
                "early_rationale": _text(request.early_rationale),
            },
        )
    for n, (by, changes, at) in enumerate(edits):
        add(at, "edited", f"{n:08d}", {"by": _text(by), "changes": dict(sorted(changes.items()))})
    for a in appeals:
        add(
            a.created_at,
            "appealed",
            f"{a.id:020d}",
            {"id": a.id, "member": _text(a.member), "reason": _text(a.reason)},
        )
        if a.answered_at is not None:
            add(
                a.answered_at,
                "appeal_answered",
                f"{a.id:020d}",
                {
                    "id": a.id,
                    "state": a.state,
                    "by": _text(a.answered_by),
                    "rationale": _text(a.rationale),
                },
            )
    if request.state is RequestState.CANCELLED:
        add(
            request.decided_at if request.decided_at is not None else request.created_at,
            "cancelled",
            "",
            {"by": _text(request.decided_by), "reason": _text(request.rationale)},
        )
    if request.outcome is not None:
        add(
            request.decided_at if request.decided_at is not None else request.created_at,
            "decided",
            "",
            {
                "outcome": request.outcome.value,
                "by": _text(request.decided_by),
                "rationale": _text(request.rationale),
            },
        )
    return items


def _clock_flag(origin_ts: int, at: int, received: int, skew_ms: int) -> str | None:
    """Why an input's time was not taken as its sender stated it, if it was not."""
    if clamp_ts(origin_ts)[1]:
        return "absurd-timestamp"
    if origin_ts != at:
        ahead = origin_ts > received
        return "sender-clock-ahead" if ahead else "sender-clock-behind"
    del skew_ms
    return None


def chain(items: Sequence[Mapping[str, Any]], start: str = GENESIS) -> list[dict[str, Any]]:
    """Number and link entries given as `{"ts", "type", ...fields}`, in the given order; the
    first links to `start` (the genesis, or the head of the previous segment)."""
    out: list[dict[str, Any]] = []
    prev = start
    for seq, item in enumerate(items, start=1):
        ts = int(item["ts"])
        entry: dict[str, Any] = {"seq": seq, "ts": ts, "at": iso_utc(ts), "type": item["type"]}
        entry.update({k: v for k, v in item.items() if k not in ("ts", "type")})
        entry["prev"] = prev
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
        out.append(entry)
    return out


def _breakdown_json(rows: Sequence[GroupBreakdown]) -> list[dict[str, Any]]:
    return [
        {
            "name": row.name,
            "members": row.members,
            "participated": row.participated,
            "counts": None
            if row.counts is None
            else {p.value: row.counts.get(p, 0) for p in POSITION_ORDER},
        }
        for row in rows
    ]


def build_record(
    *,
    group: str,
    request: Request,
    eligible: Sequence[Voter],
    inputs: Sequence[PositionInput],
    quorum: float,
    removed: Mapping[str, int] | None = None,
    redactions: Sequence[Redaction] = (),
    objections: Sequence[DatedObjection] = (),
    skew_ms: int = DEFAULT_SKEW_MS,
    appeal_window_ms: int | None = None,
    hums: HumAggregate | None = None,
    segment: int = 1,
    previous_head: str | None = None,
    tidier: str | None = None,
    history: Sequence[ObjectionEvent] = (),
    appeals: Sequence[Appeal] = (),
    edits: Sequence[tuple[str, dict[str, str], int]] = (),
    carried: Collection[str] | None = None,
) -> Record:
    """The decision record of one request, from plain domain values.

    `eligible` is the snapshot taken when the ballot opened; `removed` when members of it
    left the roster (absent or None: still on it). `inputs` is the full append-only history
    of position inputs and `redactions` every redaction aimed at one of them, whoever sent
    it. Which count is decided by `bot.domain.counting.count`, the same rule as the bot's
    draft, and every input is listed with whether it counted and why not. `segment` numbers
    the record of each decision of a request (a reopen starts the next); the chain of
    segment n > 1 begins at `previous_head`, the head of segment n - 1. `carried`: for a
    segment of the same decision as the one before (`continues_decision`), the inputs that
    one counted (`counted_inputs`); no other input counts in it.
    """
    frozen = None if carried is None else frozenset(carried)
    ballot = Ballot(request.room_id, request.closed_at, skew_ms, tidier, frozen)
    tally = count(ballot, eligible, removed or {}, inputs, redactions)
    sense = tally.sense([d.objection for d in objections], quorum)
    counted_ids = {v.user_id for v in tally.voters}

    items = _timeline(
        request, len(eligible), inputs, tally, objections, skew_ms, history, appeals, edits
    )
    items.sort(key=lambda x: (x[0], x[1], x[2]))
    timeline: list[dict[str, Any]] = [{"ts": ts, **fields} for ts, _, _, fields in items]

    a = request.applicant
    record: Record = {
        "schema": RECORD_SCHEMA,
        "segment": segment,
        "previous_head": previous_head,
        "group": _text(group),
        "request": {
            "id": request.id,
            # The group the request was made to and its number there (`#N`); records frozen
            # before several groups (schema unchanged) have neither, and still verify.
            "group_id": _text(request.group_id),
            "number": request.number,
            "applicant": _text(a.applicant),
            "name": _text(a.name),
            "org": _text(a.org),
            "stakeholder": _text(a.stakeholder),
            "region": _text(a.region),
            "statement": _text(request.statement),
            "filed_by": _text(request.filed_by),
            "self_applied": request.self_applied,
            "state": request.state.value,
            "room_id": _text(request.room_id),
            **_moment("created_at", request.created_at),
            **_moment("opened_at", request.opened_at),
            **_moment("closed_at", request.closed_at),
            **_moment("deadline_at", request.deadline_at),
        },
        "eligible": [
            {
                "user_id": _text(v.user_id),
                "stakeholder": _text(v.stakeholder),
                "region": _text(v.region),
                "counted": v.user_id in counted_ids,
            }
            for v in sorted(eligible, key=lambda v: v.user_id)
        ],
        "entries": [],
        "sense": sense_json(sense),
        "outcome": _outcome(request, appeal_window_ms),
        # Hums are anonymous: only an aggregate may ever appear here.
        "hums": None
        if hums is None
        else {"for": _text(hums.for_side), "against": _text(hums.against_side)},
        "head": GENESIS,
    }
    last_ts = max([clamp_ts(request.created_at)[0], *(e["ts"] for e in timeline)])
    timeline.append({"ts": last_ts, "type": "snapshot", "body": body_digest(record)})
    record["entries"] = chain(timeline, previous_head or GENESIS)
    record["head"] = record["entries"][-1]["hash"]
    return record


def sense_json(sense: Sense) -> dict[str, Any]:
    """The sense of the room as the record (and the summary's data block) carries it."""
    return {
        "proposal": sense.proposal.value,
        "label": sense.proposal.label,
        "counts": {p.value: sense.counts.get(p, 0) for p in POSITION_ORDER},
        "eligible": sense.eligible,
        "participated": sense.participated,
        "quorum": float(sense.quorum),
        "recused": list(sense.recused),
        "did_not_take_part": list(sense.did_not_take_part),
        "open_objections": [o.id for o in sense.open_objections],
        "in_the_rough": list(sense.in_the_rough),
        "by_stakeholder": _breakdown_json(sense.by_stakeholder),
        "by_region": _breakdown_json(sense.by_region),
        "silent_stakeholder_groups": list(sense.silent_stakeholder_groups),
        "by_development": _breakdown_json(sense.by_development),
    }


def _outcome(request: Request, appeal_window_ms: int | None) -> dict[str, Any]:
    decided = request.outcome is not None
    appeal_until = (
        request.decided_at + appeal_window_ms
        if decided and request.decided_at is not None and appeal_window_ms is not None
        else None
    )
    return {
        "proposal": None if request.proposal is None else request.proposal.value,
        "decision": None if request.outcome is None else request.outcome.value,
        "decided_by": _text(request.decided_by) if decided else None,
        "rationale": _text(request.rationale) if decided else None,
        **_moment("decided_at", request.decided_at if decided else None),
        "appeal_window_ms": appeal_window_ms,
        **_moment("appeal_until", appeal_until),
    }


# --------------------------------------------------------------------------- segments


def counted_inputs(record: Mapping[str, Any]) -> frozenset[str]:
    """The event IDs of the position inputs a record counted (its `counted` entries)."""
    entries = record.get("entries")
    return frozenset(
        str(e["event_id"])
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, dict) and e.get("type") == "position" and e.get("counted") is True
    )


def _decision(record: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """(closed_at, decided_at, decision) of a record: which decision it records."""
    request, outcome = record.get("request"), record.get("outcome")
    request = request if isinstance(request, dict) else {}
    outcome = outcome if isinstance(outcome, dict) else {}
    return request.get("closed_at"), outcome.get("decided_at"), outcome.get("decision")


def continues_decision(earlier: Mapping[str, Any], request: Request) -> bool:
    """Whether a record of `request` as it stands now is a later segment of the decision
    `earlier` recorded (an appeal answered without a reopen), not a new decision."""
    decision = None if request.outcome is None else request.outcome.value
    same = (request.closed_at, request.decided_at, decision) == _decision(earlier)
    return decision is not None and same


def verify_segments(earlier: object, later: object) -> list[str]:
    """Problems between two consecutive segments of one request's record; empty when the
    later one continues the earlier: same request, next number, chained to its head, and —
    when both record the same decision — the same inputs counted and the same counts."""
    if not isinstance(earlier, dict) or not isinstance(later, dict):
        return ["a segment is not a JSON object"]
    problems: list[str] = []
    ids = [_dict_get(r, "request", "id") for r in (earlier, later)]
    if ids[0] != ids[1]:
        problems.append(f"the segments are of different requests ({ids[0]!r}, {ids[1]!r})")
    numbers = earlier.get("segment"), later.get("segment")
    if not (_is_int(numbers[0]) and _is_int(numbers[1]) and numbers[1] == numbers[0] + 1):
        problems.append(f"segment {numbers[1]!r} does not follow segment {numbers[0]!r}")
    if later.get("previous_head") != earlier.get("head"):
        problems.append("previous_head is not the head of the earlier segment")
    decision = _decision(earlier)
    if decision[2] is not None and decision == _decision(later):
        before, after = counted_inputs(earlier), counted_inputs(later)
        for event_id in sorted(after - before):
            problems.append(
                f"input {event_id} counts in segment {numbers[1]} but was not counted when "
                "the decision was recorded"
            )
        for event_id in sorted(before - after):
            problems.append(f"input {event_id} counted by the decision is not counted any more")
        counts = _dict_get(earlier, "sense", "counts"), _dict_get(later, "sense", "counts")
        if counts[0] != counts[1]:
            problems.append("the counts differ from those of the decision they continue")
    return problems


def _dict_get(record: Mapping[str, Any], section: str, key: str) -> Any:
    value = record.get(section)
    return value.get(key) if isinstance(value, dict) else None


# --------------------------------------------------------------------------- verifying


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def verify_record(data: object, *, head: str | None = None) -> list[str]:
    """Problems with a record's integrity; an empty list means it is intact.

    Checks the schema name, that no top-level field escapes the chain, the entry numbering,
    every `prev` link and `hash`, timestamps (in order, `at` matching `ts`), that the last
    entry is the `snapshot` whose digest matches the other sections, and `head`. With
    `head`, also that the record's head is that published value.
    """
    if not isinstance(data, dict):
        return ["the record is not a JSON object"]
    problems: list[str] = []
    if data.get("schema") != RECORD_SCHEMA:
        problems.append(f"schema is {data.get('schema')!r}, expected {RECORD_SCHEMA!r}")
    for key in sorted(str(k) for k in data if k not in TOP_LEVEL_KEYS):
        problems.append(f"unexpected top-level field {key!r}: it is not covered by the chain")
    for key in TOP_LEVEL_KEYS:
        if key not in data:
            problems.append(f"top-level field {key!r} is missing")

    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        problems.append("entries: missing or empty, so nothing can be verified")
        return problems

    previous = data.get("previous_head")
    if previous is not None and not (isinstance(previous, str) and HEX64.fullmatch(previous)):
        problems.append("previous_head is not a 64-hex hash")
    prev: object = previous or GENESIS
    last_ts: int | None = None
    for index, entry in enumerate(entries):
        n = index + 1
        if not isinstance(entry, dict):
            problems.append(f"entry {n}: not an object")
            prev = None
            continue
        seq = entry.get("seq")
        if not _is_int(seq) or seq != n:
            problems.append(
                f"entry {n}: seq is {seq!r}, expected {n} (an entry was removed, added or moved)"
            )
        if entry.get("prev") != prev:
            problems.append(f"entry {n}: prev does not match the hash of the entry before it")
        stated = entry.get("hash")
        if stated != entry_hash(entry):
            problems.append(f"entry {n}: hash does not match its content (it was changed)")
        kind = entry.get("type")
        if kind not in ENTRY_TYPES:
            problems.append(f"entry {n}: unknown type {kind!r}")
        elif kind == "snapshot" and n != len(entries):
            problems.append(f"entry {n}: a snapshot entry may only come last")
        ts = entry.get("ts")
        if not _is_int(ts):
            problems.append(f"entry {n}: ts is not an integer of milliseconds")
        else:
            if entry.get("at") != iso_utc(ts):
                problems.append(f"entry {n}: at does not match ts")
            if last_ts is not None and ts < last_ts:
                problems.append(f"entry {n}: earlier than the entry before it (out of order)")
            last_ts = ts
        prev = stated

    last = entries[-1]
    if not isinstance(last, dict) or last.get("type") != "snapshot":
        problems.append("the last entry is not the snapshot (the record was cut short)")
    elif last.get("body") != body_digest(data):
        changed = "/".join(BODY_KEYS[1:])
        problems.append(f"the snapshot digest does not match the record's {changed} sections")
    if data.get("head") != prev:
        problems.append("head does not match the hash of the last entry")
    if head is not None:
        expected = head.strip().lower()
        if not HEX64.fullmatch(expected):
            problems.append(f"the expected head {head!r} is not a SHA-256 (64 hex digits)")
        elif data.get("head") != expected:
            problems.append(f"head is not the expected {expected}")
    return problems


class _Unfit(ValueError):
    """JSON that parses but must not be trusted; the message says why."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook`: an object naming a key twice is refused, at any depth."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Unfit(
                f"duplicate key {key!r} in one object: readers disagree on which value counts "
                "(Python's the last, others the first), so the file cannot be trusted"
            )
        seen[key] = value
    return seen


def _finite_only(name: str) -> Any:
    """`parse_constant`: NaN, Infinity and -Infinity are not JSON numbers."""
    raise _Unfit(f"{name} is not a JSON number: the bot never writes it")


def _first_difference(text: str, canonical: str) -> int:
    """The 1-based number of the first line where `text` and `canonical` differ."""
    ours, theirs = text.split("\n"), canonical.split("\n")
    for number, (a, b) in enumerate(zip(ours, theirs, strict=False), start=1):
        if a != b:
            return number
    return min(len(ours), len(theirs)) + 1


def verify_json(text: str, *, head: str | None = None) -> list[str]:
    """Problems with the text of an exported JSON file; an empty list means it is intact.

    Stricter than `verify_record` on the parsed value: the text must be exactly what
    `render_json` writes for that record (give or take the final newline), so nothing can
    hide in formatting that one JSON reader sees differently from another. Duplicate keys,
    NaN and Infinity are refused outright.
    """
    if text.startswith("\ufeff"):
        return ["the file starts with a byte-order mark: use the file exactly as exported"]
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_finite_only)
        problems = verify_record(data, head=head)
        canonical = render_json(data)
    except _Unfit as exc:
        return [str(exc)]
    except ValueError as exc:
        return [f"not valid JSON: {exc}"]
    except RecursionError:
        return ["not valid JSON: nested too deeply"]
    if text not in (canonical, canonical.removesuffix("\n"), canonical + "\n"):
        problems.append(
            "the file is not byte for byte as exported (first difference on line "
            f"{_first_difference(text, canonical)}): it was reformatted or re-saved, so what "
            "it shows may not be what was verified; use the file exactly as exported"
        )
    elif (
        isinstance(data, dict)
        and sorted(data) == sorted(TOP_LEVEL_KEYS)
        and tuple(data) != TOP_LEVEL_KEYS  # e.g. re-saved with sorted keys (`jq -S`)
    ):
        problems.append(
            f"the top-level fields are not in the exported order ({', '.join(TOP_LEVEL_KEYS)})"
            ": it was re-saved; use the file exactly as exported"
        )
    return problems
