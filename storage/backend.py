"""What the repository and the services need from a database, whichever backend holds it.

Two backends fit these protocols: `storage.database.Database` (SQLite, the embedded default)
and `storage.postgres.PostgresDatabase`. `storage.factory` picks one from the config.

The `Tx` contract (both backends keep it, and the storage tests run on both):

- `execute(sql, params) -> int`: for an INSERT that inserted, the new row's `id` (tables with an
  integer `id` key; other tables: a positive number); 0 when a conflict clause skipped it;
  for any other statement, the number of rows changed.
- `executemany`, `fetchone`, `fetchall`, `tuples`, `fetchval` as their names say; rows are
  `Row`s (`tuples` gives plain tuples).
- `savepoint()`: a nested unit that rolls back alone when its block raises.
- SQL is written once, with `?` placeholders, in the dialect both SQLite (3.35+) and
  PostgreSQL understand (`ON CONFLICT … DO NOTHING/DO UPDATE`, `RETURNING`, `CAST`, no
  `INSERT OR …`, no `COLLATE NOCASE`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from storage.rows import Row

Params = Sequence[Any] | dict[str, Any]


class Tx(Protocol):
    """One transaction, obtained from `Backend.transaction()`."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement (see the module's contract for the result)."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for many parameter rows."""
        ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a query, or None."""
        ...

    async def fetchall(self, sql: str, params: Params = ()) -> Sequence[Row]:
        """All rows of a query."""
        ...

    async def tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """All rows of a query as plain tuples (for bulk reads)."""
        ...

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row, or None."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested unit that rolls back alone on error."""
        ...


class Backend(Protocol):
    """A database the bot can run on: opened once, then used through transactions."""

    async def open(self) -> None:
        """Connect, check and migrate."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """One write transaction, serialised with every other one."""
        ...

    async def schema_version(self) -> int:
        """The schema version of the open database."""
        ...

    async def backup(self, dest: Path) -> None:
        """Write a consistent copy of the database to `dest`."""
        ...

    async def close(self) -> None:
        """Close (idempotent)."""
        ...
