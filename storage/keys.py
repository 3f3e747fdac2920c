"""The bot's secret keys, in a file beside the database and never inside it.

`<database>.key` (mode 0600) holds two random keys as JSON:
- `hums`: the HMAC key under which hums are stored, so that a copy of the database (a backup)
  cannot tell who hummed what;
- `markers`: the HMAC key of the per-room tokens in the marker state events of the rooms the
  bot creates, so that nobody can plant a room the bot would adopt.

Back it up separately from the database (see the README). A database from before the key file
kept the hum key in its `meta` table: it is moved here once, at the first start.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.database import DatabaseError
from storage.files import make_private_dir, write_new_file


@dataclass(frozen=True, slots=True)
class Keys:
    """The bot's secret keys."""

    hums: bytes
    markers: bytes


def key_path(db_path: Path) -> Path:
    """Where the key file of a database lives."""
    return db_path.with_name(db_path.name + ".key")


def load_keys(db_path: Path) -> Keys | None:
    """The keys beside a database, or None when there is no key file yet."""
    path = key_path(db_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DatabaseError(f"cannot read the key file {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
        return Keys(bytes.fromhex(data["hums"]), bytes.fromhex(data["markers"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise DatabaseError(
            f"the key file {path} is damaged; restore it from your backup of the key file"
        ) from exc


def key_problem(db_path: Path) -> str | None:
    """For check-config: a sentence when the database holds hums but its key file is gone
    (the bot would refuse to start), or when the files cannot be looked at; else None."""
    try:
        if key_path(db_path).exists() or not db_path.exists():
            return None
    except OSError as exc:  # e.g. a directory the bot's user may not enter
        return f"cannot look at {db_path} or its key file ({exc.strerror or exc})"
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
            hums = db.execute("SELECT 1 FROM hums LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return None  # the start-up checks of the database say what is wrong with it
    if not hums:
        return None
    return (
        f"{db_path} holds hums but its key file {key_path(db_path)} is missing: restore the "
        "key file from its backup before starting the bot"
    )


def create_keys(db_path: Path, legacy_hum_key: str | None = None) -> Keys:
    """Write a new key file (0600); keeps a hum key moved from an older database."""
    path = key_path(db_path)
    hums = legacy_hum_key or secrets.token_hex(32)
    data = {"hums": hums, "markers": secrets.token_hex(32)}
    try:
        make_private_dir(path.parent)  # with PostgreSQL nothing else made it
        write_new_file(path, (json.dumps(data) + "\n").encode())
    except FileExistsError:  # another process made it first: use theirs
        found = load_keys(db_path)
        assert found is not None
        return found
    except OSError as exc:
        raise DatabaseError(f"cannot create the key file {path}: {exc.strerror}") from exc
    return Keys(bytes.fromhex(data["hums"]), bytes.fromhex(data["markers"]))
