"""User text made safe to show: the one sanitiser every renderer uses.

Matrix messages (`bot.matrix.render`) and the decision record's renderings
(`bot.domain.record_render`) both pass user text through `sanitize` before escaping it for
their own format (HTML, Markdown, CSV). It removes what can disguise text or break the
file it lands in, and caps the length; it does not escape anything. Pure: standard library
only.

It also holds the domain's side of translation: `N_`/`Np_` mark messages for the catalogs,
and a `Phrase` is a message with its values, composed where the reader is not known (a
rule's refusal, a parser's error) and said in their language by the edge (`Phrase.say`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.domain.durations import format_duration

ELLIPSIS = "…"

# Bidi controls (the Arabic letter mark U+061C, LRM/RLM, the embeddings and overrides
# U+202A-U+202E, the isolates U+2066-U+2069) and zero-width or invisible characters
# (U+200B-U+200D, U+2060-U+2064, the BOM/ZWNBSP U+FEFF) can make text read differently
# from what it is ("Trojan source"): they are removed.
INVISIBLE = "\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
# C0 controls but tab, line feed and carriage return; DEL; the C1 controls U+0080-U+009F.
CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_STRIPPED = re.compile(f"[{INVISIBLE}{CONTROL}]")
# Lone surrogates cannot be written as UTF-8 (a Python str may hold them, a file may not).
_SURROGATE = re.compile("[\ud800-\udfff]")


def sanitize(text: str | None, limit: int | None = None) -> str:
    """`text` without bidi, invisible and control characters, capped at `limit` characters.

    Tab, line feed and carriage return are kept. Lone surrogates become U+FFFD. Text longer
    than `limit` is cut to `limit - 1` characters plus `…`, so the result never exceeds
    `limit` (a `limit` below 1 gives ""); `None` means no cap. None and "" give "".
    Idempotent: sanitising sanitised text with the same limit changes nothing.
    """
    if not text:
        return ""
    text = _SURROGATE.sub("\ufffd", _STRIPPED.sub("", text))
    if limit is not None and len(text) > limit:
        text = (text[: limit - 1] + ELLIPSIS) if limit >= 1 else ""
    return text


def N_(message: str) -> str:  # the name gettext's tools look for
    """Mark `message` for the catalogs (`make i18n` extracts it) and return it unchanged.

    The pure domain cannot translate (Babel stays at the edges): it returns the English
    message, and the edge that shows it looks it up in the reader's language.
    """
    return message


def Np_(singular: str, plural: str) -> tuple[str, str]:
    """Mark a message with a plural form for the catalogs (`make i18n` extracts the pair);
    the edge passes it to `Language.ngettext` or `Language.markup_plural` unchanged."""
    return singular, plural


class Speaker(Protocol):
    """What says a message in a language: `bot.i18n.catalog.Language` at the edges (the
    domain never imports Babel), `SOURCE` for the messages as written."""

    @property
    def code(self) -> str:
        """The catalog code (`fr`, `zh_Hans`)."""
        ...

    @property
    def direction(self) -> str:
        """`rtl` or `ltr`."""
        ...

    def _(self, message: str, **params: Any) -> str:
        """`message` translated, its placeholders filled."""
        ...

    def ngettext(self, singular: str, plural: str, n: int, **params: Any) -> str:
        """The plural form for `n`, its placeholders (`%(n)s` among them) filled."""
        ...

    def duration(self, ms: int) -> str:
        """A span as the language says it."""
        ...


class Source:
    """The messages as written (English), for a renderer that is given no language."""

    @property
    def code(self) -> str:
        """English."""
        return "en"

    @property
    def direction(self) -> str:
        """Left to right."""
        return "ltr"

    def _(self, message: str, **params: Any) -> str:
        """`message` with its placeholders filled."""
        return message % params if params else message

    def ngettext(self, singular: str, plural: str, n: int, **params: Any) -> str:
        """The English form for `n`, filled."""
        return (singular if n == 1 else plural) % {"n": n, **params}

    def duration(self, ms: int) -> str:
        """`3d 4h`."""
        return format_duration(ms)


SOURCE: Speaker = Source()


@dataclass(frozen=True, slots=True)
class Span:
    """A length of time inside a phrase, said as the reader's language says it (`3 j 4 h`)."""

    ms: int

    def __str__(self) -> str:
        """The span in English (`3d 4h`)."""
        return format_duration(self.ms)


@dataclass(frozen=True, slots=True)
class Phrase:
    """A catalog message and its placeholder values, said later in the reader's language.

    What is composed before the reader is known (a rule's refusal, a parser's error, a
    command's usage note) is kept as phrases and said by the edge that answers (`say`). A
    value may itself be a Phrase (said first, in the same language) or a `Span`.
    """

    message: str
    params: Mapping[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        """The phrase in English (a Refusal's `str` fills it in as text)."""
        return self.say()

    def say(self, lang: Speaker | None = None) -> str:
        """The phrase in `lang` (English, the messages as written, when None)."""
        lang = lang or SOURCE
        values = {k: _said(v, lang) for k, v in self.params.items()}
        return lang._(self.message, **values)


def _said(value: object, lang: Speaker) -> object:
    if isinstance(value, Phrase):
        return value.say(lang)
    if isinstance(value, Span):
        return lang.duration(value.ms)
    return value


def phrase(message: str, **params: object) -> Phrase:
    """`Phrase(message, params)`, with the values as keywords."""
    return Phrase(message, params)
