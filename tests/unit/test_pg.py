"""The PostgreSQL backend's own promises, against the session's throwaway cluster.

The shared contract (repository, transactions, savepoints) is tested on both backends in
test_storage.py and test_engine.py; here: migrations, the refusal of a newer schema, the
`execute` results, the writers' lock across processes, the fence and the active lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from storage.backend import Backend
from storage.database import SCHEMA_VERSION, DatabaseError, _migrations
from storage.pg_lock import STANDBY_MESSAGE, ActiveLock
from storage.postgres import (
    ACTIVE_KEY,
    PG_SCHEMA_VERSION,
    LeaseLost,
    PostgresDatabase,
    keepalive_settings,
    pg_migrations,
    to_pg,
)
from storage.repo import Repository
from tests.unit.test_storage import TABLES

pytestmark = pytest.mark.pg  # needs the session's PostgreSQL cluster

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000_000


def test_both_backends_have_the_same_migrations() -> None:
    assert [v for v, _, _ in pg_migrations()] == [v for v, _, _ in _migrations()]
    assert [n for _, n, _ in pg_migrations()] == [n for _, n, _ in _migrations()]
    assert PG_SCHEMA_VERSION == SCHEMA_VERSION


def test_placeholders_become_numbered_outside_quotes() -> None:
    assert to_pg("SELECT * FROM t WHERE a = ? AND b IN (?, ?)") == (
        "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)"
    )
    assert to_pg("SELECT '?', \"a?\", ? FROM t WHERE c = 'it''s ?'") == (
        "SELECT '?', \"a?\", $1 FROM t WHERE c = 'it''s ?'"
    )
    with pytest.raises(ValueError, match="unterminated"):
        to_pg("SELECT 'oops ?")


@pytest.fixture
async def pgdb(pg_dsn: str) -> AsyncIterator[PostgresDatabase]:
    db = PostgresDatabase(pg_dsn)
    await db.open()
    try:
        yield db
    finally:
        await db.close()


async def test_open_migrates_an_empty_database(pg_empty_dsn: str) -> None:
    db = PostgresDatabase(pg_empty_dsn)
    await db.open()
    try:
        assert await db.schema_version() == SCHEMA_VERSION
        async with db.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
            assert {r[0] for r in rows} >= TABLES | {"schema_version", "bot_lease"}
            versions = await tx.fetchall("SELECT version FROM schema_version ORDER BY version")
            assert [r[0] for r in versions] == list(range(1, SCHEMA_VERSION + 1))
    finally:
        await db.close()
    again = PostgresDatabase(pg_empty_dsn)  # reopening applies nothing
    await again.open()
    try:
        assert await again.schema_version() == SCHEMA_VERSION
    finally:
        await again.close()


async def test_a_newer_schema_is_refused_before_any_write(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "INSERT INTO schema_version(version, name) VALUES ($1, 'future.sql')",
            SCHEMA_VERSION + 1,
        )
        db = PostgresDatabase(pg_dsn, fenced=True)
        with pytest.raises(DatabaseError, match="newer than this bot knows") as caught:
            await db.open()
        assert "\n" not in str(caught.value)
        await db.close()
        # The refused bot did not take an epoch (nor write anything else).
        assert await conn.fetchval("SELECT count(*) FROM bot_lease") == 0
    finally:
        await conn.close()


async def test_an_unreachable_server_is_one_sentence_without_the_password() -> None:
    db = PostgresDatabase("postgresql://bot:s3cret@127.0.0.1:1/consensus")
    with pytest.raises(DatabaseError) as caught:
        await db.open()
    message = str(caught.value)
    assert "storage.dsn" in message
    assert "consensus on 127.0.0.1:1" in message
    assert "s3cret" not in message


async def test_backup_is_left_to_pg_dump(pgdb: PostgresDatabase, tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="pg_dump"):
        await pgdb.backup(tmp_path / "x")


async def test_execute_results_are_the_same_on_both_backends(db: Backend) -> None:
    async with db.transaction() as tx:
        repo = Repository(tx)
        await repo.seed_member("main", "@a:x", "academia", "europe", NOW)
        ids = [
            await tx.execute(
                "INSERT INTO outbox(txn_id, op, payload, created_at) VALUES (?, 'message', '{}', ?)"
                " ON CONFLICT(txn_id) DO NOTHING",
                (f"t{i}", NOW),
            )
            for i in range(3)
        ]
        assert ids == [1, 2, 3]
        skipped = await tx.execute(
            "INSERT INTO outbox(txn_id, op, payload, created_at) VALUES (?, 'message', '{}', ?) "
            "ON CONFLICT(txn_id) DO NOTHING",
            ("t1", NOW),
        )
        assert skipped == 0
        # A table without an id key: something positive when inserted, 0 when skipped.
        assert await tx.execute("INSERT INTO meta(key, value) VALUES ('k', 'v')") > 0
        assert (
            await tx.execute(
                "INSERT INTO meta(key, value) VALUES ('k', 'w') ON CONFLICT DO NOTHING"
            )
            == 0
        )
        assert await tx.execute("UPDATE outbox SET attempts = attempts + 1") == 3
        assert await tx.execute("DELETE FROM outbox WHERE txn_id = ?", ("t0",)) == 1
        row = await tx.fetchone("SELECT txn_id, attempts FROM outbox WHERE id = ?", (2,))
        assert row is not None
        assert (row["txn_id"], row[1]) == ("t1", 1)
        assert await tx.fetchval("SELECT count(*) FROM outbox") == 2
        assert await tx.fetchone("SELECT 1 FROM outbox WHERE id = ?", (99,)) is None


async def test_writers_of_two_processes_take_turns(pg_dsn: str) -> None:
    """The advisory xact lock serialises transactions across connections, as SQLite's
    BEGIN IMMEDIATE does across processes."""
    first, second = PostgresDatabase(pg_dsn), PostgresDatabase(pg_dsn)
    await first.open()
    await second.open()
    order: list[str] = []
    try:
        inside = asyncio.Event()

        async def slow() -> None:
            async with first.transaction() as tx:
                inside.set()
                await Repository(tx).set_meta("who", "first")
                await asyncio.sleep(0.5)
                order.append("first commits")

        async def quick() -> None:
            await inside.wait()
            async with second.transaction() as tx:
                order.append("second begins")
                assert await Repository(tx).get_meta("who") == "first"

        await asyncio.gather(slow(), quick())
        assert order == ["first commits", "second begins"]
    finally:
        await first.close()
        await second.close()


async def test_a_bot_whose_epoch_was_taken_cannot_commit(pg_dsn: str) -> None:
    old, new = PostgresDatabase(pg_dsn, fenced=True), PostgresDatabase(pg_dsn, fenced=True)
    await old.open()
    try:
        async with old.transaction() as tx:
            await Repository(tx).set_meta("by", "old")
        await new.open()  # the takeover: a new epoch
        with pytest.raises(LeaseLost, match="another bot took over"):
            async with old.transaction() as tx:
                await Repository(tx).set_meta("by", "old again")
        assert old.lost.is_set()
        async with new.transaction() as tx:
            assert await Repository(tx).get_meta("by") == "old"
            await Repository(tx).set_meta("by", "new")
    finally:
        await old.close()
        await new.close()


def test_keepalives_drop_a_silent_client_within_half_the_failover_timeout() -> None:
    for timeout in (3.0, 10.0, 30.0, 120.0):
        s = keepalive_settings(timeout)
        worst = int(s["tcp_keepalives_idle"]) + int(s["tcp_keepalives_interval"]) * int(
            s["tcp_keepalives_count"]
        )
        assert worst <= max(2.0, timeout / 2), (timeout, s)
        assert int(s["tcp_user_timeout"]) <= max(2.0, timeout / 2) * 1000


async def test_a_standby_waits_and_takes_over_when_the_active_lets_go(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    active, standby = ActiveLock(pg_dsn, 4.0, poll_s=0.2), ActiveLock(pg_dsn, 4.0, poll_s=0.2)
    await active.acquire()
    caplog.set_level(logging.INFO, logger="storage.pg_lock")
    waiting = asyncio.create_task(standby.acquire())
    try:
        await asyncio.sleep(1.0)
        assert not waiting.done()
        assert STANDBY_MESSAGE in caplog.text
        await active.release()
        await asyncio.wait_for(waiting, timeout=2.0)
    finally:
        waiting.cancel()
        await active.release()
        await standby.release()


async def test_the_active_stops_when_its_lock_connection_is_cut(pg_dsn: str) -> None:
    lock = ActiveLock(pg_dsn, 4.0)
    await lock.acquire()
    admin = await asyncpg.connect(pg_dsn)
    try:
        # The server ends the lock's session (as a network cut or a DBA would).
        cut = await admin.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND objid = $1 AND granted",
            ACTIVE_KEY,
        )
        assert cut is True
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(lock.watch(), timeout=4.0)
    finally:
        await admin.close()
        await lock.release()


HOLDER = """
import asyncio, sys
from storage.pg_lock import ActiveLock

async def main():
    lock = ActiveLock(sys.argv[1], 4.0)
    await lock.acquire()
    print("held", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_killed_active_is_replaced_within_the_failover_timeout(pg_dsn: str) -> None:
    holder = subprocess.Popen(  # noqa: ASYNC220 - killed by the test, not awaited
        [sys.executable, "-c", HOLDER, pg_dsn], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    standby = ActiveLock(pg_dsn, 4.0)
    try:
        assert holder.stdout is not None
        line = await asyncio.to_thread(holder.stdout.readline)
        assert line.strip() == "held"
        waiting = asyncio.create_task(standby.acquire())
        await asyncio.sleep(1.5)
        assert not waiting.done()
        os.kill(holder.pid, signal.SIGKILL)
        killed = time.monotonic()
        await asyncio.wait_for(waiting, timeout=4.0)
        assert time.monotonic() - killed < 4.0
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        await standby.release()


async def test_a_wrong_database_name_is_refused_at_once_not_waited_for(pg_dsn: str) -> None:
    lock = ActiveLock(pg_dsn.rsplit("/", 1)[0] + "/no_such_database", 4.0)
    with pytest.raises(DatabaseError, match=r"refuses the bot .*storage\.dsn"):
        await asyncio.wait_for(lock.acquire(), timeout=5)
