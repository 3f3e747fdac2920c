"""The catalogs and the languages (issue #24): bot/i18n, bot/locale."""

from __future__ import annotations

import re
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import Any

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
    assert ar.rtl
    assert ar.direction == "rtl"
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
    assert ru.startswith("пн, 21 сент. 17:13")
    assert ru.endswith("(14:13 UTC)")
    # English keeps the domain's form; a moment of another year shows the year.
    assert translator.get("en").when(moment, "UTC", now_ms=now) == "Mon 21 Sep 14:13 UTC"
    es = translator.get("es").when(moment, "America/Bogota", now_ms=now - 400 * 86_400_000)
    assert "2026" in es
    assert "09:13" in es
    assert translator.get("fr").duration((3 * 24 + 4) * 3_600_000) == "3j 4h"


# ---- the catalogs are complete and consistent (issue #24) ---------------------------------

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def catalogs() -> dict[str, Any]:
    return {code: po_catalog(code) for code in LANGUAGES}


def template():  # type: ignore[no-untyped-def]
    path = resources.files("bot") / "locale" / "consensus.pot"
    return read_po(BytesIO(path.read_bytes()), domain="consensus")


def test_i18n_every_message_of_the_catalog_is_translated_in_each_language() -> None:
    ids = {m.id for m in template() if m.id}
    assert len(ids) > 250
    for code, catalog in catalogs().items():
        have = {m.id for m in catalog if m.id}
        assert have == ids, f"{code}: catalog out of date, run make i18n"
        for message in catalog:
            if not message.id:
                continue
            assert not message.fuzzy, (code, message.id)
            forms = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(forms), (code, message.id)
            if isinstance(message.id, tuple):
                assert len(forms) == catalog.num_plurals, (code, message.id)


def test_i18n_translations_keep_exactly_the_placeholders_of_their_message() -> None:
    for code, catalog in catalogs().items():
        # Babel's own checkers (python-format among them) find nothing to say.
        problems = [(m.id, str(e)) for m, errors in catalog.check() for e in errors]
        assert problems == [], code
        for message in catalog:
            if not message.id:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            expected = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
            forms = message.string if isinstance(message.string, tuple) else (message.string,)
            for form in forms:
                assert set(PLACEHOLDER.findall(form)) == expected, (code, message.id, form)


class Samples(dict[str, str]):
    """Sample arguments: any placeholder gets a value naming it."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def test_i18n_every_message_formats_in_every_language_with_sample_arguments(
    translator: Translator,
) -> None:
    for message in template():
        if not message.id:
            continue
        for code in LANGUAGES:
            lang = translator.get(code)
            if isinstance(message.id, tuple):
                singular, plural = message.id
                names = set(PLACEHOLDER.findall(singular + plural)) - {"n"}
                for n in (0, 1, 2, 5, 11, 21, 100):
                    text = lang.ngettext(singular, plural, n, **{k: f"<{k}>" for k in names})
                    assert "%(" not in text
                    assert all(f"<{k}>" in text for k in names)
            else:
                names = set(PLACEHOLDER.findall(message.id))
                text = lang._(message.id, **{k: f"<{k}>" for k in names})
                assert "%(" not in text, (code, message.id)
                assert all(f"<{k}>" in text for k in names), (code, message.id, text)
                if code != "en" and message.id.strip() not in SAME_IN_SOME_LANGUAGES:
                    assert text != message.id or not names, (code, message.id)


# Words that some languages write as English does (a proper noun, a format line).
SAME_IN_SOME_LANGUAGES = {"%(field)s: %(value)s", "Organisation", "Collaboration", "Participation"}


def plain(text: str) -> str:
    return text.replace(FSI, "").replace(PDI, "")


def test_locale_plural_forms_are_right_for_russian_and_arabic(translator: Translator) -> None:
    ru, ar = translator.get("ru"), translator.get("ar")
    members = ("%(n)s member:", "%(n)s members:")
    said = {n: ru.ngettext(*members, n) for n in (1, 2, 5, 11, 21, 100)}
    assert said == {
        1: "1 участник:",
        2: "2 участника:",
        5: "5 участников:",
        11: "11 участников:",
        21: "21 участник:",
        100: "100 участников:",
    }
    said = {n: plain(ar.ngettext(*members, n)) for n in (1, 2, 5, 11, 21, 100)}
    assert said == {
        1: "عضو واحد (1):",
        2: "عضوان (2):",
        5: "5 أعضاء:",
        11: "11 عضوًا:",
        21: "21 عضوًا:",
        100: "100 عضو:",
    }
    days = (
        "a ballot closes at most %(n)s day from now.",
        "a ballot closes at most %(n)s days from now.",
    )
    assert ru.ngettext(*days, 21).endswith("21 день.")
    assert ru.ngettext(*days, 3).endswith("3 дня.")
    assert ru.ngettext(*days, 12).endswith("12 дней.")
    assert plain(ar.ngettext(*days, 100)).startswith("تُغلق بطاقة الاقتراع بعد 100 يوم")
    assert translator.get("zh_Hans").ngettext(*members, 5) == "5 名成员："


def test_i18n_the_template_holds_every_message_the_code_marks() -> None:
    """`make i18n` was run: extracting the code now gives exactly the template's messages,
    so no wrapped text escapes the catalogs."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

    root = Path(__file__).resolve().parents[2]
    keywords = {**DEFAULT_KEYWORDS, "markup": None, "Np_": (1, 2)}
    found = set()
    for folder in ("bot", "commands"):
        method_map = [("**.py", "python")]
        for _file, _line, message, _comments, _context in extract_from_dir(
            root / folder, method_map, keywords=keywords
        ):
            found.add(message)
    assert found == {m.id for m in template() if m.id}


def test_layering_babel_stays_in_the_i18n_package_and_its_tools() -> None:
    from tests.unit.test_layering import importers_of

    users = importers_of("babel")
    assert "bot/i18n/catalog.py" in users
    assert sorted(u for u in users if not u.startswith(("bot/i18n/", "bot/devtools/"))) == []
