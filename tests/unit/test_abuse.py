"""Abuse resistance in the fast layer: triage before any ballot, caps, rate limits, long
answers, hum privacy, private outbox rows, pruning and room adoption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.matrix.rooms import REQUEST_STATE_TYPE, adoptable, request_marker
from storage.repo import Repository
from tests.unit.test_engine import (
    ALICE,
    BOB,
    CAROL,
    CHAIR,
    DAVE,
    MAIN,
    MALLORY,
    World,
)

DM_MALLORY = "!dm-mallory:x"
DM_ALICE = "!dm-alice:x"


async def replies(w: World, event_id: str) -> list[str]:
    return [p["body"] for p in await w.replies_to(event_id)]


async def test_an_application_waits_for_triage_and_reaches_no_member(world: World) -> None:
    w = world
    await w.services.dms.remember(MALLORY, DM_MALLORY)
    apply = w.command(MALLORY, "!cb apply I run a registry.", room=DM_MALLORY)
    await w.apply(apply)
    assert await w.acks(apply.event_id) == ["✅"]
    answer = (await replies(w, apply.event_id))[0]
    assert "Received: your application is #1" in answer
    assert "Next, which country are you in" in answer
    req = await w.request(1)
    assert req.state.value == "triage"
    pending = await w.pending()
    assert not [i for i in pending if i.op in ("create_room", "invite")]
    # The chairs hear of it in the main room; no member is mentioned or invited.
    [note] = [i for i in pending if i.op == "message" and i.room_id == MAIN]
    assert note.payload["m.mentions"] == {"user_ids": [CHAIR]}
    # A second application while the first waits updates it: never a second request.
    again = w.command(MALLORY, "!cb apply Please.", room=DM_MALLORY)
    await w.apply(again)
    assert "Updated your application #1" in (await replies(w, again.event_id))[0]
    assert (await w.request(1)).statement == "Please."
    # A member filing for someone with a request under way is refused with its number.
    dup = w.command(ALICE, f"!cb request {MALLORY} Mallory again.", room=MAIN)
    await w.apply(dup)
    assert "request #1 for @mallory:x is still open" in (await replies(w, dup.event_id))[0]

    listing = w.command(CHAIR, "!cb triage", room=MAIN)
    await w.apply(listing)
    assert (await w.reply_to(listing.event_id))["consensus_bot"]["triage"] == [1]
    refused = w.command(ALICE, "!cb accept 1", room=MAIN)
    await w.apply(refused)
    assert "only a chair" in (await replies(w, refused.event_id))[0]
    accept = w.command(CHAIR, "!cb accept 1", room=MAIN)
    await w.apply(accept)
    assert await w.acks(accept.event_id) == ["✅"]
    assert (await w.request(1)).state.value == "pending"
    assert [i for i in await w.pending() if i.op == "create_room"]
    twice = w.command(CHAIR, "!cb accept 1", room=MAIN)
    await w.apply(twice)
    assert "Not now" in (await replies(w, twice.event_id))[0]


async def test_a_rejected_application_tells_the_applicant(world: World) -> None:
    w = world
    await w.services.dms.remember(MALLORY, DM_MALLORY)
    await w.apply(w.command(MALLORY, "!cb apply I run a registry.", room=DM_MALLORY))
    reject = w.command(CHAIR, "!cb reject 1 We admit people with a background in it.", room=MAIN)
    await w.apply(reject)
    assert await w.acks(reject.event_id) == ["✅"]
    req = await w.request(1)
    assert req.state.value == "cancelled"
    told = [i for i in await w.pending() if i.room_id == f"dm:{MALLORY}"]
    assert any("background in it" in i.payload["body"] for i in told)
    async with w.db.transaction() as tx:
        [frozen] = await Repository(tx).frozen_records(1)
    assert json.loads(frozen.body)["entries"][-2]["type"] == "cancelled"
    # Applying again the same day is refused: one application per account and day.
    again = w.command(MALLORY, "!cb apply Please reconsider.", room=DM_MALLORY)
    await w.apply(again)
    assert "already applied today" in (await replies(w, again.event_id))[0]


async def test_cancel_by_the_filer_or_a_chair_only(opened: World) -> None:
    w = opened
    stranger = w.command(ALICE, "!cb cancel 1 I changed my mind.", room=MAIN)
    await w.apply(stranger)
    assert "only the filer" in (await replies(w, stranger.event_id))[0]
    cancel = w.command(CHAIR, "!cb cancel 1 Filed twice by mistake.", room=MAIN)
    await w.apply(cancel)
    assert await w.acks(cancel.event_id) == ["✅"]
    assert (await w.request()).state.value == "cancelled"
    # Nothing counts any more on a cancelled request.
    await w.apply(w.reaction(BOB, "👍"))
    assert await w.positions() == {}


async def test_a_request_for_a_member_and_too_many_requests_are_refused(world: World) -> None:
    w = world
    member = w.command(ALICE, f"!cb request {BOB} Bob again.", room=MAIN)
    await w.apply(member)
    assert "already a member" in (await replies(w, member.event_id))[0]
    for n in range(3):
        await w.apply(w.command(ALICE, f"!cb request @new{n}:x Someone.", room=MAIN))
    fourth = w.command(ALICE, "!cb request @new9:x One more.", room=MAIN)
    await w.apply(fourth)
    assert "3 requests still undecided" in (await replies(w, fourth.event_id))[0]
    chair = w.command(CHAIR, "!cb request @new9:x A chair is not limited.", room=MAIN)
    await w.apply(chair)
    assert await w.acks(chair.event_id) == ["✅"]


async def test_a_flood_is_refused_once_then_ignored(world: World) -> None:
    w = world
    await w.services.dms.remember(MALLORY, DM_MALLORY)
    flood = [w.command(MALLORY, "!cb help", room=DM_MALLORY) for _ in range(60)]
    await w.apply(*flood)
    answered = [e for e in flood if await w.acks(e.event_id)]
    assert len(answered) == 4  # three admitted, one told to slow down, then silence
    assert "Too many commands" in (await replies(w, answered[-1].event_id))[0]
    # A member is not held up by an outsider's flood.
    status = w.command(ALICE, "!cb list", room=MAIN)
    await w.apply(status)
    assert await w.acks(status.event_id) == ["✅"]


async def test_a_long_answer_is_sent_as_a_file(world: World) -> None:
    w = world
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        for n in range(1_500):
            await repo.upsert_member(
                "main", f"@member{n:04d}:example.org", "academia", "europe", 1, CHAIR
            )
    ask = w.command(CHAIR, "!cb members", room=MAIN)
    await w.apply(ask)
    files = [i for i in await w.pending() if i.op == "file"]
    assert len(files) == 1
    assert "@member1499:example.org" in files[0].payload["data"]
    assert "attached as a file" in (await replies(w, ask.event_id))[0]
    assert all(
        len(json.dumps(i.payload).encode()) < 64_000 for i in await w.pending() if i.op == "message"
    )


async def test_hums_are_heard_only_after_the_close_from_enough_eligible_members(
    opened: World,
) -> None:
    w = opened
    for member, dm in ((ALICE, DM_ALICE), (BOB, "!dm-bob:x"), (CAROL, "!dm-carol:x")):
        await w.services.dms.remember(member, dm)
        await w.apply(w.command(member, "!cb hum for loud --request 1", room=dm))
    status = w.command(DAVE, "!cb status")
    await w.apply(status)
    body = (await w.reply_to(status.event_id))["body"]
    assert "for:" not in body
    assert "against:" not in body
    await w.apply(w.command(CHAIR, "!cb close"))
    [draft] = await w.messages("summary")
    assert "too few hums" in draft.payload["body"]  # 3 < process.hum_min (5)
    late = w.command(DAVE, "!cb hum against --request 1", room="!dm-dave:x")
    await w.services.dms.remember(DAVE, "!dm-dave:x")
    await w.apply(late)
    assert await w.acks(late.event_id) == ["❌"]


async def test_a_hum_answer_leaves_no_trace_once_sent(opened: World) -> None:
    w = opened
    await w.services.dms.remember(ALICE, DM_ALICE)
    hum = w.command(ALICE, "!cb hum for --request 1", room=DM_ALICE)
    await w.apply(hum)
    private = [i for i in await w.pending() if i.purpose == "private"]
    assert len(private) == 2  # the ✅ and the answer
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        for item in private:
            await repo.outbox_done(item.id, "$sent", 1, keep_payload=False, keep_where=False)
        rows = await tx.fetchall("SELECT * FROM outbox WHERE purpose = 'private'")
    for row in rows:
        assert (row["payload"], row["room_id"], row["target"], row["request_id"]) == (
            "{}",
            None,
            None,
            None,
        )


async def test_pruning_forgets_old_sent_rows_and_processed_events(opened: World) -> None:
    w = opened
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        before = await tx.fetchval("SELECT count(*) FROM processed_events")
        assert before > 0
        await tx.execute("UPDATE outbox SET state = 'sent', sent_at = 1")
        removed = await repo.prune(w.clock.now_ms() + 1)
        assert removed > 0
        assert await tx.fetchval("SELECT count(*) FROM outbox") == 0
        assert await tx.fetchval("SELECT count(*) FROM processed_events") == 0
        # Decisions, positions and records are never pruned.
        assert await tx.fetchval("SELECT count(*) FROM requests") == 1


def _state(sender: str, content: dict[str, Any], *, creator: str) -> list[dict[str, Any]]:
    return [
        {"type": "m.room.create", "state_key": "", "sender": creator, "content": {}},
        {"type": REQUEST_STATE_TYPE, "state_key": "", "sender": sender, "content": content},
    ]


def test_a_room_is_adopted_only_if_the_bot_made_and_marked_it() -> None:
    key, bot = b"k" * 32, "@bot:x"
    marker = request_marker(key, 7)
    assert adoptable(_state(bot, marker, creator=bot), bot, marker)
    # A copied marker in a room someone else created, or set by someone else: refused.
    assert not adoptable(_state(bot, marker, creator=MALLORY), bot, marker)
    assert not adoptable(_state(MALLORY, marker, creator=bot), bot, marker)
    # A marker for the right request with a guessed token: refused.
    forged = {"request": 7, "token": "0" * 32}
    assert not adoptable(_state(bot, forged, creator=bot), bot, marker)
    # Tokens differ per request and per key.
    assert request_marker(key, 8)["token"] != marker["token"]
    assert request_marker(b"j" * 32, 7)["token"] != marker["token"]


async def test_a_reason_cannot_forge_lines_of_the_draft(opened: World) -> None:
    w = opened
    forged = "fine\nProposed: rough consensus to admit (objection #1 accommodated)"
    await w.apply(w.command(ALICE, f"!cb object '{forged}'"))
    await w.apply(w.command(CHAIR, "!cb close"))
    [draft] = await w.messages("summary")
    lines = draft.payload["body"].splitlines()
    assert [x for x in lines if x.startswith("Proposed:")] == [
        "Proposed: no consensus yet: objections are still open"
    ]


class _Media:
    """Just enough of a gateway for files: counts uploads, accepts sends."""

    def __init__(self) -> None:
        self.uploads = 0
        self.sent: list[dict[str, Any]] = []

    async def upload(self, data: bytes, content_type: str, filename: str) -> str:
        self.uploads += 1
        return f"mxc://x/{self.uploads}"

    async def encrypts(self, room_id: str) -> bool:
        return False  # encrypted attachments are proven against Synapse (test_encryption)

    async def send_message(
        self, room_id: str, content: dict[str, Any], txn_id: str, event_type: str = ""
    ) -> str:
        self.sent.append(content)
        return f"$sent{len(self.sent)}"

    async def send_reaction(self, room_id: str, target: str, key: str, txn_id: str) -> str:
        return "$r"


async def test_a_frozen_record_is_uploaded_once_and_its_bytes_are_not_kept(
    opened: World,
) -> None:
    from bot.services.outbox import Doorbell, OutboxSender

    w = opened
    await w.apply(
        w.command(
            CHAIR,
            "!cb decide decline Not yet: the applicant should first show their registry work.",
        )
    )
    for _ in range(5):
        await w.apply(w.command(ALICE, "!cb export --format md"))
    media = _Media()
    sender = OutboxSender(w.db, media, w.services.hooks, w.clock, Doorbell())  # type: ignore[arg-type]
    async with w.db.transaction() as tx:
        files = await tx.fetchall("SELECT id FROM outbox WHERE op = 'file'")
        await tx.execute("UPDATE outbox SET state = 'sent' WHERE op != 'file'")
    assert len(files) == 5
    await sender.drain()
    assert media.uploads == 1
    assert len({c["url"] for c in media.sent if c.get("msgtype") == "m.file"}) == 1
    async with w.db.transaction() as tx:
        kept = await tx.fetchall("SELECT payload FROM outbox WHERE op = 'file'")
    assert all(r["payload"] == "{}" for r in kept)


async def test_a_resend_after_a_long_outage_finds_the_message_instead_of_doubling_it(
    opened: World,
) -> None:
    from bot.services.outbox import TXN_KEY, Doorbell, Outbox, OutboxSender
    from bot.services.plans import AfterCommit

    w = opened
    media = _Media()
    media.user_id = "@bot:x"  # type: ignore[attr-defined]
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        await tx.execute("UPDATE outbox SET state = 'sent'")
        req = await repo.request(1)
        assert req is not None
        await w.services.groups.first.ballots.post_draft(
            repo, Outbox(repo, w.clock.now_ms(), AfterCommit()), req
        )
        [item] = await repo.pending_outbox()
    sent_before = {"event_id": "$first", "sender": "@bot:x", "content": {TXN_KEY: item.txn_id}}

    async def recent_events(room_id: str, limit: int = 200) -> list[dict[str, Any]]:
        return [{"event_id": "$other", "sender": ALICE, "content": {}}, sent_before]

    media.recent_events = recent_events  # type: ignore[attr-defined]
    w.clock.advance(2 * 86_400_000)  # the bot was down for two days
    sender = OutboxSender(w.db, media, w.services.hooks, w.clock, Doorbell())  # type: ignore[arg-type]
    await sender.drain()
    assert media.sent == []  # found, not sent again
    async with w.db.transaction() as tx:
        assert await tx.fetchval("SELECT result FROM outbox WHERE id = ?", (item.id,)) == "$first"


def test_check_config_warns_when_hums_lost_their_key(tmp_path: Path) -> None:
    import sqlite3

    from storage.keys import create_keys, key_path, key_problem

    db = tmp_path / "consensus.db"
    assert key_problem(db) is None  # no database yet: the key is made at first start
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE hums (request_id INTEGER, hummer TEXT, side TEXT)")
    assert key_problem(db) is None  # no hums: a new key costs nothing
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO hums VALUES (1, 'x', 'for')")
    problem = key_problem(db)
    assert problem is not None
    assert "restore the key file" in problem
    keys = create_keys(db)
    assert key_problem(db) is None
    assert oct(key_path(db).stat().st_mode & 0o777) == "0o600"
    assert create_keys(db) == keys  # never overwritten


async def test_times_are_shown_in_the_groups_zone_with_utc_beside(tmp_path: Path) -> None:
    from tests.unit.test_engine import make_world

    w = await make_world(tmp_path / "bot.db", group_tz="Europe/Paris")
    try:
        await w.open_request()
        async with w.db.transaction() as tx:
            rows = await tx.fetchall("SELECT payload FROM outbox WHERE op = 'message'")
        bodies = [json.loads(r["payload"])["body"] for r in rows]
        card = next(b for b in bodies if b.startswith("📋 Request #1") and "Deadline" in b)
        ballot = next(b for b in bodies if b.startswith("🗳 Ballot"))
        for text in (card, ballot):
            assert "CET (" in text
            assert " UTC)" in text
    finally:
        await w.db.close()


async def test_an_applicant_gets_a_short_conversation_not_a_flood(world: World) -> None:
    w = world
    await w.services.dms.remember(MALLORY, DM_MALLORY)
    await w.apply(w.command(MALLORY, "!cb apply I run a registry.", room=DM_MALLORY))
    w.clock.advance(120_000)
    flood = [w.command(MALLORY, "!cb status", room=DM_MALLORY) for _ in range(30)]
    await w.apply(*flood)
    answered = [e for e in flood if await w.acks(e.event_id)]
    assert len(answered) == 7  # six steps of an application, then one "too many"
