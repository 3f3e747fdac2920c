"""Choosing the backend: the one place that reads `[storage] backend`.

`bot/app.py` and `bot/cli.py` get their database (and the running bot its guard, the thing
that makes it the only writer) from here, so neither knows which backend is configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from bot.config import StorageConfig
from storage.backend import Backend
from storage.database import Database
from storage.lock import InstanceLock
from storage.pg_lock import ActiveLock
from storage.postgres import LeaseLost, PostgresDatabase


class Guard(Protocol):
    """What makes a running bot the only one writing to its database."""

    async def acquire(self) -> None:
        """Become the writer (or fail, or wait as a standby)."""
        ...

    async def watch(self) -> None:
        """Run while the bot runs; raise LeaseLost when it must stop writing."""
        ...

    async def release(self) -> None:
        """Let go (idempotent)."""
        ...


class FileGuard:
    """SQLite: the lock file beside the database; a second bot is refused, not kept waiting."""

    def __init__(self, lock: InstanceLock) -> None:
        self.lock = lock

    async def acquire(self) -> None:
        """Take the lock file or raise AlreadyRunning."""
        self.lock.acquire()

    async def watch(self) -> None:
        """A flock cannot be lost while the process lives: wait until cancelled."""
        await asyncio.Event().wait()

    async def release(self) -> None:
        """Release the lock file."""
        self.lock.release()


class ActiveGuard:
    """PostgreSQL: the active lock, plus the database's fence."""

    def __init__(self, lock: ActiveLock, db: PostgresDatabase) -> None:
        self.lock = lock
        self.db = db

    async def acquire(self) -> None:
        """Wait (as a standby if another bot is active) until this bot holds the lock."""
        await self.lock.acquire()

    async def watch(self) -> None:
        """Raise LeaseLost when the lock connection fails or the fence found a newer epoch."""
        fence = asyncio.create_task(self.db.lost.wait())
        ping = asyncio.create_task(self.lock.watch())
        try:
            done, _ = await asyncio.wait([fence, ping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            fence.cancel()
            ping.cancel()
        if ping in done and not ping.cancelled() and ping.exception() is not None:
            raise ping.exception()  # type: ignore[misc]
        raise LeaseLost(f"another bot took over the {self.db.where}; this one stops")

    async def release(self) -> None:
        """Give up the active lock."""
        await self.lock.release()


def build_database(storage: StorageConfig, *, running_bot: bool = False) -> Backend:
    """The configured database, not yet opened. `running_bot` fences a PostgreSQL one."""
    if storage.backend == "postgresql":
        assert storage.dsn is not None  # the config requires it
        return PostgresDatabase(
            storage.dsn.get_secret_value(),
            fenced=running_bot,
            failover_timeout_s=storage.failover_timeout_s if running_bot else None,
        )
    return Database(storage.path, check_in_background=running_bot)


def build_guard(storage: StorageConfig, db: Backend) -> Guard:
    """The running bot's guard for `db` (built by `build_database(..., running_bot=True)`)."""
    if isinstance(db, PostgresDatabase):
        assert storage.dsn is not None
        lock = ActiveLock(storage.dsn.get_secret_value(), storage.failover_timeout_s)
        return ActiveGuard(lock, db)
    return FileGuard(InstanceLock(storage.path))


@asynccontextmanager
async def open_database(storage: StorageConfig) -> AsyncIterator[Backend]:
    """The configured database, opened (and migrated) for a one-off command, then closed."""
    db = build_database(storage)
    await db.open()
    try:
        yield db
    finally:
        await db.close()
