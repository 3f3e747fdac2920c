"""`consensus-bot migrate-storage`: copy a SQLite database into an empty PostgreSQL one.

The source is read through a read-only connection while its lock file is held (no bot may
run on it meanwhile); it must be at this bot's schema version (start the bot on it once to
upgrade it). The target is migrated to the same version, must hold no rows, and receives
every table in one transaction: a failure leaves it empty. Then every frozen decision record
is read back from the target and verified: its body byte for byte against the source, and
its hash chain and head with the same check as `export --verify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.domain.errors import OperatorError
from bot.domain.record import verify_json
from storage.database import SCHEMA_VERSION, Database, DatabaseError
from storage.lock import InstanceLock
from storage.postgres import BOOKKEEPING_TABLES, PG_SCHEMA_VERSION, PostgresDatabase


class MigrationError(OperatorError):
    """The copy was refused or failed; nothing was written to the target."""


@dataclass
class MigrationReport:
    """What was copied and what the verification found."""

    rows: dict[str, int] = field(default_factory=dict)
    records_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every table arrived whole and every record verifies."""
        return not self.problems

    def summary(self) -> str:
        """A few lines for the operator."""
        total = sum(self.rows.values())
        lines = [f"copied {total} rows in {len(self.rows)} tables:"]
        lines += [f"  {table}: {n}" for table, n in sorted(self.rows.items())]
        verdict = "all verify" if self.ok else f"{len(self.problems)} problem(s)"
        lines.append(
            f"frozen decision records checked on the target: {self.records_checked}, {verdict}"
        )
        lines += [f"  PROBLEM {p}" for p in self.problems]
        return "\n".join(lines)


def _read_source(path: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every table of the SQLite file: (column names, rows), read in one read transaction."""
    if not path.is_file():
        raise MigrationError(f"{path} is not a file")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            conn.execute("BEGIN")  # one snapshot for all tables
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version != SCHEMA_VERSION:
                raise MigrationError(
                    f"{path} has schema version {version}, this bot {SCHEMA_VERSION}: start "
                    "this bot on it once (it upgrades the file), stop it, then migrate"
                )
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            tables = {}
            for name in names:
                try:  # the implicit rowid too, where there is one (not WITHOUT ROWID)
                    cursor = conn.execute(f'SELECT rowid AS "rowid", * FROM "{name}"')  # noqa: S608
                except sqlite3.OperationalError:
                    cursor = conn.execute(f'SELECT * FROM "{name}"')  # noqa: S608
                columns = [d[0] for d in cursor.description]
                tables[name] = (columns, cursor.fetchall())
            return tables
    except sqlite3.Error as exc:
        raise MigrationError(f"cannot read {path} ({exc})") from None


def _rowid_rows(columns: list[str], rows: list[tuple[Any, ...]]) -> tuple[list[str], list[Any]]:
    """`SELECT rowid, *` on a table whose key is an INTEGER PRIMARY KEY names it twice."""
    if len(columns) > 1 and columns[0] == "rowid" and "rowid" in columns[1:]:
        return columns[1:], [r[1:] for r in rows]
    return columns, rows


def _order(tables: list[str], refs: list[tuple[str, str]]) -> list[str]:
    """Tables in an order where every referenced table comes before the ones that refer to it."""
    ordered: list[str] = []
    pending = sorted(tables)
    while pending:
        ready = [
            t
            for t in pending
            if all(parent in ordered or parent == t for child, parent in refs if child == t)
        ]
        if not ready:
            raise MigrationError(f"circular references among {pending}")
        ordered += ready
        pending = [t for t in pending if t not in ready]
    return ordered


async def migrate_storage(source: Path, dsn: str) -> MigrationReport:
    """Copy the SQLite database at `source` into the empty PostgreSQL database `dsn`."""
    if not await asyncio.to_thread(source.is_file):
        raise MigrationError(f"{source} is not a file")
    problem = await Database(source).integrity_problem()
    if problem:
        raise MigrationError(problem)
    lock = InstanceLock(source)
    lock.acquire()  # AlreadyRunning if a bot uses the file: stop it first
    try:
        tables = await asyncio.to_thread(_read_source, source)
        target = PostgresDatabase(dsn, holder="consensus-bot migrate-storage")
        await target.open()
        try:
            return await _copy(target, tables)
        finally:
            await target.close()
    finally:
        lock.release()


async def _copy(
    target: PostgresDatabase, tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
) -> MigrationReport:
    report = MigrationReport()
    if await target.schema_version() != PG_SCHEMA_VERSION:
        raise MigrationError(f"the {target.where} is not at schema version {PG_SCHEMA_VERSION}")
    async with target.transaction():
        conn = target.conn  # the transaction's connection: COPY needs asyncpg itself
        pg_tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
            if r[0] not in BOOKKEEPING_TABLES
        ]
        missing = sorted(set(tables) - set(pg_tables))
        if missing:
            raise MigrationError(f"the target has no table for {', '.join(missing)}")
        for table in pg_tables:
            if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")'):  # noqa: S608
                raise MigrationError(
                    f"the {target.where} is not empty (table {table} has rows); migrate only "
                    "into a new, empty database"
                )
        refs = [
            (r[0], r[1])
            for r in await conn.fetch(
                "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text "
                "FROM pg_constraint c WHERE c.contype = 'f' "
                "AND c.connamespace = current_schema()::regnamespace"
            )
        ]
        for table in _order(pg_tables, refs):
            if table not in tables:
                continue
            columns, rows = _rowid_rows(*tables[table])
            wanted = [
                r[0]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = $1",
                    table,
                )
            ]
            # The implicit rowid travels only where the target keeps it (dm_rooms' column).
            extra = sorted(set(columns) - set(wanted) - {"rowid"})
            absent = sorted(set(wanted) - set(columns))
            if extra or absent:
                raise MigrationError(
                    f"table {table}: the columns differ (only in the source: {extra}, only in "
                    f"the target: {absent})"
                )
            keep = [i for i, c in enumerate(columns) if c in wanted]
            names = [columns[i] for i in keep]
            records = [tuple(row[i] for i in keep) for row in rows]
            await conn.copy_records_to_table(table, records=records, columns=names)
            report.rows[table] = len(records)
            for column in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = $1 AND is_identity = 'YES'",
                table,
            ):
                # Later inserts must continue after the copied keys.
                name = column[0]
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{name}'), "  # noqa: S608
                    f'max("{name}")) FROM "{table}" HAVING max("{name}") IS NOT NULL'
                )
        for table, n in report.rows.items():
            got = int(await conn.fetchval(f'SELECT count(*) FROM "{table}"'))  # noqa: S608
            if got != n:
                report.problems.append(
                    f"table {table}: {n} rows in the source, {got} in the target"
                )
    await _verify_records(target, tables, report)
    return report


async def _verify_records(
    target: PostgresDatabase,
    tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
    report: MigrationReport,
) -> None:
    columns, rows = _rowid_rows(*tables.get("records", ([], [])))
    source = {
        (r[columns.index("request_id")], r[columns.index("segment")]): (
            r[columns.index("head")],
            r[columns.index("body")],
        )
        for r in rows
    }
    async with target.transaction() as tx:
        stored = await tx.fetchall(
            "SELECT request_id, segment, head, body FROM records ORDER BY request_id, segment"
        )
    for row in stored:
        key = (row["request_id"], row["segment"])
        report.records_checked += 1
        where = f"record of request #{key[0]} segment {key[1]}"
        if source.get(key) != (row["head"], row["body"]):
            report.problems.append(f"{where}: differs from the source")
            continue
        for problem in verify_json(row["body"], head=row["head"]):
            report.problems.append(f"{where}: {problem}")
    if len(stored) != len(source):
        report.problems.append(
            f"{len(source)} frozen records in the source, {len(stored)} in the target"
        )


__all__ = ["DatabaseError", "MigrationError", "MigrationReport", "migrate_storage"]
