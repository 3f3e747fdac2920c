"""The catalogs and the languages (issue #24): bot/i18n, bot/locale."""

from __future__ import annotations

from importlib import resources
from io import BytesIO

import pytest
from babel.messages.pofile import read_po

from bot.i18n.catalog import (
    FSI,
    LANGUAGES,
    PDI,
    Translator,
    compile_po,
    english,
    normalize_code,
)


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.load()


def po_catalog(code: str):  # type: ignore[no-untyped-def]
    path = resources.files("bot") / "locale" / code / "LC_MESSAGES" / "consensus.po"
    return read_po(BytesIO(path.read_bytes()), locale=code, domain="consensus")


def test_i18n_the_six_un_languages_load(translator: Translator) -> None:
    assert set(translator.languages) == {"ar", "zh_Hans", "en", "fr", "ru", "es"}
    assert set(LANGUAGES) == set(translator.languages)
    assert translator.get("fr").code == "fr"
    assert translator.get(None).code == "en"
    assert translator.get("tlh").code == "en"  # a code not loaded: English


def test_i18n_po_is_compiled_in_memory_without_fuzzy_entries() -> None:
    po = (
        b'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        b'msgid "Hello %(name)s"\nmsgstr "Bonjour %(name)s"\n\n'
        b'#, fuzzy\nmsgid "Bye"\nmsgstr "Guess"\n'
    )
    translations = compile_po(po, "fr")
    assert translations.gettext("Hello %(name)s") == "Bonjour %(name)s"
    assert translations.gettext("Bye") == "Bye"  # a fuzzy guess is never shown


def test_i18n_no_compiled_catalog_is_kept_beside_the_sources() -> None:
    root = resources.files("bot") / "locale"
    compiled = [p for p in root.iterdir() if p.is_dir() for p in p.iterdir()]
    names = {f.name for d in compiled for f in d.iterdir()}
    assert names == {"consensus.po"}


def test_i18n_english_catalog_says_each_message_as_written() -> None:
    catalog = po_catalog("en")
    for message in catalog:
        if message.id:
            assert message.string == message.id


def test_locale_language_codes_are_normalized() -> None:
    assert normalize_code("FR") == "fr"
    assert normalize_code("zh") == "zh_Hans"
    assert normalize_code("zh-Hans") == "zh_Hans"
    assert normalize_code("ar") == "ar"
    assert normalize_code("de") is None


def test_locale_territory_names_come_from_cldr(translator: Translator) -> None:
    assert translator.get("fr").territory("CI") == "Côte d’Ivoire"
    assert translator.get("ru").territory("np") == "Непал"
    assert translator.get("zh_Hans").territory("NP") == "尼泊尔"
    assert translator.get("ar").territory("NP") == "نيبال"
    assert translator.get("es").territory("XX") == "XX"  # no name: the code itself


def test_i18n_arabic_fills_values_in_bidi_isolates(translator: Translator) -> None:
    ar = translator.get("ar")
    assert ar.rtl and ar.direction == "rtl"
    assert ar.isolate("@bob:example.org") == f"{FSI}@bob:example.org{PDI}"
    assert not translator.get("fr").rtl
    assert translator.get("fr").isolate("@bob:x") == "@bob:x"
    assert english()._("Closes %(when)s.", when="Fri") == "Closes Fri."


def test_locale_dates_in_the_members_zone_and_language(translator: Translator) -> None:
    moment = 1_790_000_000_000  # Mon 21 Sep 2026 14:13 UTC
    now = moment - 86_400_000
    fr = translator.get("fr").when(moment, "Europe/Paris", now_ms=now)
    assert fr == "lun. 21 sept. 16:13 CEST (14:13 UTC)"
    ru = translator.get("ru").when(moment, "Europe/Moscow", now_ms=now)
    assert ru.startswith("пн, 21 сент. 17:13") and ru.endswith("(14:13 UTC)")
    # English keeps the domain's form; a moment of another year shows the year.
    assert translator.get("en").when(moment, "UTC", now_ms=now) == "Mon 21 Sep 14:13 UTC"
    es = translator.get("es").when(moment, "America/Bogota", now_ms=now - 400 * 86_400_000)
    assert "2026" in es and "09:13" in es
    assert translator.get("fr").duration((3 * 24 + 4) * 3_600_000) == "3j 4h"
