"""The whole process end-to-end encrypted, against a real Synapse (issue 14).

Every person is an encrypting nio client (Olm/Megolm on vodozemac) with its own store; the
main room is encrypted, the bot creates the request room and direct chats encrypted. A
request goes from filing to a confirmed outcome with an encrypted reaction, commands, a poll
answer, an objection with its reason, hums by encrypted direct message and an export file
the members decrypt; the bot is SIGKILLed mid-ballot and restarted with its crypto store; a
reaction whose room key reaches the bot only after the event is counted once.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nio.crypto import decrypt_attachment

from bot.devtools.sim_member import SimMember, bot_message
from bot.devtools.synapse import LocalSynapse
from tests.integration.harness import Group, running_group
from tests.integration.test_process import command, reply_to

pytestmark = pytest.mark.real


@pytest.fixture
async def group(
    synapse: LocalSynapse, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Group]:
    # One set of users per test: a bot's cross-signing identity stays on the shared server.
    tag = {"test_the_whole_process_encrypted": "e2e"}.get(request.node.name, "e2eb")
    async with running_group(synapse, tmp_path, tag, encryption="required", hum_min=3) as g:
        yield g


async def _server_view(member: SimMember, room: str) -> list[dict[str, Any]]:
    """The room's latest events as the homeserver stores them (no decryption)."""
    page = await member.gateway.raw(
        "GET", f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100"
    )
    return list(page["chunk"])


async def withhold_room_key(member: SimMember, room: str) -> list[dict[str, Any]]:
    """Start a new Megolm session in `room` whose key is NOT sent yet: the member's next
    events are encrypted with it and nobody can read them until `release_room_key`."""
    client = member.gateway.client
    olm = client.olm
    assert olm is not None
    nio_room = client.rooms[room]
    olm.create_outbound_group_session(room)
    missing = client.get_missing_sessions(room)
    if missing:
        await client.keys_claim(missing)
    messages = [
        to_device
        for _, to_device in olm.share_group_session_parallel(
            room, list(nio_room.users), ignore_unverified_devices=True
        )
    ]
    olm.outbound_group_sessions[room].shared = True
    return messages


async def release_room_key(member: SimMember, messages: list[dict[str, Any]]) -> None:
    """Send the withheld key now (Olm-encrypted to-device bodies: {"messages": …})."""
    for n, body in enumerate(messages):
        await member.gateway.raw(
            "PUT", f"/_matrix/client/v3/sendToDevice/m.room.encrypted/late{n}", body
        )


async def test_the_whole_process_encrypted(group: Group) -> None:
    chair, m = group.chair, group.members
    alice, bob, carol, dave = m["alice"], m["bob"], m["carol"], m["dave"]
    bot_id = group.bot_user.user_id

    # Filing in the encrypted main room: the bot reads the command and answers encrypted.
    filing = await command(
        chair,
        group.main_room,
        f"!cb request {group.applicant.user_id} --stakeholder academia --region europe "
        "--deadline 1h Erin maintains an open-source RPKI validator.",
    )
    room = await chair.wait_invite()
    for member in [chair, *m.values()]:
        await member.wait_invite(lambda r: r == room)
        await member.join(room)
    ballot = await alice.wait_for(bot_message("ballot", 1), room_id=room, timeout=30)
    poll = await bob.wait_for(bot_message("ballot", 1, format="poll"), room_id=room)
    await asyncio.sleep(1.1)  # process.min_deadline of the test groups

    # The homeserver sees only ciphertext: the ballot, the bot's ✅ on the filing.
    stored = await _server_view(chair, room)
    # (state events are never encrypted in Matrix; every other event of the bot is)
    mine = [e for e in stored if e["sender"] == bot_id and "state_key" not in e]
    assert mine
    assert {e["type"] for e in mine} == {"m.room.encrypted"}
    main = await _server_view(chair, group.main_room)
    ack = [e for e in main if e["sender"] == bot_id and e.get("content", {}).get("m.relates_to")]
    assert ack
    assert all(e["type"] == "m.room.encrypted" for e in ack)
    assert any(e["content"]["m.relates_to"].get("event_id") == filing for e in ack)

    # Positions: an encrypted reaction, a poll answer, an objection with its reason.
    await alice.react(room, ballot["event_id"], "👍")
    await bob.send_event(
        room,
        "org.matrix.msc3381.poll.response",
        {
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
            "org.matrix.msc3381.poll.response": {"answers": ["no-objection"]},
        },
    )
    objected = await command(carol, room, "!cb object The organisation has no security contact.")
    listed = await carol.wait_for(reply_to(objected), room_id=room)
    assert listed["content"]["consensus_bot"]["objections"][0]["state"] == "open"
    objection_id = listed["content"]["consensus_bot"]["objections"][0]["id"]

    # SIGKILL mid-ballot; dave's reaction arrives while the bot is down; the restart keeps
    # the device (same store) and loses nothing.
    group.bot.kill()
    await dave.react(room, ballot["event_id"], "👌")
    group.bot.start()
    await group.bot.wait_ready()

    # A reaction whose key reaches the bot only later: held, then counted once.
    withheld = await withhold_room_key(alice, room)
    late = await alice.react(room, ballot["event_id"], "🤔")  # alice changes to a concern
    await _until(lambda: _held(group.db_path) == [late])
    assert _inputs(group.db_path, alice.user_id) == ["support"]
    await release_room_key(alice, withheld)
    await _until(lambda: _held(group.db_path) == [])
    assert _inputs(group.db_path, alice.user_id) == ["support", "concern"]

    # A hum by encrypted direct message.
    for member, hum in ((alice, "for soft"), (bob, "for loud"), (dave, "for loud")):
        dm = await member.open_dm(bot_id, encrypted=True)
        await member.wait_for(
            lambda ev: (
                ev.get("type") == "m.room.member"
                and ev.get("state_key") == bot_id
                and ev.get("content", {}).get("membership") == "join"
            ),
            room_id=dm,
        )
        await command(member, dm, f"!cb hum {hum} --request 1")

    # The objection is addressed; close, draft, confirm.
    await command(
        chair,
        room,
        f"!cb dispose {objection_id} addressed The applicant named a security contact on the "
        "operators' list, which answers Carol's point.",
    )
    await command(chair, room, "!cb close")
    draft = await chair.wait_for(bot_message("summary", 1), room_id=room)
    data = draft["content"]["consensus_bot"]
    assert data["counts"]["support"] == 0
    assert data["counts"]["concern"] == 1
    assert data["counts"]["no-objection"] == 2  # bob's poll answer, dave's reaction
    assert data["counts"]["object"] == 1
    assert "for: loud" in data["hums"]
    await command(
        chair, room, "!cb confirm Carol's point is answered: the security contact is named."
    )
    await chair.wait_for(bot_message("outcome", 1), room_id=room)

    # The export comes as an encrypted attachment the members can decrypt.
    await command(chair, room, "!cb export --format json")
    file_event = await chair.wait_for(
        lambda ev: ev.get("content", {}).get("msgtype") == "m.file", room_id=room
    )
    assert "url" not in file_event["content"]
    info = file_event["content"]["file"]
    data_bytes = await _download(group, chair, info["url"])
    plain = decrypt_attachment(data_bytes, info["key"]["k"], info["hashes"]["sha256"], info["iv"])
    assert json.loads(plain)["schema"].startswith("consensus-bot/record/")

    # Nothing was counted twice: one input per reaction or answer event, and the held
    # event left no copy behind.
    with sqlite3.connect(group.db_path) as db:
        ids = [r[0] for r in db.execute("SELECT event_id FROM position_inputs")]
        hums = db.execute("SELECT count(*) FROM hums").fetchone()[0]
    assert len(ids) == len(set(ids))
    assert hums == 3


async def test_the_keys_are_backed_up_with_the_database_and_their_loss_detected(
    group: Group,
) -> None:
    chair, alice = group.chair, group.members["alice"]
    await command(
        chair,
        group.main_room,
        f"!cb request {group.applicant.user_id} --stakeholder academia --region europe "
        "--deadline 1h Erin maintains an open-source RPKI validator.",
    )
    room = await alice.wait_invite()
    await alice.join(room)
    await alice.wait_for(bot_message("ballot", 1), room_id=room, timeout=30)

    # The device's keys live in the database (sealed under the key file): `backup` carries
    # them with everything else, and no crypto store directory is needed any more.
    group.bot.stop()
    dest = group.workdir / "backup.db"
    done = _cli("backup", "--config", str(group.config_path), str(dest))
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(dest) as copy:
        kinds = {r[0] for r in copy.execute("SELECT DISTINCT kind FROM crypto_state")}
    assert {"account", "cross_signing", "megolm", "olm", "device"} <= kinds
    # permissions: all the bot wrote is readable by its user only, under the test's umask.
    key_file = group.db_path.with_name(group.db_path.name + ".key")
    private = [group.db_path, key_file, dest]
    assert [(str(p), oct(_mode(p))) for p in private if _mode(p) != 0o600] == []
    assert not (group.db_path.parent / "crypto").exists()  # no crypto store files any more

    # Losing the keys (a database without them) is refused at start with a clear error, not
    # a silent new device.
    with sqlite3.connect(group.db_path) as db:
        db.execute("DELETE FROM crypto_state")
    refused = _cli("run", "--config", str(group.config_path))
    assert refused.returncode == 1
    assert "has no keys for the bot's device" in refused.stderr
    with sqlite3.connect(group.db_path) as db:  # the refused start wrote no fresh account
        assert db.execute("SELECT count(*) FROM crypto_state").fetchone() == (0,)

    # Restored from the backup, the same device reads and answers encrypted commands.
    _restore(dest, group.db_path)
    group.bot.start()
    await group.bot.wait_ready()
    await command(alice, room, "!cb support")


def _restore(backup: Path, db_path: Path) -> None:
    """Put a SQLite backup in place of the database (its old WAL and SHM removed)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, db_path)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _until(check: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


def _held(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT event_id FROM held_events")]


def _inputs(db: Path, member: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT position FROM position_inputs WHERE member = ? ORDER BY id", (member,)
            )
        ]


async def _download(group: Group, member: SimMember, mxc: str) -> bytes:
    server_name, media_id = mxc.removeprefix("mxc://").split("/", 1)
    url = f"{group.synapse.base_url}/_matrix/client/v1/media/download/{server_name}/{media_id}"
    token = member.gateway.client.access_token
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        assert resp.status == 200, resp.status
        return await resp.read()
