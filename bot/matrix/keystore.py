"""The bot's end-to-end state, kept in the bot's own database instead of nio's files.

nio calls its store synchronously from inside decryption, encryption and key handling. This
store answers those calls from memory — everything is read from the database once, at start
— and keeps what changed as a list of sealed rows, which the crypto edge writes to the
database (`Crypto.persist`) before anything that depends on it leaves the machine: before a
sync batch is applied, before one-time keys are uploaded, before room keys are sent. So the
keys live where the rest of the bot's state lives, under the same transactions and the same
fencing (a bot that lost its place cannot write keys either), and a standby that takes over
reads them and is the same device.

At rest every row is sealed: AES-256-GCM under a key derived from the bot's key file (kept
beside the database, never inside it), with the device, kind and key of the row as
associated data, so a row can be neither read nor moved to another place without that file.
The Olm and Megolm pickles inside are also encrypted by nio with the pickle key, itself
derived from the key file. Public device keys are sealed too: the database and its dumps
then say nothing about who the bot talks to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nio.crypto import (
    DeviceStore,
    GroupSessionStore,
    InboundGroupSession,
    OlmAccount,
    OlmDevice,
    OutgoingKeyRequest,
    Session,
    SessionStore,
)

from bot.domain.errors import OperatorError

log = logging.getLogger(__name__)

# Kinds of rows (`kind` column); the `key` column says which one of its kind.
ACCOUNT = "account"  # key "": the Olm account
OLM = "olm"  # key: Olm session ID
MEGOLM = "megolm"  # key: room ID | sender key | session ID
DEVICE = "device"  # key: user ID | device ID (public keys of members' devices)
ROOM = "room"  # key: room ID (rooms known to be encrypted)
KEY_REQUEST = "key_request"  # key: request ID
TRUST = "trust"  # key: state | user ID | device ID (ignored, verified, blacklisted devices)
CROSS_SIGNING = "cross_signing"  # key "": the private cross-signing keys (bot/matrix/crosssign)

Change = tuple[str, str, str | None]  # (kind, key, sealed value; None deletes the row)


class KeyStoreError(OperatorError):
    """The stored keys cannot be read with this key file (wrong or damaged file or rows)."""


def _derive(root: bytes, label: str) -> bytes:
    return hmac.new(root, f"consensus-bot {label} v1".encode(), hashlib.sha256).digest()


class Sealer:
    """Seals and opens rows with a key derived from the key file's secret (`root`)."""

    def __init__(self, root: bytes, device: str) -> None:
        self.device = device
        self._aead = AESGCM(_derive(root, "crypto-at-rest"))
        # nio derives the Olm/Megolm pickle key from this passphrase (SHA-256).
        self.pickle_key = _derive(root, "crypto-pickle").hex()

    def _aad(self, kind: str, key: str) -> bytes:
        return f"{self.device}\0{kind}\0{key}".encode()

    def seal(self, kind: str, key: str, value: dict[str, Any]) -> str:
        """The sealed text of one row's value."""
        nonce = secrets.token_bytes(12)
        data = json.dumps(value, separators=(",", ":")).encode()
        box = self._aead.encrypt(nonce, data, self._aad(kind, key))
        return base64.b64encode(nonce + box).decode("ascii")

    def open(self, kind: str, key: str, sealed: str) -> dict[str, Any]:
        """The value of one row; KeyStoreError when it was not sealed here, for this place."""
        try:
            raw = base64.b64decode(sealed)
            data = self._aead.decrypt(raw[:12], raw[12:], self._aad(kind, key))
            value = json.loads(data)
        except (InvalidTag, ValueError) as exc:
            raise KeyStoreError(
                f"a stored end-to-end key ({kind}) cannot be opened: the key file beside the "
                "database is not the one the keys were stored with (restore the right key "
                "file), or the row is damaged"
            ) from exc
        if not isinstance(value, dict):
            raise KeyStoreError(f"a stored end-to-end key ({kind}) is damaged")
        return value


def _ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _moment(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value) if isinstance(value, int | float) else None


class KeyStore:
    """nio's store interface over rows held in memory (see the module docstring).

    Built from the rows read at start (`rows`, already opened); nio's calls change the rows
    and note them as pending; `take_changes` hands the pending rows over, sealed.
    """

    def __init__(self, sealer: Sealer, user_id: str, device_id: str) -> None:
        self.sealer = sealer
        self.user_id = user_id
        self.device_id = device_id
        self.pickle_key = sealer.pickle_key
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}
        self._pending: dict[tuple[str, str], dict[str, Any] | None] = {}

    # --- rows ---------------------------------------------------------------------------

    def load_rows(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """Take the sealed rows read from the database (nothing is pending afterwards)."""
        for kind, key, sealed in rows:
            self._rows[(kind, key)] = self.sealer.open(kind, key, sealed)

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Set one row (to be written)."""
        self._rows[(kind, key)] = value
        self._pending[(kind, key)] = value

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """One row's value, or None."""
        return self._rows.get((kind, key))

    def delete(self, kind: str, key: str) -> None:
        """Remove one row (to be deleted)."""
        if self._rows.pop((kind, key), None) is not None:
            self._pending[(kind, key)] = None

    def of_kind(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """Every (key, value) of a kind."""
        return [(k, v) for (c, k), v in self._rows.items() if c == kind]

    def counts(self) -> dict[str, int]:
        """How many rows of each kind (for the log and the migration's check)."""
        out: dict[str, int] = {}
        for kind, _ in self._rows:
            out[kind] = out.get(kind, 0) + 1
        return out

    @property
    def has_changes(self) -> bool:
        """Whether anything waits to be written."""
        return bool(self._pending)

    def take_changes(self) -> list[Change]:
        """The pending rows, sealed; nothing is pending afterwards (`restore_changes` puts
        them back when writing them failed)."""
        pending, self._pending = self._pending, {}
        return [
            (kind, key, None if value is None else self.sealer.seal(kind, key, value))
            for (kind, key), value in pending.items()
        ]

    def restore_changes(self, changes: Sequence[Change]) -> None:
        """Changes that could not be written stay pending (a newer change to the same row
        wins)."""
        for kind, key, _ in changes:
            if (kind, key) not in self._pending:
                self._pending[(kind, key)] = self._rows.get((kind, key))

    # --- nio's store interface ------------------------------------------------------------
    # (called synchronously by nio's Olm machine and client; the names are nio's)

    def load_account(self) -> OlmAccount | None:
        """The Olm account, or None on the very first start of the device."""
        row = self.get(ACCOUNT, "")
        if row is None:
            return None
        return OlmAccount.from_pickle(row["pickle"].encode(), self.pickle_key, row["shared"])

    def save_account(self, account: OlmAccount) -> None:
        """Keep the Olm account."""
        pickle = account.pickle(self.pickle_key).decode()
        self.put(ACCOUNT, "", {"pickle": pickle, "shared": bool(account.shared)})

    def load_sessions(self) -> SessionStore:
        """Every Olm session."""
        store = SessionStore()
        for _, row in self.of_kind(OLM):
            session = Session.from_pickle(
                row["pickle"].encode(),
                _moment(row.get("created")) or datetime.now(),
                self.pickle_key,
                _moment(row.get("used")),
            )
            store.add(row["sender_key"], session)
        return store

    def save_session(self, curve_key: str, session: Session) -> None:
        """Keep one Olm session."""
        self.put(
            OLM,
            session.id,
            {
                "sender_key": curve_key,
                "pickle": session.pickle(self.pickle_key).decode(),
                "created": _ts(session.creation_time),
                "used": _ts(session.use_time),
            },
        )

    def load_inbound_group_sessions(self) -> GroupSessionStore:
        """Every Megolm session the bot can decrypt with."""
        store = GroupSessionStore()
        for _, row in self.of_kind(MEGOLM):
            session = InboundGroupSession.from_pickle(
                row["pickle"].encode(),
                row["signing_key"],
                row["sender_key"],
                row["room_id"],
                self.pickle_key,
                list(row.get("chain", [])),
            )
            store.add(session)
        return store

    def save_inbound_group_session(self, session: InboundGroupSession) -> None:
        """Keep one Megolm session."""
        self.put(
            MEGOLM,
            f"{session.room_id}|{session.sender_key}|{session.id}",
            {
                "room_id": session.room_id,
                "sender_key": session.sender_key,
                "signing_key": session.ed25519,
                "pickle": session.pickle(self.pickle_key).decode(),
                "chain": list(session.forwarding_chain),
            },
        )

    def load_device_keys(self) -> DeviceStore:
        """The known devices of everyone the bot shares a room with."""
        store = DeviceStore()
        for _, row in self.of_kind(DEVICE):
            store.add(
                OlmDevice(
                    row["user_id"],
                    row["device_id"],
                    dict(row["keys"]),
                    display_name=row.get("display_name") or "",
                    deleted=bool(row.get("deleted")),
                )
            )
        return store

    def save_device_keys(self, device_keys: dict[str, dict[str, OlmDevice]]) -> None:
        """Keep devices (new, changed or deleted)."""
        for user_id, devices in device_keys.items():
            for device_id, device in devices.items():
                self.put(
                    DEVICE,
                    f"{user_id}|{device_id}",
                    {
                        "user_id": user_id,
                        "device_id": device_id,
                        "keys": dict(device.keys),
                        "display_name": device.display_name,
                        "deleted": bool(device.deleted),
                    },
                )

    def load_encrypted_rooms(self) -> set[str]:
        """Rooms known to be encrypted."""
        return {key for key, _ in self.of_kind(ROOM)}

    def save_encrypted_rooms(self, rooms: Iterable[str]) -> None:
        """Remember rooms as encrypted."""
        for room_id in rooms:
            if self.get(ROOM, room_id) is None:
                self.put(ROOM, room_id, {})

    def delete_encrypted_room(self, room: str) -> None:
        """Forget a room."""
        self.delete(ROOM, room)

    def load_outgoing_key_requests(self) -> dict[str, OutgoingKeyRequest]:
        """Key requests sent and not answered yet."""
        return {
            key: OutgoingKeyRequest(key, row["session_id"], row["room_id"], row["algorithm"])
            for key, row in self.of_kind(KEY_REQUEST)
        }

    def add_outgoing_key_request(self, key_request: OutgoingKeyRequest) -> None:
        """Remember a key request."""
        self.put(
            KEY_REQUEST,
            key_request.request_id,
            {
                "session_id": key_request.session_id,
                "room_id": key_request.room_id,
                "algorithm": key_request.algorithm,
            },
        )

    def remove_outgoing_key_request(self, key_request: OutgoingKeyRequest) -> None:
        """Forget a key request."""
        self.delete(KEY_REQUEST, key_request.request_id)

    def save_sync_token(self, token: str) -> None:
        """Not kept here: the bot keeps its sync token with its own state."""

    def load_sync_token(self) -> str | None:
        """Not kept here (see `save_sync_token`)."""
        return None

    # Trust: devices are trusted on first use; nio marks members' devices "ignored" (shared
    # with, unverified). A state holds for the device's current Ed25519 key only.

    def _trust_key(self, state: str, device: OlmDevice) -> str:
        return f"{state}|{device.user_id}|{device.id}"

    def _has(self, state: str, device: OlmDevice) -> bool:
        row = self.get(TRUST, self._trust_key(state, device))
        return row is not None and row.get("ed25519") == device.ed25519

    def _set(self, state: str, device: OlmDevice, on: bool) -> bool:
        if self._has(state, device) == on:
            return False
        if on:
            self.put(TRUST, self._trust_key(state, device), {"ed25519": device.ed25519})
        else:
            self.delete(TRUST, self._trust_key(state, device))
        return True

    def verify_device(self, device: OlmDevice) -> bool:
        """Mark a device verified; True when that changed something."""
        return self._set("verified", device, True)

    def unverify_device(self, device: OlmDevice) -> bool:
        """Unmark a verified device."""
        return self._set("verified", device, False)

    def is_device_verified(self, device: OlmDevice) -> bool:
        """Whether the device is verified."""
        return self._has("verified", device)

    def blacklist_device(self, device: OlmDevice) -> bool:
        """Mark a device blacklisted."""
        return self._set("blacklisted", device, True)

    def unblacklist_device(self, device: OlmDevice) -> bool:
        """Unmark a blacklisted device."""
        return self._set("blacklisted", device, False)

    def is_device_blacklisted(self, device: OlmDevice) -> bool:
        """Whether the device is blacklisted."""
        return self._has("blacklisted", device)

    def ignore_device(self, device: OlmDevice) -> bool:
        """Mark a device ignored (shared with although unverified)."""
        return self._set("ignored", device, True)

    def ignore_devices(self, devices: list[OlmDevice]) -> None:
        """Mark devices ignored."""
        for device in devices:
            self._set("ignored", device, True)

    def unignore_device(self, device: OlmDevice) -> bool:
        """Unmark an ignored device."""
        return self._set("ignored", device, False)

    def is_device_ignored(self, device: OlmDevice) -> bool:
        """Whether the device is ignored."""
        return self._has("ignored", device)


def import_file_store(store: KeyStore, store_dir: Path, pickle_key: str) -> bool:
    """Copy the device's state from nio's own on-disk store (`store_dir`, opened with the
    `pickle_key` it was written with) into `store`; False when there is none to copy."""
    from nio.store import DefaultStore

    path = store_dir / f"{store.user_id}_{store.device_id}.db"
    if not path.exists():
        return False
    old = DefaultStore(store.user_id, store.device_id, str(store_dir), pickle_key)
    account = old.load_account()
    if account is None:
        return False
    store.save_account(account)
    for sender_key, sessions in old.load_sessions().items():
        for session in sessions:
            store.save_session(sender_key, session)
    for session in old.load_inbound_group_sessions():
        store.save_inbound_group_session(session)
    devices = old.load_device_keys()
    store.save_device_keys({user: dict(by_id) for user, by_id in devices.items()})
    for device in devices:
        for state, check in (
            ("verified", old.is_device_verified),
            ("blacklisted", old.is_device_blacklisted),
            ("ignored", old.is_device_ignored),
        ):
            if check(device):
                store._set(state, device, True)
    store.save_encrypted_rooms(old.load_encrypted_rooms())
    for request in old.load_outgoing_key_requests().values():
        store.add_outgoing_key_request(request)
    old.database.close()
    return True
