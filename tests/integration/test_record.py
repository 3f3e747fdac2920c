"""The record is the decision, against a real Synapse: what the operator exports after the
decision equals what the chair confirmed, whatever members and chairs do afterwards, and the
head in the outcome message verifies it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.devtools.sim_member import bot_message
from bot.devtools.synapse import LocalSynapse
from tests.integration.harness import Group, running_group
from tests.integration.test_process import command, open_request, reply_to

pytestmark = pytest.mark.real


@pytest.fixture
async def group(synapse: LocalSynapse, tmp_path: Path) -> AsyncIterator[Group]:
    async with running_group(synapse, tmp_path, "record") as g:
        yield g


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=60
    )


async def test_the_exported_record_is_the_confirmed_decision(group: Group, tmp_path: Path) -> None:
    chair, m = group.chair, group.members
    alice, bob, carol, dave = m["alice"], m["bob"], m["carol"], m["dave"]
    room, ballot = await open_request(group, "--deadline 1h")
    thumbs_up = await alice.react(room, ballot["event_id"], "👍")
    await bob.react(room, ballot["event_id"], "👍")
    await carol.react(room, ballot["event_id"], "👌")
    await command(chair, room, "!cb close")
    draft = await chair.wait_for(bot_message("summary", 1), room_id=room)
    confirmed = draft["content"]["consensus_bot"]
    assert confirmed["proposed_outcome"] == "rough-consensus-admit"
    await command(chair, room, "!cb confirm")
    outcome = await chair.wait_for(bot_message("outcome", 1), room_id=room)
    head = outcome["content"]["consensus_bot"]["record_head"]
    assert head[:16] in outcome["content"]["body"]

    # After the decision: a 👎, a retracted 👍, a member removed from the roster.
    await dave.react(room, ballot["event_id"], "👎")
    await alice.redact(room, thumbs_up)
    await command(chair, group.main_room, f"!cb member remove {bob.user_id}")
    status = await command(chair, room, "!cb status")  # the bot has seen all of the above
    answer = await chair.wait_for(reply_to(status), room_id=room)
    for key in ("counts", "eligible", "participated", "proposed_outcome"):
        assert answer["content"]["consensus_bot"][key] == confirmed[key], key

    exported = cli("export", "--config", str(group.config_path), "--request", "1")
    assert exported.returncode == 0, exported.stderr
    record = json.loads(exported.stdout)
    assert record["head"] == head
    sense = record["sense"]
    assert sense["counts"] == confirmed["counts"]
    assert (sense["eligible"], sense["participated"]) == (
        confirmed["eligible"],
        confirmed["participated"],
    )
    assert sense["proposal"] == confirmed["proposed_outcome"]

    path = tmp_path / "record.json"
    path.write_text(exported.stdout, encoding="utf-8")
    verified = cli("export", "--verify", str(path), "--head", head)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # One byte changed anywhere the chain covers: refused.
    text = exported.stdout
    at = text.index('"participated": ') + len('"participated": ')
    tampered = tmp_path / "tampered.json"
    tampered.write_text(text[:at] + str(int(text[at]) ^ 1) + text[at + 1 :], encoding="utf-8")
    refused = cli("export", "--verify", str(tampered), "--head", head)
    assert refused.returncode == 1, refused.stdout + refused.stderr
