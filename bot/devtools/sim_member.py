"""A simulated member: a real Matrix client, for the demo and the real-homeserver tests.

It talks to the homeserver through the same `Gateway` as the bot, syncs on its own and keeps
every timeline event it saw, so a test can wait for "the bot's summary in room X".
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot.matrix.gateway import Gateway
from bot.matrix.rooms import MEGOLM

Event = dict[str, Any]
_ENCRYPTION: Event = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": MEGOLM},
}
_txn = itertools.count(1)


class SimMember:
    """One member's client. `connect()` logs in with an access token; nothing in __init__."""

    def __init__(
        self,
        homeserver: str,
        user_id: str,
        access_token: str,
        device_id: str,
        crypto_store: Path | None = None,
    ) -> None:
        self.user_id = user_id
        self._token = access_token
        # With a crypto store the member is an encrypting client (nio's Olm on vodozemac).
        self.gateway = Gateway(
            homeserver, user_id, device_id, crypto_store=crypto_store, crypto_accepts=None
        )
        self.since: str | None = None
        self.events: dict[str, list[Event]] = {}
        self.invites: dict[str, str | None] = {}  # room ID -> inviter

    async def connect(self) -> None:
        """Adopt the access token and do a first sync."""
        await self.gateway.connect(password=None, access_token=self._token)
        await self.sync(0)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.gateway.close()

    async def sync(self, timeout_ms: int = 1_000) -> None:
        """One sync; remembers timeline events and invites."""
        raw = await self.gateway.sync(
            self.since,
            timeout_ms,
            {"room": {"timeline": {"limit": 200}}, "presence": {"types": []}},
        )
        self.since = raw.get("next_batch", self.since)
        crypto = self.gateway.crypto
        if crypto is not None:
            await crypto.absorb(raw)
            crypto.decrypt_timeline(raw)
        rooms = raw.get("rooms", {})
        for room_id, room in rooms.get("join", {}).items():
            self.events.setdefault(room_id, []).extend(room.get("timeline", {}).get("events", []))
            self.invites.pop(room_id, None)
        for room_id, room in rooms.get("invite", {}).items():
            inviter = None
            for ev in room.get("invite_state", {}).get("events", []):
                if ev.get("type") == "m.room.member" and ev.get("state_key") == self.user_id:
                    inviter = ev.get("sender")
            self.invites[room_id] = inviter

    async def wait_for(
        self,
        match: Callable[[Event], bool],
        *,
        room_id: str | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> Event:
        """The first event (seen so far or arriving within `timeout`) that matches."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            rooms = [room_id] if room_id else list(self.events)
            for rid in rooms:
                for ev in self.events.get(rid, []):
                    if match(ev):
                        return ev
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"{self.user_id}: no matching event within {timeout} s")
            await self.sync(int(min(left, 5.0) * 1000))

    async def wait_invite(
        self,
        match: Callable[[str], bool] = lambda _room: True,
        timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> str:
        """Wait for an invite to a room (matching the room ID) and return the room ID."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for room_id in self.invites:
                if match(room_id):
                    return room_id
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"{self.user_id}: no invite within {timeout} s")
            await self.sync(int(min(left, 5.0) * 1000))

    async def join(self, room_id: str) -> None:
        """Join a room."""
        await self.gateway.join(room_id)
        self.invites.pop(room_id, None)

    async def say(self, room_id: str, body: str) -> str:
        """Send a text message; returns its event ID."""
        content = {"msgtype": "m.text", "body": body}
        return await self.gateway.send_message(room_id, content, f"sim{next(_txn)}")

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        """React to an event; returns the reaction's event ID."""
        return await self.gateway.send_reaction(room_id, event_id, key, f"sim{next(_txn)}")

    async def redact(self, room_id: str, event_id: str) -> str:
        """Redact one's own event (retract a reaction)."""
        return await self.gateway.redact(room_id, event_id, f"sim{next(_txn)}")

    async def set_profile_field(self, name: str, value: str) -> None:
        """Set a profile field (e.g. `m.tz`, spec v1.16)."""
        path = f"/_matrix/client/v3/profile/{quote(self.user_id, safe='')}/{quote(name, safe='')}"
        await self.gateway.raw("PUT", path, {name: value})

    async def send_event(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        """Send any event (e.g. a poll response)."""
        return await self.gateway.send_message(room_id, content, f"sim{next(_txn)}", event_type)

    async def open_dm(self, user_id: str, *, encrypted: bool = False) -> str:
        """Open a direct chat with someone (an `is_direct` invite), encrypted if asked."""
        return await self.gateway.create_room(
            name="",
            topic="",
            initial_state=[_ENCRYPTION] if encrypted else [],
            power_level_override={},
            invite=[user_id],
            is_direct=True,
        )

    async def create_room(self, name: str, invite: list[str], *, encrypted: bool = False) -> str:
        """Create a private room (encrypted if asked) and invite people to it."""
        room_id = await self.gateway.create_room(
            name=name,
            topic="",
            initial_state=[_ENCRYPTION] if encrypted else [],
            power_level_override={},
            invite=invite,
        )
        return room_id


def bot_message(kind: str, request: int | None = None, **fields: Any) -> Callable[[Event], bool]:
    """A matcher for a bot message of a `consensus_bot` kind (and request, and fields)."""

    def match(ev: Event) -> bool:
        meta = ev.get("content", {}).get("consensus_bot")
        if not isinstance(meta, dict) or meta.get("kind") != kind:
            return False
        if request is not None and meta.get("request") != request:
            return False
        return all(meta.get(k) == v for k, v in fields.items())

    return match


def reaction_to(event_id: str, key: str, sender: str | None = None) -> Callable[[Event], bool]:
    """A matcher for a reaction with `key` on `event_id`."""

    def match(ev: Event) -> bool:
        rel = ev.get("content", {}).get("m.relates_to", {})
        return (
            ev.get("type") == "m.reaction"
            and rel.get("event_id") == event_id
            and rel.get("key") == key
            and (sender is None or ev.get("sender") == sender)
        )

    return match
