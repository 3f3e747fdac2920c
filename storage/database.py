"""SQLite through aiosqlite: one writer connection, explicit transactions, numbered migrations.

Every statement runs on aiosqlite's connection thread, never on the event loop's thread: a
slow statement (a large read, the fsync of a COMMIT with synchronous=FULL, a lock wait) only
makes its own caller wait. A hand-off to that thread and back costs about 90 µs here, so the
database is used with few, big calls: one hop per statement (`execute_fetchall`,
`executemany`, `execute`; never execute-then-fetch-then-close), and the ingest path reads a
sync batch's working set in a few bulk queries and writes it with one `executemany` per
statement (`bot.services.unit_of_work`), so a batch costs a constant number of hops whatever
its size (issue #22; `make bench` prints `round_trips_per_batch`). All use of the connection
is serialised by one asyncio lock: a transaction's statements never interleave with another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, cast

import aiosqlite

from bot.domain.errors import OperatorError
from storage.files import create_private_file, make_private, make_private_dir, sqlite_files

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]


class DatabaseError(OperatorError):
    """The database cannot be used; the message tells the operator what to do."""

    # Like a bad config, nothing changes until the operator acts: a supervisor should not loop.
    exit_code = 2


def bundled_migrations(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration bundled in `package`, in order; raises when
    one is out of sequence."""
    found = []
    for entry in resources.files(package).iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    for expected, (version, name, _) in enumerate(found, start=1):
        if version != expected:
            raise DatabaseError(f"migration {name} is out of sequence (expected {expected:04d})")
    return found


def _migrations() -> list[tuple[int, str, str]]:
    """The SQLite migrations."""
    return bundled_migrations("storage.migrations")


SCHEMA_VERSION = len(_migrations())


def _newer(path: Path, version: int) -> str:
    return (
        f"{path} has schema version {version}, newer than this bot knows ({SCHEMA_VERSION}); "
        "upgrade the bot or restore an older backup"
    )


def dir_reason(directory: Path, exc: OSError) -> str:
    """Why a file could not be created in `directory`, on one line."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return f"{directory} is a file, not a directory"
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    """The short reason of an OSError or SQLite error, on one line."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split()) or type(exc).__name__


class Tx:
    """A transaction on the writer connection. Obtained from `Database.transaction()`.

    Each method is one hop to the connection's thread (see the module docstring).
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._savepoints = 0

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the new rowid for an INSERT that inserted (0 when a
        conflict clause skipped it), else the number of rows changed."""
        # rowcount and lastrowid are read from the cursor without another hop; the cursor is
        # not closed (that would be one more), sqlite3 releases it when it is collected.
        cursor = await self._conn.execute(sql, params)
        if sql.lstrip()[:6].upper() == "INSERT":
            # lastrowid keeps the connection's previous insert when nothing was inserted.
            return (cursor.lastrowid or 0) if cursor.rowcount > 0 else 0
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for many parameter rows (one hop)."""
        await self._conn.executemany(sql, list(rows))

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """The first row of a query, or None."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """All rows of a query."""
        return cast(list[sqlite3.Row], await self._conn.execute_fetchall(sql, params))

    async def tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """All rows of a query as plain tuples (no per-row mapping: for bulk reads)."""
        # Safe under the database's lock: no other statement runs on the connection now,
        # and the cursor takes the factory when it is made, on the thread, inside this hop.
        self._conn.row_factory = None
        try:
            rows = await self._conn.execute_fetchall(sql, params)
        finally:
            self._conn.row_factory = sqlite3.Row
        return cast(list[tuple[Any, ...]], rows)

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


_BACKUP_HINT = "(`consensus-bot backup` makes them)"


def _damaged(path: Path, what: str) -> str:
    what = " ".join(what.split())  # quick_check's own answers may span lines
    return (
        f"{path} failed its integrity check ({what}); stop the bot and restore the database "
        f"from a backup {_BACKUP_HINT}"
    )


def _quick_check(conn: sqlite3.Connection) -> list[str]:
    """What `PRAGMA quick_check` finds (at most 5 problems); ["ok"] when nothing."""
    return [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)")]


def _connect_read_only(path: Path) -> sqlite3.Connection:
    # mode=ro: nothing is written to the database file (SQLite may still create the -shm
    # and -wal files beside a WAL database, which it needs to read it).
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


class Database:
    """The bot's SQLite database. `open()` checks, connects and migrates; construction does
    no I/O.

    Every problem `open()` finds is a DatabaseError whose message is one sentence for the
    operator: a directory or an unwritable place instead of a database file, a file that is
    not SQLite (random bytes, a truncated copy), one that fails `PRAGMA quick_check`, one
    written by a newer bot. The checks read the file before anything writes to it, so a
    damaged database is never migrated or added to.
    """

    def __init__(self, path: Path, *, check_in_background: bool = False) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        # The running bot's start: `PRAGMA quick_check` of a large file takes seconds (2.55 s
        # of a 3.2 s start on 1.5 GB, measured), so when no migration is due it runs on its
        # own read-only connection while the bot logs in and reads its first sync, and no
        # transaction that changed anything commits before it passed.
        self._background = check_in_background
        self._check: asyncio.Task[str | None] | None = None
        self._damage: str | None = None  # what the check found: no write may commit

    async def open(self) -> None:
        """Check the file read-only (integrity, schema version), then connect, set pragmas
        and apply pending migrations."""
        if await asyncio.to_thread(self._check_before_writing, full=not self._background):
            self._check = asyncio.create_task(self.integrity_problem(), name="quick-check")
        try:
            await asyncio.to_thread(self._prepare_files)
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise self._cannot_write(exc) from None
        self._conn = conn
        try:
            conn.row_factory = sqlite3.Row
            try:
                # WAL: readers (backups, checks) never block the writer.
                await conn.execute("PRAGMA journal_mode=WAL")
                # FULL: a decision that was acknowledged survives a power cut, not only a crash.
                await conn.execute("PRAGMA synchronous=FULL")
                await conn.execute("PRAGMA foreign_keys=ON")
                await conn.execute("PRAGMA busy_timeout=5000")
            except (sqlite3.Error, OSError) as exc:
                raise self._cannot_write(exc) from None
            await self._migrate(conn)
        except BaseException:
            await self.close()
            raise

    def _prepare_files(self) -> None:
        # The roster and every position are in the file: 0600. SQLite gives its -wal and
        # -shm files the mode of the database, so making the database first covers them.
        with contextlib.suppress(FileExistsError):
            create_private_file(self.path)
        for path in sqlite_files(self.path):
            make_private(path)

    def _cannot_write(self, exc: BaseException) -> DatabaseError:
        return DatabaseError(
            f"cannot open {self.path} for writing ({_reason(exc)}); check storage.path and "
            "that the bot's user may write the file and its directory"
        )

    def _check_before_writing(self, *, full: bool) -> bool:
        """The read-only half of `open()`, run in a thread: raise DatabaseError when the file
        must not be opened for writing. A missing or empty file is a new database. Without
        `full`, the integrity check is left to run meanwhile when no migration is due:
        returns True when it was."""
        path = self.path
        try:
            if path.is_dir():
                raise DatabaseError(
                    f"{path} is a directory, not a database file; set storage.path to a file"
                )
            if not path.exists():
                parent = path.parent
                try:
                    make_private_dir(parent)
                except OSError as exc:
                    raise DatabaseError(
                        f"cannot create the directory {parent} for the database "
                        f"({dir_reason(parent, exc)}); check storage.path and the bot's "
                        "permissions"
                    ) from None
                return False
            if path.stat().st_size == 0:
                return False
        except OSError as exc:
            raise DatabaseError(
                f"cannot read {path} ({_reason(exc)}); check storage.path"
            ) from None
        try:
            with contextlib.closing(_connect_read_only(path)) as conn:
                row = conn.execute("PRAGMA user_version").fetchone()
                version = int(row[0]) if row else 0
                if version > SCHEMA_VERSION:
                    raise DatabaseError(_newer(path, version))
                if not full and version == SCHEMA_VERSION:
                    return True  # nothing to migrate: checked meanwhile (see __init__)
                rows = _quick_check(conn)
        except sqlite3.Error as exc:
            raise DatabaseError(
                f"{path} is not a usable SQLite database ({_reason(exc)}); stop the bot and "
                f"restore it from a backup {_BACKUP_HINT}, or set storage.path to a new file"
            ) from None
        if rows != ["ok"]:
            raise DatabaseError(_damaged(path, "; ".join(rows) or "no answer"))
        return False

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        """Apply pending migrations, one transaction each."""
        try:
            rows = list(await conn.execute_fetchall("PRAGMA user_version"))
        except (sqlite3.Error, OSError) as exc:
            raise self._cannot_write(exc) from None
        current = int(rows[0][0]) if rows else 0
        if current > SCHEMA_VERSION:
            raise DatabaseError(_newer(self.path, current))
        for version, name, sql in _migrations():
            if version <= current:
                continue
            log.info("applying migration %s", name)
            try:
                # executescript commits first; BEGIN..COMMIT makes the migration atomic.
                await conn.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;"
                )
            except (sqlite3.Error, OSError) as exc:
                await _rollback(conn)
                raise DatabaseError(
                    f"cannot upgrade {self.path} to schema version {version} ({_reason(exc)}); "
                    "the file was left at the version before: check the disk space and the "
                    "bot's permissions, then start it again"
                ) from None
            except BaseException:
                await _rollback(conn)
                raise

    async def integrity_problem(self) -> str | None:
        """Run `PRAGMA quick_check` on a separate read-only connection, off the event loop.

        `open()` runs the same check before it writes anything; this one is for a check of a
        database already open (WAL lets it read while the bot writes). None means the file is
        fine; otherwise one sentence that says what to do.
        """

        def check() -> str | None:
            try:
                with contextlib.closing(_connect_read_only(self.path)) as conn:
                    rows = _quick_check(conn)
            except sqlite3.DatabaseError as exc:
                rows = [str(exc)]
            if rows == ["ok"]:
                return None
            return _damaged(self.path, "; ".join(rows) or "no answer")

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
            changes = conn.total_changes
            # BEGIN IMMEDIATE may wait (busy_timeout) for another process's write lock.
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn)
                if conn.total_changes != changes:
                    await self._checked()  # nothing is written before the file passed
            except sqlite3.DatabaseError:
                await _rollback(conn)
                await self._checked()  # a damaged file: the operator's sentence, not SQLite's
                raise
            except BaseException:
                await _rollback(conn)
                raise
            else:
                try:
                    await conn.execute("COMMIT")  # the fsync of synchronous=FULL
                except BaseException:
                    await _rollback(conn)  # a failed COMMIT leaves the transaction open
                    raise

    async def _checked(self) -> None:
        """Wait for the integrity check started by `open()` (if any); raise when it failed."""
        if self._check is not None:
            self._damage = await asyncio.shield(self._check)
            self._check = None
        if self._damage is not None:
            raise DatabaseError(self._damage)

    async def backup(self, dest: Path) -> None:
        """Write a consistent copy of the database to the new file `dest` (VACUUM INTO),
        readable by the bot's user only (0600). Never overwrites."""
        async with self._lock:
            conn = self.conn
            try:
                await asyncio.to_thread(create_private_file, dest)
            except FileExistsError:
                raise DatabaseError(
                    f"cannot write a backup to {dest}: it exists already; choose a new name"
                ) from None
            except OSError as exc:
                raise DatabaseError(f"cannot write a backup to {dest}: {_reason(exc)}") from None
            # VACUUM INTO a file made empty and 0600 first (SQLite would make it 0644, and
            # takes an empty file as new); the file is removed again when the copy fails.
            try:
                await conn.execute("VACUUM INTO ?", (str(dest),))
            except (sqlite3.Error, OSError) as exc:
                await asyncio.to_thread(dest.unlink, missing_ok=True)
                raise DatabaseError(f"cannot write a backup to {dest}: {_reason(exc)}") from None

    async def close(self) -> None:
        """Close the connection and its thread (idempotent)."""
        check, self._check = self._check, None
        if check is not None:
            check.cancel()
            with contextlib.suppress(BaseException):
                await check
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


async def _rollback(conn: aiosqlite.Connection) -> None:
    """Roll back the open transaction, if any (shielded: a cancelled caller must not leave
    the connection inside a transaction for the next one)."""
    if conn.in_transaction:
        await asyncio.shield(conn.execute("ROLLBACK"))
