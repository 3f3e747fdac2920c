"""Help, usage and parse errors in the reader's language (issue #24): the room's answers in
the group's language (French), a member's direct messages in their own (Arabic). Command
words, options and placeholders stay as typed. Service scenarios over a real SQLite
database, with the world of tests/unit/test_language_choice.py."""

from __future__ import annotations

from bot.domain.appeals import appeal_problem
from bot.domain.lifecycle import Action, LifecycleError, RequestState, transition
from bot.domain.process import DECISION, early_refusal, rationale_problem
from bot.i18n.catalog import FSI, PDI, Phrase
from commands import ParseFailure, parse
from commands.help import render_command_help, render_help
from commands.table import find_command
from tests.unit.test_engine import ALICE, BOB, CHAIR, ROOM, World
from tests.unit.test_language_choice import BOB_DM, TRANSLATOR, french

__all__ = ["french"]  # the fixture, used by name


def plain(text: str) -> str:
    """Text without the bidi isolates an Arabic sentence puts around its values."""
    return text.replace(FSI, "").replace(PDI, "")


async def test_language_help_in_french_in_the_room(french: World) -> None:
    ask = french.command(ALICE, "!cb help", room=ROOM)
    await french.apply(ask)
    body = (await french.reply_to(ask.event_id))["body"]
    assert body.startswith("Commandes (envoyez « !cb help COMMAND » pour le détail")
    assert "Prendre position" in body
    assert "Outils des présidents" in body
    assert "!cb support [REASON…] [--request N] — Soutenir l'admission du candidat." in body
    one = french.command(ALICE, "!cb help object", room=ROOM)
    await french.apply(one)
    body = (await french.reply_to(one.event_id))["body"]
    assert body.startswith("!cb object REASON… [--request N]\nS'opposer à l'admission")
    assert "Une objection bloque le consensus" in body
    assert "Dans le salon d'une demande, cela s'applique" in body  # the shared sentence
    assert "Qui : les membres. Où : le salon d'une demande, ou un message direct au bot" in body
    assert "Aussi : !cb no, !cb block" in body
    assert "Exemples :" in body
    assert "Who:" not in body


async def test_language_help_in_arabic_in_a_members_direct_chat(french: World) -> None:
    await french.apply(french.command(BOB, "!cb language ar", room=BOB_DM))
    ask = french.command(BOB, "!cb help object", room=BOB_DM)
    await french.apply(ask)
    reply = await french.reply_to(ask.event_id)
    body = plain(reply["body"])
    assert body.startswith("!cb object REASON… [--request N]\nالاعتراض على قبول مقدّم الطلب")
    assert "من: الأعضاء." in body
    assert "سبب اعتراضك" in body  # the argument's help: why you object
    assert reply["formatted_body"].startswith('<div dir="rtl">')
    unknown = french.command(BOB, "!cb help frobnicate", room=BOB_DM)
    await french.apply(unknown)
    assert "لا يوجد أمر 'frobnicate'" in plain((await french.reply_to(unknown.event_id))["body"])


async def test_language_usage_errors_in_french_and_arabic(french: World) -> None:
    bad = french.command(ALICE, "!cb status abc", room=ROOM)
    await french.apply(bad)
    body = (await french.reply_to(bad.event_id))["body"]
    assert "'abc' n'est pas un numéro de demande valable (écrivez par ex. 7 ou #7)." in body
    assert body.endswith("Usage : !cb status [N]")
    assert await french.acks(bad.event_id) == ["❌"]
    typo = french.command(ALICE, "!cb suport", room=ROOM)
    await french.apply(typo)
    body = (await french.reply_to(typo.event_id))["body"]
    assert "Je ne connais pas la commande 'suport'. Vouliez-vous dire !cb support ?" in body
    await french.apply(french.command(BOB, "!cb language ar", room=BOB_DM))
    option = french.command(BOB, "!cb support --request x", room=BOB_DM)
    await french.apply(option)
    body = plain((await french.reply_to(option.event_id))["body"])
    assert "--request: 'x' ليس رقم الطلب صالحًا (اكتب مثلًا 7 أو #7)." in body
    assert body.endswith("الاستخدام: !cb support [REASON…] [--request N]")
    missing = french.command(BOB, "!cb object --request 1", room=BOB_DM)
    await french.apply(missing)
    body = plain((await french.reply_to(missing.event_id))["body"])
    assert "يحتاج object إلى REASON…: سبب اعتراضك." in body


async def test_language_vote_note_in_the_rooms_language(french: World) -> None:
    vote = french.command(ALICE, "!cb vote yes", room=ROOM)
    await french.apply(vote)
    body = (await french.reply_to(vote.event_id))["body"]
    assert "Il n'y a pas de vote ici : les positions sont support, no-objection" in body
    assert "(enregistré comme support)" in body


def test_language_help_and_failures_stay_english_without_a_language() -> None:
    # The README reference and every English answer come from the same renderers.
    assert render_help("!cb").startswith('Commands (send "!cb help COMMAND" for details')
    fr = TRANSLATOR.get("fr")
    hum = find_command("hum")
    assert hum is not None
    assert render_command_help(hum, "!cb", fr).splitlines()[1] == (
        "Bourdonner pour ou contre en privé ; le salon n'entend que la force de chaque camp."
    )
    failure = parse("!cb hum sideways --request 1", "!cb", 0)
    assert isinstance(failure, ParseFailure)
    assert failure.message == "'sideways' is not one of: for, against."
    assert failure.render(fr).startswith("'sideways' n'est pas l'un de : for, against.\nUsage : ")


# ---- refusals built by the domain's rules, and the state words -------------------------


async def test_language_lifecycle_and_rule_refusals_in_the_rooms_french(french: World) -> None:
    reopen = french.command(CHAIR, "!cb reopen 48h", room=ROOM)
    await french.apply(reopen)
    body = (await french.reply_to(reopen.event_id))["body"]
    assert body == "❌ Pas maintenant : le scrutin est encore ouvert."
    decide = french.command(CHAIR, "!cb decide admit ok", room=ROOM)
    await french.apply(decide)
    body = (await french.reply_to(decide.event_id))["body"]
    assert body.startswith("❌ une décision demande une justification de fond : au moins une")
    assert "(30 caractères, 5 mots à elle)" in body
    status = french.command(CHAIR, "!cb status", room=ROOM)
    await french.apply(status)
    body = (await french.reply_to(status.event_id))["body"]
    assert "\nÉtat : ouverte" in body
    assert "Bourdonnements : les bourdonnements sont annoncés à la clôture du scrutin" in body
    listed = french.command(CHAIR, "!cb list", room=ROOM)
    await french.apply(listed)
    assert (await french.reply_to(listed.event_id))["body"].startswith(
        "#1 @erin:x — ouverte, clôture"
    )


async def test_language_a_members_refusals_in_arabic(french: World) -> None:
    await french.apply(french.command(BOB, "!cb language ar", room=BOB_DM))
    objected = "!cb object --request 1 They have not said how they would take part"
    await french.apply(french.command(BOB, objected, room=BOB_DM))
    contest = french.command(BOB, "!cb contest 1 It was never answered by anyone here", room=BOB_DM)
    await french.apply(contest)
    body = plain((await french.reply_to(contest.event_id))["body"])
    assert body == "❌ الاعتراض #1 مفتوح: لا يوجد بتّ للطعن فيه."
    chairs_only = french.command(BOB, "!cb triage", room=BOB_DM)
    await french.apply(chairs_only)
    body = plain((await french.reply_to(chairs_only.event_id))["body"])
    assert body.startswith("❌ لا يستطيع الاطلاع على الطلبات بانتظار الفرز إلا الرئيس")
    # The chair's dispositions in the room: French, the disposition's word as typed.
    dispose = french.command(CHAIR, "!cb dispose 1 addressed ok", room=ROOM)
    await french.apply(dispose)
    body = (await french.reply_to(dispose.event_id))["body"]
    assert body.startswith("❌ `addressed` demande une justification de fond")
    objections = french.command(CHAIR, "!cb objections", room=ROOM)
    await french.apply(objections)
    assert (
        "#1 @bob:x — ouverte: They have not" in (await french.reply_to(objections.event_id))["body"]
    )


def test_language_domain_phrases_say_spans_and_nested_words_in_each_language() -> None:
    refusal = early_refusal(3 * 86_400_000 + 4 * 3_600_000, "close", "!cb")
    assert str(refusal).startswith(
        "the ballot has not been open for the minimum time yet (3d 4h to go)"
    )
    fr = refusal.say(TRANSLATOR.get("fr"))
    assert fr.startswith(
        "le scrutin n'est pas encore ouvert depuis la durée minimale (encore 3j 4h)"
    )
    assert fr.endswith("dites pourquoi : !cb close --early RATIONALE")
    ru = plain(refusal.say(TRANSLATOR.get("ru")))
    assert "(осталось 3 д. 4 ч)" in ru
    closed = appeal_problem(0, 86_400_000, 2 * 86_400_000, entitled=True)
    assert closed is not None
    assert closed.say(TRANSLATOR.get("es")) == (
        "el plazo de apelación (1d tras el resultado) ha terminado"
    )
    why = rationale_problem("fine", DECISION)
    assert why is not None
    assert why.say(TRANSLATOR.get("zh_Hans")).startswith("决定需要有实质内容的理由")
    try:
        transition(RequestState.DECIDED, Action.DECIDE)
    except LifecycleError as exc:
        said = Phrase(exc.message, exc.params).say(TRANSLATOR.get("fr"))
        assert said == "la demande est déjà décidée (rouvrez-la d'abord)"
    else:
        raise AssertionError("a decided request was decided again")


# ---- the edit notice -------------------------------------------------------------------


async def test_language_edit_notice_in_each_members_language(french: World) -> None:
    await french.apply(french.command(BOB, "!cb language ar", room=BOB_DM))
    await french.apply(french.reaction(ALICE, "👍"), french.reaction(BOB, "👍"))
    await french.apply(french.command(CHAIR, "!cb edit 1 --country Kenya", room=ROOM))
    notices = {
        m.room_id: m.payload["body"] for m in await french.messages() if "✏" in m.payload["body"]
    }
    assert set(notices) == {None, f"dm:{ALICE}", f"dm:{BOB}"}, notices  # None: the room
    room = "✏ Demande #1 : @erin:x a été modifiée par @chair:x — country: KE"
    assert notices[None].startswith(room)
    assert notices[f"dm:{ALICE}"] == notices[None]  # Alice chose nothing: the group's
    bob = plain(notices[f"dm:{BOB}"])
    assert bob.startswith("✏ عدّل @chair:x")
    assert bob.endswith("إن كان موقفك سابقًا لهذا التغيير، يمكنك مراجعته.")
