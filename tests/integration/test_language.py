"""Each member in their own language, against a real Synapse (issue #24): the group speaks
French in its rooms, one member chose Arabic for her direct messages.

The bot runs as a process exactly as in production; members are real nio clients.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.devtools.sim_member import bot_message
from bot.devtools.synapse import LocalSynapse
from bot.i18n.catalog import FSI, PDI
from tests.integration.harness import dm_with_bot, running_group
from tests.integration.test_process import command, open_request, reply_to

pytestmark = pytest.mark.real


async def test_language_french_rooms_and_an_arabic_members_direct_messages(
    synapse: LocalSynapse, tmp_path: Path
) -> None:
    async with running_group(synapse, tmp_path, "lang", group_extra='language = "fr"') as g:
        chair, m = g.chair, g.members
        alice = m["alice"]  # reads Arabic
        dm = await dm_with_bot(alice, g)
        chosen = await command(alice, dm, "!cb language ar")
        answer = await alice.wait_for(reply_to(chosen), room_id=dm)
        assert "العربية" in answer["content"]["body"]

        room, ballot = await open_request(g, "--deadline 1h")
        # The rooms speak the group's language: the ballot is French.
        assert ballot["content"]["body"].startswith("🗳 Scrutin pour")
        assert "pas d'objection" in ballot["content"]["body"]

        # Alice's reminder comes in Arabic, right to left, her user ID isolated.
        await command(chair, room, "!cb remind")
        reminder = await alice.wait_for(bot_message("reminder", 1), room_id=dm)
        body = reminder["content"]["body"]
        assert "لم تتخذ موقفًا بعد" in body
        assert f"{FSI}{alice.user_id}{PDI}" in body
        assert reminder["content"]["formatted_body"].startswith('<div dir="rtl">')
        # So does the acknowledgement of her hum.
        hum = await command(alice, dm, "!cb hum for --request 1")
        ack = await alice.wait_for(reply_to(hum), room_id=dm)
        assert "سُجّلت همهمتك" in ack["content"]["body"]
        assert ack["content"]["formatted_body"].startswith('<div dir="rtl">')

        for name, key in (("alice", "👍"), ("bob", "👍"), ("carol", "👍"), ("dave", "👌")):
            await m[name].react(room, ballot["event_id"], key)
        await command(chair, room, "!cb close")
        draft = await chair.wait_for(bot_message("summary", 1), room_id=room)
        assert draft["content"]["body"].startswith("🧭 Projet de sentiment de l'assemblée")
        assert draft["content"]["consensus_bot"]["proposed_outcome"] == "rough-consensus-admit"
        await command(chair, room, "!cb confirm")
        outcome = await chair.wait_for(bot_message("outcome", 1), room_id=room)
        assert "le candidat est admis" in outcome["content"]["body"]
        assert outcome["content"]["consensus_bot"]["outcome"] == "admit"
        in_main = await chair.wait_for(bot_message("outcome", 1), room_id=g.main_room)
        assert "le candidat est admis" in in_main["content"]["body"]
