"""Each member in their own language (issue #24): rooms in the group's language, direct
messages in the member's (`!cb language`), right-to-left Arabic. Service scenarios over a real
SQLite database, as in tests/unit/test_engine.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.lifecycle import RequestState
from bot.domain.positions import Position
from bot.domain.request import Applicant, Request
from bot.i18n.catalog import FSI, PDI, Translator
from bot.matrix import render
from storage.repo import Repository
from tests.unit.test_engine import (
    ALICE,
    BOB,
    CAROL,
    CHAIR,
    ERIN,
    MAIN,
    ROOM,
    World,
    make_world,
)

TRANSLATOR = Translator.load()
BOB_DM = "!dm-bob:x"


@pytest.fixture
async def french(tmp_path: Path) -> AsyncIterator[World]:
    """A French-speaking group with request #1 open; Bob has a direct chat with the bot."""
    w = await make_world(tmp_path / "bot.db", group_language="fr", translator=TRANSLATOR)
    async with w.db.transaction() as tx:
        await Repository(tx).set_dm_room(BOB, BOB_DM, w.clock.now_ms())
    assert await w.open_request() == 1
    try:
        yield w
    finally:
        await w.db.close()


async def test_language_rooms_speak_the_groups_language(french: World) -> None:
    # The ballot was sent (the world plays the sender's part for it): read its stored row.
    ballot = json.loads(await french.scalar("SELECT payload FROM outbox WHERE purpose = 'ballot'"))
    assert ballot["body"].startswith("🗳 Scrutin pour")
    assert "pas d'objection" in ballot["body"]
    [card] = await french.messages("request_card")
    assert "Principes de participation" in card.payload["body"]
    [tally] = await french.messages("tally")
    assert "Décompte en direct" in tally.payload["body"]
    # The machine-readable block stays language-free.
    assert ballot["consensus_bot"]["kind"] == "ballot"


async def test_language_a_member_chooses_theirs_and_is_answered_in_it(french: World) -> None:
    ask = french.command(BOB, "!cb language", room=BOB_DM)
    await french.apply(ask)
    assert "la langue du groupe" in (await french.reply_to(ask.event_id))["body"]
    choose = french.command(BOB, "!cb language ar", room=BOB_DM)
    await french.apply(choose)
    reply = await french.reply_to(choose.event_id)
    assert reply["consensus_bot"]["language"] == "ar"
    assert "العربية" in reply["body"]
    assert reply["formatted_body"].startswith('<div dir="rtl">')
    again = french.command(BOB, "!cb لغة", room=BOB_DM)  # the Arabic word for the command
    await french.apply(again)
    assert "أكتب إليك" in (await french.reply_to(again.event_id))["body"]
    unknown = french.command(BOB, "!cb language tlh", room=BOB_DM)
    await french.apply(unknown)
    assert await french.acks(unknown.event_id) == ["❌"]


async def test_language_reminders_and_hum_ack_in_each_members_language(french: World) -> None:
    await french.apply(french.command(BOB, "!cb language ar", room=BOB_DM))
    await french.apply(french.command(CHAIR, "!cb remind", room=ROOM))
    reminders = {m.room_id: m.payload for m in await french.messages("reminder")}
    bob, carol = reminders[f"dm:{BOB}"], reminders[f"dm:{CAROL}"]
    assert "لم تتخذ موقفًا بعد" in bob["body"]
    assert f"{FSI}{BOB}{PDI}" in bob["body"]  # the user ID reads whole in Arabic text
    assert bob["formatted_body"].startswith('<div dir="rtl">')
    assert "vous n'avez pas encore pris position" in carol["body"]
    assert not carol["formatted_body"].startswith("<div")
    hum = french.command(BOB, "!cb hum for --request 1", room=BOB_DM)
    await french.apply(hum)
    ack = await french.reply_to(hum.event_id)
    assert "سُجّلت همهمتك" in ack["body"]


async def test_language_draft_and_outcome_in_the_rooms_language_applicant_in_theirs(
    french: World,
) -> None:
    await french.apply(french.reaction(ALICE, "👍"), french.reaction(BOB, "👍"))
    await french.apply(french.reaction(CAROL, "👍"))
    await french.apply(french.command(CHAIR, "!cb close", room=ROOM))
    [draft] = await french.messages("summary")
    assert draft.payload["body"].startswith("🧭 Projet de sentiment de l'assemblée")
    assert "consensus approximatif pour admettre" in draft.payload["body"]
    async with french.db.transaction() as tx:  # the applicant chose Spanish at intake
        await Repository(tx).set_language(ERIN, "es", french.clock.now_ms())
    await french.apply(french.command(CHAIR, "!cb confirm", room=ROOM))
    outcomes = {o.room_id: o.payload for o in await french.messages("outcome")}
    assert set(outcomes) == {None, MAIN, f"dm:{ERIN}"}  # None: the request's own room
    for room in (None, MAIN):
        assert "le candidat est admis" in outcomes[room]["body"]
        assert outcomes[room]["consensus_bot"]["outcome"] == "admit"
    assert "el solicitante queda admitido" in outcomes[f"dm:{ERIN}"]["body"]


def sample_request() -> Request:
    applicant = Applicant(applicant="@erin:x", name="Erin", country="NP", stakeholder="academia")
    return Request(
        id=12,
        group_id="main",
        number=12,
        applicant=applicant,
        statement="I run an IXP.",
        filed_by=CHAIR,
        self_applied=False,
        state=RequestState.OPEN,
        room_id="!req12:x",
        ballot_event_id=None,
        deadline_at=1_800_000_000_000,
        created_at=1_799_000_000_000,
    )


def test_language_arabic_card_isolates_ids_and_numbers_and_carries_dir() -> None:
    ar = TRANSLATOR.get("ar")
    req = sample_request()
    card = render.request_card(req, 1_799_000_000_000, "Asia/Riyadh", ar)
    assert card.html.startswith('<div dir="rtl">')
    assert card.html.endswith("</div>")
    assert "نيبال (NP)" in card.body  # the country's name from CLDR, the ISO code as data
    ballot = render.ballot(req, "!cb", "Asia/Riyadh", 1_799_000_000_000, ar)
    assert f"{FSI}🗳{PDI}" in ballot.body
    assert "تأييد" in ballot.body
    legend_fr = render.ballot(req, "!cb", "UTC", 1_799_000_000_000, TRANSLATOR.get("fr")).body
    assert FSI not in legend_fr


def test_language_every_room_message_kind_differs_from_english_in_french() -> None:
    """No English sentence escapes the catalogs: each line of a French rendering differs
    from its English one, apart from the lines made only of data."""
    req = sample_request()
    fr, en = TRANSLATOR.get("fr"), TRANSLATOR.get("en")
    now = 1_799_000_000_000
    pairs = [
        (render.ballot(req, "!cb", "UTC", now, fr), render.ballot(req, "!cb", "UTC", now, en)),
        (render.request_card(req, now, "UTC", fr), render.request_card(req, now, "UTC", en)),
        (render.announcement(req, "UTC", now, fr), render.announcement(req, "UTC", now, en)),
        (
            render.reminder(req, BOB, "lun.", "2 j", "!cb", fr),
            render.reminder(req, BOB, "lun.", "2 j", "!cb", en),
        ),
    ]
    for french_message, english_message in pairs:
        for line_fr, line_en in zip(
            french_message.body.splitlines(), english_message.body.splitlines(), strict=True
        ):
            data_only = line_en.strip() in ("", req.statement) or line_en.startswith("📋 @erin")
            if not data_only:
                assert line_fr != line_en, line_en
    assert render.position_label(fr, Position.NO_OBJECTION) == "pas d'objection"
