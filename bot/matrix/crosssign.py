"""Cross-signing of the bot's own device (spec v1.11, client-server API, "Cross-signing").

Clients that follow MSC4153 ("exclude insecure devices", Element's default) share room keys
only with devices their owner cross-signed. nio has no cross-signing, so this module gives the
bot a complete cross-signing identity and signs its one device with it:

- a master key (the identity), a self-signing key (signs the user's own devices) and a
  user-signing key (signs other users' master keys; the bot never uses it, but the spec's
  identity has all three and clients treat an identity without it as incomplete);
- the self-signing and user-signing keys are signed by the master key and uploaded together
  through ``/keys/device_signing/upload`` (User-Interactive Auth with the bot's password when
  the server asks for it);
- the bot's device keys, as the server returns them, are signed by the self-signing key, and
  the master key by the device (what Element does), through ``/keys/signatures/upload``.

Ed25519 comes from ``cryptography`` (PyCA, backed by OpenSSL). vodozemac's Python bindings,
which the ``e2e`` extra installs for nio, expose only the Olm account's own key
(``Account.sign``) and public-key verification, no signing key built from a seed we could
store; PyNaCl would do as well but ``cryptography`` is the more widely used and audited of
the two. Its private keys are the 32-byte seeds the spec and Element use.

The private seeds live in a JSON key file (mode 0600, written atomically, never overwritten).
``ensure_cross_signed`` compares that file with what the server has and does the least that
makes them agree; it never replaces an identity on the server unless told to (``reset``).
Everything except the three HTTP calls is a plain function, tested without a server.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bot.domain.errors import OperatorError
from bot.matrix.crypto import Crypto
from bot.matrix.gateway import Gateway, GatewayError
from bot.matrix.keystore import CROSS_SIGNING
from storage.files import make_private_dir, write_new_file

log = logging.getLogger(__name__)

KEY_FILE_VERSION = 1
# The option the operator passes to replace the server's identity on purpose; the integrator
# wires it to `ensure_cross_signed(reset=True)` and the error messages name it.
RESET_OPTION = "--reset-cross-signing"
USAGES = ("master", "self_signing", "user_signing")
_MAX_SAFE_INT = 2**53 - 1  # canonical JSON allows integers in [-(2**53)+1, 2**53-1] only

_QUERY_PATH = "/_matrix/client/v3/keys/query"
_DEVICE_SIGNING_UPLOAD_PATH = "/_matrix/client/v3/keys/device_signing/upload"
_SIGNATURES_UPLOAD_PATH = "/_matrix/client/v3/keys/signatures/upload"


class CrossSigningError(OperatorError):
    """Cross-signing cannot go on without the operator: the message says what to do."""


# ---------------------------------------------------------------- encoding


def b64_encode(data: bytes) -> str:
    """Unpadded standard base64, the encoding of every key and signature in Matrix."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64_decode(text: str) -> bytes:
    """Decode unpadded (or padded) standard base64; ValueError on anything else."""
    stripped = text.rstrip("=")
    return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)


def _check_canonical(value: Any) -> None:
    """Raise ValueError for what canonical JSON cannot encode (floats, big ints, odd keys)."""
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            raise ValueError(f"integer {value} is out of canonical JSON's range")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_canonical(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"object key {key!r} is not a string")
            _check_canonical(item)
        return
    raise ValueError(f"{type(value).__name__} has no canonical JSON form")


def canonical_json(value: Any) -> bytes:
    """The spec's canonical JSON: UTF-8, keys sorted by code point, no insignificant
    whitespace, integers only, and only the escapes JSON requires (Python's encoder with
    `ensure_ascii=False` writes exactly those, in lower-case hex).
    """
    _check_canonical(value)
    text = json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    )
    return text.encode("utf-8")


def signable_bytes(obj: Mapping[str, Any]) -> bytes:
    """What a signature covers: the object without `signatures` and `unsigned`."""
    return canonical_json({k: v for k, v in obj.items() if k not in ("signatures", "unsigned")})


# ---------------------------------------------------------------- keys and signatures


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key pair kept as its 32-byte seed."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ValueError("an Ed25519 seed has 32 bytes")

    @classmethod
    def generate(cls) -> SigningKey:
        """A new key from the OS's random source."""
        return cls(secrets.token_bytes(32))

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public(self) -> str:
        """The public key, unpadded base64 (also the key's ID in Matrix)."""
        raw = self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return b64_encode(raw)

    @property
    def key_id(self) -> str:
        """`ed25519:<public key>`, the name under which the key signs."""
        return f"ed25519:{self.public}"

    def sign_bytes(self, message: bytes) -> str:
        """The signature of `message`, unpadded base64."""
        return b64_encode(self._private().sign(message))

    def __repr__(self) -> str:  # never print the seed
        return f"SigningKey(public={self.public})"


def verify_bytes(public_key: str, message: bytes, signature: str) -> bool:
    """True when `signature` is `public_key`'s valid Ed25519 signature of `message`."""
    try:
        key = Ed25519PublicKey.from_public_bytes(b64_decode(public_key))
        key.verify(b64_decode(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_json(
    obj: Mapping[str, Any], user_id: str, key_id: str, sign: Callable[[bytes], str]
) -> dict[str, Any]:
    """A copy of `obj` without `unsigned`, with `sign`'s signature added under
    `signatures[user_id][key_id]` next to those it already had.
    """
    signature = sign(signable_bytes(obj))
    signed = {k: v for k, v in obj.items() if k != "unsigned"}
    old = obj.get("signatures")
    # Another party's entry that is not a mapping is no signature at all: it is dropped
    # rather than failing the signing (found by hypothesis: `{"signatures": {"": None}}`).
    signatures = (
        {u: dict(s) for u, s in old.items() if isinstance(s, Mapping)}
        if isinstance(old, Mapping)
        else {}
    )
    signatures.setdefault(user_id, {})[key_id] = signature
    signed["signatures"] = signatures
    return signed


def verify_json(
    obj: Mapping[str, Any], user_id: str, public_key: str, key_id: str | None = None
) -> bool:
    """True when `obj` carries a valid signature by `public_key` under `user_id` and
    `key_id` (by default `ed25519:<public key>`, as cross-signing keys sign; a device signs
    as `ed25519:<device ID>`).
    """
    signatures = obj.get("signatures")
    mine = signatures.get(user_id) if isinstance(signatures, Mapping) else None
    name = key_id if key_id is not None else f"ed25519:{public_key}"
    signature = mine.get(name) if isinstance(mine, Mapping) else None
    if not isinstance(signature, str):
        return False
    try:
        message = signable_bytes(obj)
    except ValueError:
        return False
    return verify_bytes(public_key, message, signature)


def key_public(key_obj: Mapping[str, Any] | None) -> str | None:
    """The public key of a cross-signing key object (its one `ed25519:` entry), else None."""
    keys = key_obj.get("keys") if key_obj is not None else None
    if not isinstance(keys, Mapping) or len(keys) != 1:
        return None
    ((key_id, value),) = keys.items()
    if key_id != f"ed25519:{value}" or not isinstance(value, str):
        return None
    return value


@dataclass(frozen=True)
class CrossSigningKeys:
    """The three private keys of one identity."""

    master: SigningKey
    self_signing: SigningKey
    user_signing: SigningKey

    @classmethod
    def generate(cls) -> CrossSigningKeys:
        """A new identity."""
        return cls(SigningKey.generate(), SigningKey.generate(), SigningKey.generate())

    def publics(self) -> tuple[str, str, str]:
        """(master, self-signing, user-signing) public keys."""
        return (self.master.public, self.self_signing.public, self.user_signing.public)

    def by_usage(self) -> dict[str, SigningKey]:
        """The keys by their spec usage name."""
        return dict(zip(USAGES, (self.master, self.self_signing, self.user_signing), strict=True))


def key_object(user_id: str, usage: str, key: SigningKey) -> dict[str, Any]:
    """An unsigned cross-signing key object as the spec defines it."""
    return {"user_id": user_id, "usage": [usage], "keys": {key.key_id: key.public}}


def device_signing_upload_body(user_id: str, keys: CrossSigningKeys) -> dict[str, Any]:
    """The body of `/keys/device_signing/upload`: the master key, and the self-signing and
    user-signing keys each signed by the master key (without `auth`)."""
    master = keys.master

    def signed(usage: str, key: SigningKey) -> dict[str, Any]:
        return sign_json(key_object(user_id, usage, key), user_id, master.key_id, master.sign_bytes)

    return {
        "master_key": key_object(user_id, "master", master),
        "self_signing_key": signed("self_signing", keys.self_signing),
        "user_signing_key": signed("user_signing", keys.user_signing),
    }


def password_auth(challenge: Mapping[str, Any], user_id: str, password: str) -> dict[str, Any]:
    """The `auth` object answering a UIA 401 `challenge` with the account password.

    CrossSigningError when the server offers no flow of just `m.login.password` (single
    sign-on, for one, needs a human in a browser).
    """
    flows = challenge.get("flows")
    stages = (
        [f.get("stages") for f in flows if isinstance(f, Mapping)]
        if isinstance(flows, list)
        else []
    )
    if ["m.login.password"] not in stages:
        raise CrossSigningError(
            "The homeserver wants an authentication the bot cannot give to upload its "
            f"cross-signing keys (offered: {stages}); upload them with a password-enabled "
            "account or ask the server admin."
        )
    auth: dict[str, Any] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
    }
    session = challenge.get("session")
    if isinstance(session, str):
        auth["session"] = session
    return auth


# ---------------------------------------------------------------- the server's view


@dataclass(frozen=True)
class ServerKeys:
    """The bot's own keys as `/keys/query` returns them (None where the server has none)."""

    master: dict[str, Any] | None
    self_signing: dict[str, Any] | None
    user_signing: dict[str, Any] | None
    device: dict[str, Any] | None

    @classmethod
    def from_query(cls, answer: Mapping[str, Any], user_id: str, device_id: str) -> ServerKeys:
        """Pick the bot's keys out of a `/keys/query` answer."""

        def mine(section: str) -> dict[str, Any] | None:
            part = answer.get(section)
            value = part.get(user_id) if isinstance(part, Mapping) else None
            return dict(value) if isinstance(value, Mapping) else None

        devices = mine("device_keys") or {}
        device = devices.get(device_id)
        return cls(
            master=mine("master_keys"),
            self_signing=mine("self_signing_keys"),
            user_signing=mine("user_signing_keys"),
            device=dict(device) if isinstance(device, Mapping) else None,
        )

    def publics(self) -> tuple[str | None, str | None, str | None]:
        """(master, self-signing, user-signing) public keys on the server."""
        return (
            key_public(self.master),
            key_public(self.self_signing),
            key_public(self.user_signing),
        )


class Outcome(enum.Enum):
    """What `ensure_cross_signed` did."""

    UNCHANGED = "unchanged"  # the server already had our identity and signatures
    SIGNED = "signed"  # identity in place; the device (or master) signature was added
    UPLOADED = "uploaded"  # the key file's identity was uploaded, then the device signed
    CREATED = "created"  # a new identity was generated, saved, uploaded, the device signed


@dataclass(frozen=True)
class Plan:
    """What has to happen to the identity before signatures are checked."""

    set_aside: bool = False  # rename the (mismatching) key file out of the way first
    create: bool = False  # generate new keys and write the key file
    upload: bool = False  # upload the identity through device_signing/upload
    replacing: bool = False  # ... replacing a different one the server has


def plan_identity(
    stored: CrossSigningKeys | None,
    server: ServerKeys,
    *,
    user_id: str,
    where: str,
    reset: bool,
) -> Plan:
    """Compare the key file with the server; raise CrossSigningError where only the operator
    may decide.

    `reset` allows replacing the server's identity with a new one; a key file that does not
    match the server is renamed aside first, never deleted. It changes nothing when file and
    server agree, so a reset flag left switched on does not churn the identity at every start.
    (Uploading the file's older identity instead would be the natural restore, but Synapse
    1.163 answers HTTP 500 when a master key it once had comes back: it keeps every
    cross-signing key as a hidden device of the user, and the old one's row is still there.)
    """
    server_master = key_public(server.master)
    if stored is None:
        if server.master is None:
            return Plan(create=True, upload=True)
        if reset:
            return Plan(create=True, upload=True, replacing=True)
        raise CrossSigningError(
            f"The homeserver already has a cross-signing identity for {user_id} (master key "
            f"{server_master}) but {where} is missing: restore it from your "
            f"backup, or start once with {RESET_OPTION} to replace the identity on purpose "
            "(people who verified the bot will then see a changed identity)."
        )
    if server.master is None:
        return Plan(upload=True)
    ours = stored.publics()
    theirs = server.publics()
    if ours == theirs:
        return Plan()
    if theirs[0] == ours[0] and all(t in (None, o) for t, o in zip(theirs, ours, strict=True)):
        return Plan(upload=True)  # our master, parts missing: completing it replaces nothing
    if reset:
        return Plan(set_aside=True, create=True, upload=True, replacing=True)
    raise CrossSigningError(
        f"The homeserver's cross-signing identity for {user_id} (master key {server_master}) "
        f"is not the one in {where} (master key {ours[0]}): someone reset it "
        f"or the keys belong elsewhere; put the right ones back, or start once with "
        f"{RESET_OPTION} to set them aside and replace the identity with a new one."
    )


@dataclass(frozen=True)
class LocalDevice:
    """The bot's Olm device: its ID, its Ed25519 identity key and a way to sign with it."""

    device_id: str
    ed25519: str
    sign: Callable[[bytes], str]

    @property
    def key_id(self) -> str:
        """`ed25519:<device ID>`, the name the device signs under."""
        return f"ed25519:{self.device_id}"


def check_device_keys(
    device_keys: Mapping[str, Any] | None, user_id: str, device: LocalDevice
) -> None:
    """Make sure the server's device keys are this Olm account's: same Ed25519 key, signed
    by it. Signing anything else would vouch for keys the bot does not hold.
    """
    if device_keys is None:
        raise CrossSigningError(
            f"The homeserver has no device keys for the bot's device {device.device_id}: "
            "they are uploaded when the gateway connects with a crypto store; start again."
        )
    keys = device_keys.get("keys")
    served = keys.get(device.key_id) if isinstance(keys, Mapping) else None
    if (
        device_keys.get("user_id") != user_id
        or device_keys.get("device_id") != device.device_id
        or served != device.ed25519
        or not verify_json(device_keys, user_id, device.ed25519, device.key_id)
    ):
        raise CrossSigningError(
            f"The homeserver's keys for device {device.device_id} are not the ones in the "
            "bot's Olm store (was the store replaced?): log in as a new device with a fresh "
            "store instead of reusing the device ID."
        )


def signatures_upload_body(
    user_id: str,
    keys: CrossSigningKeys,
    server: ServerKeys,
    device: LocalDevice,
) -> dict[str, Any]:
    """The body of `/keys/signatures/upload` with what is missing: the self-signing key's
    signature on the device keys, the device's signature on the master key. Empty when
    nothing is missing.

    `server` must already show `keys` as the identity (after an upload, the master key
    object is the one we built).
    """
    assert server.device is not None
    ssk = keys.self_signing
    body: dict[str, dict[str, Any]] = {}
    if not verify_json(server.device, user_id, ssk.public):
        body[device.device_id] = sign_json(server.device, user_id, ssk.key_id, ssk.sign_bytes)
    master = server.master or key_object(user_id, "master", keys.master)
    if not verify_json(master, user_id, device.ed25519, device.key_id):
        body[keys.master.public] = sign_json(master, user_id, device.key_id, device.sign)
    return {user_id: body} if body else {}


# ---------------------------------------------------------------- the key file


def keys_record(user_id: str, keys: CrossSigningKeys) -> dict[str, Any]:
    """The stored form of the keys (the key file's JSON; the database's sealed row)."""
    record: dict[str, Any] = {"version": KEY_FILE_VERSION, "user_id": user_id}
    for usage, key in keys.by_usage().items():
        record[usage] = {"public": key.public, "seed": b64_encode(key.seed)}
    return record


def keys_from_record(record: Any, user_id: str, where: str) -> CrossSigningKeys:
    """The keys of a stored record; CrossSigningError when damaged or another user's."""
    try:
        if record.get("version") != KEY_FILE_VERSION:
            raise ValueError("unknown version")
        if record.get("user_id") != user_id:
            raise CrossSigningError(
                f"The cross-signing identity in {where} belongs to {record.get('user_id')}, "
                f"not to {user_id}: point the bot at its own keys."
            )
        loaded = {}
        for usage in USAGES:
            key = SigningKey(b64_decode(record[usage]["seed"]))
            if key.public != record[usage]["public"]:
                raise ValueError(f"{usage} seed does not match its public key")
            loaded[usage] = key
    except CrossSigningError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CrossSigningError(
            f"The cross-signing keys in {where} are damaged ({exc}): restore them from your backup."
        ) from None
    return CrossSigningKeys(loaded["master"], loaded["self_signing"], loaded["user_signing"])


class KeyVault(Protocol):
    """Where the private cross-signing keys are kept."""

    @property
    def where(self) -> str:
        """How messages name the place (e.g. "the key file /data/cross-signing.json")."""
        ...

    async def load(self, user_id: str) -> CrossSigningKeys | None:
        """The keys, or None when there are none."""
        ...

    async def save(self, user_id: str, keys: CrossSigningKeys) -> None:
        """Keep new keys (never over existing ones)."""
        ...

    async def set_aside(self) -> str:
        """Move the keys out of the way (kept); returns where they went."""
        ...


@dataclass(frozen=True)
class FileVault:
    """The keys in a key file (0600, written atomically, never overwritten)."""

    path: Path

    @property
    def where(self) -> str:
        """The file, for messages."""
        return f"the key file {self.path}"

    async def load(self, user_id: str) -> CrossSigningKeys | None:
        """The keys in the file, or None when there is no file."""
        return await asyncio.to_thread(load_key_file, self.path, user_id)

    async def save(self, user_id: str, keys: CrossSigningKeys) -> None:
        """Write the file."""
        await asyncio.to_thread(save_key_file, self.path, user_id, keys)

    async def set_aside(self) -> str:
        """Rename the file aside."""
        return str(await asyncio.to_thread(set_key_file_aside, self.path))


class StoredVault:
    """The keys as a sealed row of the device's end-to-end state in the bot's database
    (`bot.matrix.keystore`), written under the same transactions as the rest; a key file an
    older bot kept beside its crypto store is moved in the first time (and renamed aside)."""

    def __init__(self, crypto: Crypto, legacy_file: Path) -> None:
        assert crypto.keystore is not None, "the device's state is read first"
        self.crypto = crypto
        self.keystore = crypto.keystore
        self.legacy_file = legacy_file

    @property
    def where(self) -> str:
        """The database, for messages."""
        return "the bot's database"

    async def load(self, user_id: str) -> CrossSigningKeys | None:
        """The stored keys (moving an older key file in), or None."""
        row = self.keystore.get(CROSS_SIGNING, "")
        if row is not None:
            return keys_from_record(row, user_id, self.where)
        keys = await asyncio.to_thread(load_key_file, self.legacy_file, user_id)
        if keys is None:
            return None
        self.keystore.put(CROSS_SIGNING, "", keys_record(user_id, keys))
        await self.crypto.persist()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        moved = self.legacy_file.with_name(f"{self.legacy_file.name}.moved-to-database-{stamp}")
        self.legacy_file.rename(moved)
        log.warning(
            "cross-signing: the keys of %s moved into the database; the file is kept as %s: "
            "delete it once a backup of the database and its key file is made",
            self.legacy_file,
            moved,
        )
        return keys

    async def save(self, user_id: str, keys: CrossSigningKeys) -> None:
        """Store new keys (refused over existing ones)."""
        if self.keystore.get(CROSS_SIGNING, "") is not None:
            raise CrossSigningError(
                "Cross-signing keys appeared in the database while the bot made new ones; "
                "the existing ones were left alone: start again."
            )
        self.keystore.put(CROSS_SIGNING, "", keys_record(user_id, keys))
        await self.crypto.persist()

    async def set_aside(self) -> str:
        """Keep the stored keys under another name (`replaced-<UTC time>`)."""
        row = self.keystore.get(CROSS_SIGNING, "")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        name = f"replaced-{stamp}-{secrets.token_hex(3)}"
        if row is not None:
            self.keystore.put(CROSS_SIGNING, name, row)
            self.keystore.delete(CROSS_SIGNING, "")
            await self.crypto.persist()
        return f"{self.where} ({name})"


def save_key_file(path: Path, user_id: str, keys: CrossSigningKeys) -> None:
    """Write the key file: mode 0600, complete or not at all, never over an existing file
    (`storage.files.write_new_file`); its directory is made 0700 if missing."""
    data = json.dumps(keys_record(user_id, keys), indent=2).encode() + b"\n"
    make_private_dir(path.parent)
    try:
        write_new_file(path, data)
    except FileExistsError:
        raise CrossSigningError(
            f"The cross-signing key file {path} appeared while the bot wrote a new one; "
            "the existing file was left alone: start again."
        ) from None


def set_key_file_aside(path: Path) -> Path:
    """Rename the key file to `<name>.replaced-<UTC time>` (keeping it) and return the new
    path; a name already taken gets a counter, so nothing is ever overwritten.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1, 1000):
        suffix = f".replaced-{stamp}" + (f"-{n}" if n > 1 else "")
        aside = path.with_name(path.name + suffix)
        try:
            os.link(path, aside)  # fails if taken, where a rename would overwrite
        except FileExistsError:
            continue
        os.unlink(path)
        return aside
    raise CrossSigningError(f"Too many set-aside copies of {path}: clean them up.")


def load_key_file(path: Path, user_id: str) -> CrossSigningKeys | None:
    """The keys in the key file, or None when there is no file.

    CrossSigningError when the file is unreadable, damaged, or another user's.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CrossSigningError(
            f"The cross-signing key file {path} cannot be read ({exc.strerror})."
        ) from None
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("cross-signing key file %s is readable by others: chmod 600 it", path)
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise CrossSigningError(
            f"The cross-signing key file {path} is damaged ({exc}): restore it from your backup."
        ) from None
    return keys_from_record(record, user_id, f"the key file {path}")


# ---------------------------------------------------------------- the HTTP edge


@dataclass(frozen=True)
class CrossSigningResult:
    """What `ensure_cross_signed` found and did."""

    outcome: Outcome
    master_key: str
    self_signing_key: str
    device_id: str


def local_device(gateway: Gateway) -> LocalDevice:
    """The gateway's Olm device (the client must run with an Olm store, logged in)."""
    client = gateway.client
    olm = getattr(client, "olm", None)
    if olm is None:
        raise CrossSigningError(
            "The bot's Matrix client runs without an Olm store, so it has no device keys to "
            "cross-sign: give the gateway a crypto store (matrix.encryption on)."
        )
    account = olm.account

    def sign(message: bytes) -> str:
        return str(account.sign(message.decode("utf-8")))

    return LocalDevice(str(client.device_id), str(account.identity_keys["ed25519"]), sign)


async def query_own_keys(gateway: Gateway, device_id: str) -> ServerKeys:
    """The bot's cross-signing keys and device keys as the server has them."""
    answer = await gateway.raw("POST", _QUERY_PATH, {"device_keys": {gateway.user_id: [device_id]}})
    return ServerKeys.from_query(answer, gateway.user_id, device_id)


async def upload_identity(gateway: Gateway, keys: CrossSigningKeys, password: str | None) -> None:
    """Upload the three public keys, answering User-Interactive Auth with the password.

    The first call goes without `auth`: servers need none for a user's first identity
    (MSC3967) and otherwise answer 401 with the flows and a session to use.
    """
    body = device_signing_upload_body(gateway.user_id, keys)
    try:
        await gateway.raw("POST", _DEVICE_SIGNING_UPLOAD_PATH, body)
        return
    except GatewayError as exc:
        if exc.status != 401 or "flows" not in exc.body:
            raise
        challenge = exc.body
    if password is None:
        raise CrossSigningError(
            "The homeserver asks for the bot's password to upload its cross-signing keys, "
            "and none is configured: add the password to the config for this start."
        )
    auth = password_auth(challenge, gateway.user_id, password)
    try:
        await gateway.raw("POST", _DEVICE_SIGNING_UPLOAD_PATH, {**body, "auth": auth})
    except GatewayError as exc:
        if exc.status == 401 or exc.errcode == "M_FORBIDDEN":
            raise CrossSigningError(
                "The homeserver refused the bot's password when uploading the cross-signing "
                f"keys ({exc.errcode or exc.status}): check the configured password."
            ) from None
        raise


async def upload_signatures(gateway: Gateway, body: dict[str, Any]) -> None:
    """Upload signatures; CrossSigningError naming the first one the server rejected."""
    answer = await gateway.raw("POST", _SIGNATURES_UPLOAD_PATH, body)
    failures = answer.get("failures")
    if isinstance(failures, Mapping) and failures:
        raise CrossSigningError(
            f"The homeserver rejected the bot's cross-signing signatures: {failures}"
        )


async def ensure_cross_signed(
    gateway: Gateway,
    *,
    password: str | None,
    key_file: Path | None = None,
    vault: KeyVault | None = None,
    reset: bool = False,
) -> CrossSigningResult:
    """Make the bot's device cross-signed by the identity in `key_file`, doing only what is
    missing. Call it at start-up after the gateway connected with an Olm store and the
    device keys are uploaded.

    - key file and server agree, device signed: one `/keys/query`, nothing else;
    - key file and server agree, device not signed (a new device): sign it;
    - no key file, no identity on the server: create, save the file, upload, sign;
    - key file, no identity on the server: upload the file's identity, sign;
    - identity on the server but no key file, or a different one: CrossSigningError,
      unless `reset` (see `plan_identity`).

    `password` answers User-Interactive Auth; it is only needed to replace an identity or
    on servers that ask for it on the first upload. Raises GatewayError for failed calls.
    """
    if vault is None:
        assert key_file is not None, "a key file or a vault"
        vault = FileVault(key_file)
    user_id = gateway.user_id
    device = local_device(gateway)
    server = await query_own_keys(gateway, device.device_id)
    check_device_keys(server.device, user_id, device)
    stored = await vault.load(user_id)
    plan = plan_identity(stored, server, user_id=user_id, where=vault.where, reset=reset)
    keys = stored
    if plan.set_aside:
        aside = await vault.set_aside()
        log.warning("cross-signing: the keys in %s set aside as %s", vault.where, aside)
    if plan.create:
        keys = CrossSigningKeys.generate()
        # Saved before the upload: a crash in between leaves keys that were never used
        # (the next start uploads them, or a repeated reset sets them aside), never an
        # identity on the server whose private keys are lost.
        await vault.save(user_id, keys)
    assert keys is not None
    if plan.upload:
        if plan.replacing:
            log.warning(
                "cross-signing: replacing the server's identity (master key %s) with %s",
                key_public(server.master),
                keys.master.public,
            )
        await upload_identity(gateway, keys, password)
        server = await query_own_keys(gateway, device.device_id)
        if server.publics() != keys.publics():
            raise CrossSigningError(
                "The homeserver accepted the cross-signing keys but does not return them: "
                "try again later."
            )
    body = signatures_upload_body(user_id, keys, server, device)
    if body:
        await upload_signatures(gateway, body)
    if plan.create:
        outcome = Outcome.CREATED
    elif plan.upload:
        outcome = Outcome.UPLOADED
    else:
        outcome = Outcome.SIGNED if body else Outcome.UNCHANGED
    log.info(
        "cross-signing: %s (master key %s, device %s)",
        outcome.value,
        keys.master.public,
        device.device_id,
    )
    return CrossSigningResult(
        outcome, keys.master.public, keys.self_signing.public, device.device_id
    )
