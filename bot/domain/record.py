"""The decision record of a participation request: data, hash chain, and its renderings.

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
who hummed what. Pure: standard library only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.counting import (
    DEFAULT_SKEW_MS,
    Ballot,
    Redaction,
    Status,
    Tally,
    clamp_ts,
    count,
    effective_ts,
)
from bot.domain.durations import format_duration, format_utc
from bot.domain.ledger import PositionInput
from bot.domain.lifecycle import Outcome
from bot.domain.objections import Objection, ObjectionState
from bot.domain.positions import POSITION_ORDER, Position
from bot.domain.request import Request
from bot.domain.sense import MIN_GROUP_FOR_POSITIONS, GroupBreakdown, Proposal, Sense, Voter

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
    "objection_disposed",
    "closed",
    "decided",
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
    """Milliseconds since the epoch as `2026-11-23T10:00:00Z` (to the second, for humans)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
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
                "counted": status in (Status.COUNTED, Status.RETRACTED),
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
    for d in objections:
        o = d.objection
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
            {"proposal": None if request.proposal is None else request.proposal.value},
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
) -> Record:
    """The decision record of one request, from plain domain values.

    `eligible` is the snapshot taken when the ballot opened; `removed` when members of it
    left the roster (absent or None: still on it). `inputs` is the full append-only history
    of position inputs and `redactions` every redaction aimed at one of them (whoever sent
    it): which count is decided by `bot.domain.counting.count`, the same rule as the bot's draft, and
    every input is listed with whether it counted and why not. `segment` numbers the record
    of each decision of a request (a reopen starts the next); the chain of segment n > 1
    begins at `previous_head`, the head of segment n - 1.
    """
    ballot = Ballot(request.room_id, request.closed_at, skew_ms)
    tally = count(ballot, eligible, removed or {}, inputs, redactions)
    sense = tally.sense([d.objection for d in objections], quorum)
    counted_ids = {v.user_id for v in tally.voters}

    items = _timeline(request, len(eligible), inputs, tally, objections, skew_ms)
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


# --------------------------------------------------------------------------- verifying


_MAX_TS = 253_402_300_800_000  # 10000-01-01T00:00:00Z: beyond it no ISO date can be written


def _is_int(value: object) -> bool:
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
        if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts < _MAX_TS:
            problems.append(f"entry {n}: ts is not a plausible integer of milliseconds")
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
    if head is not None and data.get("head") != head.strip().lower():
        problems.append(f"head is not the expected {head.strip().lower()}")
    return problems


def verify_json(text: str, *, head: str | None = None) -> list[str]:
    """`verify_record` on the text of an exported JSON file (a parse error is a problem)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return [f"not valid JSON: {exc}"]
    return verify_record(data, head=head)


# --------------------------------------------------------------------------- JSON and CSV


def render_json(record: Mapping[str, Any]) -> str:
    """The record as an indented UTF-8 JSON document (fields in their documented order)."""
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS: tuple[str, ...] = (
    "seq",
    "at",
    "member",
    "stakeholder",
    "region",
    "position",
    "reason",
    "source",
    "event_id",
    "retracted",
    "retracted_at",
)
_MXID = re.compile(r"@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object, *, identifier: bool = False) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if identifier and _MXID.fullmatch(text):
        return text
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def render_csv(record: Mapping[str, Any]) -> str:
    """One row per position input (every change, withdrawals and retracted ones included).

    `position` is `withdrawn` for a withdrawal; `retracted` is `yes` when the input was
    later removed by a redaction (`retracted_at` says when). Cells that a spreadsheet would
    read as a formula get a leading apostrophe.
    """
    groups = {e["user_id"]: e for e in record.get("eligible", [])}
    retracted = {
        e["event_id"]: e["at"] for e in record.get("entries", []) if e.get("type") == "retracted"
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in record.get("entries", []):
        if e.get("type") != "position":
            continue
        member = e["member"]
        who = groups.get(member, {})
        writer.writerow(
            [
                e["seq"],
                e["at"],
                _cell(member, identifier=True),
                _cell(who.get("stakeholder")),
                _cell(who.get("region")),
                "withdrawn" if e["position"] is None else e["position"],
                _cell(e.get("reason")),
                e["source"],
                _cell(e["event_id"], identifier=True),
                "yes" if e["event_id"] in retracted else "no",
                retracted.get(e["event_id"], ""),
            ]
        )
    return buffer.getvalue()


# --------------------------------------------------------------------------- Markdown

# Bidi overrides/isolates, zero-width and control characters can disguise text.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Everything CommonMark/GFM could read as markup inside a line (links, images, HTML,
# emphasis, code, tables, strikethrough, entities, headings, mentions, math).
_MD_INLINE = re.compile(r"([\\`*_{}\[\]()<>#|~&!@$])")
_MD_LINE_START = re.compile(r"^([-+=]|\d+(?=[.)]))")
_SCHEME = re.compile(r"(?i)\b(javascript|vbscript|data|file)(\s*):")


def md_escape(text: str | None) -> str:
    """User text made inert in Markdown: one line, every markup character escaped.

    Links, images, raw HTML, headings, lists and code cannot form, and `javascript:` (and
    `vbscript:`, `data:`, `file:`) lose their meaning as URL schemes.
    """
    return " ".join(_md_lines(text)).strip()


def _md_lines(text: str | None) -> list[str]:
    if not text:
        return []
    text = _CONTROL.sub("", _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n")))
    out = []
    for raw in text.split("\n"):
        line = _MD_INLINE.sub(r"\\\1", raw.strip())
        line = _MD_LINE_START.sub(
            lambda m: m.group(1) + "\\" if m.group(1)[0].isdigit() else "\\" + m.group(1), line
        )
        out.append(_SCHEME.sub(r"\1\2\\:", line))
    return out


def md_quote(text: str | None) -> str:
    """User text as a Markdown block quote, line breaks kept, every line escaped."""
    lines = _md_lines(text)
    if not any(lines):
        return "> *(empty)*"
    return "\n".join(f"> {line}".rstrip() + ("  " if line else "") for line in lines).rstrip()


_STAKEHOLDER_LABELS = {
    "government": "Government",
    "private-sector": "Private sector",
    "civil-society": "Civil society",
    "technical-community": "Technical community",
    "academia": "Academia",
    "intergovernmental": "Intergovernmental organisations",
    "international-organization": "International organisations",
}
_REGION_LABELS = {
    "africa": "Africa",
    "americas": "Americas",
    "arab-states": "Arab States",
    "asia-pacific": "Asia-Pacific",
    "europe": "Europe",
    "cis": "CIS",
}
_OUTCOME_LABELS = {
    Outcome.ADMIT.value: "admit",
    Outcome.DECLINE.value: "decline",
    Outcome.NO_CONSENSUS.value: "no consensus (the applicant is not admitted)",
}
_DISPOSITION_NOTES = {
    ObjectionState.ACCOMMODATED.value: "accommodated: the issue was resolved",
    ObjectionState.ADDRESSED.value: (
        "addressed: considered and answered but not accepted; the objector is in the rough"
    ),
    ObjectionState.DUPLICATE.value: "duplicate of another objection",
    ObjectionState.WITHDRAWN.value: "withdrawn",
    ObjectionState.OPEN.value: "open: not yet disposed of",
}


def _label(value: str | None, labels: Mapping[str, str]) -> str:
    if not value:
        return "not given"
    return labels.get(value) or md_escape(value)


def _position_label(value: str | None) -> str:
    if value is None:
        return "withdrawn"
    try:
        return Position(value).label
    except ValueError:
        return md_escape(value)


def _proposal_label(value: str | None) -> str:
    if value is None:
        return "none"
    try:
        return Proposal(value).label
    except ValueError:
        return md_escape(value)


def _when(ms: int | None) -> str:
    return "—" if ms is None else format_utc(ms)


def _quoted(text: str | None) -> str:
    return f"“{md_escape(text)}”" if text and text.strip() else ""


def _entry_line(e: Mapping[str, Any], sources: Mapping[str, str]) -> str | None:
    kind = e.get("type")
    who = md_escape(e.get("member"))
    if kind == "filed":
        by = md_escape(e.get("by"))
        if e.get("self_applied"):
            return f"Request filed by the applicant, {by}, by direct message."
        return f"Request filed by {by}."
    if kind == "opened":
        return f"Ballot opened; {e.get('eligible')} members eligible."
    if kind == "position":
        via = f"by {e.get('source')}"
        if e.get("position") is None:
            return f"{who} withdrew their position ({via})."
        reason = _quoted(e.get("reason"))
        line = f"{who}: **{_position_label(e.get('position'))}** ({via})"
        return f"{line} — {reason}" if reason else f"{line}."
    if kind == "retracted":
        remover = e.get("by")
        source = sources.get(str(e.get("event_id")), "input")
        removed = "removed" if remover == e.get("member") else f"removed by {md_escape(remover)}"
        return f"{who}'s {source} was {removed}: that position is retracted."
    if kind == "objection_raised":
        reason = _quoted(e.get("reason")) or "(no reason given yet)"
        return f"Objection #{e.get('id')} raised by {who}: {reason}"
    if kind == "objection_disposed":
        state = str(e.get("state"))
        rationale = _quoted(e.get("rationale"))
        line = f"Objection #{e.get('id')} {md_escape(state)} by {md_escape(e.get('by'))}"
        return f"{line}: {rationale}" if rationale else f"{line}."
    if kind == "closed":
        return f"Ballot closed. Draft sense of the room: {_proposal_label(e.get('proposal'))}."
    if kind == "decided":
        outcome = _OUTCOME_LABELS.get(str(e.get("outcome")), md_escape(e.get("outcome")))
        return f"{md_escape(e.get('by'))} decided: **{outcome}**."
    return None


def _group_table(
    rows: Sequence[Mapping[str, Any]], heading: str, labels: Mapping[str, str]
) -> list[str]:
    """A Markdown table of participation (and positions, for groups large enough)."""
    shown = [r for r in rows if r.get("members")]
    if not shown:
        return ["No eligible members."]
    columns = [p for p in POSITION_ORDER if p is not Position.RECUSE]
    detailed = any(r.get("counts") is not None for r in shown)
    head = f"| {heading} | Eligible | Took a position |"
    rule = "|---|---:|---:|"
    if detailed:
        head += " " + " | ".join(p.label.capitalize() for p in columns) + " |"
        rule += "---:|" * len(columns)
    lines = [head, rule]
    for row in shown:
        line = (
            f"| {_label(row.get('name'), labels)} | {row.get('members')} | "
            f"{row.get('participated')} |"
        )
        if detailed:
            counts = row.get("counts")
            cells = (
                ["—"] * len(columns)
                if counts is None
                else [str(counts.get(p.value, 0)) for p in columns]
            )
            line += " " + " | ".join(cells) + " |"
        lines.append(line)
    if any(r.get("counts") is None for r in shown):
        lines += [
            "",
            f"Groups with fewer than {MIN_GROUP_FOR_POSITIONS} eligible members show "
            "participation only, so nobody's position is singled out.",
        ]
    return lines


def _absences(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> list[str]:
    """Which groups had eligible members who all stayed silent, and which had none."""
    silent = [
        _label(r.get("name"), labels)
        for r in rows
        if r.get("members") and not r.get("participated")
    ]
    empty = [_label(r.get("name"), labels) for r in rows if not r.get("members")]
    lines = []
    if silent:
        lines += ["", "Eligible members but no participation: " + ", ".join(silent) + "."]
    if empty:
        lines += ["", "No eligible members: " + ", ".join(empty) + "."]
    return lines


def _days(ms: int) -> str:
    """A window as minutes read it: `14 days`, `36 hours`."""
    day, hour = 86_400_000, 3_600_000
    if ms % day == 0:
        n = ms // day
        return f"{n} day" + ("s" if n != 1 else "")
    if ms % hour == 0:
        n = ms // hour
        return f"{n} hour" + ("s" if n != 1 else "")
    return format_duration(ms)


def render_markdown(record: Mapping[str, Any]) -> str:
    """Minutes a secretary could publish, rendered from the record.

    All user text is escaped so it cannot inject links, HTML, headings or lists. The
    minutes end with the record's head hash, to check against the JSON export.
    """
    req = record["request"]
    sense = record["sense"]
    outcome = record["outcome"]
    entries = record.get("entries", [])
    eligible = {e["user_id"]: e for e in record.get("eligible", [])}
    applicant = md_escape(req.get("applicant"))
    name = req.get("name")
    who = f"{md_escape(name)} ({applicant})" if name and name != req.get("applicant") else applicant

    out: list[str] = [
        f"# Minutes: participation request #{req['id']} — {who}",
        "",
        f"**{md_escape(record.get('group'))}** · decision record `{record.get('schema')}`",
        "",
        "## The request",
        "",
        "| | |",
        "|---|---|",
        f"| Applicant | {who} |",
        f"| Organisation | {md_escape(req.get('org')) or 'not given'} |",
        f"| Stakeholder group | {_label(req.get('stakeholder'), _STAKEHOLDER_LABELS)} |",
        f"| Region | {_label(req.get('region'), _REGION_LABELS)} |",
        "| Filed by | "
        + (
            "the applicant (self-application)"
            if req.get("self_applied")
            else md_escape(req.get("filed_by"))
        )
        + " |",
        f"| Filed | {_when(req.get('created_at'))} |",
        f"| Ballot opened | {_when(req.get('opened_at'))} |",
        f"| Deadline | {_when(req.get('deadline_at'))} |",
        f"| Ballot closed | {_when(req.get('closed_at'))} |",
        f"| Status | {md_escape(req.get('state'))} |",
        "",
        "### Statement",
        "",
        md_quote(req.get("statement")),
        "",
        "The applicant affirms the group's participation principles: independence, community, "
        "transparency, participation, technical relevance and excellence, and collaboration.",
        "",
        "## Timeline",
        "",
    ]
    sources = {
        str(e.get("event_id")): f"{e.get('source')}" for e in entries if e.get("type") == "position"
    }
    for e in entries:
        line = _entry_line(e, sources)
        if line is not None:
            out.append(f"- {_when(e.get('ts'))} — {line}")

    counts = sense.get("counts", {})
    quorum = float(sense.get("quorum", 0))
    out += [
        "",
        "## Positions",
        "",
        f"{sense.get('participated')} of {sense.get('eligible')} eligible members took a "
        f"position (the quorum is {quorum * 100:g} % of them). This is not a vote "
        "count: the chair judges whether every objection was addressed.",
        "",
        "| Position | Members |",
        "|---|---:|",
    ]
    out += [f"| {p.label.capitalize()} | {counts.get(p.value, 0)} |" for p in POSITION_ORDER]
    recused = sense.get("recused") or []
    if recused:
        out += [
            "",
            "Recused (not counted as eligible): " + ", ".join(md_escape(m) for m in recused) + ".",
        ]
    out += ["", "### By stakeholder group", ""]
    by_stakeholder = sense.get("by_stakeholder", [])
    out += _group_table(by_stakeholder, "Stakeholder group", _STAKEHOLDER_LABELS)
    out += _absences(by_stakeholder, _STAKEHOLDER_LABELS)
    out += ["", "### By region", ""]
    by_region = sense.get("by_region", [])
    out += _group_table(by_region, "Region", _REGION_LABELS)
    out += _absences(by_region, _REGION_LABELS)

    out += ["", "### Did not take part", ""]
    absent = sense.get("did_not_take_part") or []
    if absent:
        out.append(
            "These eligible members took no position. Not taking part is not the same as "
            "“no objection”, which is a position."
        )
        out.append("")
        for member in absent:
            info = eligible.get(member, {})
            detail = ", ".join(
                x
                for x in (
                    _label(info.get("stakeholder"), _STAKEHOLDER_LABELS) if info else "",
                    _label(info.get("region"), _REGION_LABELS) if info else "",
                )
                if x
            )
            out.append(f"- {md_escape(member)}" + (f" ({detail})" if detail else ""))
    else:
        out.append("Every eligible member took a position.")

    out += ["", "## Objections", ""]
    raised = [e for e in entries if e.get("type") == "objection_raised"]
    disposed = {e.get("id"): e for e in entries if e.get("type") == "objection_disposed"}
    if not raised:
        out.append("No objections were raised.")
    for e in raised:
        d = disposed.get(e.get("id"))
        out.append(
            f"**Objection #{e.get('id')}** by {md_escape(e.get('member'))}, raised "
            f"{_when(e.get('ts'))}:"
        )
        out += ["", md_quote(e.get("reason")) if e.get("reason") else "> *(no reason given)*", ""]
        if d is None:
            out.append(f"Disposition: {_DISPOSITION_NOTES[ObjectionState.OPEN.value]}.")
        else:
            note = _DISPOSITION_NOTES.get(str(d.get("state")), md_escape(d.get("state")))
            line = f"Disposition: **{note}** — by {md_escape(d.get('by'))}, {_when(d.get('ts'))}"
            rationale = _quoted(d.get("rationale"))
            out.append(f"{line}: {rationale}" if rationale else f"{line}.")
        out.append("")
    rough = sense.get("in_the_rough") or []
    if rough:
        out.append(
            "In the rough (objection addressed, not accommodated): "
            + ", ".join(md_escape(m) for m in rough)
            + "."
        )
        out.append("")
    if out[-1] != "":
        out.append("")

    out += ["## Sense of the room", ""]
    if outcome.get("proposal"):
        out.append(f"Draft at the close of the ballot: **{_proposal_label(outcome['proposal'])}**.")
    out.append(
        f"From the record as it stands: **{_proposal_label(sense.get('proposal'))}**"
        + (
            f" (open objections: {', '.join('#' + str(i) for i in sense['open_objections'])})."
            if sense.get("open_objections")
            else "."
        )
    )

    out += ["", "## Decision", ""]
    decision = outcome.get("decision")
    if decision is None:
        out.append("The chair has not decided yet.")
    else:
        label = _OUTCOME_LABELS.get(str(decision), md_escape(decision))
        out += [
            f"The chair, {md_escape(outcome.get('decided_by'))}, decided on "
            f"{_when(outcome.get('decided_at'))}: **{label}**.",
            "",
            "Rationale:",
            "",
            md_quote(outcome.get("rationale")),
        ]
    out += ["", "### Appeal", ""]
    window = outcome.get("appeal_window_ms")
    if decision is None:
        out.append("Once decided, the decision can be appealed within the group's appeal window.")
    elif outcome.get("appeal_until") is not None and window is not None:
        out.append(
            f"This decision can be appealed until {_when(outcome['appeal_until'])} "
            f"({_days(int(window))} after the decision)."
        )
    else:
        out.append("This decision can be appealed within the group's appeal window.")

    out += ["", "## Hums", ""]
    hums = record.get("hums")
    if hums:
        out.append(
            f"For: {md_escape(hums.get('for'))}; against: {md_escape(hums.get('against'))}. "
            "Hums are anonymous: only how loud each side was is recorded."
        )
    else:
        out.append("No hum is part of this record. Hums are anonymous and never listed by name.")

    out += [
        "",
        "## Verification",
        "",
        f"Record head (SHA-256): `{record.get('head')}`",
        "",
        f"These minutes were rendered from a decision record of {len(entries)} entries. "
        "Check the JSON export with `consensus-bot export --verify FILE`; its head must be "
        "the one above.",
        "",
    ]
    return "\n".join(out)
