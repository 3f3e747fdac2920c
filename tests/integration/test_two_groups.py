"""Two groups in one bot against a real Synapse (issue 26).

One bot process serves a core group and a working group, each with its own main room,
chairs, roster (two members are in both), quorum, deadline and language. Both file their
first request at the same time: each is its group's #1, the same votes give different drafts,
a chair of one group is refused in the other's room, and a member of both is asked in her
direct chat which group a command is about. Everyone is a real nio client; the bot runs as in
production.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.devtools.sim_member import SimMember, bot_message, reaction_to
from bot.devtools.synapse import LocalSynapse
from tests.integration.harness import dm_with_bot, make_group, query
from tests.integration.test_process import command, reply_to

pytestmark = pytest.mark.real


async def test_two_groups_in_one_bot_on_a_real_homeserver(
    synapse: LocalSynapse, tmp_path: Path
) -> None:
    g = await make_group(synapse, tmp_path, "two", deadline="14d")
    try:
        alice, bob, carol = g.members["alice"], g.members["bob"], g.members["carol"]
        # The working group: its own chair and main room; alice and bob are in both groups,
        # frank only in the working group.
        wg_chair_user = synapse.register("two-wgchair")
        frank_user = synapse.register("two-frank")
        for user in (wg_chair_user, frank_user):
            synapse.exempt_from_rate_limits(user.user_id)
        wg_chair = SimMember(
            synapse.base_url,
            wg_chair_user.user_id,
            wg_chair_user.access_token,
            wg_chair_user.device_id,
        )
        frank = SimMember(
            synapse.base_url, frank_user.user_id, frank_user.access_token, frank_user.device_id
        )
        g.clients += [wg_chair, frank]
        await asyncio.gather(wg_chair.connect(), frank.connect())
        wg_main = await wg_chair.create_room("Working group", [])
        # The core group's chair is a plain member of the working group.
        for user_id in (g.bot_user.user_id, g.chair.user_id, alice.user_id, bob.user_id,
                        frank.user_id):  # fmt: skip
            await wg_chair.gateway.invite(wg_main, user_id)
        await asyncio.gather(*(m.join(wg_main) for m in (g.chair, alice, bob, frank)))

        text = g.config_path.read_text(encoding="utf-8")
        head, rest = text.split("\n[group]\n", 1)
        group_lines, process = rest.split("\n[process]\n", 1)
        core = '\n[[groups]]\nid = "core"\n'
        core += group_lines.replace("[[group.members]]", "[[groups.members]]")
        core += "\n[groups.process]\n" + process.split("\n[digest]\n")[0]
        core += '\n[groups.digest]\nschedule = ""\n'
        seeds = "".join(
            f'\n[[groups.members]]\nuser_id = "{u}"\nstakeholder = "{s}"\nregion = "{r}"\n'
            for u, s, r in (
                (g.chair.user_id, "government", "europe"),
                (alice.user_id, "academia", "europe"),
                (bob.user_id, "civil-society", "africa"),
                (frank.user_id, "private-sector", "asia-pacific"),
            )
        )
        wg = f"""
[[groups]]
id = "wg"
name = "Routing Working Group"
main_room = "{wg_main}"
chairs = ["{wg_chair.user_id}"]
request_rooms = "invite"
language = "fr"
{seeds}
[groups.process]
deadline = "7d"
min_deadline = "1s"
quorum = 0.9
reminders = []

[groups.digest]
schedule = ""
"""
        g.config_path.write_text(head + core + wg, encoding="utf-8")
        g.bot.start()
        await g.bot.wait_ready()

        # Both chairs file at the same time.
        await asyncio.gather(
            command(
                g.chair,
                g.main_room,
                f"!cb request {g.applicant.user_id} --stakeholder academia --region europe "
                "Erin maintains an RPKI validator.",
            ),
            command(
                wg_chair,
                wg_main,
                f"!cb request {g.applicant.user_id} --stakeholder academia --region europe "
                "Erin maintains an RPKI validator.",
            ),
        )
        rooms: dict[str, str] = {}
        for _ in range(300):
            rows = await query(g, "SELECT group_id, room_id FROM requests")
            rooms = {r["group_id"]: r["room_id"] for r in rows if r["room_id"]}
            if len(rooms) == 2:
                break
            await asyncio.sleep(0.1)
        core_room, wg_room = rooms["core"], rooms["wg"]
        core_people = [g.chair, *g.members.values()]
        wg_people = [wg_chair, g.chair, alice, bob, frank]
        for member, room in [(p, core_room) for p in core_people] + [
            (p, wg_room) for p in wg_people
        ]:
            await member.wait_invite(lambda r, room=room: r == room)
            await member.join(room)
        core_ballot = await g.chair.wait_for(bot_message("ballot"), room_id=core_room)
        wg_ballot = await wg_chair.wait_for(bot_message("ballot"), room_id=wg_room)
        # Each is its group's #1; the working group speaks French.
        assert "#1" in core_ballot["content"]["body"]
        assert "#1" in wg_ballot["content"]["body"]
        assert wg_ballot["content"]["body"].startswith("🗳 Scrutin pour")
        rows = await query(g, "SELECT group_id, number, deadline_at - created_at AS span "
                              "FROM requests ORDER BY group_id")  # fmt: skip
        assert [(r["group_id"], r["number"]) for r in rows] == [("core", 1), ("wg", 1)]
        assert [r["span"] for r in rows] == [14 * 86_400_000, 7 * 86_400_000]
        # Frank is not in the core group's room; carol and dave are not in the working group's.
        eligible = await query(g, "SELECT r.group_id, e.user_id FROM eligible e "
                                  "JOIN requests r ON r.id = e.request_id")  # fmt: skip
        assert {e["user_id"] for e in eligible if e["group_id"] == "wg"} == {
            g.chair.user_id,
            alice.user_id,
            bob.user_id,
            frank.user_id,
        }

        await asyncio.sleep(1.1)  # min_deadline 1s
        # The same two supporters on both ballots.
        for member in (alice, bob):
            await member.react(core_room, core_ballot["event_id"], "👍")
            await member.react(wg_room, wg_ballot["event_id"], "👍")
        await carol.react(core_room, core_ballot["event_id"], "👌")
        # A chair of the core group is refused in the working group's room.
        refused = await command(g.chair, wg_room, "!cb close", ok=False)
        answer = await g.chair.wait_for(reply_to(refused), room_id=wg_room)
        assert "chair" in answer["content"]["body"]
        await command(g.chair, core_room, "!cb close")
        await command(wg_chair, wg_room, "!cb close")
        core_draft = await g.chair.wait_for(bot_message("summary"), room_id=core_room)
        wg_draft = await wg_chair.wait_for(bot_message("summary"), room_id=wg_room)
        # 3 of 4 took part in the core group (quorum 0.5); 2 of 4 in the working group (0.9).
        assert core_draft["content"]["consensus_bot"]["proposed_outcome"] == (
            "rough-consensus-admit"
        )
        assert wg_draft["content"]["consensus_bot"]["proposed_outcome"] == (
            "insufficient-participation"
        )

        # Alice is in both groups: her direct chat asks which one, then remembers.
        dm = await dm_with_bot(alice, g)
        ask = await alice.say(dm, "!cb mine 1")
        question = await alice.wait_for(reply_to(ask), room_id=dm)
        assert "Which group" in question["content"]["body"]
        await command(alice, dm, "!cb group wg")
        mine = await command(alice, dm, "!cb mine 1")
        told = await alice.wait_for(reply_to(mine), room_id=dm)
        wg_key = next(r["id"] for r in await query(g, "SELECT id FROM requests "
                                                      "WHERE group_id = 'wg'"))  # fmt: skip
        assert told["content"]["consensus_bot"]["request"] == wg_key
        await alice.wait_for(reaction_to(ask, "❌"), room_id=dm)
    finally:
        await g.close()
