"""PostgreSQL through asyncpg: the same `Tx` contract as SQLite, for active/standby bots.

One connection per bot does every transaction, one at a time (like SQLite's one writer), and
each transaction first takes a transaction-level advisory lock, so writers of other processes
(a `members import` while the bot runs) wait their turn as they would for SQLite's
`BEGIN IMMEDIATE`. Isolation is PostgreSQL's default READ COMMITTED: with every writer
serialised by that lock, no transaction can see another's half-done work.

A running bot's database is *fenced*: on open it bumps the epoch in `bot_lease`, and every
transaction checks it still holds that epoch (after the write lock, so a takeover that bumped
it is seen). A bot that lost its place to a standby therefore cannot commit another write,
even before it notices that its lock connection is gone.

Migrations are the numbered files of `storage/migrations_pg/`, one transaction each, the
version kept in the table `schema_version`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from bot.domain.errors import OperatorError
from storage.backend import Params
from storage.database import DatabaseError, bundled_migrations
from storage.dsn import describe_dsn
from storage.rows import Row

log = logging.getLogger(__name__)

# Advisory lock keys (per database): the writers' turn, and the active bot's session lock.
WRITE_KEY = 0x43_42_57_52  # "CBWR"
ACTIVE_KEY = 0x43_42_41_43  # "CBAC"
CONNECT_TIMEOUT_S = 10.0

_INSERT = re.compile(r"\s*INSERT\s+INTO\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS bot_lease (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    epoch  BIGINT NOT NULL,
    holder TEXT NOT NULL,
    since  TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""
# Tables of the bot's own bookkeeping, not of its data (`migrate-storage` skips them).
BOOKKEEPING_TABLES = frozenset({"schema_version", "bot_lease"})


def keepalive_settings(failover_timeout_s: float) -> dict[str, str]:
    """Server-side TCP settings for a running bot's connections: PostgreSQL drops a silent
    client (and so its locks: the active lock, a transaction's write lock) within about half
    the failover timeout, leaving the other half for the standby's poll and its connection."""
    half = max(2.0, failover_timeout_s / 2)
    idle = max(1, math.floor(half / 2))
    count = max(1, math.floor(half - idle))
    return {
        "tcp_keepalives_idle": str(idle),
        "tcp_keepalives_interval": "1",
        "tcp_keepalives_count": str(count),
        # Unacknowledged data (keepalives do not apply then) times out too.
        "tcp_user_timeout": str(int(half * 1000)),
    }


class LeaseLost(OperatorError):
    """This bot is no longer the active one: another took over, or the lock is gone."""


def pg_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every bundled PostgreSQL migration, in order."""
    return bundled_migrations("storage.migrations_pg")


PG_SCHEMA_VERSION = len(pg_migrations())


@functools.lru_cache(maxsize=1024)
def to_pg(sql: str) -> str:
    """`?` placeholders as asyncpg's `$1, $2, …`; a `?` inside a quoted literal or
    identifier is left alone. The repository's SQL is fixed text, so the cache stays small."""
    out: list[str] = []
    quote: str | None = None
    n = 0
    for ch in sql:
        if quote is not None:
            if ch == quote:  # '' inside a literal closes and reopens it: still right
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    if quote is not None:
        raise ValueError(f"unterminated quote in SQL: {sql[:60]!r}")
    return "".join(out)


def _args(params: Params) -> Sequence[Any]:
    if isinstance(params, dict):
        raise TypeError("named parameters are not supported; use ? placeholders")
    return params


def _count(status: str) -> int:
    """The row count of a command status such as 'UPDATE 3' or 'INSERT 0 1'."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class PgTx:
    """A transaction on the bot's PostgreSQL connection (the `storage.backend.Tx` contract)."""

    def __init__(self, conn: asyncpg.Connection, id_tables: frozenset[str]) -> None:
        self._conn = conn
        self._id_tables = id_tables
        self._savepoints = 0

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; an INSERT into a table with an `id` key that inserted returns
        that id (asked for with RETURNING), one skipped by its conflict clause 0, anything
        else the number of rows changed."""
        args = _args(params)
        insert = _INSERT.match(sql)
        if insert and insert.group(1).lower() in self._id_tables and not _RETURNING.search(sql):
            rows = await self._conn.fetch(to_pg(sql) + " RETURNING id", *args)
            # SQLite's lastrowid is the last row inserted; so is this.
            return int(rows[-1][0]) if rows else 0
        status = await self._conn.execute(to_pg(sql), *args)
        return _count(str(status))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for many parameter rows."""
        await self._conn.executemany(to_pg(sql), [_args(r) for r in rows])

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a query, or None."""
        row: Row | None = await self._conn.fetchrow(to_pg(sql), *_args(params))
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a query."""
        rows: list[Row] = await self._conn.fetch(to_pg(sql), *_args(params))
        return rows

    async def tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """All rows of a query as plain tuples."""
        return [tuple(r) for r in await self._conn.fetch(to_pg(sql), *_args(params))]

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row, or None."""
        return await self._conn.fetchval(to_pg(sql), *_args(params))

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested unit that rolls back alone on error (one event's effects)."""
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        await self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self._conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            await self._conn.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            await self._conn.execute(f"RELEASE SAVEPOINT {name}")


class PostgresDatabase:
    """The bot's PostgreSQL database. `open()` connects and migrates; construction does no I/O.

    `fenced=True` is for the running bot (see the module docstring): it must hold the active
    lock (`storage.pg_lock.ActiveLock`) before `open()`. One-off commands leave it False.
    """

    def __init__(
        self,
        dsn: str,
        *,
        fenced: bool = False,
        holder: str = "consensus-bot",
        failover_timeout_s: float | None = None,
    ) -> None:
        self._dsn = dsn
        # A running bot's writer connection must not outlive its host either: a transaction
        # left open by a dead bot would hold the write lock the standby needs.
        self._settings = {"application_name": holder}
        if failover_timeout_s is not None:
            self._settings.update(keepalive_settings(failover_timeout_s))
        self.where = describe_dsn(dsn)
        self._fenced = fenced
        self._holder = holder
        self._epoch: int | None = None
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._id_tables: frozenset[str] = frozenset()
        self.lost = asyncio.Event()  # set when the fence finds another bot took over

    async def open(self) -> None:
        """Connect, refuse a newer schema, apply pending migrations; take the epoch if fenced."""
        try:
            conn = await asyncpg.connect(
                self._dsn,
                timeout=CONNECT_TIMEOUT_S,
                server_settings=self._settings,
            )
        except CONNECT_ERRORS as exc:
            raise DatabaseError(
                f"cannot connect to the {self.where} ({_reason(exc)}); check storage.dsn, that "
                "the server runs and that it accepts the bot's user"
            ) from None
        self._conn = conn
        try:
            await self._migrate(conn)
            self._id_tables = frozenset(
                r[0]
                for r in await conn.fetch(
                    "SELECT table_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND column_name = 'id' "
                    "AND is_identity = 'YES'"
                )
            )
            if self._fenced:
                await self._take_epoch(conn)
        except BaseException:
            await self.close()
            raise

    def _newer(self, version: int) -> DatabaseError:
        return DatabaseError(
            f"the {self.where} has schema version {version}, newer than this bot knows "
            f"({PG_SCHEMA_VERSION}); upgrade the bot or restore an older dump"
        )

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        try:
            async with conn.transaction():
                # Two bots starting at once: the second waits, then finds nothing to do.
                await conn.execute(f"SELECT pg_advisory_xact_lock({WRITE_KEY})")
                exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
                current = 0
                if exists:
                    current = int(
                        await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
                    )
                if current > PG_SCHEMA_VERSION:
                    raise self._newer(current)
                await conn.execute(_BOOKKEEPING)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise DatabaseError(
                f"cannot prepare the {self.where} ({_reason(exc)}); check that the bot's user "
                "may create tables in it"
            ) from None
        for version, name, sql in pg_migrations():
            if version <= current:
                continue
            log.info("applying migration %s", name)
            try:
                async with conn.transaction():
                    await conn.execute(f"SELECT pg_advisory_xact_lock({WRITE_KEY})")
                    done = await conn.fetchval(
                        "SELECT 1 FROM schema_version WHERE version = $1", version
                    )
                    if done:  # another bot applied it while this one waited
                        continue
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_version(version, name) VALUES ($1, $2)", version, name
                    )
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                raise DatabaseError(
                    f"cannot upgrade the {self.where} to schema version {version} "
                    f"({_reason(exc)}); it was left at the version before: check the bot's "
                    "privileges, then start it again"
                ) from None

    async def _take_epoch(self, conn: asyncpg.Connection) -> None:
        """Become the fenced writer: a new epoch that every later transaction checks."""
        async with conn.transaction():
            await conn.execute(f"SELECT pg_advisory_xact_lock({WRITE_KEY})")
            epoch = await conn.fetchval(
                "INSERT INTO bot_lease(id, epoch, holder) VALUES (1, 1, $1) "
                "ON CONFLICT (id) DO UPDATE SET epoch = bot_lease.epoch + 1, "
                "holder = excluded.holder, since = now() RETURNING epoch",
                self._holder,
            )
        self._epoch = int(epoch)
        log.info("writing as epoch %d of the %s", self._epoch, self.where)

    async def schema_version(self) -> int:
        """The schema version of the open database."""
        async with self.transaction() as tx:
            return int(await tx.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))

    @property
    def conn(self) -> asyncpg.Connection:
        """The connection; only valid after `open()`."""
        if self._conn is None:
            raise DatabaseError("the database is not open")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgTx]:
        """One write transaction, serialised with every other one (in this process by a lock,
        across processes by an advisory lock), and fenced for a running bot."""
        async with self._lock:
            conn = self.conn
            await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_KEY})")
            try:
                if self._epoch is not None:
                    epoch = await conn.fetchval("SELECT epoch FROM bot_lease WHERE id = 1")
                    if epoch != self._epoch:
                        self.lost.set()
                        raise LeaseLost(
                            f"another bot took over the {self.where} (epoch {epoch}, this bot "
                            f"had {self._epoch}); this one stops"
                        )
                yield PgTx(conn, self._id_tables)
            except BaseException:
                if not conn.is_closed():
                    try:
                        await conn.execute("ROLLBACK")
                    except CONNECT_ERRORS:
                        log.warning("cannot roll back on the %s", self.where, exc_info=True)
                raise
            else:
                await conn.execute("COMMIT")

    async def backup(self, dest: Path) -> None:
        """Not done by the bot: PostgreSQL has pg_dump, which does it better."""
        raise DatabaseError(
            f'with storage.backend = "postgresql" the bot writes no backup to {dest}: use '
            "pg_dump, readable by you only (e.g. "
            "`(umask 077; pg_dump --format=custom --file=consensus.dump DSN)`)"
        )

    async def close(self) -> None:
        """Close the connection (idempotent); a connection that hangs is cut."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close(timeout=5)
            except CONNECT_ERRORS:
                conn.terminate()
