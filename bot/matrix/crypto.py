"""End-to-end encryption at the edge: nio's Olm machine (vodozemac) fed from the bot's own sync.

The bot reads `/sync` as raw JSON and decodes it itself (`bot.matrix.decode`); nio's Olm
machine only gets what it needs to keep the keys: to-device messages (room keys arrive
there), device-list changes, one-time-key counts and the state of joined rooms (members and
the encryption setting). Timeline events are decrypted here, one by one, into the plain
event the sender wrote, under the original event ID, sender and server timestamp, and go on
through the same decoder as unencrypted events, so every guarantee of the sync loop (one
transaction per batch, idempotence by event ID) holds unchanged.

What is accepted from inside an encrypted event is deliberately narrow: only the event types
the bot acts on (messages, reactions, poll answers); a decrypted `state_key` or a room ID other
than the room the event came from is refused, so nobody can smuggle a state change or replay
another room's message through encryption. A decrypted event must also come from a session
whose sender key belongs to a device of the claimed sender: a member cannot re-send another
member's ciphertext as their own hum.

An event whose key has not arrived stays `m.room.encrypted`; the decoder turns it into an
`EncryptedMessage` carrying its raw JSON, which the batch apply keeps aside in the batch's
transaction and applies later, when the key comes (with its original receipt time while its
ballot is open; judged at the key's arrival once it has closed).

No key is ever asked for (`m.room_key_request`): nio's Olm machine accepts an
`m.forwarded_room_key` only for a request it registered itself and only from a verified
device of the bot's own account (`_should_accept_forward`), and a bot has no other device.
A request to the sender's device could never be answered in a way nio takes, so sending one
per unreadable session would only cost a to-device message each and memory for ever.

Nothing decrypted is logged (not at any level): only event IDs and reasons.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import vodozemac
from nio import (
    AsyncClient,
    ForwardedRoomKeyEvent,
    KeysUploadResponse,
    MatrixRoom,
    RoomKeyEvent,
    SyncResponse,
)
from nio.crypto import encrypt_attachment
from nio.store import DefaultStore

from bot.domain.errors import OperatorError
from bot.matrix.decode import DECRYPTABLE_TYPES
from bot.matrix.keystore import ACCOUNT, Change, KeyStore, Sealer, import_file_store
from bot.matrix.rooms import MEGOLM
from storage.files import DIR_MODE, make_private, make_private_dir, sqlite_files

log = logging.getLogger(__name__)

# The pickle passphrase of nio's own files (its AsyncClientConfig default): the simulated
# members' stores and the bot's stores from before the keys moved into the database.
NIO_PICKLE_KEY = "DEFAULT_KEY"

# Message indices remembered against replays (a replay can only be of the replayer's own
# session, whose key the bot holds: the sender-key check ties sessions to their senders).
MAX_REMEMBERED_INDICES = 200_000
# State event types nio's Olm machine needs to know who is in a room and whether it encrypts.
_STATE_FOR_NIO = frozenset({"m.room.member", "m.room.encryption", "m.room.create"})


class Connection(Protocol):
    """What the crypto edge uses of `bot.matrix.gateway.Gateway` (which owns it)."""

    user_id: str
    device_id: str

    @property
    def client(self) -> AsyncClient:
        """The logged-in nio client."""
        ...

    async def call(self, awaitable: Any) -> Any:
        """Await one of nio's calls; error responses raise."""
        ...

    async def raw(self, method: str, path: str, body: Any = None) -> Any:
        """A client-server API call by path; returns the decoded JSON body."""
        ...

    async def state_event(self, room_id: str, event_type: str, state_key: str = "") -> Any:
        """A state event's content, or None when the room has none."""
        ...


class KeyRows(Protocol):
    """Where the device's sealed end-to-end state is kept (the bot's database; `bot.app`
    binds it to the storage backend)."""

    async def load(self, device: str) -> list[tuple[str, str, str]]:
        """Every sealed row of `device` (user ID / device ID): (kind, key, value)."""
        ...

    async def save(self, device: str, changes: Sequence[Change]) -> None:
        """Write changed rows in one transaction (a None value deletes the row)."""
        ...

    async def secret(self) -> bytes:
        """The secret the rows are sealed under (from the key file beside the database)."""
        ...


class CryptoError(OperatorError):
    """Encryption cannot work as configured; the message tells the operator what to do."""


class Outcome(enum.Enum):
    """What became of an attempt to decrypt one event."""

    DECRYPTED = "decrypted"
    WAITING = "waiting"  # no key yet: keep it and try again when keys arrive
    REFUSED = "refused"  # never readable or not acceptable: drop it (logged by ID)


@dataclass(frozen=True, slots=True)
class Decryption:
    """The result of `Crypto.decrypt`: the plain event when `outcome` is DECRYPTED."""

    outcome: Outcome
    event: dict[str, Any] | None = None
    reason: str = ""


def store_file(store_dir: Path, user_id: str, device_id: str) -> Path:
    """Where nio's default store keeps this device's keys (its own naming rule)."""
    return store_dir / f"{user_id}_{device_id}.db"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _state_only(events: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in _list(events)
        if isinstance(e, dict) and e.get("type") in _STATE_FOR_NIO and "state_key" in e
    ]


def for_olm_machine(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a raw sync response nio's Olm machine needs (see the module docstring);
    timeline messages are left out, so nio neither parses nor decrypts them."""
    rooms = _dict(raw.get("rooms"))
    joined: dict[str, Any] = {}
    for room_id, room in _dict(rooms.get("join")).items():
        room = _dict(room)
        timeline = _dict(room.get("timeline"))
        joined[room_id] = {
            "state": {"events": _state_only(_dict(room.get("state")).get("events"))},
            "timeline": {
                "events": _state_only(timeline.get("events")),
                "limited": bool(timeline.get("limited")),
                "prev_batch": timeline.get("prev_batch") or "",
            },
            "ephemeral": {"events": []},
            "account_data": {"events": []},
            "summary": _dict(room.get("summary")),
        }
    left: dict[str, Any] = {}
    for room_id, room in _dict(rooms.get("leave")).items():
        room = _dict(room)
        left[room_id] = {
            "state": {"events": _state_only(_dict(room.get("state")).get("events"))},
            "timeline": {
                "events": _state_only(_dict(room.get("timeline")).get("events")),
                "limited": False,
                "prev_batch": "",
            },
        }
    out: dict[str, Any] = {
        "next_batch": raw.get("next_batch") if isinstance(raw.get("next_batch"), str) else "",
        "rooms": {"join": joined, "invite": {}, "leave": left},
        "to_device": {"events": [e for e in _list(_dict(raw.get("to_device")).get("events"))]},
        "device_lists": _dict(raw.get("device_lists")) or {"changed": [], "left": []},
        "device_one_time_keys_count": _dict(raw.get("device_one_time_keys_count")),
    }
    fallback = raw.get("device_unused_fallback_key_types")
    if isinstance(fallback, list):
        out["device_unused_fallback_key_types"] = fallback
    return out


class Crypto:
    """The bot's Olm device: keeps its keys, decrypts what it receives, encrypts what it
    sends. Lives inside the `Gateway` (the only other place nio is used); construction does
    no I/O."""

    def __init__(
        self,
        gateway: Connection,
        store_dir: Path,
        accepts: frozenset[str] | None = DECRYPTABLE_TYPES,
        rows: KeyRows | None = None,
    ) -> None:
        self.gateway = gateway
        self.store_dir = store_dir
        # With `rows` (the bot) the device's state lives in the database, sealed under a key
        # derived from the key file's secret; without (simulated members) in nio's own files
        # under `store_dir` (also where an older bot kept its keys, moved in at start).
        self.rows = rows
        self.keystore: KeyStore | None = None
        self._sharing = asyncio.Lock()  # one room-key share at a time
        # Event types taken from inside encrypted events; None: any (the simulated members).
        self.accepts = accepts
        self._unencrypted: set[str] = set()  # rooms checked and found unencrypted
        # (sender key, session, message index) -> the event it decrypted: a second event
        # with the same index is a replay.
        self._indices: dict[tuple[str, str, int], str] = {}

    @property
    def store_path(self) -> Path:
        """The store file of the bot's device."""
        return store_file(self.store_dir, self.gateway.user_id, self.gateway.device_id)

    @property
    def device_label(self) -> str:
        """The device's rows in the database: user ID / device ID."""
        return f"{self.gateway.user_id}/{self.gateway.device_id}"

    @property
    def pickle_key(self) -> str:
        """The passphrase nio encrypts pickles with (nio's default for its own files)."""
        return self.keystore.pickle_key if self.keystore is not None else NIO_PICKLE_KEY

    def store_factory(self, *args: Any) -> Any:
        """What nio calls to open its store (`AsyncClientConfig.store`)."""
        if self.keystore is None:
            return DefaultStore(*args)
        return self.keystore

    async def prepare(self) -> bool:
        """Before the client logs in: read the device's state (from the database, moving an
        older on-disk store there first; or make the store directory, 0700). Returns whether
        the device already has keys (False on the very first start)."""
        if self.rows is None:
            make_private_dir(self.store_dir)
            self.store_dir.chmod(DIR_MODE)  # also one made by an older bot
            return self.store_path.exists()
        user, device = self.gateway.user_id, self.gateway.device_id
        sealer = Sealer(await self.rows.secret(), self.device_label)
        keystore = KeyStore(sealer, user, device)
        keystore.load_rows(await self.rows.load(self.device_label))
        self.keystore = keystore
        if keystore.get(ACCOUNT, "") is None and self.store_path.exists():
            await self._move_file_store_in()
        return keystore.get(ACCOUNT, "") is not None

    async def _move_file_store_in(self) -> None:
        """Move nio's on-disk store of this device into the database, once: copied, written,
        read back and compared, then the old files are renamed aside (kept as a backup)."""
        keystore = self.keystore
        assert keystore is not None
        assert self.rows is not None
        if not import_file_store(keystore, self.store_dir, NIO_PICKLE_KEY):
            return
        await self.persist()
        check = KeyStore(keystore.sealer, keystore.user_id, keystore.device_id)
        check.load_rows(await self.rows.load(self.device_label))
        if check.counts() != keystore.counts() or (_account_keys(check) != _account_keys(keystore)):
            raise CryptoError(
                f"moving the crypto store {self.store_path} into the database did not read "
                "back the same keys; the files were left in place: tell the developers"
            )
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for path in sorted(self.store_dir.glob(f"{self.store_path.stem}*")):
            if ".moved-to-database-" not in path.name:
                path.rename(path.with_name(f"{path.name}.moved-to-database-{stamp}"))
        log.warning(
            "end-to-end keys moved from %s into the database (%s); the old files are kept "
            "beside it with the suffix .moved-to-database-%s: delete them once a backup of "
            "the database and its key file is made",
            self.store_path,
            ", ".join(f"{n} {k}" for k, n in sorted(keystore.counts().items())),
            stamp,
        )

    async def persist(self) -> None:
        """Write what changed in the device's state to the database (nothing without
        database rows). Called before anything that depends on it leaves the machine; a
        failed write keeps the changes for the next call and raises."""
        keystore = self.keystore
        if keystore is None or self.rows is None or not keystore.has_changes:
            return
        changes = keystore.take_changes()
        try:
            await self.rows.save(self.device_label, changes)
        except BaseException:
            keystore.restore_changes(changes)
            raise

    async def start(self, *, had_store: bool) -> None:
        """After login: refuse a lost store, then publish the device's keys if needed."""
        client = self.gateway.client
        if client.olm is None:
            raise CryptoError(
                "end-to-end encryption is not available: install matrix-nio with its e2e "
                'extra (the Makefile does), or set matrix.encryption = "off"'
            )
        # nio made (or opened) its store with the umask's mode: the device's private keys.
        for path in sqlite_files(self.store_path):
            make_private(path)
        user, device = self.gateway.user_id, self.gateway.device_id
        if not had_store:
            known = await self.gateway.raw(
                "POST", "/_matrix/client/v3/keys/query", {"device_keys": {user: [device]}}
            )
            if device in _dict(_dict(known.get("device_keys")).get(user)):
                # nio has just made a fresh account there: remove it, or the next start would
                # take it for the real store and publish keys nobody trusts.
                self._discard_fresh_store()
                where = (
                    "the database"
                    if self.keystore is not None
                    else f"the crypto store {self.store_path}"
                )
                raise CryptoError(
                    f"{where} has no keys for the bot's device {device} but the homeserver "
                    "already has keys for it: restore the database (with its key file) or the "
                    "store from a backup (`consensus-bot backup` copies them), or set "
                    "matrix.device_id to a new device ID to start over (members then have to "
                    "trust the new device)"
                )
        await self.persist()
        await self.housekeeping()

    def _discard_fresh_store(self) -> None:
        """Forget the account nio created at this start (only called when there was none)."""
        if self.keystore is not None:
            self.keystore.take_changes()  # never written
            return
        for path in sqlite_files(self.store_path):
            path.unlink(missing_ok=True)

    async def housekeeping(self) -> None:
        """What nio's own sync loop does between syncs: publish one-time keys, learn the
        devices of users whose lists changed, claim keys for new Olm sessions and send the
        to-device messages queued (key shares)."""
        client = self.gateway.client
        await self.persist()  # what the last response changed, before anything is sent
        if client.should_upload_keys:
            await self._upload_keys()
        if client.should_query_keys:
            await self.gateway.call(client.keys_query())
            await self.persist()
        if client.should_claim_keys:
            await self.gateway.call(client.keys_claim(client.get_users_for_key_claiming()))
            await self.persist()
        await self.gateway.call(client.send_to_device_messages())

    async def _upload_keys(self) -> None:
        """Publish the device keys and new one-time keys. The account, with the private
        halves of the new one-time keys, is stored before they are published: a crash in
        between must not leave keys on the server that the bot cannot use."""
        client = self.gateway.client
        olm = client.olm
        assert olm is not None
        body = olm.share_keys()
        if self.keystore is not None:
            self.keystore.save_account(olm.account)
        await self.persist()
        answer = await self.gateway.raw("POST", "/_matrix/client/v3/keys/upload", body)
        response = KeysUploadResponse.from_dict(answer)
        if not isinstance(response, KeysUploadResponse):
            raise CryptoError("the homeserver's answer to the key upload cannot be read")
        handled = client.receive_response(response)
        if inspect.isawaitable(handled):
            await handled
        await self.persist()

    async def absorb(self, raw: Mapping[str, Any]) -> bool:
        """Feed one sync response to the Olm machine; True when room keys arrived."""
        client = self.gateway.client
        response = SyncResponse.from_dict(for_olm_machine(raw))
        if not isinstance(response, SyncResponse):
            log.warning("the key part of a sync response could not be read by nio; skipped")
            return False
        handled = client.receive_response(response)
        if inspect.isawaitable(handled):
            await handled
        got = any(
            isinstance(e, RoomKeyEvent | ForwardedRoomKeyEvent) for e in response.to_device_events
        )
        self._distrust_members_after_gaps(raw)
        await self.housekeeping()
        return got

    def _distrust_members_after_gaps(self, raw: Mapping[str, Any]) -> None:
        """A `limited` timeline may have skipped joins and leaves (the sync filter
        lazy-loads members, so the state section does not make up for them): the member
        list of such a room is read again, whole, before the bot next encrypts there."""
        rooms = self.gateway.client.rooms
        for room_id, room in _dict(_dict(raw.get("rooms")).get("join")).items():
            known = rooms.get(room_id)
            if known is not None and _dict(_dict(room).get("timeline")).get("limited") is True:
                known.members_synced = False

    def decrypt_timeline(self, raw: dict[str, Any]) -> None:
        """Replace, in place, every encrypted timeline event of a sync response that can be
        read by its plain event; the others stay encrypted (the batch apply keeps them aside)."""
        for room_id, room in _dict(_dict(raw.get("rooms")).get("join")).items():
            events = _dict(_dict(room).get("timeline")).get("events")
            if isinstance(events, list):
                events[:] = self.plain_events(room_id, events)

    def plain_events(self, room_id: str, events: list[Any]) -> list[Any]:
        """The events of a room with the readable encrypted ones decrypted (used for sync
        timelines and for reconciliation pages alike); refused ones are left out."""
        out = []
        for event in events:
            if not isinstance(event, dict) or event.get("type") != "m.room.encrypted":
                out.append(event)
                continue
            result = self.decrypt(room_id, event)
            if result.outcome is Outcome.DECRYPTED:
                out.append(result.event)
            elif result.outcome is Outcome.WAITING:
                out.append(event)
            else:
                log.info(
                    "encrypted event %s in %s not taken: %s",
                    event.get("event_id"),
                    room_id,
                    result.reason,
                )
        return out

    def decrypt(self, room_id: str, event: Mapping[str, Any]) -> Decryption:
        """Decrypt one raw `m.room.encrypted` event of `room_id`.

        Straight on the Megolm session (nio's `decrypt_megolm_event` validates every event
        against JSON schemas, which costs more than the decryption): the envelope is checked
        field by field, the session found by room, sender key and session ID, a message
        index seen before under another event ID is refused as a replay, and the envelope's
        `m.relates_to` (a reaction's target, kept in clear by senders) completes the
        plaintext when it has none, as the spec says.
        """
        olm = self.gateway.client.olm
        if olm is None:
            return Decryption(Outcome.WAITING, reason="no Olm machine")
        if "state_key" in event:
            return Decryption(Outcome.REFUSED, reason="an encrypted state event")
        envelope = _dict(event.get("content"))
        sender, event_id = _text(event.get("sender")), _text(event.get("event_id"))
        sender_key, session_id = (
            _text(envelope.get("sender_key")),
            _text(envelope.get("session_id")),
        )
        ciphertext = _text(envelope.get("ciphertext"))
        if (
            envelope.get("algorithm") != MEGOLM
            or sender is None
            or event_id is None
            or sender_key is None
            or session_id is None
            or ciphertext is None
        ):
            return Decryption(Outcome.REFUSED, reason="not a Megolm event")
        session = olm.inbound_group_store.get(room_id, sender_key, session_id)
        if session is None:
            # Not asked for: nio would refuse the answer (see the module docstring).
            return Decryption(Outcome.WAITING, reason="the key has not arrived")
        owner = self._sender_key_owner(sender, sender_key)
        if owner is None:
            self._request_devices(sender)
            return Decryption(Outcome.WAITING, reason="the sender's devices are not known yet")
        if not owner:
            return Decryption(Outcome.REFUSED, reason="the session is not the sender's")
        try:
            plaintext, index = session.decrypt(ciphertext)
        except (vodozemac.MegolmDecryptionException, vodozemac.DecodeException) as exc:
            return Decryption(Outcome.REFUSED, reason=f"undecryptable: {type(exc).__name__}")
        if self._indices.setdefault((sender_key, session_id, index), event_id) != event_id:
            return Decryption(Outcome.REFUSED, reason="a replayed message index")
        if len(self._indices) > MAX_REMEMBERED_INDICES:  # the oldest first (insertion order)
            del self._indices[next(iter(self._indices))]
        try:
            source = json.loads(plaintext)
        except ValueError:
            return Decryption(Outcome.REFUSED, reason="the plaintext is not JSON")
        if not isinstance(source, dict):
            return Decryption(Outcome.REFUSED, reason="the plaintext is not an event")
        inner_room = source.get("room_id")
        if inner_room is not None and inner_room != room_id:
            return Decryption(Outcome.REFUSED, reason="encrypted for another room")
        etype = source.get("type")
        accepted = isinstance(etype, str) if self.accepts is None else etype in self.accepts
        if not accepted or "state_key" in source:
            return Decryption(Outcome.REFUSED, reason=f"type {str(etype)[:60]!r} not accepted")
        content = dict(_dict(source.get("content")))
        if "m.relates_to" not in content and "m.relates_to" in envelope:
            content["m.relates_to"] = envelope["m.relates_to"]
        clear: dict[str, Any] = {
            "type": etype,
            "content": content,
            "event_id": event_id,
            "sender": sender,
            "origin_server_ts": event.get("origin_server_ts"),
        }
        if isinstance(event.get("unsigned"), dict):
            clear["unsigned"] = event["unsigned"]
        return Decryption(Outcome.DECRYPTED, clear)

    def has_key(self, room_id: str, sender_key: str, session_id: str) -> bool:
        """Whether the key of a Megolm session of `room_id` has reached the bot's device."""
        olm = self.gateway.client.olm
        return olm is not None and (
            olm.inbound_group_store.get(room_id, sender_key, session_id) is not None
        )

    def _sender_key_owner(self, sender: str, sender_key: str) -> bool | None:
        """Whether a session's sender key is one of the sender's devices; None while the
        sender's devices are not known."""
        olm = self.gateway.client.olm
        assert olm is not None
        if sender == self.gateway.user_id and (
            sender_key == olm.account.identity_keys["curve25519"]
        ):
            return True  # the bot's own message (an outbox resend check reads it back)
        known = False
        for device in olm.device_store.active_user_devices(sender):
            known = True
            if device.curve25519 == sender_key:
                return True
        return False if known else None

    def _request_devices(self, user_id: str) -> None:
        olm = self.gateway.client.olm
        if olm is not None:
            olm.users_for_key_query.add(user_id)

    # --- sending ------------------------------------------------------------------------

    def mark_encrypted(self, room_id: str) -> None:
        """A room the bot created encrypted: encrypt in it before the first sync says so."""
        client = self.gateway.client
        client.encrypted_rooms.add(room_id)
        self._unencrypted.discard(room_id)
        if client.store is not None:
            client.store.save_encrypted_rooms([room_id])

    async def is_encrypted(self, room_id: str) -> bool:
        """Whether events sent to `room_id` must be encrypted. Rooms nio has not seen in a
        sync since the start are asked about once (a state lookup), never guessed."""
        client = self.gateway.client
        if room_id in client.encrypted_rooms:
            return True
        room = client.rooms.get(room_id)
        if room is not None and room.encrypted:
            return True
        if room_id in self._unencrypted:
            return False  # until a sync shows m.room.encryption (nio then knows it)
        if await self.gateway.state_event(room_id, "m.room.encryption") is None:
            self._unencrypted.add(room_id)
            return False
        self.mark_encrypted(room_id)
        return True

    async def encrypt(
        self, room_id: str, event_type: str, content: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """(`m.room.encrypted`, ciphertext content) for an event to send to `room_id`,
        sharing the room key with every member's devices first when needed (devices are
        trusted on first use; members are not verified)."""
        client = self.gateway.client
        olm = client.olm
        assert olm is not None
        room = client.rooms.get(room_id)
        if room is None:
            room = MatrixRoom(room_id, client.user_id, encrypted=True)
            client.rooms[room_id] = room
        room.encrypted = True
        if not room.members_synced:
            await self._load_members(room)
        if client.should_query_keys:
            await self.gateway.call(client.keys_query())
            await self.persist()
        async with self._sharing:
            if olm.should_share_group_session(room_id):
                await self._share_room_key(room_id, room)
        kind, encrypted = client.encrypt(room_id, event_type, content)
        return str(kind), dict(encrypted)

    async def _share_room_key(self, room_id: str, room: MatrixRoom) -> None:
        """Send the room's outbound Megolm key to every device of its members that lacks
        it (nio's `share_group_session`, with the state stored between encrypting the
        to-device messages and sending them: a crash must not reuse an Olm ratchet step)."""
        client = self.gateway.client
        olm = client.olm
        assert olm is not None
        missing = client.get_missing_sessions(room_id)
        if missing:
            await self.gateway.call(client.keys_claim(missing))
        batches = list(
            olm.share_group_session_parallel(
                room_id, list(room.users), ignore_unverified_devices=True
            )
        )
        await self.persist()
        session = olm.outbound_group_sessions[room_id]
        for sharing_with, to_device in batches:
            path = (
                "/_matrix/client/v3/sendToDevice/m.room.encrypted/"
                f"{quote(secrets.token_hex(12), safe='')}"
            )
            await self.gateway.raw("PUT", path, to_device)
            session.users_shared_with.update(sharing_with)
        session.shared = True

    async def _load_members(self, room: MatrixRoom) -> None:
        """Everyone joined or invited, read whole from the server: the bot posts a request's
        card and ballot right after inviting the members, before they join, and they must be
        able to read them (as Element shares keys with invited members). Anyone the list
        gains or loses ends the room's outbound session, as a membership event in the
        timeline does (nio rotates on those): a new member gets a session that starts now, and
        one who left never gets the next one.

        A `restricted` room (issue 25) counts the members of its allow rooms as invited:
        they may join it at any time without an invite, and must read the card and ballot
        posted before they did (the allow room's membership is the roster)."""
        answer = await self.gateway.raw(
            "GET",
            f"/_matrix/client/v3/rooms/{quote(room.room_id, safe='')}/members?not_membership=leave",
        )
        present: dict[str, bool] = {}  # user -> invited (not yet joined)
        for event in _list(answer.get("chunk")):
            event = _dict(event)
            user = event.get("state_key")
            membership = _dict(event.get("content")).get("membership")
            if isinstance(user, str) and membership in ("join", "invite"):
                present[user] = membership == "invite"
        for user in await self._allowed_joiners(room.room_id):
            present.setdefault(user, True)
        changed = False
        for user in [u for u in room.users if u not in present]:
            changed = room.remove_member(user) or changed
        for user, invited in present.items():
            changed = room.add_member(user, None, None, invited=invited) or changed
        room.members_synced = True
        self._members_changed(room, changed)

    async def _allowed_joiners(self, room_id: str) -> set[str]:
        """Who may join a restricted room by themselves: the joined members of the rooms its
        join rule allows (none for any other join rule)."""
        rule = _dict(await self.gateway.state_event(room_id, "m.room.join_rules"))
        if rule.get("join_rule") not in ("restricted", "knock_restricted"):
            return set()
        users: set[str] = set()
        for allow in _list(rule.get("allow")):
            allowed = _dict(allow).get("room_id")
            if not isinstance(allowed, str) or allowed == room_id:
                continue
            answer = await self.gateway.raw(
                "GET", f"/_matrix/client/v3/rooms/{quote(allowed, safe='')}/joined_members"
            )
            users |= {u for u in _dict(answer.get("joined")) if isinstance(u, str)}
        return users

    def member_invited(self, room_id: str, user_id: str) -> None:
        """The bot has just invited `user_id` to `room_id`: its next message there must be
        readable by them, before the sync brings the invite back."""
        room = self.gateway.client.rooms.get(room_id)
        if room is not None and room.members_synced:
            self._members_changed(room, room.add_member(user_id, None, None, invited=True))

    def member_left(self, room_id: str, user_id: str) -> None:
        """The bot has just removed `user_id` from `room_id`: its next message there must
        not be readable by them, even before the sync brings the kick back."""
        room = self.gateway.client.rooms.get(room_id)
        if room is not None:
            self._members_changed(room, room.remove_member(user_id))

    def _members_changed(self, room: MatrixRoom, changed: bool) -> None:
        client = self.gateway.client
        if client.olm is None:
            return
        if changed:
            client.invalidate_outbound_session(room.room_id)
        client.olm.update_tracked_users(room)


def _account_keys(store: KeyStore) -> dict[str, str] | None:
    account = store.load_account()
    return None if account is None else dict(account.identity_keys)


def encrypted_file(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """The ciphertext of an attachment and the `file` object (key, iv, hashes) without its
    `url`, per the spec's encrypted attachments (AES-CTR, SHA-256)."""
    ciphertext, keys = encrypt_attachment(data)
    return bytes(ciphertext), {
        "key": keys["key"],
        "iv": keys["iv"],
        "hashes": keys["hashes"],
        "v": "v2",
    }
