"""Commands that forgive: aliases, `vote X`, `#N` for a request, typo suggestions over aliases.

Everything is derived from the one table, so the help, the usage lines and the README
reference say what the parser accepts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.positions import Position
from commands import (
    COMMANDS,
    COMMANDS_BY_NAME,
    TABLE,
    TABLE_BY_NAME,
    CommandSpec,
    Option,
    ParsedCommand,
    ParseFailure,
    Place,
    PositiveInt,
    Role,
    find_command,
    parse,
    reference_markdown,
    render_command_help,
    render_help,
    render_topic_help,
    usage,
)
from tests.unit.test_engine import ALICE, BOB, CAROL, DAVE, make_world

P = "!cb"
NOW = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
ROOT = Path(__file__).resolve().parents[2]


def ok(body: str) -> ParsedCommand:
    result = parse(body, P, NOW)
    assert isinstance(result, ParsedCommand), result
    return result


def failure(body: str) -> ParseFailure:
    result = parse(body, P, NOW)
    assert isinstance(result, ParseFailure), result
    return result


# ---- 1. aliases --------------------------------------------------------------------------

POSITION_ALIASES = [
    ("yes", "support"),
    ("agree", "support"),
    ("+1", "support"),
    ("approve", "support"),
    ("lgtm", "support"),
    ("no", "object"),
    ("block", "object"),
    ("-1", "object"),
    ("nay", "object"),
    ("pass", "abstain"),
]


@pytest.mark.parametrize(("alias", "name"), POSITION_ALIASES)
def test_aliases_are_declared_in_the_table(alias: str, name: str) -> None:
    spec = COMMANDS_BY_NAME[name]
    assert alias in spec.aliases
    assert COMMANDS_BY_NAME[alias] is spec
    assert find_command(alias.upper()) is spec


@pytest.mark.parametrize(("alias", "name"), POSITION_ALIASES)
def test_an_alias_parses_to_the_real_command_and_says_which_alias(alias: str, name: str) -> None:
    parsed = ok(f"{P} {alias} Because of the charter. --request 4")
    assert parsed.spec is COMMANDS_BY_NAME[name]
    assert parsed.spec.name == name
    assert parsed.name == name
    assert parsed.alias == alias
    assert dict(parsed.args) == {"reason": "Because of the charter.", "request": 4}


def test_the_commands_own_name_has_no_alias_and_aliases_compare_like_names() -> None:
    assert ok(f"{P} support").alias is None
    assert ok(f"{P} SUPPORT").alias is None
    assert ok(f"{P} YES").alias == "yes"
    assert ok(f"{P} ＋1").alias == "+1"  # a fullwidth plus, as some keyboards type it
    assert ok(f"{P} LGTM").spec.name == "support"
    assert ok(f"{P} retract").alias == "retract"
    assert ok(f"{P} member add @a:example.org").alias is None


@pytest.mark.parametrize("body", [f"{P} block", f"{P} no", f"{P} -1", f"{P} nay --request 3"])
def test_an_object_alias_still_needs_a_reason_and_gets_objects_usage(body: str) -> None:
    result = failure(body)
    assert result.kind == "usage"
    assert result.command == "object"
    assert result.usage == usage(COMMANDS_BY_NAME["object"], P)
    alias = body.split()[1]
    assert result.message == f"{alias} means object, which needs REASON…: why you object."
    assert result.render().endswith("Usage: !cb object REASON… [--request N]")


@pytest.mark.parametrize(
    "body",
    [
        f"{P} no objection",
        f"{P} No Objection",
        f"{P} no objections",
        f"{P} no objection, fine by me",
        f"{P} no concerns",
    ],
)
def test_no_objection_in_two_words_is_never_an_objection(body: str) -> None:
    parsed = ok(body)
    assert parsed.spec.name == "no-objection"
    assert parsed.alias is not None
    assert parsed.alias.startswith("no ")


def test_no_objection_keeps_the_reason_after_it() -> None:
    parsed = ok(f"{P} no objection, fine by me --request 2")
    assert dict(parsed.args) == {"reason": "fine by me", "request": 2}
    assert ok(f"{P} no, they have not signed the principles").spec.name == "object"


def test_punctuation_after_a_command_word_does_not_hide_it() -> None:
    assert ok(f"{P} support. Good fit.").spec.name == "support"
    assert ok(f"{P} support. Good fit.").args["reason"] == "Good fit."
    assert ok(f"{P} yes!").alias == "yes"
    assert ok(f"{P} help?").spec.name == "help"
    assert ok(f"{P} ?").spec.name == "help"


def test_help_for_a_command_shows_its_aliases() -> None:
    text = render_command_help(COMMANDS_BY_NAME["support"], P)
    assert "Also: !cb yes, !cb agree, !cb +1, !cb approve, !cb lgtm" in text
    assert "Also: !cb no, !cb block, !cb -1, !cb nay" in render_topic_help("object", P)
    assert "Also: !cb pass" in render_topic_help("abstain", P)
    # Help about an alias is the help of its command.
    assert render_topic_help("yes", P) == text
    assert render_topic_help("+1", P) == text
    assert render_topic_help("no objection", P) == render_topic_help("no-objection", P)


def test_reference_lists_the_aliases_of_each_command() -> None:
    rows = {line.split("`")[1]: line for line in reference_markdown(P).splitlines()[2:]}
    support = rows["!cb support [REASON…] [--request N]"]
    assert support.endswith(
        "| Support admitting the applicant. Also: `yes`, `agree`, `+1`, `approve`, `lgtm`. |"
    )
    assert "Also: `no`, `block`, `-1`, `nay`." in rows["!cb object REASON… [--request N]"]
    assert "Also: `pass`." in rows["!cb abstain [REASON…] [--request N]"]
    assert "Also:" not in rows["!cb concern [REASON…] [--request N]"]


def test_readme_reference_is_regenerated_with_the_aliases() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- commands:begin -->\n", 1)[1].split("\n<!-- commands:end -->", 1)[0]
    assert block == reference_markdown(P)
    assert "Also: `yes`, `agree`, `+1`, `approve`, `lgtm`." in block


def test_alias_declarations_are_checked() -> None:
    def spec(*aliases: str) -> CommandSpec:
        return CommandSpec("x", "X.", (), Role.ANYONE, frozenset(Place), aliases=aliases)

    assert spec("y", "two words").aliases == ("y", "two words")
    for bad in ("Yes", " y", "y ", "two  words", "tab\there", ""):
        with pytest.raises(ValueError, match="lower-case"):
            spec(bad)
    with pytest.raises(ValueError, match="repeats"):
        spec("x")
    with pytest.raises(ValueError, match="repeats"):
        spec("y", "y")


def test_no_alias_is_declared_twice_across_the_table() -> None:
    words = [word for spec in COMMANDS for word in (spec.name, *spec.aliases)]
    assert len(words) == len(set(words))


# ---- 2. `vote X` -------------------------------------------------------------------------

VOTE = find_command("vote")
POSITIONS = "support, no-objection, concern, object, abstain"


def hint(command: str) -> str:
    return f"There is no vote here: positions are {POSITIONS} (recorded as {command})."


def test_vote_is_an_entry_of_the_table_but_no_command_a_handler_sees() -> None:
    assert VOTE is not None
    assert VOTE in TABLE
    assert VOTE not in COMMANDS
    assert "vote" not in COMMANDS_BY_NAME
    assert TABLE_BY_NAME["vote"] is VOTE
    assert VOTE.forwards == ("support", "no-objection", "concern", "object", "abstain")
    assert tuple(s for s in TABLE if not s.forwards) == COMMANDS


@pytest.mark.parametrize(
    ("body", "name", "alias", "args"),
    [
        ("vote yes", "support", "yes", {"reason": None, "request": None}),
        ("vote support", "support", None, {"reason": None, "request": None}),
        ("VOTE Support Good fit.", "support", None, {"reason": "Good fit.", "request": None}),
        ("vote +1 --request 3", "support", "+1", {"reason": None, "request": 3}),
        ("vote object Not yet.", "object", None, {"reason": "Not yet.", "request": None}),
        (
            "vote no They have not signed.",
            "object",
            "no",
            {"reason": "They have not signed.", "request": None},
        ),
        ("vote no objection", "no-objection", "no objection", {"reason": None, "request": None}),
        ("vote concern Time", "concern", None, {"reason": "Time", "request": None}),
        ("vote pass", "abstain", "pass", {"reason": None, "request": None}),
        ("vote yes #2 Good work", "support", "yes", {"reason": "Good work", "request": 2}),
        ("vote #2 yes Good work", "support", "yes", {"reason": "Good work", "request": 2}),
    ],
)
def test_vote_x_is_parsed_as_the_position_x_with_a_hint(
    body: str, name: str, alias: str | None, args: dict[str, object]
) -> None:
    parsed = ok(f"{P} {body}")
    assert parsed.spec is COMMANDS_BY_NAME[name]
    assert parsed.name == name
    assert parsed.alias == alias
    assert parsed.hint == hint(name)
    assert dict(parsed.args) == args
    assert parsed.raw == f"{P} {body}"


def test_the_hint_is_the_one_the_issue_asks_for() -> None:
    assert ok(f"{P} vote yes").hint == (
        "There is no vote here: positions are support, no-objection, concern, object, abstain "
        "(recorded as support)."
    )


def test_without_vote_there_is_no_hint() -> None:
    assert ok(f"{P} support").hint is None
    assert ok(f"{P} yes").hint is None
    assert ok(f"{P} status 3").hint is None


@pytest.mark.parametrize("example", VOTE.examples if VOTE else ())
def test_every_vote_example_parses_to_a_position(example: str) -> None:
    assert VOTE is not None
    parsed = ok(f"{P} {example}")
    assert parsed.spec.name in VOTE.forwards
    assert parsed.hint == hint(parsed.spec.name)


@pytest.mark.parametrize("body", [f"{P} vote object", f"{P} vote object --request 2"])
def test_vote_object_still_needs_a_reason(body: str) -> None:
    result = failure(body)
    assert result.kind == "usage"
    assert result.command == "object"
    assert result.message == "object needs REASON…: why you object."
    assert result.usage == usage(COMMANDS_BY_NAME["object"], P)
    blocked = failure(f"{P} vote block")
    assert blocked.message == "block means object, which needs REASON…: why you object."


@pytest.mark.parametrize(
    ("body", "message", "suggestion"),
    [
        ("vote", f"There is no vote here: say your position, one of {POSITIONS}.", None),
        ("vote   ", f"There is no vote here: say your position, one of {POSITIONS}.", None),
        (
            "vote nonsense",
            f"'nonsense' is not a position. There is no vote here: positions are {POSITIONS}.",
            None,
        ),
        (
            "vote suport Good",
            "'suport' is not a position. Did you mean !cb support? There is no vote here: "
            f"positions are {POSITIONS}.",
            "support",
        ),
        (
            "vote agre",
            "'agre' is not a position. Did you mean !cb agree (support)? There is no vote here: "
            f"positions are {POSITIONS}.",
            "agree",
        ),
        (
            "vote withdraw",
            f"There is no vote here: vote takes one of {POSITIONS}; send !cb withdraw on its own.",
            "withdraw",
        ),
        (
            "vote vote yes",
            f"'vote' is not a position. There is no vote here: positions are {POSITIONS}.",
            None,
        ),
    ],
)
def test_vote_without_a_position_lists_the_positions(
    body: str, message: str, suggestion: str | None
) -> None:
    assert VOTE is not None
    result = failure(f"{P} {body}")
    assert result.kind == "usage"
    assert result.command == "vote"
    assert result.message == message
    assert result.suggestion == suggestion
    assert result.usage == usage(VOTE, P) == "!cb vote POSITION [REASON…] [--request N]"
    assert result.render() == f"{message}\nUsage: !cb vote POSITION [REASON…] [--request N]"


def test_vote_is_in_the_help_among_the_positions() -> None:
    text = render_help(P)
    line = (
        "  !cb vote POSITION [REASON…] [--request N] — There is no vote here: vote POSITION is "
        "taken as that position (vote yes as support)."
    )
    assert line in text.splitlines()
    positions = text.index("Taking a position")
    assert positions < text.index("!cb abstain") < text.index("!cb vote") < text.index("Filing")


def test_help_vote_explains_it() -> None:
    assert VOTE is not None
    text = render_topic_help("vote", P)
    assert text == render_command_help(VOTE, P)
    assert text.startswith("!cb vote POSITION [REASON…] [--request N]\n")
    assert "Rough consensus is not a vote" in text
    assert f"POSITION     {POSITIONS}, or another name of one (yes, no, +1, pass…)" in text
    assert "Who: members. Where: a request's room, or a direct message" in text
    assert "  !cb vote yes" in text


def test_vote_is_in_the_readme_reference() -> None:
    row = (
        "| `!cb vote POSITION [REASON…] [--request N]` | member | request room, DM | There is no "
        "vote here: vote POSITION is taken as that position (vote yes as support). |"
    )
    assert row in reference_markdown(P).splitlines()
    assert row in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()


def test_a_front_word_is_declared_with_its_hint_and_real_targets() -> None:
    with pytest.raises(ValueError, match="go together"):
        CommandSpec("x", "X.", (), Role.ANYONE, frozenset(Place), forwards=("support",))
    with pytest.raises(ValueError, match="go together"):
        CommandSpec("x", "X.", (), Role.ANYONE, frozenset(Place), hint="Hi.")
    with pytest.raises(KeyError):
        CommandSpec("x", "X.", (), Role.ANYONE, frozenset(Place), forwards=("a",), hint="%(nope)s")


# ---- 3. `#N` wherever a request number goes ----------------------------------------------

HASH_COMMANDS = [s.name for s in COMMANDS if any(o.hash_word for o in s.options)]


def test_every_command_with_request_option_takes_a_hash_word() -> None:
    with_request = [s.name for s in COMMANDS if any(o.name == "request" for o in s.options)]
    assert with_request == HASH_COMMANDS
    assert set(HASH_COMMANDS) == {
        "support", "no-objection", "concern", "object", "abstain", "recuse", "withdraw", "hum",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "args"),
    [
        ("support #2 Good work", {"reason": "Good work", "request": 2}),
        ("support #2", {"reason": None, "request": 2}),
        ("support #2, good work", {"reason": "good work", "request": 2}),
        ("yes #2 Good work", {"reason": "Good work", "request": 2}),
        (
            "object #2 No link to the group yet.",
            {"reason": "No link to the group yet.", "request": 2},
        ),
        ("block #12 Not yet", {"reason": "Not yet", "request": 12}),
        ("no-objection #3", {"reason": None, "request": 3}),
        ("concern #3 Time", {"reason": "Time", "request": 3}),
        ("abstain #3", {"reason": None, "request": 3}),
        ("recuse #3 Same employer.", {"reason": "Same employer.", "request": 3}),
        ("withdraw #2", {"request": 2}),
        ("retract #2", {"request": 2}),
        ("hum for #2", {"side": "for", "strength": None, "request": 2}),
        ("hum against loud #2", {"side": "against", "strength": "loud", "request": 2}),
        ("hum #2 for soft", {"side": "for", "strength": "soft", "request": 2}),
        ("support ＃２ fine", {"reason": "fine", "request": 2}),  # fullwidth, as some phones type
        ("support ＃２， fine", {"reason": "fine", "request": 2}),
        # The same number twice is no contradiction.
        ("support #2 Fine. --request 2", {"reason": "Fine.", "request": 2}),
    ],
)
def test_a_leading_hash_number_is_the_request(body: str, args: dict[str, object]) -> None:
    assert dict(ok(f"{P} {body}").args) == args


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("support Good #2 work", "Good #2 work"),  # not the first word: text
        ("support -- #2 was better", "#2 was better"),  # after `--`: text
        ('support "#2" was better', '"#2" was better'),  # quoted: text
        ("support #2nd time lucky", "#2nd time lucky"),  # not exactly #N
        ("support # 2 fine", "# 2 fine"),
    ],
)
def test_a_hash_word_that_is_not_the_leading_word_stays_text(body: str, reason: str) -> None:
    parsed = ok(f"{P} {body}")
    assert dict(parsed.args) == {"reason": reason, "request": None}


@pytest.mark.parametrize(
    "body", ["support --request #7", "support --request=#7 Good.", "status #7"]
)
def test_request_number_converters_accept_hash_n(body: str) -> None:
    assert ok(f"{P} {body}").args["request"] == 7


@pytest.mark.parametrize(
    ("body", "message", "command"),
    [
        ("object #2", "object needs REASON…: why you object.", "object"),
        ("block #2", "block means object, which needs REASON…: why you object.", "object"),
        ("support #0 Fine.", "'#0' is not a request number (write e.g. 7 or #7).", "support"),
        ("support #2 Fine. --request 3", "'#2' and --request 3 disagree; give one.", "support"),
        ("withdraw #2 #3", "'#3' was not expected here.", "withdraw"),
        ("hum for", "hum needs --request N: the request number (or #N after the side).", "hum"),
    ],
)
def test_hash_word_failures(body: str, message: str, command: str) -> None:
    result = failure(f"{P} {body}")
    assert result.kind == "usage"
    assert result.message == message
    assert result.command == command
    assert result.usage == usage(COMMANDS_BY_NAME[command], P)


def test_the_help_says_hash_n_works() -> None:
    text = render_topic_help("support", P)
    assert "or #N as the first word" in text
    assert "or start with #N" in text
    assert "!cb support #7 Strong track record in the region." in text
    assert "!cb withdraw #7" in render_topic_help("withdraw", P)
    assert "!cb hum for #7" in render_topic_help("hum", P)


def test_only_one_option_may_come_from_a_hash_word() -> None:
    first = Option("a", PositiveInt(), "a", hash_word=True)
    second = Option("b", PositiveInt(), "b", hash_word=True)
    with pytest.raises(ValueError, match="#N"):
        CommandSpec("x", "X.", (first, second), Role.ANYONE, frozenset(Place))


# ---- 4. typo suggestions over aliases ----------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "suggestion", "shown_as"),
    [
        ("agre", "agree", "agree (support)"),
        ("aprove", "approve", "approve (support)"),
        ("lgmt", "lgtm", "lgtm (support)"),
        ("blok", "block", "block (object)"),
        ("pas", "pass", "pass (abstain)"),
        ("retrct", "retract", "retract (withdraw)"),
    ],
)
def test_a_mistyped_alias_is_suggested_with_its_command(
    typed: str, suggestion: str, shown_as: str
) -> None:
    result = failure(f"{P} {typed} Looks fine to me.")
    assert result.kind == "unknown"
    assert result.suggestion == suggestion
    assert f"Did you mean {P} {shown_as}?" in result.message
    assert result.message.count("Did you mean") == 1
    assert result.message.endswith(f"Send {P} help for the list.")
    # What is suggested works as typed.
    assert find_command(suggestion) is find_command(shown_as.split("(")[1].rstrip(")"))
    assert COMMANDS_BY_NAME[suggestion].name != suggestion


def test_existing_did_you_mean_for_commands_is_kept() -> None:
    result = failure(f"{P} suport")
    assert result.suggestion == "support"
    assert "Did you mean !cb support? " in result.message
    assert "(support)" not in result.message
    assert failure(f"{P} membr add @a:example.org").suggestion == "member add"
    assert failure(f"{P} no-objecton").suggestion == "no-objection"
    assert failure(f"{P} withdrw").suggestion == "withdraw"
    assert failure(f"{P} xyzzy").suggestion is None
    assert "Did you mean" not in failure(f"{P} xyzzy").message


def test_help_suggests_aliases_too() -> None:
    assert "Did you mean !cb help agree?" in render_topic_help("agre", P)
    assert "Did you mean !cb help vote?" in render_topic_help("vot", P)


def test_a_mistyped_vote_suggests_vote() -> None:
    result = failure(f"{P} vot yes")
    assert result.kind == "unknown"
    assert result.suggestion == "vote"
    assert result.message == (
        "I don't know the command 'vot'. Did you mean !cb vote? Send !cb help for the list."
    )
    assert "Did you mean !cb help support?" in render_topic_help("suport", P)


# ---- never raises ------------------------------------------------------------------------

FORGIVING_HOSTILE = [
    "vote", "yes", "no", "+1", "-1", "#", "#2", "#2,", "＃２", "#0", "#99999999999", "--",
    "--request", "--request=#3", "objection", "objection,", '"', "'", "“", " ", "\n", "—",
    "\u200f", "agre", "pass", "block", "hum", "for", "loud", "?",
]  # fmt: skip


def check(result: ParsedCommand | ParseFailure | None) -> None:
    assert result is not None
    if isinstance(result, ParseFailure):
        assert result.message
        if result.kind == "usage":
            assert result.usage
            assert result.command
        result.render()
    else:
        assert not result.spec.forwards  # a front word never reaches a handler
        assert result.spec in COMMANDS
        assert set(result.args) == {p.name for p in result.spec.params}
        assert (result.hint is not None) == (result.raw.split()[1].lower() == "vote")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FORGIVING_HOSTILE), max_size=12).map(" ".join))
def test_forgiving_parse_never_raises(text: str) -> None:
    for head in ("vote", "yes", "no", "block", "support", "withdraw", "hum", "vote #2"):
        check(parse(f"{P} {head} {text}", P, NOW))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_vote_with_any_text_never_raises(text: str) -> None:
    check(parse(f"{P} vote {text}", P, NOW))
    check(parse(f"{P} no {text}", P, NOW))
    check(parse(f"{P} support #3 {text}", P, NOW))


# ---- through the engine: handlers see only the real command -------------------------------


async def test_the_engine_records_aliases_vote_and_hash_n_as_the_real_position(
    tmp_path: Path,
) -> None:
    w = await make_world(tmp_path / "bot.db")
    try:
        assert await w.open_request() == 1
        yes = w.command(ALICE, "!cb yes Good fit.")
        vote = w.command(BOB, "!cb vote +1")
        hashed = w.command(CAROL, "!cb support #1 Good work")
        # In request 1's room, `#2` names request 2: not request 1 with the reason "#2 …".
        other = w.command(DAVE, "!cb support #2 Good work")
        block = w.command(DAVE, "!cb block")
        await w.apply(yes, vote, hashed, other, block)
        for event in (yes, vote, hashed):
            assert await w.acks(event.event_id) == ["✅"]
        assert await w.positions(1) == {
            ALICE: Position.SUPPORT,
            BOB: Position.SUPPORT,
            CAROL: Position.SUPPORT,
        }
        reasons = {i.member: i.reason for i in await w.inputs(1)}
        assert reasons == {ALICE: "Good fit.", BOB: None, CAROL: "Good work"}
        assert await w.acks(other.event_id) == ["❌"]
        assert "there is no request #2" in (await w.reply_to(other.event_id))["body"]
        assert await w.acks(block.event_id) == ["❌"]
        refusal = (await w.reply_to(block.event_id))["body"]
        assert "block means object, which needs REASON…" in refusal
        assert "Usage: !cb object REASON… [--request N]" in refusal
    finally:
        await w.db.close()
