"""Files only the bot's user may read: the database, its backups, key files.

The roster, every position and the keys are in these files, so they are created 0600 and the
directories the bot makes for them 0700 — whatever the umask (the systemd unit sets
`UMask=0077` as well, for what SQLite and libraries create on their own). Modes are set
explicitly after creation because a umask can only take bits away, never give them.

Standard library only, no other import of the project: `storage`, `bot` and `bot.matrix`
all use it.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700


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
