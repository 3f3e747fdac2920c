"""`consensus-bot migrate-storage`: a SQLite database with decisions, copied to PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from storage.postgres import PostgresDatabase
from storage.repo import Repository
from tests.unit.test_engine import ALICE, BOB, CHAIR, MAIN, make_world
from tests.unit.test_storage import TABLES

pytestmark = pytest.mark.pg  # needs the session's PostgreSQL cluster


async def _decided_twice(path: Path) -> None:
    """Request #1 decided, reopened and decided again: two frozen record segments."""
    w = await make_world(path)
    try:
        await w.open_request()
        await w.apply(w.reaction(ALICE, "👍"), w.reaction(BOB, "🤔"))
        for text in (
            "!cb decide decline Not yet: Bob's concern about the missing contact stands open.",
            "!cb reopen 7d",
            "!cb decide decline Still not: the contact Bob asked for was never given to us.",
        ):
            command = w.command(CHAIR, text)
            await w.apply(command)
            assert await w.acks(command.event_id) == ["✅"], await w.replies_to(command.event_id)
        assert await w.scalar("SELECT count(*) FROM records") == 2
    finally:
        await w.db.close()


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: db.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "bot.db"
    asyncio.run(_decided_twice(path))
    return path


def test_everything_is_copied_and_every_record_verifies(
    source: Path, pg_empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["migrate-storage", "--from", f"sqlite:{source}", "--to", f"postgresql:{pg_empty_dsn}"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "frozen decision records checked on the target: 2, all verify" in out
    before = _counts(source)
    assert set(before) >= TABLES

    async def check() -> None:
        db = PostgresDatabase(pg_empty_dsn)
        await db.open()
        try:
            async with db.transaction() as tx:
                for table, n in before.items():
                    assert await tx.fetchval(f"SELECT count(*) FROM {table}") == n, table
                repo = Repository(tx)
                records = await repo.frozen_records(1)
                assert [r.segment for r in records] == sorted(r.segment for r in records)
                assert len(records) == 2
        finally:
            await db.close()
        # The bot carries on there: new rows continue after the copied keys.
        w = await make_world(PostgresDatabase(pg_empty_dsn))
        try:
            w._seq = itertools.count(1000)  # event IDs the source has not processed yet
            filing = w.command(
                CHAIR,
                "!cb request @grace:x --stakeholder academia --region europe Grace too.",
                room=MAIN,
            )
            await w.apply(filing)
            assert await w.acks(filing.event_id) == ["✅"]
            assert await w.scalar("SELECT max(id) FROM requests") == before["requests"] + 1
        finally:
            await w.db.close()

    asyncio.run(check())

    # A second run finds the target full and refuses, leaving it as it was.
    again = main(
        ["migrate-storage", "--from", f"sqlite:{source}", "--to", f"postgresql:{pg_empty_dsn}"]
    )
    assert again == 1
    assert "not empty" in capsys.readouterr().err


def test_a_record_that_does_not_verify_fails_the_migration(
    source: Path, pg_empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(source) as db:
        db.execute(
            "UPDATE records SET body = replace(body, 'Not yet', 'Yes now') WHERE segment = 1"
        )
    code = main(
        ["migrate-storage", "--from", f"sqlite:{source}", "--to", f"postgresql:{pg_empty_dsn}"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "all verify" not in out
    assert "PROBLEM record of request #1 segment 1" in out


def test_a_running_bot_or_a_bad_argument_is_refused(
    source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["migrate-storage", "--from", str(source), "--to", "postgresql:postgresql://x/y"]) == 2
    )
    assert "sqlite:PATH" in capsys.readouterr().err
    assert main(["migrate-storage", "--from", f"sqlite:{source}", "--to", "mysql://x/y"]) == 2
    from storage.lock import InstanceLock

    lock = InstanceLock(source)
    lock.acquire()
    try:
        code = main(
            ["migrate-storage", "--from", f"sqlite:{source}", "--to", "postgresql:postgresql://x/y"]
        )
        assert code == 1
        assert "another Consensus Bot" in capsys.readouterr().err
    finally:
        lock.release()
