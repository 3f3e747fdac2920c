"""`consensus-bot publish`: the public site of decisions, built from a real database whose
requests were decided, declined, appealed or left open by the engine (test_engine's world)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from bot.cli import main
from bot.domain.publish import ATOM_NS, PublishOptions
from bot.services.publish import SiteGroup, site_files, write_site
from storage.repo import Repository
from tests.unit.test_engine import (
    ALICE,
    BOB,
    CAROL,
    CHAIR,
    DAVE,
    ERIN,
    MAIN,
    T0,
    World,
    make_world,
)

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_OBJECTION = "<script>alert('objection')</script>"
HOSTILE_DISPOSAL = '<img src=x onerror="alert(1)"> & done'
HOSTILE_RATIONALE = "</blockquote><script>alert('rationale')</script> Admitted by charter."
UNDECIDED = "SECRET-UNDECIDED-STATEMENT"
EXTRA = ("@g1:x", "@g2:x", "@g3:x")  # makes academia (and europe) big enough to show


async def _decided_world(path: Path) -> World:
    """Request 1 admitted after an objection was addressed; request 2 declined, appealed and
    the appeal denied; request 3 still open."""
    w = await make_world(path)
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        for user_id, country in zip(EXTRA, ("DE", "NP", "KE"), strict=True):
            # Countries give the development-status breakdown (Nepal: least developed).
            await repo.upsert_member("main", user_id, "academia", "europe", T0, "test", country)
    assert await w.open_request() == 1
    await w.apply(
        w.reaction(ALICE, "👍"),
        w.reaction(BOB, "👎"),
        w.reaction(CAROL, "👌"),
        *(w.reaction(g, "👍") for g in EXTRA),
    )
    await w.apply(w.command(BOB, f"!cb object {HOSTILE_OBJECTION}"))
    [objection] = await w.objections()
    await w.apply(w.command(CHAIR, "!cb close"))
    await w.apply(w.command(CHAIR, f"!cb dispose {objection.id} addressed {HOSTILE_DISPOSAL}"))
    await w.apply(w.command(CHAIR, f"!cb confirm {HOSTILE_RATIONALE}"))
    assert (await w.request(1)).outcome is not None

    assert (
        await w.open_request(
            room="!req2:x", ballot="$ballot2", applicant="@frank:x", statement="Frank asks."
        )
        == 2
    )
    async with w.db.transaction() as tx:
        await Repository(tx).update_request(2, country="KE", kind="organisation")
    await w.apply(w.reaction(DAVE, "👍", target="$ballot2", room="!req2:x"))
    await w.apply(
        w.command(
            CHAIR,
            "!cb decide decline Not yet a fit for the group, by its own charter.",
            room="!req2:x",
        )
    )
    await w.apply(w.command(DAVE, "!cb appeal 2 The Americas were not heard.", room=MAIN))
    await w.apply(
        w.command(
            CHAIR,
            "!cb appeal-answer 1 denied They were asked twice, in the room and by direct message.",
            room=MAIN,
        )
    )
    assert (await w.request(2)).outcome is not None

    assert (
        await w.open_request(
            room="!req3:x", ballot="$ballot3", applicant="@gina:x", statement=UNDECIDED
        )
        == 3
    )
    return w


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await _decided_world(tmp_path / "bot.db")
    try:
        yield w
    finally:
        await w.db.close()


async def _site(w: World, options: PublishOptions | None = None) -> dict[str, str]:
    async with w.db.transaction() as tx:
        return await site_files(
            Repository(tx),
            groups=[SiteGroup("main", "Test group")],
            options=options or PublishOptions(),
            now_ms=w.clock.now_ms(),
        )


class _Checker(HTMLParser):
    """A small HTML5 well-formedness check: every non-void element is closed in order."""

    VOID = frozenset({"meta", "link", "br", "img", "input", "hr", "rect"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        if any(name.startswith("on") for name, _ in attrs):
            self.problems.append(f"event handler on <{tag}>")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if any(name.startswith("on") for name, _ in attrs):
            self.problems.append(f"event handler on <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def _check_html(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>\n")
    assert '<meta http-equiv="Content-Security-Policy"' in text
    assert "script-src" not in text
    assert "default-src &#x27;none&#x27;" in text
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.problems == []
    assert checker.stack == []
    assert checker.scripts == 0
    for href in re.findall(r'(?:href|src)="([^"]*)"', text):
        assert "://" not in href, href  # relative links only
        assert not href.startswith("/"), href


async def test_publish_site_holds_decisions_only_and_nothing_private(world: World) -> None:
    files = await _site(world)
    pages = {name: text for name, text in files.items() if name.endswith(".html")}
    assert set(files) >= {
        "index.html",
        "index.json",
        "feed.atom",
        "outcome/admit.html",
        "outcome/decline.html",
        "decisions/1/index.html",
        "decisions/2/index.html",
    }
    # By default the record files (they name every member's position) stay with the group.
    assert not [name for name in files if "/request-" in name]
    assert not any(name.startswith("decisions/3/") for name in files)  # open: not published
    everything = "\n".join(files.values())
    assert UNDECIDED not in everything
    assert "@gina:x" not in everything
    for text in pages.values():
        _check_html(text)
    for text in files.values():
        # No member is named anywhere on the site (not beside objections, hums or appeals),
        # nor the applicants, who did not consent.
        for who in (ALICE, BOB, CAROL, DAVE, CHAIR, *EXTRA, ERIN, "@frank:x"):
            assert who not in text
    # A group that chose to publish its records puts them beside the pages, whole.
    chosen = await _site(world, PublishOptions(record_files=True))
    assert set(chosen) >= {
        "decisions/1/request-1-record-1.json",
        "decisions/1/request-1-record-1.md",
        "decisions/2/request-2-record-2.json",
    }
    index = json.loads(files["index.json"])
    assert [d["request"] for d in index["decisions"]] == [2, 1]  # newest first
    assert [d["outcome"] for d in index["decisions"]] == ["decline", "admit"]
    assert index["decisions"][0]["applicant"] == "an organisation from Kenya"
    assert index["decisions"][1]["applicant"] == "an individual"
    year = index["decisions"][0]["decided_at"][:4]
    assert f"year/{year}.html" in files
    assert "Request 2" in files["outcome/decline.html"]
    assert "Request 1" not in files["outcome/decline.html"]


async def test_publish_decision_page_content_and_escaping(world: World) -> None:
    files = await _site(world)
    page = files["decisions/1/index.html"]
    assert 'id="outcome">Admitted<' in page
    # Hostile text arrives escaped, never as markup.
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;/blockquote&gt;&lt;script&gt;alert(&#x27;rationale&#x27;)" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; done" in page
    assert "Objection 1: <strong>addressed</strong>" in page
    # Objection reasons are member text and stay in the record only.
    assert "alert(&#x27;objection&#x27;)" not in page
    # Small groups: positions hidden (same rule as the draft), big ones shown.
    rows = dict(re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", page))
    assert "not shown (fewer than 3 members)" in rows["government"]
    assert "not shown" in rows["civil-society"]
    assert "support 4" in rows["academia"]
    assert "not shown" not in rows["europe"]
    assert "The decision was not appealed." in page

    declined = files["decisions/2/index.html"]
    assert 'id="outcome">Declined<' in declined
    assert (
        "Appeal 1: answered, <strong>denied</strong> — "
        "They were asked twice, in the room and by direct message." in declined
    )
    assert "The Americas were not heard" not in declined


async def test_publish_names_beside_objections_when_chosen(world: World) -> None:
    files = await _site(world, PublishOptions(names_beside_objections=True))
    assert f"Objection 1 raised by {BOB}" in files["decisions/1/index.html"]


async def test_feed_parses_as_atom(world: World) -> None:
    files = await _site(world)
    feed = ET.fromstring(files["feed.atom"])
    assert feed.tag == f"{{{ATOM_NS}}}feed"
    ids = [i.text or "" for i in feed.iter(f"{{{ATOM_NS}}}id")]
    assert all(" " not in i for i in ids)  # IDs are URIs, even for "Test group"
    entries = feed.findall(f"{{{ATOM_NS}}}entry")
    assert len(entries) == 2
    for entry in entries:
        for child in ("title", "id", "updated", "link", "summary"):
            assert entry.find(f"{{{ATOM_NS}}}{child}") is not None
    links = [e.find(f"{{{ATOM_NS}}}link").get("href") for e in entries]  # type: ignore[union-attr]
    assert links == ["decisions/2/index.html", "decisions/1/index.html"]
    assert all(link in files for link in links)


async def test_transparency_charts_are_accessible(world: World) -> None:
    index = (await _site(world))["index.html"]
    assert index.count("<svg") == 3
    for chart in ("by-region", "by-stakeholder", "by-development"):
        assert f'<title id="{chart}-t">' in index
        assert f'<desc id="{chart}-d">' in index
        assert f'aria-describedby="{chart}-t"' in index  # the data table beside it


def test_publish_cli_writes_site_whose_records_verify_against_their_heads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def build() -> None:
        w = await _decided_world(tmp_path / "bot.db")
        await w.db.close()

    asyncio.run(build())
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    config = tmp_path / "config.toml"
    text = text.replace('path = "data/consensus.db"', f'path = "{tmp_path / "bot.db"}"')
    config.write_text(text.replace("record_files = false", "record_files = true"))
    out = tmp_path / "site"
    (out / "stale").mkdir(parents=True)  # an old site is replaced as a whole
    assert main(["publish", "--config", str(config), "--out", str(out)]) == 0
    assert "published 2 decision(s)" in capsys.readouterr().out
    assert not (out / "stale").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")]  # no leftovers
    checked = 0
    for page in sorted(out.glob("decisions/*/index.html")):
        html = page.read_text(encoding="utf-8")
        commands = re.findall(r"<code>(consensus-bot export --verify [^<]+)</code>", html)
        heads = re.findall(r'<code class="head" id="head-\d+">([0-9a-f]{64})</code>', html)
        assert commands
        assert len(commands) == len(heads)
        monkeypatch.chdir(page.parent)  # the command is printed to run beside the files
        for command, head in zip(commands, heads, strict=True):
            argv = command.split()[1:]
            assert argv[argv.index("--head") + 1] == head
            assert main(argv) == 0
            assert "nobody rewrote it" in capsys.readouterr().out
            checked += 1
            # The same file against another head does not verify.
            forged = [*argv[: argv.index("--head") + 1], "0" * 64]
            assert main(forged) == 1
            capsys.readouterr()
    assert checked == 3  # request 1: one segment; request 2: decision and answered appeal
    # Publishing again replaces the site atomically and gives the same pages.
    before = (out / "decisions/1/index.html").read_text(encoding="utf-8")
    assert main(["publish", "--config", str(config), "--out", str(out)]) == 0
    assert (out / "decisions/1/index.html").read_text(encoding="utf-8") == before


def test_publish_refuses_paths_outside_the_site(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside the site"):
        write_site({"../escape.html": "x"}, tmp_path / "site")
    assert not (tmp_path / "escape.html").exists()
    assert not (tmp_path / "site").exists()


async def test_publish_names_the_applicant_only_with_consent(world: World) -> None:
    async with world.db.transaction() as tx:
        await Repository(tx).update_request(1, publish_consent=True)
        await Repository(tx).update_request(2, publish_consent=False)
    files = await _site(world)
    # The name as the frozen record holds it (no name was given: the Matrix ID).
    assert f"Request 1: {ERIN}" in files["decisions/1/index.html"]
    declined = files["decisions/2/index.html"]
    assert "Request 2: an organisation from Kenya" in declined
    assert "@frank:x" not in declined


async def test_publish_consent_is_asked_at_intake_and_stored(tmp_path: Path) -> None:
    w = await make_world(tmp_path / "intake.db")
    try:
        dm = "!dm-mallory:x"
        await w.services.dms.remember("@mallory:x", dm)
        steps = [
            "!cb apply --country Nepal --stakeholder technical-community "
            "--background 'APNIC member; RFC 9999 co-author' I run a registry.",
            "!cb affirm 1",
        ]
        for body in steps:
            w.clock.advance(20_000)
            await w.apply(w.command("@mallory:x", body, room=dm))
        assert (await w.request(1)).publish_consent is None
        asked = [
            str(m.payload.get("body", ""))
            for m in await w.messages()
            if m.room_id == dm and "May your name and organisation be published" in str(m.payload)
        ]
        assert asked  # the complete application asks for consent
        w.clock.advance(20_000)
        answer = w.command("@mallory:x", "!cb apply - --publish yes", room=dm)
        await w.apply(answer)
        assert (await w.request(1)).publish_consent is True
        body = str((await w.reply_to(answer.event_id))["body"])
        assert "It is complete" in body
        assert "May your name" not in body  # answered: not asked again
        w.clock.advance(20_000)
        await w.apply(w.command("@mallory:x", "!cb apply - --publish no", room=dm))
        assert (await w.request(1)).publish_consent is False
    finally:
        await w.db.close()


async def test_publish_dir_is_regenerated_after_decision_appeal_answer_and_reopen(
    tmp_path: Path,
) -> None:
    site = tmp_path / "public"
    w = await make_world(
        tmp_path / "live.db",
        publish_dir=str(site),
        publish_room="!public:x",
        publish=PublishOptions(record_files=True),
    )
    try:
        await w.open_request()
        await w.apply(w.reaction(ALICE, "👍"), w.reaction(CAROL, "👌"))
        assert not site.exists()  # nothing is published before a decision
        await w.apply(w.command(CHAIR, f"!cb decide admit {HOSTILE_RATIONALE}"))
        page = (site / "decisions/1/index.html").read_text(encoding="utf-8")
        head = re.findall(r'id="head-1">([0-9a-f]{64})<', page)
        assert head
        # The public room hears the outcome with its page and head, and no member's name.
        [public] = [m for m in await w.messages() if m.room_id == "!public:x"]
        body = str(public.payload["body"])
        assert "decisions/1/index.html" in body
        assert head[0] in body
        for who in (ALICE, CAROL, CHAIR, ERIN):
            assert who not in str(public.payload)

        await w.apply(w.command(DAVE, "!cb appeal 1 The Americas were not heard.", room=MAIN))
        await w.apply(
            w.command(
                CHAIR, "!cb appeal-answer 1 denied They were asked twice, by name.", room=MAIN
            )
        )
        assert (site / "decisions/1/request-1-record-2.json").exists()
        assert "Appeal 1: answered" in (site / "decisions/1/index.html").read_text("utf-8")

        await w.apply(w.command(CHAIR, "!cb reopen 7d"))
        assert not (site / "decisions/1").exists()  # withdrawn: no longer a decision
        assert json.loads((site / "index.json").read_text("utf-8")) == {"decisions": []}
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".public.")]  # noqa: ASYNC240
    finally:
        await w.db.close()


async def test_publish_failure_never_fails_the_decision(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x", encoding="utf-8")
    w = await make_world(tmp_path / "fail.db", publish_dir=str(blocker / "site"))
    try:
        await w.open_request()
        await w.apply(w.reaction(ALICE, "👍"))
        decide = w.command(CHAIR, "!cb decide decline Not a fit for the group yet, by its charter.")
        await w.apply(decide)
        assert await w.acks(decide.event_id) == ["✅"]
        assert (await w.request(1)).outcome is not None
        assert "was not regenerated" in caplog.text
    finally:
        await w.db.close()
