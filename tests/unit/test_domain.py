"""The pure domain: positions, durations, the ledger, the draft sense of the room, the lifecycle.

No I/O at all. Hypothesis properties check the ledger's promises (order of arrival does not
matter, a redaction undoes exactly its reaction) and that `determine` is total.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.counting import Ballot, Redaction, count
from bot.domain.durations import (
    MAX_DURATION_MS,
    DurationError,
    format_duration,
    format_utc,
    parse_duration,
    parse_when,
)
from bot.domain.ledger import PositionInput, Source, count_positions
from bot.domain.lifecycle import (
    Action,
    LifecycleError,
    Outcome,
    RequestState,
    outcome_for,
    transition,
)
from bot.domain.objections import DISPOSITIONS, Objection, ObjectionState
from bot.domain.positions import (
    DEFAULT_REACTIONS,
    LEGEND,
    POSITION_ORDER,
    Position,
    normalize_emoji,
    position_for_reaction,
)
from bot.domain.request import Applicant
from bot.domain.sense import (
    MIN_GROUP_FOR_POSITIONS,
    Proposal,
    Voter,
    determine,
)
from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NOW = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)


# ---- positions and reactions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("👍🏽", "👍"),  # skin tone U+1F3FD
        ("👍🏻", "👍"),  # U+1F3FB, the first skin tone
        ("👍🏿", "👍"),  # U+1F3FF, the last skin tone
        ("✋️", "✋"),  # VS16 U+FE0F
        ("✋︎", "✋"),  # VS15 U+FE0E
        ("✋🏼️", "✋"),  # skin tone and variation selector together
        (" 👌 ", "👌"),
        ("👍", "👍"),
        ("", ""),
    ],
)
def test_normalize_emoji_strips_variation_selectors_and_skin_tones(key: str, expected: str) -> None:
    assert normalize_emoji(key) == expected


def test_normalize_emoji_keeps_other_characters() -> None:
    # U+1F400 (rat) is just past the skin-tone range and must survive.
    assert normalize_emoji("\U0001f400") == "\U0001f400"
    assert normalize_emoji("🎉") == "🎉"


@given(st.text())
def test_normalize_emoji_is_idempotent_and_removes_modifiers(text: str) -> None:
    once = normalize_emoji(text)
    assert normalize_emoji(once) == once
    assert not any(ord(c) in (0xFE0E, 0xFE0F) or 0x1F3FB <= ord(c) <= 0x1F3FF for c in once)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("👍", Position.SUPPORT),
        ("👍🏽", Position.SUPPORT),
        ("✅", Position.SUPPORT),
        ("✅️", Position.SUPPORT),
        ("👌", Position.NO_OBJECTION),
        ("👌🏿", Position.NO_OBJECTION),
        ("🤔", Position.CONCERN),
        ("👎", Position.OBJECT),
        ("👎🏻", Position.OBJECT),
        ("✋", Position.OBJECT),
        ("✋️", Position.OBJECT),
        ("🤐", Position.ABSTAIN),
        ("🎉", None),
        ("+1", None),
        ("", None),
    ],
)
def test_position_for_reaction(key: str, expected: Position | None) -> None:
    assert position_for_reaction(key) is expected


def test_recuse_has_no_reaction_and_legend_covers_every_other_position() -> None:
    assert Position.RECUSE not in DEFAULT_REACTIONS.values()
    assert {p for _, p in LEGEND} == set(Position) - {Position.RECUSE}
    for emoji, position in LEGEND:
        assert position_for_reaction(emoji) is position


def test_position_for_reaction_with_a_custom_table() -> None:
    table = {"⭐": Position.SUPPORT}
    assert position_for_reaction("⭐️", table) is Position.SUPPORT
    assert position_for_reaction("👍", table) is None


def test_only_object_blocks_and_labels_read_well() -> None:
    assert [p for p in Position if p.blocking] == [Position.OBJECT]
    assert Position.NO_OBJECTION.label == "no objection"
    assert POSITION_ORDER[0] is Position.SUPPORT
    assert set(POSITION_ORDER) == set(Position)


def test_objection_states() -> None:
    assert [s for s in ObjectionState if s.is_open] == [ObjectionState.OPEN]
    assert set(DISPOSITIONS) == set(ObjectionState) - {ObjectionState.OPEN}
    bare = Objection(1, 1, "@a:x", None, ObjectionState.OPEN)
    blank = Objection(1, 1, "@a:x", "   ", ObjectionState.OPEN)
    given_ = Objection(1, 1, "@a:x", "No link to our work.", ObjectionState.OPEN)
    assert bare.needs_reason
    assert blank.needs_reason
    assert not given_.needs_reason


def test_applicant_user_id_and_display() -> None:
    assert Applicant("@erin:x").user_id == "@erin:x"
    assert Applicant("Erin Example").user_id is None
    assert Applicant("@erin:x", name="Erin").display == "Erin (@erin:x)"
    assert Applicant("@erin:x").display == "@erin:x"


# ---- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("90s", 90 * SECOND),
        ("45m", 45 * MINUTE),
        ("12h", 12 * HOUR),
        ("14d", 14 * DAY),
        ("2w", 14 * DAY),
        ("1d12h", DAY + 12 * HOUR),
        ("1h30m15s", HOUR + 30 * MINUTE + 15 * SECOND),
        (" 5M ", 5 * MINUTE),
        ("3650d", MAX_DURATION_MS),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    "text",
    ["", "   ", "0s", "0d0h", "5", "m", "-5m", "1.5h", "1d 2h", "abc", "5y", "99999999d", "3651d"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert str(caught.value)  # fit to show a user


@given(st.integers(1, 10_000), st.sampled_from(["s", "m", "h", "d"]))
def test_parse_duration_of_one_unit(n: int, unit: str) -> None:
    factor = {"s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY}[unit]
    expected = n * factor
    if expected > MAX_DURATION_MS:
        with pytest.raises(DurationError):
            parse_duration(f"{n}{unit}")
    else:
        assert parse_duration(f"{n}{unit}") == expected


@given(st.text(max_size=40))
def test_parse_duration_and_parse_when_raise_only_duration_errors(text: str) -> None:
    try:
        ms = parse_duration(text)
    except DurationError:
        pass
    else:
        assert 0 < ms <= MAX_DURATION_MS
    with contextlib.suppress(DurationError):
        parse_when(text, NOW)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (-5_000, "0s"),
        (12 * SECOND, "12s"),
        (90 * SECOND, "1m 30s"),
        (45 * MINUTE, "45m"),
        (HOUR + 5 * SECOND, "1h 5s"),
        (3 * DAY + 4 * HOUR + 5 * MINUTE, "3d 4h"),
        (DAY + 5 * SECOND, "1d"),
        (14 * DAY, "14d"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


def test_parse_when_duration_from_now() -> None:
    assert parse_when("2h", NOW) == NOW + 2 * HOUR
    assert parse_when("14d", NOW) == NOW + 14 * DAY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T12:00Z", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        ("2026-12-01T12:00:00+00:00", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        ("2026-12-01T12:00:00+02:00", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
        ("2026-12-01T12:00:00-05:30", datetime(2026, 12, 1, 17, 30, tzinfo=UTC)),
        ("2026-12-01T12:00", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),  # no offset: UTC
        ("2026-12-01 12:00", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_parse_when_iso(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW) == int(expected.timestamp() * 1000)


@pytest.mark.parametrize("text", ["", "tomorrow", "next week", "2026-13-01", "12:00:00Z", "1d 2h"])
def test_parse_when_rejects(text: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_when(text, NOW)
    assert "ISO 8601" in str(caught.value)


def test_format_utc() -> None:
    moment = int(datetime(2026, 11, 23, 15, 44, 59, tzinfo=UTC).timestamp() * 1000)
    assert format_utc(moment) == "2026-11-23 15:44 UTC"


# ---- the ledger, through the one counting rule ---------------------------------------------

LEDGER_ROOM = "!r:x"


def current_positions(inputs: list[PositionInput], redacted: set[str]) -> dict[str, PositionInput]:
    """The counting rule over an open ballot, every author eligible; `redacted` are inputs
    their own author redacted in their room (unknown IDs are ignored)."""
    by_id = {i.event_id: i for i in inputs}
    redactions = [
        Redaction(f"$r{e}", e, LEDGER_ROOM, by_id[e].member, 0, 0) for e in redacted if e in by_id
    ]
    voters = [Voter(m, "", "") for m in sorted({i.member for i in inputs})]
    return dict(count(Ballot(LEDGER_ROOM, None), voters, {}, inputs, redactions).current)


def current_position(inputs: list[PositionInput], redacted: set[str]) -> PositionInput | None:
    """One member's current position input."""
    found = current_positions(inputs, redacted)
    return next(iter(found.values())) if found else None


def inp(
    event_id: str, member: str, position: Position | None, ts: int, reason: str | None = None
) -> PositionInput:
    return PositionInput(event_id, member, position, ts, Source.REACTION, reason)


def test_latest_input_wins_and_ties_break_on_event_id() -> None:
    a = inp("$a", "@m:x", Position.SUPPORT, 10)
    b = inp("$b", "@m:x", Position.CONCERN, 20)
    c = inp("$c", "@m:x", Position.OBJECT, 20)  # same ts as b, larger event ID
    assert current_position([a, b, c], set()) == c
    assert current_position([c, b, a], set()) == c
    assert current_position([a, b, c], {"$c"}) == b
    assert current_position([a, b, c], {"$b", "$c"}) == a
    assert current_position([a, b, c], {"$a", "$b", "$c"}) is None


def test_a_withdrawal_is_an_input_without_position() -> None:
    support = inp("$a", "@m:x", Position.SUPPORT, 10)
    withdraw = PositionInput("$w", "@m:x", None, 20, Source.COMMAND)
    assert current_position([support, withdraw], set()) is None
    # Redacting the withdrawal brings the support back.
    assert current_position([support, withdraw], {"$w"}) == support


def test_current_positions_over_many_members() -> None:
    inputs = [
        inp("$1", "@a:x", Position.SUPPORT, 1),
        inp("$2", "@b:x", Position.OBJECT, 2),
        inp("$3", "@a:x", Position.CONCERN, 3),
        inp("$4", "@c:x", None, 4),
    ]
    result = current_positions(inputs, {"$3"})
    assert {m: i.position for m, i in result.items()} == {
        "@a:x": Position.SUPPORT,
        "@b:x": Position.OBJECT,
    }


def test_count_positions_has_every_position() -> None:
    counts = count_positions({"@a:x": Position.SUPPORT, "@b:x": Position.SUPPORT})
    assert set(counts) == set(Position)
    assert counts[Position.SUPPORT] == 2
    assert sum(counts.values()) == 2


MEMBERS = ("@a:x", "@b:x", "@c:x", "@d:x")
positions_or_none = st.one_of(st.none(), st.sampled_from(list(Position)))


@st.composite
def ledgers(draw: st.DrawFn, max_size: int = 12) -> tuple[list[PositionInput], set[str]]:
    """Inputs with distinct event IDs, few members and a small ts range (so ties happen),
    and a set of redacted event IDs (some of them unknown)."""
    ids = draw(st.lists(st.integers(0, 99), unique=True, max_size=max_size))
    inputs = [
        PositionInput(
            f"$e{n:02d}",
            draw(st.sampled_from(MEMBERS)),
            draw(positions_or_none),
            draw(st.integers(0, 5)),
            draw(st.sampled_from(list(Source))),
            draw(st.none() | st.sampled_from(["", "why", "because"])),
        )
        for n in ids
    ]
    known = [i.event_id for i in inputs]
    redacted = set(draw(st.lists(st.sampled_from(known), unique=True))) if known else set()
    redacted |= set(draw(st.lists(st.sampled_from(["$x1", "$x2"]), unique=True)))
    return inputs, redacted


@given(ledgers(), st.data())
def test_current_positions_do_not_depend_on_arrival_order(
    ledger: tuple[list[PositionInput], set[str]], data: st.DataObject
) -> None:
    inputs, redacted = ledger
    shuffled = data.draw(st.permutations(inputs))
    assert current_positions(shuffled, redacted) == current_positions(inputs, redacted)
    assert current_positions(list(reversed(inputs)), redacted) == current_positions(
        inputs, redacted
    )


@given(ledgers(), positions_or_none, st.sampled_from(MEMBERS), st.integers(0, 5), st.data())
def test_a_redaction_undoes_exactly_its_reaction(
    ledger: tuple[list[PositionInput], set[str]],
    position: Position | None,
    member: str,
    ts: int,
    data: st.DataObject,
) -> None:
    inputs, redacted = ledger
    extra = PositionInput("$extra", member, position, ts, Source.REACTION)
    at = data.draw(st.integers(0, len(inputs)))
    with_extra = [*inputs[:at], extra, *inputs[at:]]
    assert current_positions(with_extra, redacted | {extra.event_id}) == current_positions(
        inputs, redacted
    )


@given(ledgers(), st.sampled_from(MEMBERS), st.sampled_from(list(Position)))
def test_a_later_input_becomes_the_current_position(
    ledger: tuple[list[PositionInput], set[str]], member: str, position: Position
) -> None:
    inputs, redacted = ledger
    later = PositionInput("$later", member, position, 100, Source.COMMAND)
    result = current_positions([*inputs, later], redacted)
    assert result[member] == later
    before = current_positions(inputs, redacted)
    assert {m: i for m, i in result.items() if m != member} == {
        m: i for m, i in before.items() if m != member
    }


@given(ledgers())
def test_count_positions_sums_to_members_with_a_position(
    ledger: tuple[list[PositionInput], set[str]],
) -> None:
    inputs, redacted = ledger
    current = current_positions(inputs, redacted)
    assert all(i.position is not None for i in current.values())
    assert all(i.event_id not in redacted for i in current.values())
    counts = count_positions({m: i.position for m, i in current.items() if i.position})
    assert set(counts) == set(Position)
    assert sum(counts.values()) == len(current)
    assert all(n >= 0 for n in counts.values())


# ---- determination ------------------------------------------------------------------------


def voter(user_id: str, stakeholder: str = "academia", region: str = "europe") -> Voter:
    return Voter(user_id, stakeholder, region)


def objection(
    oid: int, member: str, state: ObjectionState = ObjectionState.OPEN, reason: str = "why"
) -> Objection:
    return Objection(oid, 1, member, reason, state)


def test_one_open_objection_blocks_however_many_support() -> None:
    voters = [voter(f"@s{i}:x") for i in range(100)] + [voter("@objector:x")]
    positions = {f"@s{i}:x": Position.SUPPORT for i in range(100)}
    positions["@objector:x"] = Position.OBJECT
    blocked = objection(1, "@objector:x")
    sense = determine(voters, positions, [blocked], quorum=0.5)
    assert sense.proposal is Proposal.NO_CONSENSUS_YET
    assert sense.open_objections == (blocked,)
    assert sense.in_the_rough == ()
    assert sense.counts[Position.SUPPORT] == 100
    assert sense.counts[Position.OBJECT] == 1


def test_an_addressed_objection_leaves_the_objector_in_the_rough() -> None:
    voters = [voter(f"@s{i}:x") for i in range(100)] + [voter("@objector:x")]
    positions = {f"@s{i}:x": Position.SUPPORT for i in range(100)}
    positions["@objector:x"] = Position.OBJECT
    addressed = objection(1, "@objector:x", ObjectionState.ADDRESSED)
    sense = determine(voters, positions, [addressed], quorum=0.5)
    assert sense.proposal is Proposal.ROUGH_CONSENSUS_ADMIT
    assert sense.in_the_rough == ("@objector:x",)
    assert sense.open_objections == ()


@pytest.mark.parametrize(
    "state", [ObjectionState.ACCOMMODATED, ObjectionState.DUPLICATE, ObjectionState.WITHDRAWN]
)
def test_other_dispositions_unblock_without_anyone_in_the_rough(state: ObjectionState) -> None:
    voters = [voter("@a:x"), voter("@b:x"), voter("@c:x")]
    positions = {"@a:x": Position.SUPPORT, "@b:x": Position.SUPPORT, "@c:x": Position.OBJECT}
    sense = determine(voters, positions, [objection(1, "@c:x", state)], quorum=0.5)
    assert sense.proposal is Proposal.ROUGH_CONSENSUS_ADMIT
    assert sense.in_the_rough == ()


def test_open_objection_wins_over_insufficient_participation() -> None:
    voters = [voter(f"@m{i}:x") for i in range(10)]
    sense = determine(voters, {"@m0:x": Position.OBJECT}, [objection(1, "@m0:x")], quorum=0.5)
    assert sense.proposal is Proposal.NO_CONSENSUS_YET


def test_in_the_rough_only_named_with_an_admit_proposal() -> None:
    voters = [voter("@a:x"), voter("@b:x"), voter("@c:x"), voter("@d:x")]
    positions = {"@a:x": Position.OBJECT}  # 1 of 4: below quorum
    addressed = objection(1, "@a:x", ObjectionState.ADDRESSED)
    sense = determine(voters, positions, [addressed], quorum=0.5)
    assert sense.proposal is Proposal.INSUFFICIENT_PARTICIPATION
    assert sense.in_the_rough == ()


@pytest.mark.parametrize(
    ("taking_part", "quorum", "expected"),
    [
        (1, 0.5, Proposal.INSUFFICIENT_PARTICIPATION),
        (2, 0.5, Proposal.ROUGH_CONSENSUS_ADMIT),  # exactly the quorum is enough
        (3, 0.8, Proposal.INSUFFICIENT_PARTICIPATION),
        (4, 1.0, Proposal.ROUGH_CONSENSUS_ADMIT),
        (0, 0.0, Proposal.NO_CONSENSUS),  # quorum 0: nobody took part, nothing outweighs
    ],
)
def test_quorum(taking_part: int, quorum: float, expected: Proposal) -> None:
    voters = [voter(f"@m{i}:x") for i in range(4)]
    positions = {f"@m{i}:x": Position.SUPPORT for i in range(taking_part)}
    sense = determine(voters, positions, [], quorum=quorum)
    assert sense.proposal is expected
    assert sense.participated == taking_part
    assert sense.eligible == 4
    assert sense.participation == taking_part / 4


def test_nobody_eligible_is_insufficient_participation() -> None:
    sense = determine([], {"@stranger:x": Position.SUPPORT}, [], quorum=0.0)
    assert sense.proposal is Proposal.INSUFFICIENT_PARTICIPATION
    assert sense.eligible == 0
    assert sense.participated == 0
    assert sense.participation == 0.0


@pytest.mark.parametrize(
    ("support", "no_objection", "concern", "abstain", "expected"),
    [
        (2, 0, 1, 0, Proposal.ROUGH_CONSENSUS_ADMIT),  # twice as many: clearly outweighs
        (1, 1, 1, 0, Proposal.ROUGH_CONSENSUS_ADMIT),  # no-objection counts in favour
        (1, 0, 1, 0, Proposal.NO_CONSENSUS),
        (3, 0, 2, 0, Proposal.NO_CONSENSUS),
        (0, 0, 2, 0, Proposal.NO_CONSENSUS),
        (0, 0, 0, 3, Proposal.NO_CONSENSUS),  # abstentions alone are not consensus
        (0, 1, 0, 2, Proposal.ROUGH_CONSENSUS_ADMIT),
    ],
)
def test_concerns_must_be_clearly_outweighed(
    support: int, no_objection: int, concern: int, abstain: int, expected: Proposal
) -> None:
    positions: dict[str, Position] = {}
    for position, n in (
        (Position.SUPPORT, support),
        (Position.NO_OBJECTION, no_objection),
        (Position.CONCERN, concern),
        (Position.ABSTAIN, abstain),
    ):
        for i in range(n):
            positions[f"@{position.value}{i}:x"] = position
    voters = [voter(m) for m in positions]
    assert determine(voters, positions, [], quorum=0.5).proposal is expected


def test_recusal_lowers_the_eligible_count() -> None:
    voters = [voter(f"@m{i}:x") for i in range(4)]
    positions = {
        "@m0:x": Position.SUPPORT,
        "@m1:x": Position.SUPPORT,
        "@m2:x": Position.RECUSE,
    }
    sense = determine(voters, positions, [], quorum=0.6)
    assert sense.eligible == 3
    assert sense.participated == 2
    assert sense.recused == ("@m2:x",)
    assert sense.counts[Position.RECUSE] == 1
    assert "@m2:x" not in sense.did_not_take_part
    assert sense.did_not_take_part == ("@m3:x",)
    assert sense.proposal is Proposal.ROUGH_CONSENSUS_ADMIT  # 2/3 >= 0.6
    # Without the recusal the same two supporters are only 2 of 4.
    del positions["@m2:x"]
    assert determine(voters, positions, [], quorum=0.6).proposal is (
        Proposal.INSUFFICIENT_PARTICIPATION
    )


def test_did_not_take_part_is_kept_apart_from_no_objection() -> None:
    voters = [voter("@a:x"), voter("@b:x"), voter("@c:x")]
    positions = {"@a:x": Position.NO_OBJECTION, "@b:x": Position.SUPPORT}
    sense = determine(voters, positions, [], quorum=0.5)
    assert sense.did_not_take_part == ("@c:x",)
    assert sense.counts[Position.NO_OBJECTION] == 1
    assert "@a:x" not in sense.did_not_take_part


def test_positions_of_non_voters_are_ignored() -> None:
    voters = [voter("@a:x"), voter("@b:x")]
    positions = {"@a:x": Position.SUPPORT, "@outsider:x": Position.OBJECT}
    sense = determine(voters, positions, [], quorum=0.5)
    assert sense.counts[Position.OBJECT] == 0
    assert sense.participated == 1
    assert sense.proposal is Proposal.ROUGH_CONSENSUS_ADMIT


def test_groups_under_three_show_participation_but_not_positions() -> None:
    assert MIN_GROUP_FOR_POSITIONS == 3
    voters = [
        voter("@ac1:x", "academia", "europe"),
        voter("@ac2:x", "academia", "europe"),
        voter("@cs1:x", "civil-society", "africa"),
        voter("@cs2:x", "civil-society", "africa"),
        voter("@cs3:x", "civil-society", "africa"),
    ]
    positions = {
        "@ac1:x": Position.OBJECT,
        "@cs1:x": Position.SUPPORT,
        "@cs2:x": Position.CONCERN,
    }
    sense = determine(voters, positions, [], quorum=0.5)
    by_group = {g.name: g for g in sense.by_stakeholder}
    assert [g.name for g in sense.by_stakeholder] == list(STAKEHOLDER_GROUPS)
    academia = by_group["academia"]
    assert (academia.members, academia.participated, academia.counts) == (2, 1, None)
    civil = by_group["civil-society"]
    assert (civil.members, civil.participated) == (3, 2)
    assert civil.counts is not None
    assert civil.counts[Position.SUPPORT] == 1
    assert civil.counts[Position.CONCERN] == 1
    assert sum(civil.counts.values()) == 2
    by_region = {g.name: g for g in sense.by_region}
    assert [g.name for g in sense.by_region] == list(REGIONS)
    assert by_region["europe"].counts is None
    assert by_region["africa"].counts is not None


def test_silent_stakeholder_groups() -> None:
    voters = [
        voter("@ac1:x", "academia"),
        voter("@ac2:x", "academia"),
        voter("@ac3:x", "academia"),
        voter("@cs1:x", "civil-society"),
        voter("@gov1:x", "government"),
    ]
    positions = {"@cs1:x": Position.SUPPORT, "@gov1:x": Position.RECUSE}
    sense = determine(voters, positions, [], quorum=0.0)
    assert "academia" in sense.silent_stakeholder_groups
    assert "civil-society" not in sense.silent_stakeholder_groups
    # Groups without eligible members are reported apart from silent ones.
    assert "private-sector" not in sense.silent_stakeholder_groups
    assert "private-sector" in sense.unrepresented_stakeholder_groups
    assert "academia" not in sense.unrepresented_stakeholder_groups
    by_group = {g.name: g for g in sense.by_stakeholder}
    assert by_group["academia"].silent
    assert not by_group["civil-society"].silent
    # A recused member leaves their group's count.
    assert by_group["government"].members == 0


voters_st = st.lists(
    st.builds(
        Voter,
        st.sampled_from([f"@v{i}:x" for i in range(8)]),
        st.sampled_from([*STAKEHOLDER_GROUPS, "", "unknown-group"]),
        st.sampled_from([*REGIONS, "", "atlantis"]),
    ),
    unique_by=lambda v: v.user_id,
    max_size=8,
)
objections_st = st.lists(
    st.builds(
        Objection,
        st.integers(1, 50),
        st.just(1),
        st.sampled_from([f"@v{i}:x" for i in range(10)]),
        st.none() | st.text(max_size=5),
        st.sampled_from(list(ObjectionState)),
    ),
    max_size=5,
)


@settings(max_examples=200)
@given(
    voters_st,
    st.dictionaries(
        st.sampled_from([f"@v{i}:x" for i in range(10)]), st.sampled_from(list(Position))
    ),
    objections_st,
    st.floats(0.0, 1.0),
)
def test_determine_is_total_and_consistent(
    voters: list[Voter],
    positions: dict[str, Position],
    objections: list[Objection],
    quorum: float,
) -> None:
    sense = determine(voters, positions, objections, quorum)
    assert 0 <= sense.participated <= sense.eligible <= len(voters)
    assert sense.eligible == len(voters) - len(sense.recused)
    assert sense.participated + len(sense.did_not_take_part) == sense.eligible
    voter_ids = {v.user_id for v in voters}
    assert sum(sense.counts.values()) == sum(1 for m in positions if m in voter_ids)
    assert set(sense.counts) == set(Position)
    assert sense.open_objections == tuple(o for o in objections if o.state.is_open)
    if sense.open_objections:
        assert sense.proposal is Proposal.NO_CONSENSUS_YET
    else:
        assert sense.proposal is not Proposal.NO_CONSENSUS_YET
    if sense.proposal is not Proposal.ROUGH_CONSENSUS_ADMIT:
        assert sense.in_the_rough == ()
    for group in (*sense.by_stakeholder, *sense.by_region):
        assert 0 <= group.participated <= group.members
        assert (group.counts is None) == (group.members < MIN_GROUP_FOR_POSITIONS)
        if group.counts is not None:
            assert sum(group.counts.values()) == group.participated
    assert 0.0 <= sense.participation <= 1.0


# ---- lifecycle ----------------------------------------------------------------------------

S, A = RequestState, Action
ALLOWED = {
    (S.PENDING, A.ROOM_READY): S.OPEN,
    (S.PENDING, A.BLOCK): S.BLOCKED,
    (S.OPEN, A.CLOSE): S.DRAFTED,
    (S.OPEN, A.DECIDE): S.DECIDED,
    (S.OPEN, A.BLOCK): S.BLOCKED,
    (S.DRAFTED, A.CONFIRM): S.DECIDED,
    (S.DRAFTED, A.DECIDE): S.DECIDED,
    (S.DRAFTED, A.REOPEN): S.OPEN,
    (S.DRAFTED, A.BLOCK): S.BLOCKED,
    (S.BLOCKED, A.DECIDE): S.DECIDED,
    (S.DECIDED, A.REOPEN): S.OPEN,
    # An application waits for a chair; anything undecided can be cancelled.
    (S.TRIAGE, A.ACCEPT): S.PENDING,
    (S.TRIAGE, A.CANCEL): S.CANCELLED,
    (S.PENDING, A.CANCEL): S.CANCELLED,
    (S.OPEN, A.CANCEL): S.CANCELLED,
    (S.DRAFTED, A.CANCEL): S.CANCELLED,
    (S.BLOCKED, A.CANCEL): S.CANCELLED,
}


@pytest.mark.parametrize("state", list(RequestState))
@pytest.mark.parametrize("action", list(Action))
def test_transitions(state: RequestState, action: Action) -> None:
    expected = ALLOWED.get((state, action))
    if expected is not None:
        assert transition(state, action) is expected
    else:
        with pytest.raises(LifecycleError) as caught:
            transition(state, action)
        assert str(caught.value)


def test_only_a_chairs_decision_or_cancellation_leaves_blocked() -> None:
    for action in Action:
        if action is Action.DECIDE:
            assert transition(RequestState.BLOCKED, action) is RequestState.DECIDED
            continue
        if action is Action.CANCEL:
            assert transition(RequestState.BLOCKED, action) is RequestState.CANCELLED
            continue
        with pytest.raises(LifecycleError):
            transition(RequestState.BLOCKED, action)


@pytest.mark.parametrize(
    ("proposal", "outcome"),
    [
        (Proposal.ROUGH_CONSENSUS_ADMIT, Outcome.ADMIT),
        (Proposal.NO_CONSENSUS, Outcome.NO_CONSENSUS),
        (Proposal.INSUFFICIENT_PARTICIPATION, Outcome.NO_CONSENSUS),
    ],
)
def test_outcome_for(proposal: Proposal, outcome: Outcome) -> None:
    assert outcome_for(proposal) is outcome


def test_outcome_for_refuses_open_objections() -> None:
    with pytest.raises(LifecycleError, match="objections are still open"):
        outcome_for(Proposal.NO_CONSENSUS_YET)


def test_proposals_have_labels() -> None:
    assert all(p.label for p in Proposal)
