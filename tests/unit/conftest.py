"""Fixtures shared by the fast layer: the engine scenarios' world (see test_engine.py) and an
open database of each backend."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.backend import Backend
from storage.database import Database
from storage.postgres import PostgresDatabase
from tests.unit.test_engine import opened, world  # noqa: F401 - fixtures for other modules


@pytest.fixture
async def db(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Backend]:
    """An open database of each backend, empty at the current schema version."""
    database: Backend
    if backend == "postgresql":
        database = PostgresDatabase(request.getfixturevalue("pg_dsn"))
    else:
        database = Database(tmp_path / "bot.db")
    await database.open()
    try:
        yield database
    finally:
        await database.close()
