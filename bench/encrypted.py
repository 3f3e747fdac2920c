"""Ingest of encrypted events: the cost of decryption per event (issue 14), same run.

The ingest workload's timeline events are encrypted as members' clients would send them:
each member has a device (its curve25519 key known to the bot, as after `/keys/query`) and
its own Megolm session, whose key the bot holds (as after the to-device room key). Then:

* bot: `json.loads` → `Crypto.decrypt_timeline` (Megolm, the sender-key and type checks,
  rebuilding the plain event) → `decode_sync` → `Batches.apply_batch` with a durable commit,
  on a copy of the same starting database as the unencrypted run;
* baseline, same run: nio's `decrypt_megolm_event` alone on the same events (the least any
  nio-based bot pays to read them).

Key exchange (Olm, to-device) is per member and session, not per event, and is left out.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from bench.ingest import BOT, PREFIX, Workload, engine

BOT_DEVICE = "BENCHBOT"


class _Edge:
    """The little of `Gateway` the crypto edge uses to decrypt (no network here)."""

    def __init__(self, client: Any) -> None:
        self.user_id = BOT
        self.device_id = BOT_DEVICE
        self._client = client

    @property
    def client(self) -> Any:
        return self._client

    async def call(self, awaitable: Any) -> Any:
        raise RuntimeError("no network in the benchmark")

    async def raw(self, method: str, path: str, body: Any = None) -> Any:
        raise RuntimeError("no network in the benchmark")

    async def state_event(self, room_id: str, event_type: str, state_key: str = "") -> Any:
        raise RuntimeError("no network in the benchmark")


def _key(seed: str) -> str:
    return base64.b64encode(seed.encode().ljust(32, b"\0")[:32]).decode().rstrip("=")


def setup(workdir: Path, work: Workload) -> tuple[Any, list[bytes], list[tuple[Any, str]]]:
    """The bot's crypto edge holding every member's room keys, the workload's responses
    with their timeline events encrypted, and (MegolmEvent, room) pairs for the baseline."""
    from nio import AsyncClient, AsyncClientConfig, MegolmEvent
    from nio.crypto import InboundGroupSession, OlmDevice, OutboundGroupSession
    from nio.store import SqliteMemoryStore

    from bot.matrix.crypto import Crypto

    client = AsyncClient(
        "http://localhost",
        BOT,
        device_id=BOT_DEVICE,
        config=AsyncClientConfig(encryption_enabled=True, store=SqliteMemoryStore),
    )
    client.user_id = BOT  # as after a login
    client.load_store()
    olm = client.olm
    assert olm is not None
    crypto = Crypto(_Edge(client), workdir / "crypto")
    sessions: dict[tuple[str, str], tuple[OutboundGroupSession, str]] = {}

    def session(sender: str, room: str) -> tuple[OutboundGroupSession, str]:
        found = sessions.get((sender, room))
        if found is None:
            curve, signing = _key("c" + sender), _key("e" + sender)
            device_id = "DEV" + str(abs(hash(sender)) % 10**6)
            if not any(True for _ in olm.device_store.active_user_devices(sender)):
                olm.device_store.add(
                    OlmDevice(sender, device_id, {"ed25519": signing, "curve25519": curve})
                )
            out = OutboundGroupSession()
            out.shared = True  # as after the to-device room key was sent
            olm.inbound_group_store.add(InboundGroupSession(out.session_key, signing, curve, room))
            found = sessions[(sender, room)] = (out, curve)
        return found

    encrypted: list[bytes] = []
    pairs: list[tuple[Any, str]] = []
    for raw_bytes in work.batches:
        raw = json.loads(raw_bytes)
        for room_id, room in raw.get("rooms", {}).get("join", {}).items():
            events = room.get("timeline", {}).get("events", [])
            for n, event in enumerate(events):
                if event.get("type") not in ("m.reaction", "m.room.message"):
                    continue  # redactions are never encrypted
                out, curve = session(event["sender"], room_id)
                plain = {"type": event["type"], "content": event["content"], "room_id": room_id}
                content: dict[str, Any] = {
                    "algorithm": "m.megolm.v1.aes-sha2",
                    "sender_key": curve,
                    "ciphertext": out.encrypt(json.dumps(plain)),
                    "session_id": out.id,
                    "device_id": "DEV",
                }
                relates = event["content"].get("m.relates_to")
                if relates is not None:
                    content["m.relates_to"] = relates
                events[n] = {**event, "type": "m.room.encrypted", "content": content}
                megolm = MegolmEvent.from_dict(events[n])
                megolm.room_id = room_id
                pairs.append((megolm, room_id))
        encrypted.append(json.dumps(raw).encode())
    return crypto, encrypted, pairs


async def run_encrypted(path: Path, crypto: Any, batches: list[bytes]) -> tuple[float, float]:
    """The bot's path on encrypted responses: (total seconds, seconds in decrypt_timeline)."""
    from bot.matrix.decode import decode_sync
    from storage.database import Database

    db = Database(path)
    await db.open()
    bot = engine(db)
    total = decrypting = 0.0
    try:
        for raw_bytes in batches:
            t0 = time.perf_counter()
            raw = json.loads(raw_bytes)
            t1 = time.perf_counter()
            crypto.decrypt_timeline(raw)
            t2 = time.perf_counter()
            result = await bot.batches.apply_batch(decode_sync(raw, BOT, PREFIX))
            total += time.perf_counter() - t0
            decrypting += t2 - t1
            assert not result.failed
    finally:
        await db.close()
    return total, decrypting


def decrypt_alone(crypto: Any, pairs: list[tuple[Any, str]]) -> float:
    """Seconds for nio's Megolm decryption of every event, nothing else."""
    olm = crypto.gateway.client.olm
    t0 = time.perf_counter()
    for megolm, room_id in pairs:
        olm.decrypt_megolm_event(megolm, room_id)
    return time.perf_counter() - t0
