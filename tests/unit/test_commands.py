"""The command table, parser and help texts (pure; no Matrix, no database)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.mxid import is_user_id
from bot.domain.positions import Position
from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS
from commands import (
    COMMAND_GROUPS,
    COMMANDS,
    COMMANDS_BY_NAME,
    MAX_COMMAND_CHARS,
    TABLE,
    Applicant,
    Choice,
    CommandSpec,
    ConversionError,
    DurationArg,
    Executor,
    ParsedCommand,
    ParseFailure,
    Place,
    Positional,
    PositiveInt,
    Rest,
    Role,
    Section,
    UserId,
    WhenArg,
    Word,
    find_command,
    parse,
    reference_markdown,
    render_command_help,
    render_help,
    render_topic_help,
    usage,
)
from commands import table as table_module
from commands.converters import MAX_AHEAD_DAYS, MAX_AHEAD_MS

P = "!cb"
NOW = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
DAY = 86_400_000


def ok(body: str) -> ParsedCommand:
    result = parse(body, P, NOW)
    assert isinstance(result, ParsedCommand), result
    return result


def failure(body: str) -> ParseFailure:
    result = parse(body, P, NOW)
    assert isinstance(result, ParseFailure), result
    return result


# ---- the table ---------------------------------------------------------------------------

EXAMPLES = [(spec.name, example) for spec in COMMANDS for example in spec.examples]


@pytest.mark.parametrize(("name", "example"), EXAMPLES)
def test_every_example_parses_to_its_command(name: str, example: str) -> None:
    parsed = ok(f"{P} {example}")
    assert parsed.name == name
    assert set(parsed.args) == {p.name for p in parsed.spec.params}


def test_every_command_has_summary_examples_and_a_sane_declaration() -> None:
    for spec in COMMANDS:
        assert spec.summary.strip()
        assert spec.summary.endswith(".")
        assert spec.examples, spec.name
        assert spec.places
        for param in spec.params:
            assert param.help.strip(), (spec.name, param.name)


def test_spec_table_covers_the_product_contract() -> None:
    expected = {
        "help", "request", "apply", "support", "no-objection", "concern", "object", "abstain",
        "recuse", "withdraw", "hum", "status", "list", "members", "objections", "dispose",
        "deadline", "extend", "close", "confirm", "decide", "reopen", "remind", "digest",
        "member add", "member remove", "export", "triage", "accept", "reject", "cancel",
        "contest", "appeal", "appeal-answer", "affirm", "ask", "answer", "mine", "edit",
        "language",  # issue #24: each member's own language for direct messages
        "group",  # issue #26: the group a direct chat is about, in a bot of several
    }  # fmt: skip
    assert {spec.name for spec in COMMANDS} == expected
    assert len(COMMANDS) == len(expected)


def test_position_commands_match_the_domain_positions() -> None:
    positions = {spec.name for spec in COMMANDS if spec.section is Section.POSITIONS}
    assert {p.value for p in Position} <= positions


def test_roles_and_places_follow_the_spec() -> None:
    def spec(name: str) -> CommandSpec:
        found = find_command(name)
        assert found is not None
        return found

    for name in ("support", "no-objection", "concern", "object", "abstain", "recuse"):
        assert spec(name).role is Role.MEMBER
        assert spec(name).places == {Place.REQUEST, Place.DM}
    assert spec("hum").places == {Place.DM}
    assert spec("apply").places == {Place.DM}
    assert spec("apply").role is Role.ANYONE
    assert spec("request").places == {Place.MAIN, Place.DM}
    assert spec("request").role is Role.MEMBER_OR_CHAIR
    for name in ("dispose", "deadline", "extend", "close", "confirm", "decide", "reopen"):
        assert spec(name).role is Role.CHAIR
        assert spec(name).places == {Place.REQUEST}
    assert spec("member add").role is Role.CHAIR
    assert spec("status").places == set(Place)


def test_names_and_aliases_resolve() -> None:
    for spec in COMMANDS:
        assert COMMANDS_BY_NAME[spec.name] is spec
        for alias in spec.aliases:
            assert COMMANDS_BY_NAME[alias] is spec
    assert find_command("  Member   ADD ") is COMMANDS_BY_NAME["member add"]
    assert find_command("nope") is None
    assert set(COMMAND_GROUPS) == {"member"}


def test_spec_rejects_declarations_the_parser_cannot_honour() -> None:
    word = Positional("x", Word(), "x")
    with pytest.raises(ValueError, match="after free text"):
        CommandSpec("bad", "Bad.", (Rest("r", "r"), word), Role.ANYONE, frozenset(Place))
    with pytest.raises(ValueError, match="twice"):
        CommandSpec("bad", "Bad.", (word, word), Role.ANYONE, frozenset(Place))
    with pytest.raises(ValueError, match="lower-case"):
        CommandSpec("Bad", "Bad.", (), Role.ANYONE, frozenset(Place))
    optional = Positional("y", Word(), "y", required=False)
    with pytest.raises(ValueError, match="required"):
        CommandSpec("bad", "Bad.", (optional, word), Role.ANYONE, frozenset(Place))


# ---- addressing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", ["!cbx", "!cbx support", "cb support", "hello !cb support", "!CB support", "", "  "]
)
def test_bodies_not_addressed_to_the_bot_are_none(body: str) -> None:
    assert parse(body, P, NOW) is None


@pytest.mark.parametrize(
    "body", ["  !cb support", "!cb\tsupport", "!cb\nsupport", "\u200e!cb support"]
)
def test_prefix_may_follow_whitespace_and_be_followed_by_any_whitespace(body: str) -> None:
    assert ok(body).name == "support"


@pytest.mark.parametrize("body", ["!cb", "!cb   ", "  !cb \n "])
def test_bare_prefix_points_to_help(body: str) -> None:
    result = failure(body)
    assert result.kind == "empty"
    assert "!cb help" in result.message
    assert result.suggestion == "help"


def test_command_names_are_case_insensitive_and_aliases_resolve() -> None:
    assert ok("!cb SUPPORT").name == "support"
    assert ok("!cb Member Add @a:example.org").name == "member add"
    assert ok("!cb retract").name == "withdraw"
    assert ok("!cb no_objection").name == "no-objection"


def test_too_long_is_refused_but_only_when_addressed() -> None:
    body = f"{P} support " + "x" * MAX_COMMAND_CHARS
    assert failure(body).kind == "too_long"
    assert parse("chat " + "x" * 100_000, P, NOW) is None
    assert ok(f"{P} support " + "x" * (MAX_COMMAND_CHARS - 20)).name == "support"


def test_empty_prefix_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="prefix"):
        parse("!cb support", "", NOW)


# ---- unknown commands --------------------------------------------------------------------


def test_unknown_command_suggests_the_close_one() -> None:
    result = failure("!cb suport")
    assert result.kind == "unknown"
    assert result.suggestion == "support"
    assert "!cb support" in result.message
    assert failure("!cb membr add @a:example.org").suggestion == "member add"
    assert failure("!cb objct because").suggestion == "object"
    assert failure("!cb xyzzy").suggestion is None


def test_group_word_alone_lists_its_commands() -> None:
    result = failure("!cb member @a:example.org")
    assert result.kind == "usage"
    assert result.command == "member"
    assert result.usage is not None
    assert "member add USER" in result.usage
    assert "member remove USER" in result.usage


# ---- arguments ---------------------------------------------------------------------------


def test_absent_optional_arguments_are_none() -> None:
    parsed = ok("!cb support")
    assert dict(parsed.args) == {"reason": None, "request": None}
    assert parsed.get_str("reason") is None
    assert parsed.get_int("request") is None


def test_options_before_after_and_among_positionals() -> None:
    bodies = [
        "!cb support --request 7 Great fit.",
        "!cb support Great fit. --request 7",
        "!cb support Great --request=7 fit.",
        "!cb support Great fit. —request 7",  # a phone's autocorrected `--`
        "!cb support Great fit. --REQUEST #7",
    ]
    for body in bodies:
        parsed = ok(body)
        assert parsed.args == {"reason": "Great fit.", "request": 7}, body


def test_request_with_every_option() -> None:
    parsed = ok(
        "!cb request @dana:example.org --name 'Dana Example' --org=“Example University” "
        "--stakeholder ACADEMIA --region europe --deadline 14d She studies routing."
    )
    assert parsed.args == {
        "as": None,
        "background": None,
        "country": None,
        "representative": None,
        "applicant": "@dana:example.org",
        "statement": "She studies routing.",
        "name": "Dana Example",
        "org": "Example University",
        "stakeholder": "academia",
        "region": "europe",
        "deadline": NOW + 14 * DAY,
    }
    assert parsed.require_str("applicant") == "@dana:example.org"
    assert parsed.require_int("deadline") == NOW + 14 * DAY
    assert is_user_id(parsed.require_str("applicant"))


@pytest.mark.parametrize(
    "quoted",
    ['"Jane Doe"', "'Jane Doe'", "“Jane Doe”", "„Jane Doe“", "‘Jane Doe’", "”Jane Doe”"],
)
def test_ascii_and_typographic_quotes_group_words(quoted: str) -> None:
    parsed = ok(f"!cb request {quoted} Runs the regional exchange.")
    assert parsed.args["applicant"] == "Jane Doe"
    assert parsed.args["statement"] == "Runs the regional exchange."
    assert not is_user_id("Jane Doe")


@pytest.mark.parametrize("apostrophe", ["'", "’"])
def test_apostrophes_in_free_text_need_no_quoting(apostrophe: str) -> None:
    reason = f"I don{apostrophe}t think they{apostrophe}re ready."
    assert ok(f"!cb object {reason}").args["reason"] == reason
    assert ok(f"!cb object {reason} --request 3").args == {"reason": reason, "request": 3}


def test_free_text_keeps_inner_quotes_and_unquotes_a_single_quoted_text() -> None:
    assert ok('!cb object They said "no" twice.').args["reason"] == 'They said "no" twice.'
    assert ok('!cb object "They said no."').args["reason"] == "They said no."
    assert ok('!cb object "Jane, Doe", maybe').args["reason"] == '"Jane, Doe", maybe'


def test_unclosed_quote_in_free_text_is_literal() -> None:
    assert ok("!cb concern 'tis unclear").args["reason"] == "'tis unclear"
    assert ok('!cb concern "unclear').args["reason"] == '"unclear'


def test_unclosed_quote_in_a_value_is_a_usage_failure() -> None:
    result = failure('!cb request "Jane Doe Runs the exchange.')
    assert result.kind == "usage"
    assert "never closed" in result.message
    assert result.usage == usage(COMMANDS_BY_NAME["request"], P)
    assert "never closed" in failure('!cb request @a:example.org --org="ACME x').message


def test_double_dash_ends_options_and_quoted_words_are_never_options() -> None:
    assert ok("!cb object -- --request is vague").args == {
        "reason": "--request is vague",
        "request": None,
    }
    assert ok('!cb object "--request is vague"').args["reason"] == "--request is vague"
    # Dashes in prose stay prose.
    assert ok("!cb concern time — not much").args["reason"] == "time — not much"


def test_free_text_keeps_line_breaks_and_drops_control_characters() -> None:
    parsed = ok("!cb apply First line.\nSecond\x00 line.\n\n\n\nThird.")
    assert parsed.args["statement"] == "First line.\nSecond line.\n\nThird."


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("!cb object", "REASON"),
        ("!cb object --request 4", "REASON"),
        ("!cb dispose 3", "accommodated|addressed"),
        ("!cb dispose 3 addressed", "RATIONALE"),
        ("!cb hum for", "--request"),
        ("!cb member add", "USER"),
        ("!cb deadline", "WHEN"),
        ("!cb request @a:example.org", "STATEMENT"),
    ],
)
def test_missing_required_argument_is_a_usage_failure(body: str, needle: str) -> None:
    result = failure(body)
    assert result.kind == "usage"
    assert needle in result.message
    spec = find_command(result.command or "")
    assert spec is not None
    assert result.usage == usage(spec, P)
    assert result.usage in result.render()


def test_bad_choice_lists_the_choices() -> None:
    result = failure("!cb decide maybe It is unclear.")
    assert result.kind == "usage"
    assert "admit, decline, no-consensus" in result.message
    stakeholder = failure("!cb member add @e:example.org --stakeholder pirates")
    assert ", ".join(STAKEHOLDER_GROUPS) in stakeholder.message
    assert "--stakeholder" in stakeholder.message
    assert ", ".join(REGIONS) in failure("!cb apply --region mars Hello").message


def test_extra_and_unknown_and_repeated_options() -> None:
    assert "'8' was not expected" in failure("!cb status 7 8").message
    assert failure("!cb list everything").kind == "usage"
    unknown = failure("!cb support --reqest 7")
    assert unknown.suggestion == "--request"
    assert "--reqest" in unknown.message
    assert "twice" in failure("!cb support --request 1 --request 2").message
    assert "needs a value" in failure("!cb support --request").message
    assert "needs a value" in failure("!cb support --request --request 3").message


@pytest.mark.parametrize(
    ("body", "key", "value"),
    [
        ("!cb status #7", "request", 7),
        ("!cb status 7", "request", 7),
        ("!cb extend 1d12h", "duration", 36 * 3_600_000),
        ("!cb reopen 48h", "duration", 2 * DAY),
        ("!cb deadline 10d", "when", NOW + 10 * DAY),
        (
            "!cb deadline 2026-03-01T12:00Z",
            "when",
            int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1000),
        ),
        ("!cb hum against LOUD --request 2", "strength", "loud"),
        ("!cb hum for --request 2", "strength", None),
        ("!cb export 3 --format=CSV", "format", "csv"),
        ("!cb help member add", "command", "member add"),
        ("!cb help", "command", None),
        ("!cb member add https://matrix.to/#/%40erin%3Aexample.org", "user", "@erin:example.org"),
    ],
)
def test_converted_values(body: str, key: str, value: object) -> None:
    assert ok(body).args[key] == value


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("!cb status 0", "not a request number"),
        ("!cb status seven", "not a request number"),
        ("!cb status 99999999999999", "not a request number"),
        ("!cb extend soon", "not a duration"),
        ("!cb deadline 2020-01-01", "in the past"),
        ("!cb deadline tomorrow", "ISO 8601"),
        ("!cb member add bob", "not a Matrix user ID"),
        ("!cb request @bob Wants in.", "not a complete Matrix user ID"),
        ("!cb dispose x addressed Because.", "not a objection number"),
    ],
)
def test_invalid_values_are_usage_failures(body: str, needle: str) -> None:
    result = failure(body)
    assert result.kind == "usage"
    assert needle in result.message


def test_converters_directly() -> None:
    assert PositiveInt().convert("#12", NOW) == 12
    assert DurationArg().convert("90s", NOW) == 90_000
    assert WhenArg().convert("1h", NOW) == NOW + 3_600_000
    assert Choice("a", "B").convert("b", NOW) == "B"
    assert Choice("a", "b").metavar == "a|b"
    assert UserId().convert("@x:[::1]:8448", NOW) == "@x:[::1]:8448"
    assert Applicant().convert("  Jane   Doe ", NOW) == "Jane Doe"
    with pytest.raises(ConversionError):
        Word().convert("   ", NOW)
    with pytest.raises(ConversionError):
        Word().convert("a\x00b", NOW)
    with pytest.raises(ConversionError):
        WhenArg().convert("0001-01-01T00:00+14:00", NOW)


# ---- help --------------------------------------------------------------------------------


def test_help_lists_every_command_in_sections() -> None:
    text = render_help(P)
    for spec in COMMANDS:
        assert usage(spec, P) in text
        assert spec.summary in text
    positions = text.index("Taking a position")
    assert positions < text.index("Information") < text.index("Chair tools")


def test_usage_lines() -> None:
    assert usage(COMMANDS_BY_NAME["object"], P) == "!cb object REASON… [--request N]"
    assert usage(COMMANDS_BY_NAME["hum"], P) == "!cb hum for|against [soft|loud] --request N"
    assert usage(COMMANDS_BY_NAME["status"], P) == "!cb status [N]"


def test_command_help_has_everything_and_examples_carry_the_prefix() -> None:
    for spec in COMMANDS:
        text = render_command_help(spec, "!x")
        assert text.startswith(usage(spec, "!x"))
        assert "Who: " in text
        assert "Where: " in text
        for example in spec.examples:
            assert f"!x {example}" in text
    object_help = render_command_help(COMMANDS_BY_NAME["object"], P)
    assert "blocks consensus" in object_help
    assert "with --request N" in object_help


def test_topic_help() -> None:
    assert render_topic_help("object", P) == render_command_help(COMMANDS_BY_NAME["object"], P)
    assert render_topic_help("!cb Member Add", P).startswith("!cb member add")
    assert "member remove" in render_topic_help("member", P)
    assert "Did you mean !cb help support?" in render_topic_help("suport", P)
    assert render_topic_help("", P) == render_help(P)


def test_reference_markdown_has_a_row_per_command() -> None:
    table = reference_markdown(P)
    lines = table.splitlines()
    assert lines[0] == "| command | who | where | what |"
    assert len(lines) == 2 + len(TABLE)  # the commands and the front word `vote`
    assert "`!cb hum for\\|against [soft\\|loud] --request N`" in table
    for line in lines[2:]:
        assert line.replace("\\|", "").count("|") == 5


# ---- never raises ------------------------------------------------------------------------

HOSTILE = [
    '"', "'", "“", "”", "„", "‘", "’", "‚", "\\", "-", "--", "—", "–", "=", "#", "@", ":",
    " ", "\t", "\n", "\r", "\x00", "\x85", "\u2028", "\u200f", "\u202e", "\ufeff", "\u00a0",
    "!cb", "!cb ", "support", "request", "member", "add", "--request", "--org=", "7", "#7",
    "14d", "2026-13-45T99:99", "@a:b", "hum", "for", "help", "ﷺ", "İ", "\U0001f44d",
]  # fmt: skip


def check_result(result: ParsedCommand | ParseFailure | None) -> None:
    if isinstance(result, ParseFailure):
        assert result.message
        if result.kind == "usage":
            assert result.usage
        result.render()
    elif isinstance(result, ParsedCommand):
        assert set(result.args) == {p.name for p in result.spec.params}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_never_raises_on_any_text(text: str) -> None:
    check_result(parse(text, P, NOW))
    check_result(parse(f"{P} {text}", P, NOW))
    check_result(parse(f"{P}{text}", P, NOW))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(HOSTILE), max_size=40).map("".join))
def test_parse_never_raises_on_shell_hostile_text(text: str) -> None:
    check_result(parse(text, P, NOW))
    check_result(parse(f"{P} {text}", P, NOW))
    for spec in COMMANDS[::3]:
        check_result(parse(f"{P} {spec.name} {text}", P, NOW))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(categories=["Cs", "Cc", "Cf", "Zs", "Zl", "Zp", "Pi", "Pf"])))
def test_parse_never_raises_on_surrogates_and_controls(text: str) -> None:
    check_result(parse(f"{P} {text}", P, NOW))
    check_result(parse(f"{P} request {text}", P, NOW))


@pytest.mark.parametrize(
    "filler", ['"a ', "'", "“x ", "-- ", "--request ", "\x00", "x" * 50 + " ", "— "]
)
def test_huge_and_pathological_bodies_are_quick(filler: str) -> None:
    started = time.monotonic()
    for body in (
        f"{P} support " + filler * (MAX_COMMAND_CHARS // len(filler) - 5),
        f"{P} " + filler * 200_000,
        filler * 200_000,
    ):
        check_result(parse(body, P, NOW))
    assert time.monotonic() - started < 2.0


# ---- WHEN and DURATION are capped; every parse problem is a usage message -----------------


def iso(moment: datetime) -> str:
    return moment.isoformat()


START = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_cap_is_a_year() -> None:
    assert MAX_AHEAD_DAYS == 365
    assert MAX_AHEAD_MS == 365 * DAY


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31",
        "9999-12-31T23:59:59+14:00",
        "9999-12-31T23:59:59-14:00",
        "2027-01-01T00:00:01Z",
        "366d",
        "53w",
        "3650d",
        "5000d",  # beyond parse_duration's own ten years: still "too far", not "unreadable"
        "99999999999d",
    ],
)
def test_a_deadline_more_than_a_year_ahead_is_refused(when: str) -> None:
    for body in (f"!cb deadline {when}", f"!cb request @erin:x --deadline {when} Hi."):
        result = failure(body)
        assert result.kind == "usage"
        assert "more than 365 days from now" in result.message
        assert result.usage


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("365d", NOW + 365 * DAY),  # exactly the cap is allowed
        ("52w", NOW + 364 * DAY),
        ("2026-12-31T23:59:59Z", NOW + 365 * DAY - 1000),
        ("2026-06-30T10:00-14:00", int((START + timedelta(days=180, hours=24)).timestamp() * 1000)),
        ("2026-06-30T10:00+14:00", int((START + timedelta(days=180, hours=-4)).timestamp() * 1000)),
        ("2026-06-30T10:00", int((START + timedelta(days=180, hours=10)).timestamp() * 1000)),
        ("2026-06-30", int((START + timedelta(days=180)).timestamp() * 1000)),
        (
            "2026-06-30T10:00:00.999+02:00",
            int((START + timedelta(days=180, hours=8)).timestamp()) * 1000 + 999,
        ),
    ],
)
def test_iso_times_with_offsets_up_to_14h_and_naive_times_as_utc(when: str, expected: int) -> None:
    assert WhenArg().convert(when, NOW) == expected
    assert ok(f"!cb deadline {when}").args["when"] == expected


@pytest.mark.parametrize(
    ("when", "needle"),
    [
        ("2026-06-30T10:00-14:01", "UTC offset beyond ±14:00"),
        ("2026-06-30T10:00+23:59", "UTC offset beyond ±14:00"),
        ("2026-06-30T10:00+24:00", "ISO 8601"),
        ("0001-01-01T00:00-14:00", "in the past"),
        ("0001-01-01T00:00+14:00", "in the past"),
        ("2026-02-30", "ISO 8601"),
        ("2026-06-30T25:00", "ISO 8601"),
        ("99999-01-01", "ISO 8601"),
        ("2026-06-30T10:00Z[Europe/Paris]", "ISO 8601"),
        ("0d", "ISO 8601"),
        ("-1d", "ISO 8601"),
        ("9" * 40 + "d", "ISO 8601"),
    ],
)
def test_bad_iso_times_are_usage_errors(when: str, needle: str) -> None:
    with pytest.raises(ConversionError, match=re.escape(needle)):
        WhenArg().convert(when, NOW)
    result = failure(f"!cb deadline {when}")
    assert result.kind == "usage"
    assert needle in result.message


@pytest.mark.parametrize(("duration", "ok_"), [("365d", True), ("366d", False), ("5000d", False)])
def test_extend_and_reopen_durations_are_capped_too(duration: str, ok_: bool) -> None:
    for command in ("extend", "reopen"):
        result = parse(f"{P} {command} {duration}", P, NOW)
        if ok_:
            assert isinstance(result, ParsedCommand)
        else:
            assert isinstance(result, ParseFailure)
            assert "longer than 365 days" in result.message


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.datetimes(timezones=st.timezones() | st.none()).map(datetime.isoformat),
        st.from_regex(
            r"[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}(T[0-9]{1,2}:[0-9]{2})?"
            r"([+-][0-9]{2}:[0-9]{2}|Z)?",
            fullmatch=True,
        ),
        st.from_regex(r"[0-9]{1,25}[smhdwSMHDW]([0-9]{1,5}[smhdw])?", fullmatch=True),
        st.text(max_size=40),
    ),
    st.integers(min_value=0, max_value=4_000_000_000_000),
)
def test_when_is_a_moment_within_the_cap_or_a_conversion_error(text: str, now: int) -> None:
    moment: int | None = None
    message = ""
    try:
        moment = WhenArg().convert(text, now)
    except ConversionError as exc:  # nothing else may come out
        message = str(exc)
    if moment is None:
        assert message.endswith(".")
    else:
        assert now < moment <= now + MAX_AHEAD_MS


# ---- each command's executor is bound in the table ---------------------------------------


def test_each_command_binds_its_executor_in_the_table_and_every_executor_is_used() -> None:
    for spec in TABLE:
        assert (spec.executor is None) == bool(spec.forwards), spec.name
    assert {spec.executor for spec in COMMANDS} == set(Executor)


def test_a_command_without_an_executor_or_an_unused_executor_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stray = CommandSpec("stray", "Stray.", (), Role.ANYONE, frozenset(Place))
    monkeypatch.setattr(table_module, "TABLE", (*TABLE, stray))
    with pytest.raises(ValueError, match="stray: a command needs an executor"):
        table_module._check_executors()
    monkeypatch.setattr(table_module, "TABLE", TABLE)
    without_help = tuple(c for c in COMMANDS if c.executor is not Executor.HELP)
    monkeypatch.setattr(table_module, "COMMANDS", without_help)
    with pytest.raises(ValueError, match=r"executors no command uses: \['HELP'\]"):
        table_module._check_executors()
