"""The bot's end-to-end state in its own database (issue 20), with real vodozemac keys.

Round trip through a real SQLite file and a real PostgreSQL database; nothing private in
clear in the file or in a `pg_dump`; rows sealed for one place cannot be moved or opened with
another key file; a bot that lost its place cannot write keys; an older on-disk nio store
moves in once, verified, its files kept aside.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from nio.crypto import InboundGroupSession, OlmAccount, OlmDevice, OutboundGroupSession
from nio.store import DefaultStore

from bot.matrix.crosssign import CrossSigningKeys, keys_record, save_key_file
from bot.matrix.crypto import NIO_PICKLE_KEY, Crypto
from bot.matrix.keystore import (
    ACCOUNT,
    CROSS_SIGNING,
    MEGOLM,
    KeyStore,
    KeyStoreError,
    Sealer,
    import_file_store,
)
from bot.services.keyrows import DatabaseKeyRows
from storage.backend import Backend
from storage.database import Database
from storage.pg_lock import LeaseLost
from storage.postgres import PostgresDatabase
from tests.pg import PgCluster, pg_bin

USER = "@bot:example.org"
DEVICE = "BOTDEVICE"
LABEL = f"{USER}/{DEVICE}"
SECRET = bytes(range(32))
ROOM = "!room:example.org"


def _rows(db: Backend) -> DatabaseKeyRows:
    async def secret() -> bytes:
        return SECRET

    return DatabaseKeyRows(db, secret)


def _filled(store: KeyStore) -> tuple[OlmAccount, InboundGroupSession, CrossSigningKeys]:
    """A store with a real account, a Megolm session, a device, trust, a room and the
    cross-signing keys."""
    account = OlmAccount()
    store.save_account(account)
    outbound = OutboundGroupSession()
    inbound = InboundGroupSession(
        outbound.session_key, account.identity_keys["ed25519"], "SENDERKEY", ROOM
    )
    store.save_inbound_group_session(inbound)
    device = OlmDevice("@alice:example.org", "ALICEPHONE", {"ed25519": "E", "curve25519": "C"})
    store.save_device_keys({device.user_id: {device.id: device}})
    store.ignore_device(device)
    store.save_encrypted_rooms([ROOM])
    keys = CrossSigningKeys.generate()
    store.put(CROSS_SIGNING, "", keys_record(USER, keys))
    return account, inbound, keys


async def test_keys_round_trip_through_the_database(db: Backend) -> None:
    rows = _rows(db)
    store = KeyStore(Sealer(SECRET, LABEL), USER, DEVICE)
    account, inbound, _ = _filled(store)
    await rows.save(LABEL, store.take_changes())
    assert not store.has_changes

    again = KeyStore(Sealer(SECRET, LABEL), USER, DEVICE)
    again.load_rows(await rows.load(LABEL))
    loaded = again.load_account()
    assert loaded is not None
    assert loaded.identity_keys == account.identity_keys
    [session] = list(again.load_inbound_group_sessions())
    assert (session.id, session.room_id, session.sender_key) == (inbound.id, ROOM, "SENDERKEY")
    [device] = list(again.load_device_keys())
    assert again.is_device_ignored(device)
    assert not again.is_device_verified(device)
    assert again.load_encrypted_rooms() == {ROOM}
    # Another device's rows are its own.
    assert await rows.load(f"{USER}/OTHER") == []
    # A deletion is written too.
    again.delete_encrypted_room(ROOM)
    await rows.save(LABEL, again.take_changes())
    third = KeyStore(Sealer(SECRET, LABEL), USER, DEVICE)
    third.load_rows(await rows.load(LABEL))
    assert third.load_encrypted_rooms() == set()


def _files_of(directory: Path, prefix: str) -> bytes:
    """The bytes of every file of a database (main file, WAL, SHM)."""
    return b"".join(p.read_bytes() for p in directory.iterdir() if p.name.startswith(prefix))


def _pg_dump(dsn: str) -> bytes:
    return subprocess.run(
        [pg_bin("pg_dump"), "--no-password", "-d", dsn],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout


def _secrets_of(store: KeyStore, keys: CrossSigningKeys) -> list[bytes]:
    """What must never be found in clear: the cross-signing seeds, the pickles (already
    encrypted by nio, but still the secret material) and the account's identity keys."""
    found = [key.seed for key in keys.by_usage().values()]
    for kind in (ACCOUNT, MEGOLM):
        for _, row in store.of_kind(kind):
            found.append(row["pickle"].encode())
    account = store.load_account()
    assert account is not None
    found += [k.encode() for k in account.identity_keys.values()]
    return found


async def test_no_private_key_in_clear_in_the_sqlite_file(tmp_path: Path) -> None:
    db = Database(tmp_path / "bot.db")
    await db.open()
    store = KeyStore(Sealer(SECRET, LABEL), USER, DEVICE)
    _, _, keys = _filled(store)
    await _rows(db).save(LABEL, store.take_changes())
    await db.close()
    raw = _files_of(tmp_path, "bot.db")
    assert b"crypto_state" in raw  # the file was written
    for secret in _secrets_of(store, keys):
        assert secret not in raw
        assert json.dumps(secret.decode("latin-1")).encode()[1:-1] not in raw


@pytest.mark.pg
async def test_no_private_key_in_clear_in_a_pg_dump(pg_cluster: PgCluster, pg_dsn: str) -> None:
    db = PostgresDatabase(pg_dsn)
    await db.open()
    store = KeyStore(Sealer(SECRET, LABEL), USER, DEVICE)
    _, _, keys = _filled(store)
    await _rows(db).save(LABEL, store.take_changes())
    await db.close()
    dump = _pg_dump(pg_dsn)
    assert b"crypto_state" in dump
    for secret in _secrets_of(store, keys):
        assert secret not in dump


def test_rows_open_only_with_their_key_file_and_in_their_place() -> None:
    sealer = Sealer(SECRET, LABEL)
    sealed = sealer.seal(ACCOUNT, "", {"pickle": "p", "shared": True})
    assert sealer.open(ACCOUNT, "", sealed) == {"pickle": "p", "shared": True}
    with pytest.raises(KeyStoreError, match="key file"):
        Sealer(bytes(32), LABEL).open(ACCOUNT, "", sealed)  # another key file
    with pytest.raises(KeyStoreError):
        Sealer(SECRET, f"{USER}/OTHER").open(ACCOUNT, "", sealed)  # another device's row
    with pytest.raises(KeyStoreError):
        sealer.open(MEGOLM, "", sealed)  # moved to another kind
    assert Sealer(SECRET, LABEL).pickle_key != Sealer(bytes(32), LABEL).pickle_key


async def test_a_failed_write_keeps_the_changes_for_the_next(tmp_path: Path) -> None:
    store = KeyStore(Sealer(SECRET, LABEL), USER, DEVICE)
    store.save_encrypted_rooms([ROOM])
    changes = store.take_changes()
    store.save_encrypted_rooms(["!newer:example.org"])
    store.restore_changes(changes)
    assert {key for _, key, _ in store.take_changes()} == {ROOM, "!newer:example.org"}


@pytest.mark.pg
async def test_a_bot_that_lost_its_place_cannot_write_keys(pg_dsn: str) -> None:
    old, new = PostgresDatabase(pg_dsn, fenced=True), PostgresDatabase(pg_dsn, fenced=True)
    await old.open()
    try:
        store = KeyStore(Sealer(SECRET, LABEL), USER, DEVICE)
        store.save_account(OlmAccount())
        await _rows(old).save(LABEL, store.take_changes())
        await new.open()  # a standby took over
        store.save_encrypted_rooms([ROOM])
        with pytest.raises(LeaseLost):
            await _rows(old).save(LABEL, store.take_changes())
        taken_over = KeyStore(Sealer(SECRET, LABEL), USER, DEVICE)
        taken_over.load_rows(await _rows(new).load(LABEL))
        assert taken_over.load_encrypted_rooms() == set()  # the stale write never landed
        assert taken_over.load_account() is not None
    finally:
        await old.close()
        await new.close()


class _Edge:
    """What `Crypto.prepare` uses of the gateway: the IDs."""

    user_id = USER
    device_id = DEVICE


def _old_file_store(directory: Path) -> tuple[OlmAccount, Path]:
    """An on-disk nio store as an older bot left it, with its cross-signing key file."""
    directory.mkdir()
    old = DefaultStore(USER, DEVICE, str(directory), NIO_PICKLE_KEY)
    account = OlmAccount()
    old.save_account(account)
    outbound = OutboundGroupSession()
    old.save_inbound_group_session(
        InboundGroupSession(outbound.session_key, account.identity_keys["ed25519"], "SK", ROOM)
    )
    old.save_encrypted_rooms([ROOM])
    old.database.close()
    key_file = directory / "cross-signing.json"
    save_key_file(key_file, USER, CrossSigningKeys.generate())
    return account, key_file


async def test_an_on_disk_store_moves_into_the_database_once(tmp_path: Path) -> None:
    account, key_file = _old_file_store(tmp_path / "crypto")
    db = Database(tmp_path / "bot.db")
    await db.open()
    try:
        crypto = Crypto(_Edge(), tmp_path / "crypto", rows=_rows(db))  # type: ignore[arg-type]
        assert await crypto.prepare() is True  # the device has keys: it was moved in
        assert crypto.keystore is not None
        loaded = crypto.keystore.load_account()
        assert loaded is not None
        assert loaded.identity_keys == account.identity_keys
        assert len(list(crypto.keystore.load_inbound_group_sessions())) == 1
        moved = sorted(p.name for p in (tmp_path / "crypto").iterdir())
        assert all(".moved-to-database-" in n for n in moved if n != key_file.name), (
            moved
        )  # the old files are kept aside, not deleted
        assert any(n.endswith(".db") is False and ".db." in n for n in moved)

        # The next start reads the database and moves nothing again.
        again = Crypto(_Edge(), tmp_path / "crypto", rows=_rows(db))  # type: ignore[arg-type]
        assert await again.prepare() is True
        assert again.keystore is not None
        assert again.keystore.counts() == crypto.keystore.counts()
    finally:
        await db.close()


def test_importing_needs_the_store_of_this_device(tmp_path: Path) -> None:
    store = KeyStore(Sealer(SECRET, LABEL), USER, DEVICE)
    assert import_file_store(store, tmp_path, NIO_PICKLE_KEY) is False
    assert not store.has_changes
