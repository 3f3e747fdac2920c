"""The decision record: building, hash chain, tamper detection, schema, CSV and Markdown."""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.counting import Redaction
from bot.domain.durations import clamp_ts
from bot.domain.ledger import PositionInput, Source
from bot.domain.lifecycle import Outcome, RequestState
from bot.domain.objections import Objection, ObjectionState
from bot.domain.positions import Position
from bot.domain.record import (
    GENESIS,
    RECORD_SCHEMA,
    DatedObjection,
    HumAggregate,
    body_digest,
    build_record,
    chain,
    entry_hash,
    iso_utc,
    verify_json,
    verify_record,
)
from bot.domain.record_render import md_escape, render_csv, render_json, render_markdown
from bot.domain.request import Applicant, Request
from bot.domain.sense import Proposal, Voter
from bot.domain.text import sanitize
from bot.services.export import ExportError, export_record, filename, render
from storage.database import Database
from storage.repo import Repository

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "docs" / "record-schema.json"

T0 = 1_795_428_000_000  # 2026-11-23T10:00:00Z
MIN = 60_000
DAY = 86_400_000
CHAIR = "@chair:example.org"
ALICE, BOB, CAROL, DAVE, ERIN = (
    f"@{n}:example.org" for n in ("alice", "bob", "carol", "dave", "erin")
)

HOSTILE = (
    "[x](javascript:alert(1)) and ![img](https://evil.example/t.png)\n"
    "<script>alert(1)</script> <img src=x onerror=alert(1)>\n"
    "# heading\n"
    "- list item\n"
    "1. ordered\n"
    "---\n"
    "    indented code\n"
    "> quote | pipe `code` **bold** _em_ &lt;b&gt; JavaScript :alert(2) java\u200bscript:x"
)


def make_request(**changes: Any) -> Request:
    fields: dict[str, Any] = {
        "id": 7,
        "group_id": "main",
        "number": 7,
        "applicant": Applicant(
            "@jane:example.org", "Jane Doe", "Example Labs", "academia", "africa"
        ),
        "statement": "I research routing security.\nI would like to help with the RPKI work.",
        "filed_by": CHAIR,
        "self_applied": False,
        "state": RequestState.DECIDED,
        "room_id": "!req7:example.org",
        "ballot_event_id": "$ballot",
        "deadline_at": T0 + 14 * DAY,
        "created_at": T0,
        "opened_at": T0 + MIN,
        "closed_at": T0 + 20 * MIN,
        "proposal": Proposal.ROUGH_CONSENSUS_ADMIT,
        "outcome": Outcome.ADMIT,
        "decided_by": CHAIR,
        "rationale": "Confirmed the draft sense of the room: rough consensus to admit.",
        "decided_at": T0 + 21 * MIN,
    }
    fields.update(changes)
    return Request(**fields)


VOTERS = [
    Voter(ALICE, "technical-community", "europe"),
    Voter(BOB, "technical-community", "africa"),
    Voter(CAROL, "technical-community", "asia-pacific"),
    Voter(DAVE, "civil-society", "americas"),
    Voter(ERIN, "government", "arab-states"),
]
INPUTS = [
    PositionInput("$a1", ALICE, Position.SUPPORT, T0 + 2 * MIN, Source.REACTION),
    PositionInput(
        "$b1", BOB, Position.OBJECT, T0 + 3 * MIN, Source.COMMAND, "No track record yet."
    ),
    PositionInput("$c1", CAROL, Position.CONCERN, T0 + 4 * MIN, Source.REACTION),
    PositionInput("$d1", DAVE, Position.SUPPORT, T0 + 5 * MIN, Source.REACTION),
    PositionInput("$c2", CAROL, Position.NO_OBJECTION, T0 + 6 * MIN, Source.COMMAND, "Fine now."),
    PositionInput("$e1", ERIN, Position.ABSTAIN, T0 + 7 * MIN, Source.REACTION),
    PositionInput("$e2", ERIN, None, T0 + 9 * MIN, Source.COMMAND),
]
ROOM = "!req7:example.org"
RETRACTIONS = [
    Redaction("$r1", "$d1", ROOM, DAVE, T0 + 8 * MIN, T0 + 8 * MIN),
    Redaction("$r2", "$unknown", ROOM, DAVE, T0 + 8 * MIN, T0 + 8 * MIN),  # ignored: unknown
    Redaction("$r3", "$a1", ROOM, DAVE, T0 + 8 * MIN, T0 + 8 * MIN),  # ignored: not the author
]
OBJECTIONS = [
    DatedObjection(
        Objection(
            1,
            7,
            BOB,
            "No track record yet.",
            ObjectionState.ADDRESSED,
            "Participation does not require a track record.",
            CHAIR,
        ),
        raised_at=T0 + 3 * MIN,
        disposed_at=T0 + 10 * MIN,
        event_id="$b1",
    )
]


def make_record(**changes: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "group": "Example Collaboration Group",
        "request": make_request(),
        "eligible": VOTERS,
        "inputs": INPUTS,
        "quorum": 0.5,
        "redactions": RETRACTIONS,
        "objections": OBJECTIONS,
        "appeal_window_ms": 14 * DAY,
    }
    kwargs.update(changes)
    return build_record(**kwargs)


RECORD = make_record()


# --------------------------------------------------------------------------- building


def test_record_from_domain_values_is_intact_and_complete() -> None:
    record = make_record()
    assert verify_record(record) == []
    assert record["schema"] == RECORD_SCHEMA
    assert list(record) == [
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
    ]
    entries = record["entries"]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert all(e["hash"] == entry_hash(e) for e in entries)
    assert record["head"] == entries[-1]["hash"]
    assert entries[-1] == {**entries[-1], "type": "snapshot", "body": body_digest(record)}
    assert [e["ts"] for e in entries] == sorted(e["ts"] for e in entries)
    assert entries[0]["at"] == "2026-11-23T10:00:00Z"
    assert [e["type"] for e in entries] == [
        "filed",
        "opened",
        "position",
        "position",
        "objection_raised",
        "position",
        "position",
        "position",
        "position",
        "retracted",
        "position",
        "objection_disposed",
        "closed",
        "decided",
        "snapshot",
    ]


def test_every_position_change_and_its_retraction_is_in_the_timeline() -> None:
    positions = [e for e in RECORD["entries"] if e["type"] == "position"]
    assert [e["event_id"] for e in positions] == ["$a1", "$b1", "$c1", "$d1", "$c2", "$e1", "$e2"]
    assert positions[-1]["position"] is None  # Erin withdrew
    (retracted,) = [e for e in RECORD["entries"] if e["type"] == "retracted"]
    assert retracted == {
        **retracted,
        "member": DAVE,
        "event_id": "$d1",
        "redaction": "$r1",
        "by": DAVE,
    }
    disposed = next(e for e in RECORD["entries"] if e["type"] == "objection_disposed")
    assert disposed == {
        **disposed,
        "id": 1,
        "state": "addressed",
        "by": CHAIR,
        "rationale": "Participation does not require a track record.",
    }


def test_sense_is_drafted_from_the_timeline() -> None:
    sense = RECORD["sense"]
    assert sense["proposal"] == "rough-consensus-admit"
    assert sense["counts"] == {
        "support": 1,
        "no-objection": 1,
        "concern": 0,
        "object": 1,
        "abstain": 0,
        "recuse": 0,
    }
    assert (sense["eligible"], sense["participated"]) == (5, 3)
    # Dave's reaction was removed and Erin withdrew: they did not take part, which is not
    # "no objection".
    assert sense["did_not_take_part"] == [DAVE, ERIN]
    assert sense["in_the_rough"] == [BOB]
    assert sense["open_objections"] == []
    small = next(g for g in sense["by_stakeholder"] if g["name"] == "civil-society")
    assert small == {"name": "civil-society", "members": 1, "participated": 0, "counts": None}
    outcome = RECORD["outcome"]
    assert outcome["decision"] == "admit"
    assert outcome["appeal_until"] == T0 + 21 * MIN + 14 * DAY
    assert outcome["appeal_until_iso"] == "2026-12-07T10:21:00Z"


def test_members_removed_from_the_roster_stay_listed_but_are_not_counted() -> None:
    record = make_record(removed={DAVE: T0})
    assert verify_record(record) == []
    dave = next(e for e in record["eligible"] if e["user_id"] == DAVE)
    assert dave["counted"] is False
    assert record["sense"]["eligible"] == 4


def test_the_head_does_not_depend_on_when_or_how_often_it_is_exported() -> None:
    assert make_record() == make_record()
    assert make_record()["head"] == RECORD["head"]
    assert verify_json(render_json(RECORD)) == []
    assert verify_json(render_json(RECORD), head=RECORD["head"]) == []


def test_a_pending_request_has_a_short_intact_record() -> None:
    req = make_request(
        state=RequestState.PENDING,
        opened_at=None,
        closed_at=None,
        proposal=None,
        outcome=None,
        decided_by=None,
        rationale=None,
        decided_at=None,
    )
    record = make_record(request=req, eligible=[], inputs=[], redactions=[], objections=[])
    assert verify_record(record) == []
    assert [e["type"] for e in record["entries"]] == ["filed", "snapshot"]
    assert record["outcome"]["decision"] is None
    assert record["outcome"]["appeal_until"] is None
    assert "has not decided yet" in render_markdown(record)


def test_hums_hold_an_aggregate_only() -> None:
    assert RECORD["hums"] is None
    record = make_record(hums=HumAggregate("soft", "none"))
    assert record["hums"] == {"for": "soft", "against": "none"}
    assert verify_record(record) == []
    assert all("hum" not in e["type"] for e in record["entries"])
    assert "For: soft; against: none" in render_markdown(record)


# --------------------------------------------------------------------------- tampering


def _tampered(change: str) -> dict[str, Any]:
    record = copy.deepcopy(RECORD)
    entries = record["entries"]
    if change == "change a position":
        next(e for e in entries if e["type"] == "position")["position"] = "object"
    elif change == "change a reason":
        next(e for e in entries if e.get("reason"))["reason"] = "something else"
    elif change == "delete an entry":
        del entries[3]
    elif change == "reorder entries":
        entries[2], entries[3] = entries[3], entries[2]
    elif change == "edit the head":
        record["head"] = "f" * 64
    elif change == "change the statement":
        record["request"]["statement"] = "Something the applicant never said."
    elif change == "change the decision":
        record["outcome"]["decision"] = "decline"
    elif change == "change the sense":
        record["sense"]["counts"]["support"] = 40
    elif change == "drop the snapshot":
        del entries[-1]
        record["head"] = entries[-1]["hash"]
    elif change == "add a field":
        record["note"] = "added later"
    elif change == "change the schema":
        record["schema"] = "consensus-bot/record/1"
    elif change == "shift a time":
        entries[4]["at"] = "2030-01-01T00:00:00Z"
    else:  # pragma: no cover
        raise AssertionError(change)
    return record


@pytest.mark.parametrize(
    "change",
    [
        "change a position",
        "change a reason",
        "delete an entry",
        "reorder entries",
        "edit the head",
        "change the statement",
        "change the decision",
        "change the sense",
        "drop the snapshot",
        "add a field",
        "change the schema",
        "shift a time",
    ],
)
def test_tampering_is_detected(change: str) -> None:
    problems = verify_record(_tampered(change))
    assert problems, change
    assert verify_json(render_json(_tampered(change))), change


def test_problems_say_what_is_wrong() -> None:
    assert any("entry 3: hash" in p for p in verify_record(_tampered("change a position")))
    assert any("seq" in p for p in verify_record(_tampered("delete an entry")))
    assert any("prev" in p for p in verify_record(_tampered("reorder entries")))
    assert verify_record(_tampered("edit the head")) == [
        "head does not match the hash of the last entry"
    ]
    assert any("snapshot digest" in p for p in verify_record(_tampered("change the statement")))
    assert verify_record([]) == ["the record is not a JSON object"]
    assert verify_json("{not json")[0].startswith("not valid JSON")


def test_a_recomputed_chain_passes_alone_but_not_against_the_published_head() -> None:
    forged = copy.deepcopy(RECORD)
    bare = [
        {k: v for k, v in e.items() if k not in ("seq", "at", "prev", "hash")}
        for e in forged["entries"]
    ]
    next(e for e in bare if e["type"] == "position")["position"] = "object"
    forged["entries"] = chain(bare)
    forged["head"] = forged["entries"][-1]["hash"]
    assert verify_record(forged) == []  # a hash chain alone cannot prevent this
    assert verify_record(forged, head=RECORD["head"]) == [
        f"head is not the expected {RECORD['head']}"
    ]


_SUBSTITUTES = st.one_of(
    st.sampled_from(list('0123456789abcdefxyzAZ"\\{}[],:. \n-+etrufaln@$#')),
    st.characters(codec="utf-8"),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_character_change_is_detected_or_changes_nothing(data: st.DataObject) -> None:
    text = render_json(RECORD)
    index = data.draw(st.integers(0, len(text) - 1), label="index")
    char = data.draw(_SUBSTITUTES.filter(lambda c: c != text[index]), label="char")
    changed = text[:index] + char + text[index + 1 :]
    try:
        parsed = json.loads(changed)
    except ValueError:
        return
    assert verify_record(parsed) or parsed == RECORD


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from([*RECORD, "entries.0", "entries.-1"]), value=_JSON)
def test_verify_never_crashes_and_catches_replaced_sections(key: str, value: Any) -> None:
    record = copy.deepcopy(RECORD)
    if key.startswith("entries."):
        record["entries"][int(key.split(".")[1])] = value
    else:
        record[key] = value
    problems = verify_record(record)
    assert all(isinstance(p, str) for p in problems)
    assert problems or record == RECORD


# --------------------------------------------------------------------------- the exported text

EXPORTED = render_json(RECORD)
NOT_AS_EXPORTED = "use the file exactly as exported"


def test_the_exported_text_verifies_give_or_take_the_final_newline() -> None:
    assert verify_json(EXPORTED) == []
    assert verify_json(EXPORTED.removesuffix("\n")) == []
    assert verify_json(EXPORTED + "\n") == []


def test_a_duplicate_key_is_refused_and_named() -> None:
    # Python keeps the last value, so the chain still verifies; another reader keeps the
    # first and would show a position nobody took.
    original = '"position": "support"'
    assert original in EXPORTED
    doubled = EXPORTED.replace(original, f'"position": "object",\n      {original}', 1)
    assert verify_record(json.loads(doubled)) == []
    problems = verify_json(doubled)
    assert len(problems) == 1
    assert "duplicate key 'position'" in problems[0]
    nested = EXPORTED.replace('"support": ', '"support": 9,\n      "support": ', 1)
    assert "duplicate key 'support'" in verify_json(nested)[0]


def test_reformatted_json_is_refused_even_when_the_chain_is_intact() -> None:
    for text in (
        json.dumps(RECORD, indent=4, ensure_ascii=False),
        json.dumps(RECORD),  # ASCII escapes, one line
        json.dumps(RECORD, indent=2, ensure_ascii=False, sort_keys=True) + "\n",  # `jq -S`
        EXPORTED.replace("\n", "\r\n"),
        EXPORTED + "\n\n",
        " " + EXPORTED,
    ):
        assert verify_record(json.loads(text)) == []
        problems = verify_json(text)
        assert len(problems) == 1, problems
        assert NOT_AS_EXPORTED in problems[0]
    assert NOT_AS_EXPORTED in verify_json("\ufeff" + EXPORTED)[0]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(constant: str) -> None:
    text = EXPORTED.replace('"quorum": 0.5', f'"quorum": {constant}', 1)
    assert text != EXPORTED
    assert verify_json(text) == [f"{constant} is not a JSON number: the bot never writes it"]


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    assert verify_json("[" * 100_000 + "]" * 100_000)[0].startswith("not valid JSON")


def test_an_expected_head_must_be_a_sha256() -> None:
    assert verify_json(EXPORTED, head=RECORD["head"].upper()) == []
    assert verify_json(EXPORTED, head=RECORD["head"][:-1]) == [
        f"the expected head {RECORD['head'][:-1]!r} is not a SHA-256 (64 hex digits)"
    ]


def test_the_minutes_give_the_command_that_checks_a_file_against_them() -> None:
    md = render_markdown(RECORD)
    assert f"`consensus-bot export --verify FILE --head {RECORD['head']}`" in md


_EDITS = st.sampled_from(["substitute", "insert", "delete"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), edit=_EDITS)
def test_any_one_character_edit_of_the_exported_text_is_refused(
    data: st.DataObject, edit: str
) -> None:
    index = data.draw(st.integers(0, len(EXPORTED) - 1), label="index")
    if edit == "delete":
        changed = EXPORTED[:index] + EXPORTED[index + 1 :]
    else:
        char = data.draw(_SUBSTITUTES, label="char")
        skip = 1 if edit == "substitute" else 0
        changed = EXPORTED[:index] + char + EXPORTED[index + skip :]
    if changed in (EXPORTED, EXPORTED.removesuffix("\n"), EXPORTED + "\n"):
        return  # no change, or only the final newline
    assert verify_json(changed)


# --------------------------------------------------------------------------- absurd times

MAX_TS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
EXTREME = st.one_of(
    st.integers(),
    st.sampled_from([-1, -(2**63), 2**63 - 1, 2**64, 10**15, -(10**15), MAX_TS, MAX_TS + 1]),
)


def test_clamp_ts_examples() -> None:
    assert clamp_ts(T0) == (T0, False)
    assert clamp_ts(0) == (0, False)
    assert clamp_ts(MAX_TS) == (MAX_TS, False)
    assert clamp_ts(-1) == (0, True)
    assert clamp_ts(MAX_TS + 1) == (MAX_TS, True)
    assert clamp_ts(10**15) == (MAX_TS, True)
    assert iso_utc(10**15) == "9999-12-31T23:59:59Z"
    assert iso_utc(-5) == "1970-01-01T00:00:00Z"
    assert iso_utc(T0) == "2026-11-23T10:00:00Z"


@given(EXTREME)
def test_iso_utc_never_raises(ms: int) -> None:
    text = iso_utc(ms)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    clamped, moved = clamp_ts(ms)
    assert 0 <= clamped <= MAX_TS
    assert moved == (clamped != ms)
    assert text == iso_utc(clamped)


@settings(max_examples=150, deadline=None)
@given(times=st.lists(EXTREME, min_size=11, max_size=11), window=st.none() | EXTREME)
def test_a_record_with_absurd_times_builds_verifies_and_renders(
    times: list[int], window: int | None
) -> None:
    req = make_request(
        created_at=times[0],
        opened_at=times[1],
        closed_at=times[2],
        deadline_at=times[3],
        decided_at=times[4],
    )
    inputs = [
        PositionInput("$a1", ALICE, Position.SUPPORT, times[5], Source.REACTION),
        PositionInput("$b1", BOB, Position.OBJECT, times[6], Source.COMMAND, "No."),
        PositionInput("$b2", BOB, Position.CONCERN, times[7], Source.COMMAND),
    ]
    objections = [
        DatedObjection(
            Objection(1, 7, BOB, "No.", ObjectionState.ADDRESSED, "Why not.", CHAIR),
            raised_at=times[8],
            disposed_at=times[9],
            event_id="$b1",
        ),
        DatedObjection(Objection(2, 7, CAROL, "Hm.", ObjectionState.OPEN), raised_at=times[10]),
    ]
    record = make_record(
        request=req,
        inputs=inputs,
        objections=objections,
        appeal_window_ms=window,
    )
    assert verify_record(record) == []
    assert verify_json(render_json(record)) == []
    assert verify_json(render_json(record), head=record["head"]) == []
    render_csv(record)
    md = render_markdown(record)
    if any(not 0 <= t <= MAX_TS for t in times[:5]):
        assert "before 1970-01-01 00:00 UTC" in md or "after 9999-12-31 23:59 UTC" in md


# --------------------------------------------------------------------------- JSON schema


def test_the_json_validates_against_the_documented_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for record in (RECORD, make_record(hums=HumAggregate("loud", "soft"))):
        errors = [e.message for e in validator.iter_errors(json.loads(render_json(record)))]
        assert errors == []
    leaky = copy.deepcopy(RECORD)
    leaky["hums"] = {"for": "loud", "against": "soft", "who": [ALICE]}
    assert list(validator.iter_errors(leaky)), "the schema must refuse per-person hums"
    assert list(validator.iter_errors(_tampered("add a field")))


def test_every_documented_entry_type_has_a_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    documented = (REPO / "docs" / "record.md").read_text(encoding="utf-8")
    kinds = {e["type"] for e in RECORD["entries"]}
    for kind in kinds:
        assert f"entry_{kind}" in schema["$defs"]
        assert f"| `{kind}` |" in documented


# --------------------------------------------------------------------------- CSV


def test_csv_has_one_row_per_position_input() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(RECORD))))
    assert len(rows) == len(INPUTS)
    assert [r["event_id"] for r in rows] == ["$a1", "$b1", "$c1", "$d1", "$c2", "$e1", "$e2"]
    dave = next(r for r in rows if r["event_id"] == "$d1")
    assert dave["retracted"] == "yes"
    assert dave["retracted_at"] == "2026-11-23T10:08:00Z"
    assert (dave["stakeholder"], dave["region"]) == ("civil-society", "americas")
    assert next(r for r in rows if r["event_id"] == "$e2")["position"] == "withdrawn"
    assert {r["retracted"] for r in rows if r["event_id"] != "$d1"} == {"no"}


def test_csv_cells_cannot_run_as_formulas() -> None:
    inputs = [
        PositionInput(
            "$x", ALICE, Position.CONCERN, T0 + 2 * MIN, Source.COMMAND, '=HYPERLINK("x")'
        )
    ]
    (row,) = csv.DictReader(io.StringIO(render_csv(make_record(inputs=inputs))))
    assert row["reason"] == '\'=HYPERLINK("x")'
    assert row["member"] == ALICE


def test_csv_cells_lose_disguising_characters_before_the_formula_check() -> None:
    reason = '\u200b\u202e=HYPERLINK("x")\x85\u061c'
    inputs = [PositionInput("$x", ALICE, Position.CONCERN, T0 + 2 * MIN, Source.COMMAND, reason)]
    (row,) = csv.DictReader(io.StringIO(render_csv(make_record(inputs=inputs))))
    assert row["reason"] == '\'=HYPERLINK("x")'


# --------------------------------------------------------------------------- Markdown


def _unescaped(markdown: str) -> str:
    """The Markdown with every backslash-escaped character replaced by a neutral one."""
    return re.sub(r"\\.", "·", markdown)


def _assert_inert(markdown: str) -> None:
    plain = _unescaped(markdown)
    for bad in ("<", "[", "](", "`javascript", "<script"):
        assert bad not in plain, bad
    assert "javascript:" not in plain.lower()
    assert "vbscript:" not in plain.lower()
    for line in plain.splitlines():
        body = re.sub(r"^(>\s?)+", "", line).lstrip()
        assert not body.startswith("#") or body.startswith(("# Minutes", "## ", "### ")), line
        assert "heading" not in body or not body.startswith("#"), line
        if line.startswith(">"):  # user text in a quote: no lists, rules or code blocks
            assert not re.match(r"^([-+*=]|\d+[.)]|`{3}|~{3})", body), line


def test_markdown_minutes_read_like_minutes() -> None:
    md = render_markdown(RECORD)
    for heading in (
        "# Minutes: participation request #7 — Jane Doe",
        "## The request",
        "### Statement",
        "## Timeline",
        "## Positions",
        "### By stakeholder group",
        "### By region",
        "### Did not take part",
        "## Objections",
        "## Sense of the room",
        "## Decision",
        "### Appeal",
        "## Hums",
        "## Verification",
    ):
        assert heading in md, heading
    assert "> I research routing security." in md
    assert "**Objection #1** by \\@bob:example.org" in md
    assert "in the rough" in md
    assert "decided: **admit**" in md
    assert "appealed until 2026-12-07 10:21 UTC (14 days after the decision)" in md
    assert RECORD["head"] in md
    assert "Not taking part is not the same as “no objection”" in md
    # Civil society has one member: participation only, no position shown.
    assert "| Civil society | 1 | 0 | — |" in md
    assert "No eligible members: Private sector" in md
    _assert_inert(md)


def test_markdown_escapes_hostile_text() -> None:
    req = make_request(
        statement=HOSTILE,
        applicant=Applicant("[evil](javascript:alert(1))", "<b>Bold</b> # name", "<i>org</i>"),
        rationale=HOSTILE,
    )
    inputs = [PositionInput("$h", ALICE, Position.OBJECT, T0 + 2 * MIN, Source.COMMAND, HOSTILE)]
    objections = [
        DatedObjection(
            Objection(2, 7, ALICE, HOSTILE, ObjectionState.ADDRESSED, HOSTILE, CHAIR),
            raised_at=T0 + 2 * MIN,
            disposed_at=T0 + 3 * MIN,
            event_id="$h",
        )
    ]
    record = make_record(
        request=req, inputs=inputs, redactions=[], objections=objections, group="<h1>G</h1>"
    )
    md = render_markdown(record)
    _assert_inert(md)
    assert "javascript\\:alert\\(1\\)" in md
    assert "\\<script\\>" in md
    assert "> \\# heading" in md
    assert "> 1\\. ordered" in md
    assert "> \\-\\-\\-" in md or "> \\---" in md
    # The verbatim text survives in the JSON, where consumers escape it themselves.
    assert record["request"]["statement"] == HOSTILE


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_md_escape_leaves_nothing_that_markdown_would_read_as_markup(text: str) -> None:
    escaped = md_escape(text)
    plain = _unescaped(escaped)
    assert "\n" not in escaped
    for ch in "[]()<>*_`#|&!":
        assert ch not in plain
    assert not re.match(r"^([-+=]|\d+[.)])", plain)
    assert "javascript:" not in plain.lower()


URLS = (
    "see https://evil.example/x, (www.evil.example/login) and HTTP://EVIL.EXAMPLE; "
    "//evil.example/y, mailto:x@evil.example, evil.com/z"
)


def test_bare_urls_in_user_text_are_not_autolinks_in_the_minutes() -> None:
    req = make_request(statement=URLS, rationale=URLS)
    inputs = [PositionInput("$u", ALICE, Position.CONCERN, T0 + 2 * MIN, Source.COMMAND, URLS)]
    md = render_markdown(make_record(request=req, inputs=inputs, objections=[]))
    plain = _unescaped(md).lower()
    for trigger in ("//", "www.", "mailto:", "evil.com"):
        assert trigger not in plain, trigger
    assert "https\\:\\/\\/evil\\.example\\/x," in md
    assert "\\(www\\.evil\\.example\\/login\\)" in md
    _assert_inert(md)


def _as_read(markdown: str) -> str:
    """What a reader sees of escaped text: every backslash escape resolved."""
    return re.sub(r"\\(.)", r"\1", markdown)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["https://", "www.", "//", "evil", ".com", "/x", ":", "(", " ", "\n"])
        | st.text(max_size=5)
    ).map("".join)
)
def test_md_escape_leaves_no_autolink_and_reads_as_typed(text: str) -> None:
    escaped = md_escape(text)
    plain = _unescaped(escaped).lower()
    for trigger in ("//", "www.", "mailto:"):
        assert trigger not in plain, trigger
    assert not re.search(r"(?:^|[^\w.:/@-])[^\W_][\w-]*\.[^\W\d_]{2}", plain)  # a host name
    lines = sanitize(text.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
    assert _as_read(escaped) == " ".join(line.strip() for line in lines).strip()


# --------------------------------------------------------------------------- storage


async def test_export_through_a_real_database(tmp_path: Path) -> None:
    db = Database(tmp_path / "consensus.db")
    await db.open()
    try:
        async with db.transaction() as tx:
            repo = Repository(tx)
            for v in VOTERS:
                await repo.upsert_member("main", v.user_id, v.stakeholder, v.region, T0, CHAIR)
            rid = await repo.create_request(
                "main",
                Applicant("@jane:example.org", "Jane Doe", "Example Labs", "academia", "africa"),
                "I research routing security.",
                CHAIR,
                "$filed",
                False,
                T0 + 14 * DAY,
                T0,
            )
            await repo.update_request(
                rid, state=RequestState.OPEN, room_id="!r:example.org", opened_at=T0 + MIN
            )
            assert await repo.snapshot_eligible(rid) == 5
            for item in INPUTS:
                assert await repo.add_input(rid, item, item.ts + 1)
            await repo.add_redaction(
                Redaction("$r1", "$d1", "!r:example.org", DAVE, T0 + 8 * MIN, T0 + 8 * MIN)
            )
            oid = await repo.add_objection(rid, BOB, "$b1", "No track record yet.", T0 + 3 * MIN)
            await repo.dispose_objection(
                oid, ObjectionState.ADDRESSED, CHAIR, "Not required.", T0 + 10 * MIN
            )
            await repo.deactivate_member("main", ERIN, T0 + 15 * MIN)
            await repo.update_request(
                rid,
                state=RequestState.DRAFTED,
                closed_at=T0 + 20 * MIN,
                proposal=Proposal.ROUGH_CONSENSUS_ADMIT,
            )
            await repo.update_request(
                rid,
                state=RequestState.DECIDED,
                outcome=Outcome.ADMIT,
                decided_by=CHAIR,
                rationale="Confirmed the draft.",
                decided_at=T0 + 21 * MIN,
            )
            record = await export_record(
                repo, rid, group_name="Test Group", quorum=0.5, appeal_window_ms=14 * DAY
            )
            again = await export_record(
                repo, rid, group_name="Test Group", quorum=0.5, appeal_window_ms=14 * DAY
            )
            with pytest.raises(ExportError, match="no request #99"):
                await export_record(repo, 99, group_name="Test Group", quorum=0.5)
    finally:
        await db.close()

    assert verify_record(record) == []
    assert record == again
    types = [e["type"] for e in record["entries"]]
    assert types.count("position") == len(INPUTS)
    for kind in ("filed", "opened", "retracted", "objection_raised", "objection_disposed"):
        assert kind in types
    assert types[-3:] == ["closed", "decided", "snapshot"]
    raised = next(e for e in record["entries"] if e["type"] == "objection_raised")
    assert (raised["ts"], raised["event_id"]) == (T0 + 3 * MIN, "$b1")
    disposed = next(e for e in record["entries"] if e["type"] == "objection_disposed")
    assert disposed["ts"] == T0 + 10 * MIN
    erin = next(e for e in record["eligible"] if e["user_id"] == ERIN)
    assert erin["counted"] is False
    assert record["sense"]["eligible"] == 4

    assert verify_json(render(record, "json")) == []
    assert len(list(csv.DictReader(io.StringIO(render(record, "csv"))))) == len(INPUTS)
    assert record["head"] in render(record, "md")
    assert filename(record, "md") == f"request-{rid}-record.md"
