"""The row type every backend returns: indexable by column name and by position.

`sqlite3.Row` (SQLite) and `asyncpg.Record` (PostgreSQL) both fit; the repository reads rows
only through this protocol, so it runs unchanged on either backend.
"""

from __future__ import annotations

from typing import Any, Protocol


class Row(Protocol):
    """One result row: `row["column"]` or `row[0]`."""

    def __getitem__(self, key: int | str, /) -> Any:
        """The value of a column, by name or by position."""
        ...
