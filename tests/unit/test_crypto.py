"""The crypto edge's decryption rules, on real Megolm sessions (vodozemac) in memory.

What the bot takes from inside an encrypted event is narrow: messages, reactions and poll
answers of the room the event came from, from a session owned by the sender's device, each
message index once. The real-homeserver flow is in tests/integration/test_encryption.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, AsyncClientConfig
from nio.crypto import InboundGroupSession, OlmDevice, OutboundGroupSession, TrustState
from nio.crypto.key_request import OutgoingKeyRequest
from nio.store import SqliteMemoryStore

from bot.matrix.crypto import Crypto, Outcome, for_olm_machine

BOT = "@bot:example.org"
ALICE = "@alice:example.org"
MALLORY = "@mallory:example.org"
ROOM = "!room:example.org"
OTHER_ROOM = "!other:example.org"


def _key(seed: str) -> str:
    return base64.b64encode(seed.encode().ljust(32, b"\0")[:32]).decode().rstrip("=")


class _Edge:
    def __init__(self, client: AsyncClient) -> None:
        self.user_id = BOT
        self.device_id = "BOTDEVICE"
        self._client = client

    @property
    def client(self) -> AsyncClient:
        return self._client

    async def call(self, awaitable: Any) -> Any:
        raise AssertionError("no network here")

    async def raw(self, method: str, path: str, body: Any = None) -> Any:
        raise AssertionError("no network here")

    async def state_event(self, room_id: str, event_type: str, state_key: str = "") -> Any:
        raise AssertionError("no network here")


class World:
    """The bot's crypto edge and members' Megolm sessions whose keys it holds."""

    def __init__(self, tmp: Path) -> None:
        client = AsyncClient(
            "http://localhost",
            BOT,
            device_id="BOTDEVICE",
            config=AsyncClientConfig(encryption_enabled=True, store=SqliteMemoryStore),
        )
        client.user_id = BOT
        client.load_store()
        assert client.olm is not None
        self.olm = client.olm
        self.crypto = Crypto(_Edge(client), tmp / "crypto")
        self.sessions: dict[tuple[str, str], OutboundGroupSession] = {}
        self.withheld: dict[tuple[str, str], str] = {}  # (user, room) -> session key, index 0
        self.n = 0

    def device(self, user: str) -> str:
        curve = _key("c" + user)
        if not any(True for _ in self.olm.device_store.active_user_devices(user)):
            self.olm.device_store.add(
                OlmDevice(user, "DEV", {"ed25519": _key("e" + user), "curve25519": curve})
            )
        return curve

    def session(self, user: str, room: str, *, key_shared: bool = True) -> OutboundGroupSession:
        found = self.sessions.get((user, room))
        if found is None:
            found = OutboundGroupSession()
            found.shared = True
            if key_shared:
                self.olm.inbound_group_store.add(
                    InboundGroupSession(found.session_key, _key("e" + user), _key("c" + user), room)
                )
            else:
                self.withheld[(user, room)] = found.session_key
            self.sessions[(user, room)] = found
        return found

    def release(self, user: str, room: str) -> None:
        """The sender shares the key they held back (from the session's first message)."""
        key = self.withheld.pop((user, room))
        self.olm.inbound_group_store.add(
            InboundGroupSession(key, _key("e" + user), _key("c" + user), room)
        )

    def encrypted(
        self,
        sender: str,
        plain: dict[str, Any],
        *,
        room: str = ROOM,
        session_of: str | None = None,
        session_room: str | None = None,
        relates: dict[str, Any] | None = None,
        key_shared: bool = True,
    ) -> dict[str, Any]:
        """An m.room.encrypted event `sender` sent to `room` (with `session_of`'s session)."""
        owner = session_of or sender
        self.device(owner)
        out = self.session(owner, session_room or room, key_shared=key_shared)
        self.n += 1
        content: dict[str, Any] = {
            "algorithm": "m.megolm.v1.aes-sha2",
            "sender_key": _key("c" + owner),
            "ciphertext": out.encrypt(json.dumps(plain)),
            "session_id": out.id,
            "device_id": "DEV",
        }
        if relates is not None:
            content["m.relates_to"] = relates
        return {
            "type": "m.room.encrypted",
            "event_id": f"$e{self.n}",
            "sender": sender,
            "origin_server_ts": 1_000 + self.n,
            "content": content,
        }


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _message(body: str, room: str = ROOM) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "room_id": room,
        "content": {"msgtype": "m.text", "body": body},
    }


def test_a_message_decrypts_to_the_plain_event_under_its_own_id(world: World) -> None:
    event = world.encrypted(ALICE, _message("!cb support"))
    result = world.crypto.decrypt(ROOM, event)
    assert result.outcome is Outcome.DECRYPTED
    assert result.event == {
        "type": "m.room.message",
        "content": {"msgtype": "m.text", "body": "!cb support"},
        "event_id": event["event_id"],
        "sender": ALICE,
        "origin_server_ts": event["origin_server_ts"],
    }


def test_a_reaction_takes_its_target_from_the_clear_envelope(world: World) -> None:
    relates = {"rel_type": "m.annotation", "event_id": "$ballot", "key": "👍"}
    event = world.encrypted(
        ALICE, {"type": "m.reaction", "room_id": ROOM, "content": {}}, relates=relates
    )
    result = world.crypto.decrypt(ROOM, event)
    assert result.outcome is Outcome.DECRYPTED
    assert result.event is not None
    assert result.event["content"]["m.relates_to"] == relates


def test_someone_elses_ciphertext_resent_as_ones_own_is_refused(world: World) -> None:
    world.device(MALLORY)
    stolen = world.encrypted(MALLORY, _message("!cb object"), session_of=ALICE)
    result = world.crypto.decrypt(ROOM, stolen)
    assert result.outcome is Outcome.REFUSED
    assert "not the sender's" in result.reason


def test_a_replayed_message_index_is_refused_and_a_redelivery_is_not(world: World) -> None:
    event = world.encrypted(ALICE, _message("!cb support"))
    assert world.crypto.decrypt(ROOM, event).outcome is Outcome.DECRYPTED
    assert world.crypto.decrypt(ROOM, event).outcome is Outcome.DECRYPTED  # same event again
    replay = {**event, "event_id": "$replay"}
    result = world.crypto.decrypt(ROOM, replay)
    assert result.outcome is Outcome.REFUSED
    assert "replayed" in result.reason


@pytest.mark.parametrize(
    ("plain", "why"),
    [
        (
            {"type": "m.room.member", "room_id": ROOM, "state_key": ALICE, "content": {}},
            "not accepted",
        ),
        ({"type": "m.room.power_levels", "room_id": ROOM, "content": {}}, "not accepted"),
        (_message("!cb support", room=OTHER_ROOM), "another room"),
    ],
)
def test_state_other_types_and_other_rooms_are_refused(
    world: World, plain: dict[str, Any], why: str
) -> None:
    result = world.crypto.decrypt(ROOM, world.encrypted(ALICE, plain))
    assert result.outcome is Outcome.REFUSED
    assert why in result.reason


def test_an_encrypted_state_event_and_a_malformed_envelope_are_refused(world: World) -> None:
    event = world.encrypted(ALICE, _message("hi"))
    assert world.crypto.decrypt(ROOM, {**event, "state_key": ""}).outcome is Outcome.REFUSED
    broken = {**event, "content": {**event["content"], "ciphertext": 7}}
    assert world.crypto.decrypt(ROOM, broken).outcome is Outcome.REFUSED
    garbled = {**event, "content": {**event["content"], "ciphertext": "AAAA"}}
    assert world.crypto.decrypt(ROOM, garbled).outcome is Outcome.REFUSED


class _Recording(_Edge):
    """An edge that records the calls housekeeping makes instead of sending them."""

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.calls: list[str] = []

    async def call(self, awaitable: Any) -> Any:
        self.calls.append(awaitable.__qualname__)
        awaitable.close()
        return None

    async def raw(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append(f"{method} {path}")
        if path.endswith("/keys/upload"):  # the one-time keys, uploaded by the edge itself
            return {"one_time_key_counts": {"signed_curve25519": 50}}
        return {}


def _remembered(crypto: Crypto) -> int:
    return sum(len(v) for v in vars(crypto).values() if isinstance(v, set | list | dict))


async def test_an_unreadable_event_waits_and_sends_no_key_request(world: World) -> None:
    """One sender, 2,000 unreadable events, each of a new session: every one waits, no
    to-device key request is queued or sent, and nothing is remembered per session."""
    edge = _Recording(world.crypto.gateway.client)
    world.crypto.gateway = edge
    before = _remembered(world.crypto)
    for n in range(2_000):
        event = world.encrypted(
            MALLORY, _message("?"), key_shared=False, session_room=f"!s{n // 90}:x"
        )
        assert world.crypto.decrypt(ROOM, event).outcome is Outcome.WAITING
    await world.crypto.housekeeping()
    assert _remembered(world.crypto) == before
    assert world.olm.outgoing_key_requests == {}
    assert not any(m.type == "m.room_key_request" for m in world.olm.outgoing_to_device_messages)
    assert not any("to_device" in c and "messages" not in c for c in edge.calls)
    assert not any("m.room_key_request" in c for c in edge.calls)


def test_key_request_answers_from_another_users_device_are_refused_by_nio(
    world: World,
) -> None:
    """Why the bot asks for no keys: even for a session it had asked for, nio's Olm machine
    takes an `m.forwarded_room_key` only from a verified device of the bot's own account,
    never from the sender's (verified or not)."""
    event = world.encrypted(ALICE, _message("!cb object"), key_shared=False)
    session_id = event["content"]["session_id"]
    curve = world.device(ALICE)
    [device] = world.olm.device_store.active_user_devices(ALICE)
    device.trust_state = TrustState.verified
    world.olm.outgoing_key_requests[session_id] = OutgoingKeyRequest(
        "req1", session_id, ROOM, "m.megolm.v1.aes-sha2"
    )
    forwarded = {
        "type": "m.forwarded_room_key",
        "sender": ALICE,
        "content": {
            "algorithm": "m.megolm.v1.aes-sha2",
            "room_id": ROOM,
            "sender_key": curve,
            "session_id": session_id,
            "session_key": world.withheld[(ALICE, ROOM)],
            "sender_claimed_ed25519_key": _key("e" + ALICE),
            "forwarding_curve25519_key_chain": [],
        },
    }
    assert world.olm._handle_olm_event(ALICE, curve, forwarded) is None
    assert world.olm.inbound_group_store.get(ROOM, curve, session_id) is None
    assert world.crypto.decrypt(ROOM, event).outcome is Outcome.WAITING


def test_a_sender_whose_devices_are_unknown_waits(world: World) -> None:
    event = world.encrypted(ALICE, _message("!cb support"))
    world.olm.device_store = type(world.olm.device_store)()  # forget every device
    result = world.crypto.decrypt(ROOM, event)
    assert result.outcome is Outcome.WAITING
    assert ALICE in world.olm.users_for_key_query


def test_timelines_are_decrypted_in_place_and_refused_events_dropped(world: World) -> None:
    good = world.encrypted(ALICE, _message("!cb support"))
    waiting = world.encrypted(ALICE, _message("later"), session_room=OTHER_ROOM)
    bad = world.encrypted(ALICE, {"type": "m.room.topic", "room_id": ROOM, "content": {}})
    plain = {"type": "m.reaction", "event_id": "$clear", "sender": ALICE, "content": {}}
    raw = {"rooms": {"join": {ROOM: {"timeline": {"events": [good, waiting, bad, plain]}}}}}
    world.crypto.decrypt_timeline(raw)
    events = raw["rooms"]["join"][ROOM]["timeline"]["events"]
    assert [e["type"] for e in events] == ["m.room.message", "m.room.encrypted", "m.reaction"]


def test_nio_gets_only_keys_and_room_state_from_a_sync() -> None:
    raw = {
        "next_batch": "s1",
        "to_device": {"events": [{"type": "m.room.encrypted", "content": {}}]},
        "rooms": {
            "join": {
                ROOM: {
                    "timeline": {
                        "events": [
                            {"type": "m.room.message", "content": {"body": "secret"}},
                            {"type": "m.room.member", "state_key": ALICE, "content": {}},
                        ]
                    }
                }
            }
        },
    }
    fed = for_olm_machine(raw)
    timeline = fed["rooms"]["join"][ROOM]["timeline"]["events"]
    assert [e["type"] for e in timeline] == ["m.room.member"]
    assert fed["to_device"]["events"] == raw["to_device"]["events"]
