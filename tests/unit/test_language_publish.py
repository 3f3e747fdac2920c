"""The Markdown minutes and the public site in the group's language (issue #24): only the
rendering is translated, the frozen records, their heads and `index.json` are the same bytes
in every language, and the records still verify. Over a real SQLite database whose requests
were decided by the engine (tests/unit/test_publish.py's world)."""

from __future__ import annotations

import json
import re

from bot.domain.publish import PublishOptions
from bot.domain.record import verify_json
from bot.domain.record_render import render_json, render_markdown
from bot.i18n.catalog import Language
from bot.services.publish import SiteGroup, site_files
from storage.repo import Repository
from tests.unit.test_engine import ALICE, BOB, CAROL, CHAIR, World
from tests.unit.test_language_choice import TRANSLATOR, french
from tests.unit.test_publish import _check_html, world

__all__ = ["french", "world"]  # the fixtures, used by name
FILES = PublishOptions(record_files=True)


async def _site(w: World, lang: Language | None) -> dict[str, str]:
    async with w.db.transaction() as tx:
        return await site_files(
            Repository(tx),
            groups=[SiteGroup("main", "Groupe", lang)],
            options=FILES,
            now_ms=w.clock.now_ms(),
        )


async def test_language_published_site_in_french_with_the_same_records(world: World) -> None:
    english = await _site(world, None)
    files = await _site(world, TRANSLATOR.get("fr"))
    assert set(files) == set(english)
    page = files["decisions/1/index.html"]
    _check_html(page)
    assert '<html lang="fr" dir="ltr">' in page
    assert "<h2>La justification du président</h2>" in page
    assert '<p>Décidé le <time datetime="' in page
    assert "<h2>Bourdonnements</h2>" in page
    assert "Toutes les décisions</a>" in page
    assert 'id="outcome">Admis</p>' in page
    assert "<th scope='row'>abstention</th>" in page
    index = files["index.html"]
    assert "<h1>Décisions de Groupe</h1>" in index
    assert "Participation par région" in index
    assert "<title>Décisions de Groupe</title>" in files["feed.atom"]
    # The data is language-free: the records, their heads and index.json are the same bytes.
    for name in files:
        if name.endswith(".json"):
            assert files[name] == english[name], name
    for name in [n for n in files if re.search(r"record-\d+\.json$", n)]:
        head = json.loads(files[name])["head"]
        assert verify_json(files[name], head=head) == []
        assert head in page or not name.startswith("decisions/1/")
    # The verify command printed on the page is the same in every language.
    command = re.findall(r"<code>(consensus-bot export --verify [^<]+)</code>", page)
    assert command == re.findall(
        r"<code>(consensus-bot export --verify [^<]+)</code>", english["decisions/1/index.html"]
    )
    minutes = files["decisions/1/request-1-record-1.md"]
    assert minutes.startswith("# Procès-verbal : demande de participation #1")
    assert "## Chronologie" in minutes
    assert json.loads(files["decisions/1/request-1-record-1.json"])["head"] in minutes


async def test_language_published_site_in_arabic_is_right_to_left(world: World) -> None:
    files = await _site(world, TRANSLATOR.get("ar"))
    for name in ("index.html", "decisions/1/index.html", "decisions/2/index.html"):
        _check_html(files[name])
        assert '<html lang="ar" dir="rtl">' in files[name]
    assert "مسوّغ الرئيس" in files["decisions/1/index.html"]
    chinese = await _site(world, TRANSLATOR.get("zh_Hans"))
    assert '<html lang="zh-Hans" dir="ltr">' in chinese["index.html"]
    english = await _site(world, None)
    assert '<html lang="en" dir="ltr">' in english["index.html"]


async def test_language_markdown_export_in_the_groups_french(french: World) -> None:
    await french.apply(french.reaction(ALICE, "👍"), french.reaction(BOB, "👍"))
    await french.apply(french.reaction(CAROL, "👍"))
    await french.apply(french.command(CHAIR, "!cb close"))
    await french.apply(french.command(CHAIR, "!cb confirm"))
    await french.apply(french.command(ALICE, "!cb export --format md"))
    await french.apply(french.command(ALICE, "!cb export"))
    [md, js] = [i.payload for i in await french.pending() if i.op == "file"]
    minutes = str(md["data"])
    assert minutes.startswith("# Procès-verbal : demande de participation #1")
    assert "## Positions" in minutes
    assert "| Soutien | 3 |" in minutes
    assert "Le président, \\@chair:x, a décidé le 2027-01-15 08:00 UTC : **admission**." in minutes
    assert "(14 jours après la décision)" in minutes
    record = json.loads(str(js["data"]))
    assert verify_json(str(js["data"]), head=record["head"]) == []
    assert f"Tête du registre (SHA-256) : `{record['head']}`" in minutes
    # Rendering in another language changes nothing of the record.
    before = render_json(record)
    render_markdown(record, TRANSLATOR.get("ar"))
    assert render_json(record) == before
    assert render_markdown(record) != render_markdown(record, TRANSLATOR.get("fr"))
