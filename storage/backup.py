"""Backups of what lives beside the database: the bot's crypto store (device and room keys,
the cross-signing key file)."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

from bot.domain.errors import OperatorError
from storage.files import DIR_MODE, create_private_file


class BackupError(OperatorError):
    """A backup could not be written; the message says why."""


def copy_crypto_store(source: Path, dest: Path) -> list[Path]:
    """Copy the crypto store directory `source` to the new directory `dest` (mode 0700).

    SQLite files are copied through SQLite's online backup, so the copy is consistent even
    while the bot writes to them; other files (the cross-signing key file) byte for byte.
    Every copy is 0600, whatever the source's mode or the umask: they hold the device's
    private keys. Never overwrites: `dest` must not exist. Returns the files written.
    """
    if not source.is_dir():
        raise BackupError(f"there is no crypto store at {source}")
    try:
        dest.mkdir(mode=DIR_MODE, parents=False)
        dest.chmod(DIR_MODE)  # whatever the umask
    except FileExistsError:
        raise BackupError(f"{dest} exists already; choose a new name") from None
    except OSError as exc:
        raise BackupError(f"cannot create {dest}: {exc.strerror or exc}") from None
    written = []
    for path in sorted(source.iterdir()):
        if not path.is_file() or path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        target = dest / path.name
        try:
            create_private_file(target)  # 0600 before a byte is in it
            if path.suffix == ".db":
                with (
                    contextlib.closing(
                        sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
                    ) as src,
                    contextlib.closing(sqlite3.connect(target)) as out,
                ):
                    src.backup(out)
            else:
                with path.open("rb") as src_file, target.open("r+b") as out_file:
                    shutil.copyfileobj(src_file, out_file)
        except (OSError, sqlite3.Error) as exc:
            raise BackupError(f"cannot copy {path} to {target}: {exc}") from None
        written.append(target)
    return written
