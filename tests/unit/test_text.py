"""The one sanitiser of user text (bot.domain.text), used by Matrix messages and the minutes."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.record_render import md_escape, md_quote
from bot.domain.text import ELLIPSIS, sanitize
from bot.matrix import render

# Written out independently of the implementation: Unicode's Bidi_Control property
# (PropList.txt), the zero-width and invisible formatting characters, the BOM, every
# control character (category Cc) but tab, LF and CR, and lone surrogates (category Cs).
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
INVISIBLE = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"
KEPT_CONTROLS = "\t\n\r"


def stripped(ch: str) -> bool:
    """Whether `ch` must never come out of the sanitiser."""
    if ch in BIDI_CONTROLS or ch in INVISIBLE:
        return True
    category = unicodedata.category(ch)
    return (category == "Cc" and ch not in KEPT_CONTROLS) or category == "Cs"


EVERY_STRIPPED = "".join(ch for ch in map(chr, range(sys.maxunicode + 1)) if stripped(ch))

# Ordinary text, with plenty of the characters that must go (surrogates included, which
# `st.text()` leaves out by default).
hostile = st.text(
    st.one_of(
        st.characters(),
        st.sampled_from(EVERY_STRIPPED),
        st.characters(categories=["Cs"]),
        st.sampled_from(f"{KEPT_CONTROLS}{ELLIPSIS} "),
    )
)
limits = st.none() | st.integers(-2, 60)


def test_the_stripped_set_is_what_it_says() -> None:
    assert "\u061c" in EVERY_STRIPPED
    assert "\x85" in EVERY_STRIPPED  # C1: next line
    assert "\x7f" in EVERY_STRIPPED
    assert "\ud800" in EVERY_STRIPPED
    assert not set(KEPT_CONTROLS) & set(EVERY_STRIPPED)


@given(hostile, limits)
def test_the_output_holds_none_of_the_stripped_characters(text: str, limit: int | None) -> None:
    out = sanitize(text, limit)
    assert not [ch for ch in out if stripped(ch)]
    out.encode("utf-8")  # always writable


@given(hostile, limits)
def test_sanitize_is_idempotent(text: str, limit: int | None) -> None:
    once = sanitize(text, limit)
    assert sanitize(once, limit) == once
    assert sanitize(once) == once


@given(hostile, limits)
def test_sanitize_respects_the_cap(text: str, limit: int | None) -> None:
    out = sanitize(text, limit)
    full = sanitize(text)
    if limit is None or len(full) <= limit:
        assert out == full  # nothing cut
    elif limit < 1:
        assert out == ""
    else:
        assert len(out) == limit
        assert out == full[: limit - 1] + ELLIPSIS


@given(st.text(st.characters(exclude_categories=["Cc", "Cs", "Cf"])))
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert sanitize(text) == text


def test_examples() -> None:
    assert sanitize(None) == ""
    assert sanitize("") == ""
    assert sanitize("a\u202eb\u200bc\x00d\u061ce\x85f\x7fg") == "abcdefg"
    assert sanitize("line1\r\nline2\ttab") == "line1\r\nline2\ttab"
    assert sanitize("lone \ud800 surrogate") == "lone \ufffd surrogate"
    assert sanitize("x" * 10, 5) == "xxxx…"
    assert sanitize("x" * 5, 5) == "xxxxx"
    assert sanitize("x" * 5, 0) == ""


@pytest.mark.parametrize("ch", list(BIDI_CONTROLS + INVISIBLE + "\x00\x1b\x7f\x80\x85\x9f"))
def test_matrix_messages_and_minutes_strip_the_same_characters(ch: str) -> None:
    assert render.clean(f"a{ch}b") == "ab"
    assert md_escape(f"a{ch}b") == "ab"
    assert md_quote(f"a{ch}b") == "> ab"


def test_render_clean_is_the_sanitiser_with_the_message_cap() -> None:
    text = "é\u202e" * 3_000
    assert render.clean(text) == sanitize(text, render.MAX_FIELD_CHARS)
    assert render.clean(text, 10) == sanitize(text, 10)
