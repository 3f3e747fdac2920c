"""The consensus process end to end against a real Synapse (issue 3 and 4 paths).

Objections tracked to a disposition, a native poll response, recusal, anonymous hums by
direct message, status, export; reminders by direct message, the digest, and a deadline
that passes while the bot is stopped.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.devtools.sim_member import Event, SimMember, bot_message, reaction_to
from bot.devtools.synapse import LocalSynapse
from tests.integration.harness import Group, make_group

pytestmark = pytest.mark.real


def reply_to(event_id: str) -> Callable[[Event], bool]:
    def match(ev: Event) -> bool:
        content = ev.get("content", {})
        return content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id

    return match


async def command(member: SimMember, room: str, text: str, ok: bool = True) -> str:
    """Send a command and wait for the bot's ✅ (or ❌)."""
    event_id = await member.say(room, text)
    await member.wait_for(reaction_to(event_id, "✅" if ok else "❌"), room_id=room, timeout=30)
    return event_id


async def open_request(group: Group, extra: str = "", number: int = 1) -> tuple[str, Event]:
    await command(
        group.chair,
        group.main_room,
        f"!cb request {group.applicant.user_id} --stakeholder academia --region europe {extra}"
        " Erin maintains an open-source RPKI validator.",
    )
    room = await group.chair.wait_invite()
    for member in [group.chair, *group.members.values()]:
        await member.wait_invite(lambda r: r == room)
        await member.join(room)
    ballot = await group.chair.wait_for(
        lambda ev: ev.get("type") == "m.room.message" and bot_message("ballot", number)(ev),
        room_id=room,
    )
    # The test groups' process.min_deadline is 1 s: let it pass, so the chair may close.
    await asyncio.sleep(1.1)
    return room, ballot


@pytest.fixture
async def group(
    synapse: LocalSynapse, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Group]:
    tag = {"test_consensus_process": "proc", "test_reminders_digest_and_restart": "time"}[
        request.node.name
    ]
    # Three members hum in the process test: the smallest minimum a group may configure.
    kwargs = {"reminders": ("12s",), "deadline": "14d"} if tag == "time" else {"hum_min": 3}
    g = await make_group(synapse, tmp_path, tag, **kwargs)  # type: ignore[arg-type]
    if tag == "time":
        await g.members["carol"].set_profile_field("m.tz", "Asia/Tokyo")
    g.bot.start()
    await g.bot.wait_ready()
    try:
        yield g
    finally:
        await g.close()


async def test_consensus_process(group: Group) -> None:
    chair, m = group.chair, group.members
    alice, bob, carol, dave = m["alice"], m["bob"], m["carol"], m["dave"]
    room, ballot = await open_request(group, "--deadline 1h")
    poll = await bob.wait_for(bot_message("ballot", 1, format="poll"), room_id=room)
    assert poll["type"] == "org.matrix.msc3381.poll.start"

    # A bare 👎 is recorded as an objection and the bot asks for the reason.
    thumbs_down = await alice.react(room, ballot["event_id"], "👎")
    ask = await alice.wait_for(reply_to(thumbs_down), room_id=room)
    assert ask["content"]["m.mentions"] == {"user_ids": [alice.user_id]}
    objection_id = ask["content"]["consensus_bot"]["objections"][0]["id"]
    # Giving the reason fills in the same objection (no second one).
    obj = await command(alice, room, "!cb object The organisation has no security contact.")
    listed = await alice.wait_for(reply_to(obj), room_id=room)
    assert listed["content"]["consensus_bot"]["objections"] == [
        {"id": objection_id, "member": alice.user_id, "state": "open"}
    ]

    # Bob answers the native poll; carol recuses; dave takes no position.
    await bob.send_event(
        room,
        "org.matrix.msc3381.poll.response",
        {
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
            "org.matrix.msc3381.poll.response": {"answers": ["support"]},
        },
    )
    await command(carol, room, "!cb recuse I work for the applicant's organisation.")

    # Hums go by direct message; in the request room they are refused.
    await command(alice, room, "!cb hum for --request 1", ok=False)
    for member, hum in ((alice, "against soft"), (bob, "for loud"), (dave, "for loud")):
        dm = await member.open_dm(group.bot_user.user_id)
        await member.wait_for(
            lambda ev: (
                ev.get("type") == "m.room.member"
                and ev.get("state_key") == group.bot_user.user_id
                and ev.get("content", {}).get("membership") == "join"
            ),
            room_id=dm,
        )
        await command(member, dm, f"!cb hum {hum} --request 1")

    status = await command(dave, room, "!cb status")
    answer = await dave.wait_for(reply_to(status), room_id=room)
    assert "If it closed now: no consensus yet" in answer["content"]["body"]
    assert answer["content"]["consensus_bot"]["open_objections"] == 1

    # Closing now drafts "no consensus yet": the objection is open. Confirm is refused.
    await command(chair, room, "!cb close")
    draft = await chair.wait_for(bot_message("summary", 1), room_id=room)
    data = draft["content"]["consensus_bot"]
    assert data["proposed_outcome"] == "no-consensus-yet"
    assert data["open_objections"] == 1
    assert data["eligible"] == 3  # carol recused
    assert data["counts"]["support"] == 1
    assert data["counts"]["recuse"] == 1
    assert data["hums"] == "for: loud, against: soft"
    refused = await command(chair, room, "!cb confirm", ok=False)
    why = await chair.wait_for(reply_to(refused), room_id=room)
    assert "objections are still open" in why["content"]["body"]

    # The chair addresses the objection; the new draft names alice "in the rough".
    dispose = await command(
        chair,
        room,
        f"!cb dispose {objection_id} addressed A security contact was named on the list.",
    )
    disposed = await chair.wait_for(reply_to(dispose), room_id=room)
    assert disposed["content"]["consensus_bot"]["objections"][0]["state"] == "addressed"
    redraft = await chair.wait_for(
        lambda ev: bot_message("summary", 1)(ev) and ev["event_id"] != draft["event_id"],
        room_id=room,
    )
    assert redraft["content"]["consensus_bot"]["proposed_outcome"] == "rough-consensus-admit"
    assert redraft["content"]["consensus_bot"]["in_the_rough"] == [alice.user_id]
    # As many in the rough (alice) as in support (bob): the chair says why in her own words.
    await command(chair, room, "!cb confirm", ok=False)
    await command(
        chair, room, "!cb confirm Alice's point is answered: the named contact is reachable."
    )
    outcome = await chair.wait_for(bot_message("outcome", 1), room_id=room)
    assert outcome["content"]["consensus_bot"]["outcome"] == "admit"

    # Nothing the bot said in the room tells who hummed what: the hums line and field
    # carry loudness only.
    hum_lines = 0
    for ev in chair.events.get(room, []):
        if ev.get("sender") != group.bot_user.user_id:
            continue
        content = ev.get("content", {})
        for line in str(content.get("body", "")).splitlines():
            if line.startswith("Hums:"):
                hum_lines += 1
                assert "@" not in line, line
        assert "@" not in str(content.get("consensus_bot", {}).get("hums", ""))
    assert hum_lines >= 3  # status, draft, redraft

    # The record can be exported as a file.
    await command(chair, room, "!cb export --format md")
    exported = await chair.wait_for(
        lambda ev: ev.get("content", {}).get("msgtype") == "m.file", room_id=room
    )
    assert exported["content"]["consensus_bot"]["export"] == "md"
    assert exported["content"]["url"].startswith("mxc://")
    with sqlite3.connect(group.db_path) as db:
        hums = db.execute("SELECT hummer FROM hums").fetchall()
    assert len(hums) == 3
    assert all(u.user_id not in h[0] for h in hums for u in (alice, bob, dave))


async def test_reminders_digest_and_restart(group: Group) -> None:
    chair, m = group.chair, group.members
    room, ballot = await open_request(group, "--deadline 25s")
    await m["alice"].react(room, ballot["event_id"], "👍")
    await m["bob"].react(room, ballot["event_id"], "👌")

    # The digest lists the open request.
    await command(chair, group.main_room, "!cb digest")
    digest = await chair.wait_for(bot_message("digest"), room_id=group.main_room)
    assert digest["content"]["consensus_bot"]["open"] == [1]

    # 12 s before the deadline, carol and dave (no position) get a direct message; the others not.
    for name in ("carol", "dave"):
        dm = await m[name].wait_invite(timeout=40)
        await m[name].join(dm)
        reminder = await m[name].wait_for(bot_message("reminder", 1), room_id=dm)
        assert reminder["content"]["m.mentions"] == {"user_ids": [m[name].user_id]}
        assert room in reminder["content"]["body"]
        # carol's profile says Asia/Tokyo (m.tz): her deadline is shown in JST and UTC.
        local = "JST (" if name == "carol" else "UTC"
        assert local in reminder["content"]["body"]
    await m["alice"].sync(0)
    assert not m["alice"].invites

    # The bot is stopped; the deadline passes; at restart exactly one summary is posted.
    group.bot.stop()
    await asyncio.sleep(15)
    group.bot.start()
    await group.bot.wait_ready()
    await chair.wait_for(bot_message("summary", 1), room_id=room, timeout=30)
    await asyncio.sleep(3)
    await chair.sync(0)
    summaries = [ev for ev in chair.events[room] if bot_message("summary", 1)(ev)]
    assert len(summaries) == 1
    assert summaries[0]["content"]["consensus_bot"]["participated"] == 2
