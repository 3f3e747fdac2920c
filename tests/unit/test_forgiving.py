"""Commands that forgive: aliases, `vote X`, `#N` for a request, typo suggestions over aliases.

Everything is derived from the one table, so the help, the usage lines and the README
reference say what the parser accepts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from commands import (
    COMMANDS,
    COMMANDS_BY_NAME,
    CommandSpec,
    ParsedCommand,
    ParseFailure,
    Place,
    Role,
    find_command,
    parse,
    reference_markdown,
    render_command_help,
    render_topic_help,
    usage,
)

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
    assert "Did you mean !cb help support?" in render_topic_help("suport", P)
