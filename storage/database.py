"""SQLite through aiosqlite: one writer connection, explicit transactions, numbered migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]


class DatabaseError(Exception):
    """The database cannot be used; the message tells the operator what to do."""


def _migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every bundled migration, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    for expected, (version, name, _) in enumerate(found, start=1):
        if version != expected:
            raise DatabaseError(f"migration {name} is out of sequence (expected {expected:04d})")
    return found


SCHEMA_VERSION = len(_migrations())


class Tx:
    """A transaction on the writer connection. Obtained from `Database.transaction()`."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._savepoints = 0

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the new rowid for an INSERT that inserted (0 when a
        conflict clause skipped it), else the number of rows changed."""
        # One hop to the database thread: rowcount and lastrowid are read without another,
        # and the cursor is left to the garbage collector rather than closed in a second hop.
        cursor = await self._conn.execute(sql, params)
        if sql.lstrip()[:6].upper() == "INSERT":
            # lastrowid keeps the connection's previous insert when nothing was inserted.
            return (cursor.lastrowid or 0) if cursor.rowcount > 0 else 0
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for many parameter rows."""
        await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        """The first row of a query, or None."""
        rows = await self._conn.execute_fetchall(sql, params)  # one hop, not three
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        """All rows of a query."""
        return list(await self._conn.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested unit that rolls back alone on error (one event's effects)."""
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        await self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self._conn.execute(f"ROLLBACK TO {name}")
            await self._conn.execute(f"RELEASE {name}")
            raise
        else:
            await self._conn.execute(f"RELEASE {name}")


class Database:
    """The bot's SQLite database. `open()` connects and migrates; construction does no I/O."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect, set pragmas, check integrity, and apply pending migrations."""
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        self._conn = conn
        await conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a decision that was acknowledged survives a power cut, not only a crash.
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        try:
            await self._migrate(conn)
        except BaseException:
            await self.close()
            raise

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        async with conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.path} has schema version {current}, newer than this bot knows "
                f"({SCHEMA_VERSION}); upgrade the bot or restore an older backup"
            )
        for version, name, sql in _migrations():
            if version <= current:
                continue
            log.info("applying migration %s", name)
            try:
                # executescript commits first; BEGIN..COMMIT makes the migration atomic.
                await conn.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;"
                )
            except Exception:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise

    async def integrity_problem(self) -> str | None:
        """Run `PRAGMA quick_check` on a separate read-only connection, off the event loop.

        It reads the whole file, so the bot runs it right after start-up instead of before
        its first sync (WAL lets it read while the bot writes). None means the file is fine.
        """

        def check() -> str | None:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            try:
                with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
                    rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            except sqlite3.DatabaseError as exc:
                rows = [str(exc)]
            if rows == ["ok"]:
                return None
            return (
                f"{self.path} failed its integrity check ({'; '.join(rows) or 'no answer'}); "
                "stop the bot and restore the database from a backup"
            )

        return await asyncio.to_thread(check)

    async def schema_version(self) -> int:
        """The schema version of the open database."""
        async with self.transaction() as tx:
            return int(await tx.fetchval("PRAGMA user_version"))

    @property
    def conn(self) -> aiosqlite.Connection:
        """The connection; only valid after `open()`."""
        if self._conn is None:
            raise DatabaseError("the database is not open")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One write transaction (BEGIN IMMEDIATE), serialised with every other one."""
        async with self._lock:
            conn = self.conn
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")

    async def backup(self, dest: Path) -> None:
        """Write a consistent copy of the database to `dest` (VACUUM INTO)."""
        async with self._lock:
            try:
                await self.conn.execute("VACUUM INTO ?", (str(dest),))
            except aiosqlite.OperationalError as exc:
                raise DatabaseError(f"cannot write a backup to {dest}: {exc}") from None

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
