"""One bot per database: an advisory lock file beside it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bot.domain.errors import OperatorError
from storage.database import DatabaseError, dir_reason
from storage.files import make_private_dir


class AlreadyRunning(OperatorError):
    """Another bot holds the database."""


class InstanceLock:
    """An exclusive `flock` on `<database>.lock`, released when the process ends (even SIGKILL)."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder's PID (DatabaseError when
        the lock file cannot be created: the database beside it could not be either)."""
        try:
            make_private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            why = dir_reason(self.path.parent, exc)
            raise DatabaseError(
                f"cannot create the lock file {self.path} ({why}); check storage.path and that "
                "the bot's user may write its directory"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another Consensus Bot (pid {holder}) is using {self.path.with_suffix('')}; "
                "run only one bot per database"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
