"""The translation catalogs and one language's view of them.

The .po files under `bot/locale/<code>/LC_MESSAGES/consensus.po` are the only source of the
translations: `Translator.load` reads them with Babel and compiles each into a
`gettext.GNUTranslations` in memory (Babel's `write_mo` into a buffer), so no compiled `.mo`
file is kept beside them and none can go stale. English is the source language: its catalog
maps every message to itself, and a message missing from a catalog falls back to English.

Placeholders are named, `%(name)s`, so a translation may reorder them; Babel marks such
messages `python-format` and its checkers (`Catalog.check`) verify every translation keeps
exactly the placeholders of its message (tests/unit/test_i18n.py).
"""

from __future__ import annotations

import gettext
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from io import BytesIO
from typing import Any, Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from bot.domain.clock_rules import format_when, zone
from bot.domain.durations import clamp_ts, format_duration
from bot.domain.text import Phrase as Phrase  # re-exported: the edges say phrases
from bot.domain.text import Span as Span
from bot.domain.text import phrase as phrase

DOMAIN = "consensus"
SOURCE_LANGUAGE = "en"
# The six official languages of the United Nations, as Babel names their locales.
LANGUAGES: tuple[str, ...] = ("ar", "zh_Hans", "en", "fr", "ru", "es")
# What each language calls itself, for `!cb language` and the intake question.
NATIVE_NAMES: dict[str, str] = {
    "ar": "العربية",
    "zh_Hans": "简体中文",
    "en": "English",
    "fr": "français",
    "ru": "русский",
    "es": "español",
}
# Unicode bidi isolates (UAX #9): text inside FSI … PDI takes its own direction and does not
# reorder the sentence around it, so `@bob:example.org`, `#12` or `3 d` read whole in Arabic.
FSI = "\u2068"
PDI = "\u2069"
# Emoji and pictographs (with their variation selector): neutral characters that an RTL
# paragraph would otherwise move to the wrong end of a line.
_EMOJI = re.compile("[\u2190-\u2bff\U0001f000-\U0001faff][\ufe0f]?")


def normalize_code(code: str) -> str | None:
    """The catalog code for what a member typed (`FR`, `zh`, `zh-hans`, `ar`), or None."""
    wanted = code.strip().replace("-", "_").lower()
    aliases = {"zh": "zh_Hans", "zh_cn": "zh_Hans", "zh_hans": "zh_Hans"}
    if wanted in aliases:
        return aliases[wanted]
    return wanted if wanted in LANGUAGES else None


def compile_po(po_text: bytes, code: str) -> gettext.GNUTranslations:
    """Compile a .po file's text into translations, in memory (fuzzy entries left out)."""
    catalog = read_po(BytesIO(po_text), locale=code, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@dataclass(frozen=True, slots=True)
class Language:
    """One language: its translations and its CLDR locale (dates, numbers, territory names).

    `_` and `ngettext` translate and fill in named placeholders; in a right-to-left language
    every value filled in is wrapped in bidi isolates (see `isolate`).
    """

    code: str
    translations: gettext.NullTranslations = field(repr=False)
    locale: Locale = field(repr=False)

    @property
    def rtl(self) -> bool:
        """Whether the language is written right to left (Arabic)."""
        return self.locale.character_order == "right-to-left"

    @property
    def direction(self) -> str:
        """`rtl` or `ltr`, for the `dir` attribute of a formatted body."""
        return "rtl" if self.rtl else "ltr"

    def isolate(self, value: object) -> str:
        """`value` as text, isolated from the surrounding direction in a right-to-left
        language (an ID, a number or an emoji inside Arabic); unchanged otherwise."""
        text = str(value)
        if not self.rtl or not text:
            return text
        return f"{FSI}{text}{PDI}"

    def _fill(self, text: str, params: dict[str, Any]) -> str:
        if self.rtl:  # the emoji the catalog's text carries, isolated like the values
            text = _EMOJI.sub(lambda m: f"{FSI}{m.group(0)}{PDI}", text)
        if not params:
            return text
        return text % {k: self.isolate(v) for k, v in params.items()}

    def _(self, message: str, **params: Any) -> str:
        """`message` translated, its `%(name)s` placeholders filled from `params`."""
        return self._fill(self.translations.gettext(message), params)

    def markup(self, message: str, **params: str) -> str:
        """`message` translated for `formatted_body`: the translation is HTML-escaped (a
        catalog never carries markup) and `params` are filled in as they are, so the caller
        passes them escaped (`render.esc`) or as markup it built."""
        text = html.escape(self.translations.gettext(message), quote=False)
        return self._fill(text, dict(params))

    def ngettext(self, singular: str, plural: str, n: int, **params: Any) -> str:
        """The plural form for `n` (the language's own rules: Russian has three, Arabic
        six), its placeholders filled from `params` (`n` is one of them as `%(n)s`)."""
        text = self.translations.ngettext(singular, plural, n)
        return self._fill(text, {"n": self.number(n), **params})

    def markup_plural(self, singular: str, plural: str, n: int, **params: str) -> str:
        """`ngettext` for `formatted_body`, as `markup` is `_`'s (params filled as given)."""
        text = html.escape(self.translations.ngettext(singular, plural, n), quote=False)
        return self._fill(text, {"n": self.number(n), **params})

    def number(self, n: int) -> str:
        """A number as the language writes it (grouping, digits)."""
        if self.code == SOURCE_LANGUAGE:
            return str(n)  # the English texts kept their plain numbers
        return format_decimal(n, locale=self.locale)

    def territory(self, alpha2: str) -> str:
        """The name of an ISO 3166-1 country or territory in this language (CLDR), or the
        code itself when CLDR has no name for it."""
        return str(self.locale.territories.get(alpha2.upper(), alpha2))

    def when(self, ms: int, tz: ZoneInfo | str, *, now_ms: int | None = None) -> str:
        """A moment as the reader reads it, in their zone and their language, with UTC
        beside (the localized form of `bot.domain.clock_rules.format_when`)."""
        if self.code == SOURCE_LANGUAGE:
            return format_when(ms, tz, now_ms=now_ms)
        zone_info = tz if isinstance(tz, ZoneInfo) else zone(tz)
        ms, _ = clamp_ts(ms)
        utc = datetime.fromtimestamp(ms / 1000, UTC)
        try:
            local = utc.astimezone(zone_info)
        except OverflowError:
            local = utc
        with_year = True
        if now_ms is not None:
            now = datetime.fromtimestamp(clamp_ts(now_ms)[0] / 1000, UTC)
            try:
                with_year = now.astimezone(zone_info).year != local.year
            except OverflowError:
                with_year = True
        day = format_skeleton("yMMMEd" if with_year else "MMMEd", local, locale=self.locale)
        hm = format_time(local, "HH:mm", locale=self.locale)
        label = local.tzname() or "UTC"
        if local.utcoffset() == timedelta(0) and label == "UTC":
            return f"{day} {hm} UTC"
        utc_hm = format_time(utc, "HH:mm", locale=self.locale)
        if utc.date() != local.date():
            utc_hm = f"{format_skeleton('Ed', utc, locale=self.locale)} {utc_hm}"
        return f"{day} {hm} {label} ({utc_hm} UTC)"

    def duration(self, ms: int) -> str:
        """A span as the language says it: the two largest units (`3 j 4 h`)."""
        if self.code == SOURCE_LANGUAGE:
            return format_duration(ms)
        seconds = max(0, ms) // 1000
        days, rem = divmod(seconds, 86_400)
        hours, rem = divmod(rem, 3_600)
        minutes, secs = divmod(rem, 60)
        units: list[tuple[int, Literal["day", "hour", "minute", "second"]]] = [
            (days, "day"),
            (hours, "hour"),
            (minutes, "minute"),
        ]
        if not days:
            units.append((secs, "second"))
        parts = [
            format_timedelta(
                timedelta(**{unit + "s": value}),
                granularity=unit,
                threshold=10**9,
                format="narrow",
                locale=self.locale,
            )
            for value, unit in units
            if value
        ]
        if not parts:
            parts = [
                format_timedelta(
                    timedelta(0), granularity="second", format="narrow", locale=self.locale
                )
            ]
        return " ".join(parts[:2])


@cache
def english() -> Language:
    """The source language with no catalog: what a renderer uses when it is given none."""
    return Language(SOURCE_LANGUAGE, gettext.NullTranslations(), Locale.parse("en"))


@dataclass(frozen=True, slots=True)
class Translator:
    """Every language the bot speaks, by catalog code (`LANGUAGES`). Built once by the
    composition root (`Translator.load`) and handed to the services."""

    languages: dict[str, Language]

    @classmethod
    def source_only(cls) -> Translator:
        """English alone, with no catalog read (no I/O): what a test or tool that does not
        care about languages gets."""
        return cls({SOURCE_LANGUAGE: english()})

    @classmethod
    def load(cls, codes: tuple[str, ...] = LANGUAGES) -> Translator:
        """Read and compile the catalog of each language in `codes` (I/O: call it from the
        composition root)."""
        root = resources.files("bot") / "locale"
        languages = {}
        for code in codes:
            po = root / code / "LC_MESSAGES" / f"{DOMAIN}.po"
            translations = compile_po(po.read_bytes(), code)
            languages[code] = Language(code, translations, Locale.parse(code))
        return cls(languages)

    def get(self, code: str | None) -> Language:
        """The language `code`, or English when it is None or not loaded."""
        if code is not None and code in self.languages:
            return self.languages[code]
        return self.languages.get(SOURCE_LANGUAGE) or english()

    @property
    def source(self) -> Language:
        """English, the language the messages are written in."""
        return self.get(SOURCE_LANGUAGE)
