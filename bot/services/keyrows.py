"""The bot's end-to-end state in its own database: the crypto edge's `KeyRows`, bound to the
storage backend. Each write is one transaction, so on PostgreSQL it is fenced like every
other (a bot that lost its place cannot write keys either)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from storage.backend import Backend
from storage.repo import Repository


class DatabaseKeyRows:
    """Reads and writes the sealed rows of `crypto_state`; the secret comes from the key
    file (through `secret`, which the composition root provides)."""

    def __init__(self, db: Backend, secret: Callable[[], Awaitable[bytes]]) -> None:
        self.db = db
        self._secret = secret

    async def load(self, device: str) -> list[tuple[str, str, str]]:
        """Every sealed row of the device."""
        async with self.db.transaction() as tx:
            return await Repository(tx).crypto_state(device)

    async def save(self, device: str, changes: Sequence[tuple[str, str, str | None]]) -> None:
        """Write the changed rows in one transaction."""
        async with self.db.transaction() as tx:
            await Repository(tx).save_crypto_state(device, changes)

    async def secret(self) -> bytes:
        """The key file's secret the rows are sealed under."""
        return await self._secret()
