"""Files the bot writes are readable by its user only: the database with its WAL and SHM,
backups (the `DEST.crypto/` copy too), and the directories it creates — whatever the umask,
which is set wide open here to prove the modes do not come from it. The systemd unit sets
`UMask=0077` for whatever a library creates on its own."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from storage.backup import copy_crypto_store
from storage.database import Database, DatabaseError
from storage.files import create_private_file, make_private, make_private_dir, write_new_file
from storage.postgres import PostgresDatabase
from storage.repo import Repository

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The laxest umask: every bit a file or directory is created with shows."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


async def write_something(db: Database) -> None:
    async with db.transaction() as tx:
        await Repository(tx).upsert_member("main", "@a:x", "academia", "europe", 1, "test")


def test_permissions_new_database_wal_shm_and_its_directories_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "data" / "consensus.db"
    tmp_path.chmod(0o755)

    async def run() -> None:
        db = Database(path)
        await db.open()
        try:
            await write_something(db)
            # While the bot runs, the -wal and -shm files exist: the same mode as the file.
            for end in ("", "-wal", "-shm"):
                side = path.with_name(path.name + end)
                assert side.exists(), side
                assert mode(side) == 0o600, side
        finally:
            await db.close()

    asyncio.run(run())
    assert mode(path) == 0o600
    assert mode(tmp_path / "new") == 0o700
    assert mode(tmp_path / "new" / "data") == 0o700
    assert mode(tmp_path) == 0o755  # a directory the bot did not create is not its to change


def test_permissions_world_readable_database_of_an_older_bot_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "consensus.db"
    asyncio.run(_open_and_close(path))
    path.chmod(0o644)
    asyncio.run(_open_and_close(path))
    assert mode(path) == 0o600


async def _open_and_close(path: Path) -> None:
    db = Database(path)
    await db.open()
    try:
        await write_something(db)
    finally:
        await db.close()


def test_permissions_backup_and_its_crypto_copy_are_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = tmp_path / "consensus.db"
    asyncio.run(_open_and_close(db_path))
    store = tmp_path / "crypto"
    store.mkdir(mode=0o755)
    with sqlite3.connect(store / "@bot_DEV.db") as conn:
        conn.execute("CREATE TABLE keys(k TEXT)")
    (store / "@bot_DEV.db").chmod(0o644)  # as an older nio would have left it
    (store / "cross-signing.json").write_text("{}")
    (store / "cross-signing.json").chmod(0o644)
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        text.replace('path = "data/consensus.db"', f'path = "{db_path}"').replace(
            'crypto_store = "data/crypto"', f'crypto_store = "{store}"'
        ),
        encoding="utf-8",
    )
    dest = tmp_path / "backup.db"
    assert main(["backup", "--config", str(config), str(dest)]) == 0
    assert mode(dest) == 0o600
    with sqlite3.connect(dest) as copy:
        assert copy.execute("SELECT user_id FROM members").fetchall() == [("@a:x",)]
    crypto = tmp_path / "backup.db.crypto"
    assert mode(crypto) == 0o700
    assert sorted(p.name for p in crypto.iterdir()) == ["@bot_DEV.db", "cross-signing.json"]
    assert {p.name: mode(p) for p in crypto.iterdir()} == {
        "@bot_DEV.db": 0o600,
        "cross-signing.json": 0o600,
    }
    # Never overwritten, and a refused backup leaves the existing file as it was.
    before = dest.read_bytes()
    assert main(["backup", "--config", str(config), str(dest)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert dest.read_bytes() == before


def test_permissions_a_failed_backup_leaves_no_file_behind(tmp_path: Path) -> None:
    path = tmp_path / "consensus.db"

    async def run() -> None:
        db = Database(path)
        await db.open()
        try:
            with pytest.raises(DatabaseError, match="cannot write a backup"):
                await db.backup(tmp_path / "no-such-dir" / "b.db")
        finally:
            await db.close()

    asyncio.run(run())
    assert not (tmp_path / "no-such-dir").exists()


def test_permissions_crypto_copy_ignores_the_source_modes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "cross-signing.json").write_text('{"k": 1}')
    (store / "cross-signing.json").chmod(0o666)
    written = copy_crypto_store(store, tmp_path / "copy")
    assert [mode(p) for p in written] == [0o600]
    assert written[0].read_text() == '{"k": 1}'


def test_permissions_pg_dump_advice_writes_a_private_dump(tmp_path: Path) -> None:
    db = PostgresDatabase("postgresql://bot@db.example.org/cb")  # backup() connects to nothing
    with pytest.raises(DatabaseError, match=r"umask 077; pg_dump"):
        asyncio.run(db.backup(tmp_path / "b.dump"))


def test_permissions_helpers_set_exact_modes(tmp_path: Path) -> None:
    make_private_dir(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700
    (tmp_path / "a").chmod(0o750)
    make_private_dir(tmp_path / "a" / "b")  # existing directories are the operator's
    assert mode(tmp_path / "a") == 0o750
    file = tmp_path / "a" / "f"
    create_private_file(file)
    assert mode(file) == 0o600
    with pytest.raises(FileExistsError):
        create_private_file(file)
    file.chmod(0o664)
    assert make_private(file) is True
    assert mode(file) == 0o600
    assert make_private(file) is False
    assert make_private(tmp_path / "missing") is False
    (tmp_path / "plain").write_text("x")
    with pytest.raises(NotADirectoryError):
        make_private_dir(tmp_path / "plain")


def test_permissions_systemd_unit_sets_umask_0077() -> None:
    unit = (ROOT / "contrib" / "consensus-bot.service").read_text(encoding="utf-8")
    service = unit.split("[Service]", 1)[1].split("\n[", 1)[0]
    assert "\nUMask=0077\n" in service


# ---- the one atomic writer of new secret files (key file, cross-signing keys, init secret)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_secret_writer_writes_0600_syncs_file_and_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "secret.key"
    write_new_file(path, b"s3cret\n")
    assert path.read_bytes() == b"s3cret\n"
    assert mode(path) == 0o600  # under umask 0
    assert synced == ["file", "dir"]  # the bytes, then the name
    assert leftovers(tmp_path) == []
    write_new_file(tmp_path / "config.toml", b"x", mode=0o644)
    assert mode(tmp_path / "config.toml") == 0o644


def test_atomic_secret_writer_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    write_new_file(path, b"first")
    with pytest.raises(FileExistsError):
        write_new_file(path, b"second")
    assert path.read_bytes() == b"first"
    assert leftovers(tmp_path) == []


def test_atomic_secret_writer_leaves_nothing_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_new_file(tmp_path / "secret.key", b"s3cret")
    assert list(tmp_path.iterdir()) == []  # neither a half file nor a temporary one


def test_atomic_secret_writer_without_hard_links_renames_into_a_free_name_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: str, dst: str) -> None:
        raise OSError(1, "Operation not permitted")  # EPERM: e.g. some FUSE or SMB mounts

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "secret.key"
    write_new_file(path, b"first")
    assert path.read_bytes() == b"first"
    assert mode(path) == 0o600
    with pytest.raises(FileExistsError):
        write_new_file(path, b"second")
    assert path.read_bytes() == b"first"
    assert leftovers(tmp_path) == []


def test_atomic_secret_writer_is_the_one_the_three_secret_files_use() -> None:
    # The key file, the init secret and the cross-signing keys: no second implementation.
    for module in ("storage/keys.py", "bot/init_config.py", "bot/matrix/crosssign.py"):
        source = (ROOT / module).read_text(encoding="utf-8")
        assert "write_new_file(" in source, module
        for own in ("os.O_EXCL", "mkstemp", "os.fsync"):
            assert own not in source, (module, own)


def test_permissions_key_file_and_its_new_directory_are_private(tmp_path: Path) -> None:
    from storage.keys import create_keys, key_path

    # With PostgreSQL, storage.path only places the key file: its directory may not exist.
    db_path = tmp_path / "data" / "consensus.db"
    keys = create_keys(db_path)
    assert mode(tmp_path / "data") == 0o700
    assert mode(key_path(db_path)) == 0o600
    assert create_keys(db_path) == keys  # never overwritten
