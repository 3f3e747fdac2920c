"""Active/standby with PostgreSQL: one bot holds a session advisory lock, the others wait.

The active bot holds `pg_advisory_lock(ACTIVE_KEY)` on a connection of its own. A standby
polls `pg_try_advisory_lock` every `poll_s` (1 s). When the active process dies its
connection closes and PostgreSQL releases the lock: at once when the kernel closes the
socket (a crash, SIGKILL), within the TCP keepalive/user timeouts of
`storage.postgres.keepalive_settings` when the host or the network goes away. Those are set
from `failover_timeout` so that a standby takes over within it.

The active bot pings its lock connection; when that fails it stops (`watch()` raises
`LeaseLost`) rather than keep writing without the lock. The database's fence
(`storage.postgres`) covers the moments before it notices.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from storage.database import DatabaseError
from storage.dsn import describe_dsn
from storage.postgres import (
    ACTIVE_KEY,
    CONNECT_ERRORS,
    LeaseLost,
    _reason,
    keepalive_settings,
)

log = logging.getLogger(__name__)

STANDBY_MESSAGE = "standby: another bot holds the lock"
# Errors that waiting does not cure: wrong user or password, no such database, no privilege.
PERMANENT_ERRORS = (
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InsufficientPrivilegeError,
)


class ActiveLock:
    """The session lock that makes a bot the active one. Construction does no I/O."""

    def __init__(self, dsn: str, failover_timeout_s: float = 10.0, *, poll_s: float = 1.0) -> None:
        self._dsn = dsn
        self.where = describe_dsn(dsn)
        self.failover_timeout_s = failover_timeout_s
        self.poll_s = poll_s
        self._conn: asyncpg.Connection | None = None

    async def acquire(self) -> None:
        """Wait until this bot holds the lock (a standby waits here, polling)."""
        said_standby = False
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(
                        self._dsn,
                        timeout=self.failover_timeout_s / 2,
                        server_settings={
                            **keepalive_settings(self.failover_timeout_s),
                            "application_name": "consensus-bot (active lock)",
                        },
                    )
                got = await self._conn.fetchval(
                    "SELECT pg_try_advisory_lock($1)", ACTIVE_KEY, timeout=self.poll_s * 5
                )
            except PERMANENT_ERRORS as exc:
                # Waiting cannot fix a wrong password or database name: say so and stop.
                await self._drop()
                raise DatabaseError(
                    f"the {self.where} refuses the bot ({_reason(exc)}); check storage.dsn"
                ) from None
            except CONNECT_ERRORS as exc:
                # The server may be restarting: wait for it, as for the active bot's lock.
                log.warning("cannot reach the %s (%s); trying again", self.where, _reason(exc))
                await self._drop()
                await asyncio.sleep(self.poll_s)
                continue
            if got:
                log.info("active: this bot holds the lock of the %s", self.where)
                return
            if not said_standby:
                log.warning("%s of the %s; waiting to take over", STANDBY_MESSAGE, self.where)
                said_standby = True
            await asyncio.sleep(self.poll_s)

    async def watch(self) -> None:
        """Return never; raise LeaseLost as soon as the lock connection is lost."""
        interval = min(1.0, self.failover_timeout_s / 4)
        while True:
            await asyncio.sleep(interval)
            conn = self._conn
            if conn is None or conn.is_closed():
                raise LeaseLost(
                    f"lost the lock connection to the {self.where} (it was closed); a standby "
                    "may take over, so this bot stops"
                )
            try:
                await conn.fetchval("SELECT 1", timeout=self.failover_timeout_s / 4)
            except CONNECT_ERRORS as exc:
                raise LeaseLost(
                    f"lost the lock connection to the {self.where} ({_reason(exc)}); "
                    "a standby may take over, so this bot stops"
                ) from None

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def release(self) -> None:
        """Give the lock up (closing its connection releases it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close(timeout=2)
            except CONNECT_ERRORS:
                conn.terminate()
