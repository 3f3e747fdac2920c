"""Upgrades from every released schema version keep every row; newer databases are refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.domain.counting import Ballot, count
from storage.database import SCHEMA_VERSION, Database, DatabaseError, _migrations
from storage.repo import Repository

# Tables dropped on purpose: a stored copy of what the counting rule derives (version 3).
DERIVED = {"current_positions"}

# Rows valid at schema version 1 (the first release); later versions must keep them.
V1_ROWS = [
    "INSERT INTO meta (key, value) VALUES ('sync_token', 's42_1')",
    "INSERT INTO members (user_id, stakeholder, region, active, added_at, added_by)"
    " VALUES ('@alice:x', 'academia', 'europe', 1, 1, 'config')",
    "INSERT INTO requests (id, applicant, statement, filed_by, filed_event_id, state, room_id,"
    " ballot_event_id, deadline_at, created_at, opened_at)"
    " VALUES (1, '@erin:x', 'Statement', '@chair:x', '$filed', 'open', '!r:x', '$ballot',"
    " 999, 1, 2)",
    "INSERT INTO eligible (request_id, user_id, stakeholder, region)"
    " VALUES (1, '@alice:x', 'academia', 'europe')",
    "INSERT INTO position_inputs (request_id, member, event_id, source, position, ts,"
    " recorded_at) VALUES (1, '@alice:x', '$r1', 'reaction', 'support', 5, 6)",
    "INSERT INTO current_positions (request_id, member, position, event_id, ts)"
    " VALUES (1, '@alice:x', 'support', '$r1', 5)",
    "INSERT INTO processed_events (event_id, room_id, processed_at) VALUES ('$r1', '!r:x', 6)",
    "INSERT INTO outbox (txn_id, op, payload, created_at) VALUES ('cb.1', 'message', '{}', 1)",
]


def build_at(path: Path, version: int) -> None:
    """A database as a bot of schema `version` left it, with data in it."""
    with sqlite3.connect(path) as db:
        for number, _name, sql in _migrations():
            if number > version:
                break
            db.executescript(sql)
        db.execute(f"PRAGMA user_version = {version}")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for statement in V1_ROWS:
            table = statement.split("INSERT INTO ", 1)[1].split()[0]
            if table in tables:  # (a derived table dropped in a later version)
                db.execute(statement)


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
async def test_upgrade_from_every_released_version_keeps_the_data(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "old.db"
    build_at(path, version)
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        before = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    database = Database(path)
    await database.open()
    try:
        assert await database.schema_version() == SCHEMA_VERSION
        async with database.transaction() as tx:
            for table, rows in before.items():
                if table not in DERIVED:
                    assert await tx.fetchval(f"SELECT count(*) FROM {table}") == rows, table
            repo = Repository(tx)
            req = await repo.request(1)
            assert req is not None
            assert req.ballot_event_id == "$ballot"
            assert req.poll_event_id is None  # a column added later, empty for old rows
            stored = await repo.rows(1)
            if version < 3:  # backfilled from the request by migration 3
                assert [i.room_id for i in stored.inputs] == ["!r:x"]
            tally = count(
                Ballot(req.room_id, req.closed_at),
                stored.snapshot,
                stored.removed,
                stored.inputs,
                [],
            )
            assert tally.current["@alice:x"].position is not None
            assert await repo.get_meta("sync_token") == "s42_1"
            member = await repo.member("main", "@alice:x")
            assert member is not None
            assert member.tz is None
    finally:
        await database.close()


async def test_a_database_from_a_newer_bot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    build_at(path, 1)  # any content: the version number alone decides
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(DatabaseError, match="newer than this bot"):
        await Database(path).open()


@pytest.mark.pg
async def test_sqlite_and_postgresql_schemas_have_the_same_tables_and_columns(
    tmp_path: Path, pg_dsn: str
) -> None:
    """Introspected after migrating, not compared by file name: every table and column of
    one backend is in the other (PostgreSQL adds only its bookkeeping tables)."""
    import asyncpg

    from storage.postgres import BOOKKEEPING_TABLES

    db = Database(tmp_path / "bot.db")
    await db.open()
    await db.close()
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        lite = {(t, r[1]) for t in tables for r in conn.execute(f"PRAGMA table_info({t})")}
        # SQLite's implicit rowid (tables not WITHOUT ROWID), which a PostgreSQL table may
        # stand in for with an identity column of that name.
        implicit = set()
        for t in tables:
            try:
                conn.execute(f"SELECT rowid FROM {t} LIMIT 0")
                implicit.add((t, "rowid"))
            except sqlite3.OperationalError:
                pass
    conn_pg = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn_pg.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        )
    finally:
        await conn_pg.close()
    pg = {(r["table_name"], r["column_name"]) for r in rows}
    pg = {(t, c) for t, c in pg if t not in BOOKKEEPING_TABLES}
    stand_ins = rows_named(pg, "rowid") - lite
    assert stand_ins <= implicit, stand_ins  # only where SQLite has its implicit rowid
    pg -= stand_ins
    assert lite == pg, {"only in SQLite": lite - pg, "only in PostgreSQL": pg - lite}
    assert ("crypto_state", "value") in lite


def rows_named(columns: set[tuple[str, str]], name: str) -> set[tuple[str, str]]:
    """The (table, column) pairs of columns called `name`."""
    return {(t, c) for t, c in columns if c == name}
