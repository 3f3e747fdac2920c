"""The row type every backend returns: indexable by column name and by position.

`sqlite3.Row` (SQLite) and `asyncpg.Record` (PostgreSQL) both fit; the repository reads rows
only through this protocol, so it runs unchanged on either backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class Row(Protocol):
    """One result row: `row["column"]`, `row[0]`, or its values in order (`tuple(row)`)."""

    def __getitem__(self, key: int | str, /) -> Any:
        """The value of a column, by name or by position."""
        ...

    def __iter__(self) -> Iterator[Any]:
        """The values, in column order."""
        ...
