"""Files only the bot's user may read: the database, its backups, key files; and the one
way the bot writes a new file that must be whole or absent (`write_new_file`).

The roster, every position and the keys are in these files, so they are created 0600 and the
directories the bot makes for them 0700 — whatever the umask (the systemd unit sets
`UMask=0077` as well, for what SQLite and libraries create on their own). Modes are set
explicitly after creation because a umask can only take bits away, never give them.

Standard library only, no other import of the project: `storage`, `bot` and `bot.matrix`
all use it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700


def sqlite_files(path: Path) -> list[Path]:
    """A SQLite database and the files SQLite keeps beside it (WAL mode's -wal and -shm, a
    rollback journal)."""
    return [path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))]


def make_private_dir(path: Path) -> None:
    """Create `path` and any missing parents, each new one 0700; existing ones are left as
    they are (the operator chose them)."""
    missing: list[Path] = []
    here = path
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs
        directory.chmod(DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))


def create_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600; FileExistsError when it exists (never
    overwritten)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def make_private(path: Path) -> bool:
    """Take read and write access from group and others on an existing file (a database
    made by an older bot, or copied in by hand). Returns whether it changed anything; a
    file the bot's user does not own is left as it is, with a warning."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if not mode & 0o077:
        return False
    try:
        path.chmod(mode & 0o700)
    except PermissionError:
        log.warning("%s is readable by other users and not ours to chmod: chmod 600 it", path)
        return False
    log.info("%s was readable by other users: now %o", path, mode & 0o700)
    return True


def write_new_file(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Write a new file at `path` holding `data` (mode 0600 unless told): complete or not at
    all, never over an existing file (FileExistsError, the file left alone).

    The bytes go to a temporary file beside it, private from its creation (mkstemp) and
    synced; that is then linked to its name — a link, unlike a rename, fails when the name
    exists — and the directory is synced so the name survives a power cut. On a file system
    without hard links it is renamed instead, after checking the name is free. The directory
    must exist. Used for every secret the bot writes: the key file, the cross-signing key
    file and the secret `init` stores beside the config.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)  # whatever the umask
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except OSError as exc:  # FileExistsError included: only the missing-links case goes on
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                raise
            if path.exists():
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
