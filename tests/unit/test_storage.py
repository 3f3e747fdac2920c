"""Storage against real databases: the Database, the instance lock and the repository.

Tests that take `db` run on SQLite and on a throwaway PostgreSQL (see tests/conftest.py); the
ones about the SQLite file itself (WAL, integrity checks, VACUUM INTO backups) take
`sqlite_db` or a path.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from bot.domain.counting import Redaction
from bot.domain.ledger import PositionInput, Source
from bot.domain.lifecycle import Outcome, RequestState
from bot.domain.objections import ObjectionState
from bot.domain.positions import Position
from bot.domain.request import Applicant
from bot.domain.sense import Proposal, Voter
from storage.backend import Backend, Tx
from storage.database import SCHEMA_VERSION, Database, DatabaseError
from storage.lock import AlreadyRunning, InstanceLock
from storage.repo import Member, Repository

NOW = 1_800_000_000_000
TABLES = {
    "meta",
    "members",
    "requests",
    "eligible",
    "position_inputs",
    "redactions",
    "records",
    "objections",
    "outbox",
    "processed_events",
    "failed_events",
}


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "bot.db")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def count(db: Backend, table: str) -> int:
    async with db.transaction() as tx:
        return int(await tx.fetchval(f"SELECT count(*) FROM {table}"))


# ---- Database -----------------------------------------------------------------------------


async def test_open_creates_the_schema(sqlite_db: Database, tmp_path: Path) -> None:
    db = sqlite_db
    assert SCHEMA_VERSION >= 1
    assert await db.schema_version() == SCHEMA_VERSION
    async with db.transaction() as tx:
        rows = await tx.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert {r[0] for r in rows} >= TABLES
        assert await tx.fetchval("PRAGMA foreign_keys") == 1
    with sqlite3.connect(tmp_path / "bot.db") as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_open_uses_wal(sqlite_db: Database, tmp_path: Path) -> None:
    db = sqlite_db
    async with db.transaction() as tx:
        assert (await tx.fetchval("PRAGMA journal_mode")).lower() == "wal"
        assert await tx.fetchval("PRAGMA synchronous") == 2  # FULL
    assert (tmp_path / "bot.db-wal").exists()


async def test_open_makes_missing_directories(tmp_path: Path) -> None:
    database = Database(tmp_path / "a" / "b" / "bot.db")
    await database.open()
    try:
        assert await database.schema_version() == SCHEMA_VERSION
    finally:
        await database.close()


async def test_reopening_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    first = Database(path)
    await first.open()
    async with first.transaction() as tx:
        await Repository(tx).set_meta("sync_token", "s42")
    await first.close()
    await first.close()  # closing twice is fine
    for _ in range(2):
        again = Database(path)
        await again.open()
        try:
            assert await again.schema_version() == SCHEMA_VERSION
            async with again.transaction() as tx:
                assert await Repository(tx).get_meta("sync_token") == "s42"
        finally:
            await again.close()


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    first = Database(path)
    await first.open()
    await first.close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer = Database(path)
    try:
        with pytest.raises(DatabaseError, match="newer than this bot"):
            await newer.open()
    finally:
        await newer.close()


async def test_a_closed_database_says_so(tmp_path: Path) -> None:
    database = Database(tmp_path / "bot.db")
    with pytest.raises(DatabaseError, match="not open"):
        _ = database.conn


async def test_transaction_rolls_back_on_exception(db: Backend) -> None:
    class Boom(Exception):
        pass

    async def write_then_fail() -> None:
        async with db.transaction() as tx:
            repo = Repository(tx)
            await repo.set_meta("k", "v")
            await repo.upsert_member("main", "@a:x", "academia", "europe", NOW, "test")
            raise Boom

    with pytest.raises(Boom):
        await write_then_fail()
    assert await count(db, "meta") == 0
    assert await count(db, "members") == 0
    # The connection is usable afterwards.
    async with db.transaction() as tx:
        await Repository(tx).set_meta("k", "after")
    async with db.transaction() as tx:
        assert await Repository(tx).get_meta("k") == "after"


async def test_savepoint_rollback_keeps_the_outer_transactions_other_writes(db: Backend) -> None:
    class Boom(Exception):
        pass

    async def fail_inside(tx: Tx) -> None:
        async with tx.savepoint():
            await Repository(tx).set_meta("inside", "1")
            await Repository(tx).set_meta("before", "changed")
            raise Boom

    async with db.transaction() as tx:
        repo = Repository(tx)
        await repo.set_meta("before", "1")
        with pytest.raises(Boom):
            await fail_inside(tx)
        async with tx.savepoint():
            await repo.set_meta("second", "1")
        await repo.set_meta("after", "1")
    async with db.transaction() as tx:
        repo = Repository(tx)
        assert await repo.get_meta("before") == "1"
        assert await repo.get_meta("inside") is None
        assert await repo.get_meta("second") == "1"
        assert await repo.get_meta("after") == "1"


async def test_backup_writes_a_readable_copy(sqlite_db: Database, tmp_path: Path) -> None:
    db = sqlite_db
    async with db.transaction() as tx:
        repo = Repository(tx)
        await repo.upsert_member("main", "@a:x", "academia", "europe", NOW, "test")
        await repo.set_meta("sync_token", "s1")
    dest = tmp_path / "backup.db"
    await db.backup(dest)
    with sqlite3.connect(dest) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("SELECT user_id FROM members").fetchall() == [("@a:x",)]
    restored = Database(dest)
    await restored.open()
    try:
        async with restored.transaction() as tx:
            assert await Repository(tx).get_meta("sync_token") == "s1"
    finally:
        await restored.close()
    # VACUUM INTO refuses to overwrite: that is reported as a DatabaseError.
    with pytest.raises(DatabaseError, match="cannot write a backup"):
        await db.backup(dest)


# ---- InstanceLock -------------------------------------------------------------------------


def test_a_second_lock_in_the_same_process_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    first = InstanceLock(path)
    first.acquire()
    try:
        assert first.path == tmp_path / "bot.db.lock"
        assert first.path.read_text() == str(__import__("os").getpid())
        second = InstanceLock(path)
        with pytest.raises(AlreadyRunning, match="pid"):
            second.acquire()
    finally:
        first.release()
    first.release()  # idempotent


def test_release_allows_reacquire(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    first = InstanceLock(path)
    first.acquire()
    first.release()
    second = InstanceLock(path)
    second.acquire()
    second.release()
    first.acquire()
    first.release()


def test_a_lock_held_by_another_process_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from storage.lock import InstanceLock; "
            "lock = InstanceLock(Path(sys.argv[1])); lock.acquire(); print('held', flush=True); "
            "sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        lock = InstanceLock(path)
        with pytest.raises(AlreadyRunning) as caught:
            lock.acquire()
        assert f"pid {holder.pid}" in str(caught.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    # The holder is gone: its lock went with it.
    lock = InstanceLock(path)
    lock.acquire()
    lock.release()


# ---- Repository ---------------------------------------------------------------------------


async def test_members_seed_upsert_deactivate(db: Backend) -> None:
    async with db.transaction() as tx:
        repo = Repository(tx)
        await repo.seed_member("main", "@b:x", "academia", "europe", NOW)
        await repo.seed_member("main", "@a:x", "civil-society", "africa", NOW)
        assert await repo.member("main", "@a:x") == Member("@a:x", "civil-society", "africa", True)
        assert await repo.member("main", "@nobody:x") is None
        assert [m.user_id for m in await repo.active_members("main")] == ["@a:x", "@b:x"]

        assert await repo.deactivate_member("main", "@a:x", NOW) is True
        assert await repo.deactivate_member("main", "@a:x", NOW) is False
        assert await repo.deactivate_member("main", "@nobody:x", NOW) is False
        assert await repo.member("main", "@a:x") == Member("@a:x", "civil-society", "africa", False)
        assert [m.user_id for m in await repo.active_members("main")] == ["@b:x"]

        # Seeding from the config again does not undo a chair's removal, nor change data.
        await repo.seed_member("main", "@a:x", "government", "cis", NOW + 1)
        assert await repo.member("main", "@a:x") == Member("@a:x", "civil-society", "africa", False)

        # An upsert reactivates and updates.
        await repo.upsert_member("main", "@a:x", "government", "cis", NOW + 2, "@chair:x")
        assert await repo.member("main", "@a:x") == Member("@a:x", "government", "cis", True)
        await repo.upsert_member("main", "@c:x", "academia", "asia-pacific", NOW, "@chair:x")
        assert [m.user_id for m in await repo.active_members("main")] == ["@a:x", "@b:x", "@c:x"]


async def test_meta(db: Backend) -> None:
    async with db.transaction() as tx:
        repo = Repository(tx)
        assert await repo.get_meta("sync_token") is None
        await repo.set_meta("sync_token", "s1")
        await repo.set_meta("sync_token", "s2")
        assert await repo.get_meta("sync_token") == "s2"


async def new_request(repo: Repository, filed: str = "$filed1", applicant: str = "@erin:x") -> int:
    return await repo.create_request(
        "main",
        Applicant(applicant, name="Erin", org="Erin Org", stakeholder="academia", region="europe"),
        "Erin wants to help.",
        "@chair:x",
        filed,
        False,
        NOW + 14 * 86_400_000,
        NOW,
    )


async def test_requests_create_update_and_list(db: Backend) -> None:
    async with db.transaction() as tx:
        repo = Repository(tx)
        first = await new_request(repo, "$f1")
        second = await new_request(repo, "$f2", "Frank Name")
        assert (first, second) == (1, 2)
        req = await repo.request(first)
        assert req is not None
        assert req.state is RequestState.PENDING
        assert req.applicant == Applicant("@erin:x", "Erin", "Erin Org", "academia", "europe")
        assert req.statement == "Erin wants to help."
        assert req.filed_by == "@chair:x"
        assert not req.self_applied
        assert req.deadline_at == NOW + 14 * 86_400_000
        assert req.room_id is None
        assert req.proposal is None
        assert await repo.request_by_filing("$f1") == req
        assert await repo.request_by_filing("$nope") is None
        assert await repo.request(99) is None

        await repo.update_request(
            first, state=RequestState.OPEN, room_id="!r1:x", ballot_event_id="$b1", opened_at=NOW
        )
        await repo.update_request(
            second,
            state=RequestState.DECIDED,
            proposal=Proposal.NO_CONSENSUS,
            outcome=Outcome.DECLINE,
            decided_by="@chair:x",
            rationale="Not now.",
            decided_at=NOW + 1,
        )
        opened = await repo.request_by_room("!r1:x")
        assert opened is not None
        assert opened.id == first
        assert opened.state is RequestState.OPEN
        assert opened.opened_at == NOW
        assert await repo.request_by_ballot("$b1") == opened
        assert await repo.request_by_room("!nope:x") is None
        decided = await repo.request(second)
        assert decided is not None
        assert decided.outcome is Outcome.DECLINE
        assert decided.proposal is Proposal.NO_CONSENSUS
        assert decided.rationale == "Not now."

        assert [r.id for r in await repo.requests("main")] == [second, first]  # newest first
        assert [r.id for r in await repo.requests("main", [RequestState.OPEN])] == [first]
        both = [RequestState.OPEN, RequestState.DECIDED]
        assert [r.id for r in await repo.requests("main", both)] == [second, first]
        assert await repo.requests("main", [RequestState.DRAFTED]) == []

        with pytest.raises(ValueError, match="not request columns"):
            await repo.update_request(first, applicant="@mallory:x")
        # Clearing columns works (reopen does it).
        await repo.update_request(second, outcome=None, decided_by=None)
        cleared = await repo.request(second)
        assert cleared is not None
        assert cleared.outcome is None


async def test_filing_is_unique_per_event(db: Backend) -> None:
    async with db.transaction() as tx:
        await new_request(Repository(tx), "$same")
    # Each backend reports a broken unique constraint with its own driver's error.
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        async with db.transaction() as tx:
            await new_request(Repository(tx), "$same")
    assert await count(db, "requests") == 1


async def test_eligible_snapshot_and_voters(db: Backend) -> None:
    async with db.transaction() as tx:
        repo = Repository(tx)
        await repo.seed_member("main", "@a:x", "academia", "europe", NOW)
        await repo.seed_member("main", "@b:x", "civil-society", "africa", NOW)
        await repo.seed_member("main", "@gone:x", "academia", "europe", NOW)
        await repo.deactivate_member("main", "@gone:x", NOW)
        rid = await new_request(repo)
        assert await repo.snapshot_eligible(rid) == 2
        assert await repo.voters(rid) == [
            Voter("@a:x", "academia", "europe"),
            Voter("@b:x", "civil-society", "africa"),
        ]
        assert (await repo.member_rows(rid, "@a:x")).removed == {}
        assert (await repo.member_rows(rid, "@gone:x")).eligible == []

        # Members added after the ballot opened are not on the snapshot; it is idempotent.
        await repo.upsert_member("main", "@late:x", "government", "cis", NOW, "@chair:x")
        assert (await repo.member_rows(rid, "@late:x")).eligible == []
        assert [v.user_id for v in await repo.voters(rid)] == ["@a:x", "@b:x"]

        # A member removed later stays on the snapshot with the time they left (the rule
        # decides what that means for a ballot).
        await repo.deactivate_member("main", "@b:x", NOW + 5)
        assert [v.user_id for v in await repo.voters(rid)] == ["@a:x"]
        assert (await repo.rows(rid)).removed == {"@b:x": NOW + 5}
        assert [v.user_id for v in (await repo.rows(rid)).snapshot] == ["@a:x", "@b:x"]
        await repo.upsert_member("main", "@b:x", "civil-society", "africa", NOW, "@chair:x")
        assert (await repo.rows(rid)).removed == {}


async def test_plain_rows_read_what_rows_reads(db: Backend) -> None:
    """The draft's cheaper read returns the same snapshot, removals and inputs as `rows`,
    including a snapshot member who is missing from the roster (removed long ago)."""
    async with db.transaction() as tx:
        repo = Repository(tx)
        for user in ("@a:x", "@b:x", "@c:x"):
            await repo.seed_member("main", user, "academia", "europe", NOW)
        rid = await new_request(repo)
        await repo.snapshot_eligible(rid)
        await tx.execute(
            "INSERT INTO eligible(request_id, user_id, stakeholder, region) "
            "VALUES (?, '@nobody:x', 'academia', 'europe')",
            (rid,),
        )
        await repo.deactivate_member("main", "@b:x", NOW + 5)
        for n, user in enumerate(("@a:x", "@b:x", "@a:x")):
            item = PositionInput(f"$p{n}", user, Position.SUPPORT, NOW + n, Source.REACTION)
            await repo.add_input(rid, item, NOW + n)
        await repo.add_redaction(Redaction("$r", "$p0", "!room:x", "@a:x", NOW, NOW))
        rows, plain = await repo.rows(rid), await repo.plain_rows(rid)
    assert plain.snapshot == rows.snapshot
    assert plain.removed == rows.removed == {"@b:x": NOW + 5, "@nobody:x": 0}
    assert sorted(plain.inputs) == sorted(
        (i.event_id, i.member, i.position, i.ts, i.source, i.room_id, i.recorded_at)
        for i in rows.inputs
    )
    assert plain.redactions == rows.redactions


async def test_inputs_and_redactions_are_stored_raw(db: Backend) -> None:
    """The repository stores and loads; which of these count is the counting rule's call."""
    async with db.transaction() as tx:
        repo = Repository(tx)
        rid = await new_request(repo)
        support = PositionInput("$s", "@a:x", Position.SUPPORT, 20, Source.REACTION, None, "!r:x")
        concern = PositionInput("$c", "@a:x", Position.CONCERN, 10, Source.COMMAND, "hmm", "!dm:x")
        other = PositionInput("$o", "@b:x", None, 15, Source.COMMAND)
        for n, item in enumerate((support, concern, other)):
            assert await repo.add_input(rid, item, NOW + n)
        stamped = [replace(i, recorded_at=NOW + n) for n, i in enumerate((support, concern, other))]
        assert await repo.inputs(rid) == stamped  # in the order received, with receive times
        assert await repo.inputs(rid, "@a:x") == stamped[:2]
        assert await repo.input_by_event("$o") == (rid, stamped[2])
        assert await repo.input_by_event("$nope") is None

        # The same event is recorded once.
        await repo.add_input(rid, support, NOW + 9)
        assert len(await repo.inputs(rid)) == 3

        # Every redaction is kept with its sender, room and receive time, whoever sent it.
        own = Redaction("$r1", "$s", "!r:x", "@a:x", 30, NOW + 5)
        assert await repo.add_redaction(own)
        assert not await repo.add_redaction(own)
        early = Redaction("$r2", "$unknown", "!r:x", "@a:x", 31, NOW + 6)  # target not seen yet
        moderator = Redaction("$r3", "$c", "!r:x", "@moderator:x", 32, NOW + 7)
        await repo.add_redaction(early)
        await repo.add_redaction(moderator)
        rows = await repo.rows(rid)
        assert rows.redactions == [own, moderator]  # those aimed at this request's inputs
        mine = await repo.member_rows(rid, "@a:x")
        assert mine.redactions == [own, moderator]
        assert mine.open_objection is None
    assert await count(db, "redactions") == 3  # $r1 (once), $r2, $r3


async def test_duplicate_inserts_report_false(db: Backend) -> None:
    async with db.transaction() as tx:
        repo = Repository(tx)
        rid = await new_request(repo)
        item = PositionInput("$s", "@a:x", Position.SUPPORT, 20, Source.REACTION)
        assert await repo.add_input(rid, item, NOW) is True
        redaction = Redaction("$r", "$s", "!r:x", "@a:x", 30, NOW)
        assert await repo.add_redaction(redaction) is True
        assert await repo.enqueue("txn-1", "message", {}, NOW) is True
        duplicates = (
            await repo.add_input(rid, item, NOW),
            await repo.add_redaction(redaction),
            await repo.enqueue("txn-1", "message", {}, NOW),
        )
        assert duplicates == (False, False, False)


async def test_objections(db: Backend) -> None:
    async with db.transaction() as tx:
        repo = Repository(tx)
        rid = await new_request(repo)
        assert await repo.open_objection(rid, "@a:x") is None
        first = await repo.add_objection(rid, "@a:x", "$o1", None, NOW)
        second = await repo.add_objection(rid, "@b:x", "$o2", "Not aligned.", NOW)
        opened = await repo.open_objection(rid, "@a:x")
        assert opened is not None
        assert opened.id == first
        assert opened.reason is None
        assert opened.needs_reason
        assert opened.state is ObjectionState.OPEN

        await repo.set_objection_reason(first, "No link to our work.")
        await repo.dispose_objection(second, ObjectionState.ADDRESSED, "@chair:x", "Answered.", NOW)
        listed = await repo.objections(rid)
        assert [o.id for o in listed] == [first, second]
        assert listed[0].reason == "No link to our work."
        assert listed[1].state is ObjectionState.ADDRESSED
        assert listed[1].disposed_by == "@chair:x"
        assert listed[1].rationale == "Answered."
        assert await repo.open_objection(rid, "@b:x") is None
        assert await repo.objection(second) == listed[1]
        assert await repo.objection(999) is None
        assert await repo.objections(rid + 1) == []


async def test_outbox(db: Backend) -> None:
    async with db.transaction() as tx:
        repo = Repository(tx)
        rid = await new_request(repo)
        payload = {"body": "héllo 👋", "nested": {"a": [1, 2]}}
        await repo.enqueue("t1", "message", payload, NOW, request_id=rid, room_id="!r:x")
        await repo.enqueue("t2", "reaction", {"key": "✅"}, NOW, target="$e", room_id="!r:x")
        await repo.enqueue(
            "t3", "message", {"body": "ballot"}, NOW, request_id=rid, purpose="ballot"
        )
        # A duplicate transaction ID is ignored: the first row stands.
        await repo.enqueue("t1", "message", {"body": "other"}, NOW + 5)
        pending = await repo.pending_outbox()
        assert [i.txn_id for i in pending] == ["t1", "t2", "t3"]
        first = pending[0]
        assert first.payload == payload
        assert (first.op, first.request_id, first.room_id, first.attempts) == (
            "message",
            rid,
            "!r:x",
            0,
        )
        assert pending[1].target == "$e"
        assert pending[2].purpose == "ballot"
        assert pending[2].room_id is None
        assert [i.txn_id for i in await repo.pending_outbox(limit=2)] == ["t1", "t2"]

        await repo.outbox_done(first.id, "$sent1", NOW + 10)
        await repo.outbox_attempt(pending[1].id, "timeout", give_up=False)
        await repo.outbox_attempt(pending[2].id, "forbidden", give_up=True)
        left = await repo.pending_outbox()
        assert [i.txn_id for i in left] == ["t2"]
        assert left[0].attempts == 1
        row = await tx.fetchone("SELECT * FROM outbox WHERE id = ?", (first.id,))
        assert row is not None
        assert (row["state"], row["result"], row["sent_at"], row["attempts"]) == (
            "sent",
            "$sent1",
            NOW + 10,
            1,
        )
        failed = await tx.fetchone("SELECT state FROM outbox WHERE id = ?", (pending[2].id,))
        assert failed is not None
        assert failed["state"] == "failed"
    assert await count(db, "outbox") == 3


async def test_processed_and_failed_events(db: Backend) -> None:
    async with db.transaction() as tx:
        repo = Repository(tx)
        assert not await repo.seen("$e1")
        await repo.mark_processed_many([("$e1", "!r:x")], NOW)
        await repo.mark_processed_many([("$e1", "!r:x")], NOW + 1)  # idempotent
        assert await repo.seen("$e1")
        assert not await repo.seen("$e2")
        await repo.record_failure("$e2", "!r:x", "abc123", "ValueError: boom", NOW)
        await repo.record_failure("$e2", "!r:x", "def456", "ValueError: again", NOW + 1)
        rows = await tx.fetchall("SELECT event_id, ref, error FROM failed_events")
        assert [tuple(r) for r in rows] == [("$e2", "def456", "ValueError: again")]
    assert await count(db, "processed_events") == 1


async def test_the_integrity_check_finds_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    db = Database(path)
    await db.open()
    async with db.transaction() as tx:
        repo = Repository(tx)
        for i in range(300):  # a few pages of data
            await repo.seed_member("main", f"@m{i:04d}:example.org", "academia", "europe", NOW)
    assert await db.integrity_problem() is None
    await db.close()

    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 2 : page * 2 + 512] = b"\xff" * 512  # scribble over a page
    path.write_bytes(bytes(data))
    problem = await Database(path).integrity_problem()
    assert problem is not None
    assert "restore the database from a backup" in problem


# ---- what open() refuses, in one sentence, before writing anything --------------------------


async def seeded_file(path: Path, members: int = 300) -> bytes:
    """A database with a few pages of data, closed and checkpointed; its bytes."""
    db = Database(path)
    await db.open()
    async with db.transaction() as tx:
        repo = Repository(tx)
        for i in range(members):
            await repo.seed_member("main", f"@m{i:04d}:example.org", "academia", "europe", NOW)
    await db.close()
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    return file_bytes(path)


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()


def has_proc() -> bool:
    return Path("/proc/self").exists()


def one_sentence(message: str) -> None:
    assert "\n" not in message
    assert "Traceback" not in message
    assert len(message) < 400


async def refused(path: Path, *words: str) -> str:
    db = Database(path)
    with pytest.raises(DatabaseError) as caught:
        await db.open()
    message = str(caught.value)
    one_sentence(message)
    for word in words:
        assert word in message, message
    with pytest.raises(DatabaseError, match="not open"):
        _ = db.conn  # nothing left open after a refusal
    return message


async def test_a_truncated_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    data = await seeded_file(path)
    path.write_bytes(data[: len(data) // 2])
    await refused(path, str(path), "restore", "consensus-bot backup")
    assert path.read_bytes() == data[: len(data) // 2]


async def test_a_file_of_random_bytes_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    junk = bytes((i * 7919 + 13) % 256 for i in range(20_000))
    path.write_bytes(junk)
    message = await refused(path, "not a usable SQLite database", "consensus-bot backup")
    assert "file is not a database" in message
    assert path.read_bytes() == junk


async def test_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    path.mkdir()
    await refused(path, "is a directory", "storage.path")


@pytest.mark.parametrize(
    "where",
    [
        "under-a-file",  # the parent "directory" is a regular file
        "proc",  # /proc refuses new files, even to root (the tests may run as root)
    ],
)
async def test_an_unwritable_place_is_refused(tmp_path: Path, where: str) -> None:
    if where == "proc":
        if not has_proc():
            pytest.skip("no /proc here")
        path = Path("/proc/consensus-bot-test.db")
    else:
        (tmp_path / "a-file").write_text("x", encoding="utf-8")
        path = tmp_path / "a-file" / "bot.db"
    await refused(path, str(path.parent) if where != "proc" else str(path), "storage.path")


async def test_a_damaged_file_is_refused_before_its_migration(tmp_path: Path) -> None:
    """quick_check runs read-only before any write: an old, damaged database is neither
    migrated nor written to."""
    path = tmp_path / "bot.db"
    await seeded_file(path)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA user_version = 1")  # as if a migration were due
    raw.close()
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 2 + 512] = b"\xff" * 512  # scribble over a page
    path.write_bytes(bytes(data))
    message = await refused(path, "failed its integrity check", "consensus-bot backup")
    assert "restore the database from a backup" in message
    assert path.read_bytes() == bytes(data)
    raw = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    raw.close()


async def test_a_newer_database_is_refused_before_any_write(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    await seeded_file(path)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.execute("PRAGMA journal_mode=DELETE")  # so that WAL cannot hide a write
    raw.close()
    data = path.read_bytes()
    await refused(path, "newer than this bot", "upgrade the bot")
    assert path.read_bytes() == data


async def test_an_empty_file_is_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    path.write_bytes(b"")
    db = Database(path)
    await db.open()
    try:
        assert await db.schema_version() == SCHEMA_VERSION
        assert await db.integrity_problem() is None
    finally:
        await db.close()


def test_the_lock_file_says_when_it_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    lock = InstanceLock(tmp_path / "a-file" / "bot.db")
    with pytest.raises(DatabaseError, match="cannot create the lock file") as caught:
        lock.acquire()
    one_sentence(str(caught.value))


def test_the_crypto_store_backup_copies_sqlite_consistently_and_never_overwrites(
    tmp_path: Path,
) -> None:
    from storage.backup import BackupError, copy_crypto_store

    store = tmp_path / "crypto"
    store.mkdir()
    with sqlite3.connect(store / "@bot_DEV.db") as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE keys(k TEXT)")
        conn.execute("INSERT INTO keys VALUES ('megolm')")
    (store / "cross-signing.json").write_text("{}")
    (store / "cross-signing.json").chmod(0o600)
    dest = tmp_path / "backup.db.crypto"
    written = copy_crypto_store(store, dest)
    assert sorted(p.name for p in written) == ["@bot_DEV.db", "cross-signing.json"]
    with sqlite3.connect(dest / "@bot_DEV.db") as copy:
        assert copy.execute("SELECT k FROM keys").fetchall() == [("megolm",)]
    assert (dest / "cross-signing.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(BackupError, match="exists already"):
        copy_crypto_store(store, dest)
    with pytest.raises(BackupError, match="no crypto store"):
        copy_crypto_store(tmp_path / "nowhere", tmp_path / "other")


async def test_the_running_bots_integrity_check_lets_nothing_be_written_before_it_passed(
    tmp_path: Path,
) -> None:
    """The running bot checks a current-schema file while it starts (issue #22): reads go
    on, but no transaction that changed anything commits before the check passed; a
    damaged file fails every write with the operator's sentence, and is left as it was."""
    path = tmp_path / "bot.db"
    await seeded_file(path)  # a WAL database, as the bot keeps it (closed: checkpointed)
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 2 + 512] = b"\xff" * 512  # scribble over a page
    path.write_bytes(bytes(data))
    db = Database(path, check_in_background=True)
    await db.open()  # no migration due: the check runs meanwhile
    try:
        assert await db.schema_version() == SCHEMA_VERSION  # a read commits nothing
        for _ in range(2):
            with pytest.raises(DatabaseError, match="failed its integrity check"):
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
    finally:
        await db.close()
    assert path.read_bytes() == bytes(data)

    good = tmp_path / "good.db"
    await seeded_file(good)
    db = Database(good, check_in_background=True)
    await db.open()
    try:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
        async with db.transaction() as tx:
            assert await tx.fetchval("SELECT value FROM meta WHERE key = 'x'") == "y"
    finally:
        await db.close()
