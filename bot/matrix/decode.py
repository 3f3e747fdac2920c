"""Decode a raw `/sync` response into plain inbound values.

Works on the JSON itself: every field is checked for type, and anything malformed is counted
and skipped, never raised, so one hostile event cannot stop the loop. The raw JSON also
carries what nio does not surface (`rooms.leave`, matrix-nio issue 46).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.matrix.events import (
    CommandText,
    EncryptedMessage,
    EncryptionEnabled,
    InboundEvent,
    Invite,
    LeftRoom,
    PollResponse,
    ReactionAdded,
    Redacted,
    SyncBatch,
)

# Longer bodies are still decoded (the command layer refuses them politely).
MAX_BODY_CHARS = 65_536
# Timeline event types the bot asks for; the sync filter is built from this.
TIMELINE_TYPES: tuple[str, ...] = (
    "m.reaction",
    "m.room.redaction",
    "m.room.message",
    "m.room.encryption",
    "org.matrix.msc3381.poll.response",
    "m.poll.response",
    "m.room.encrypted",
)
POLL_RESPONSE_TYPES = ("org.matrix.msc3381.poll.response", "m.poll.response")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def decode_event(room_id: str, event: Any, bot_user_id: str, prefix: str) -> InboundEvent | None:
    """Decode one timeline event; None for anything the bot does not act on or cannot trust."""
    if not isinstance(event, Mapping):
        return None
    etype = _str(event.get("type"))
    event_id = _str(event.get("event_id"))
    sender = _str(event.get("sender"))
    ts = event.get("origin_server_ts")
    if etype is None or event_id is None or sender is None:
        return None
    if not isinstance(ts, int) or isinstance(ts, bool):
        return None
    if sender == bot_user_id:
        return None
    content = _dict(event.get("content"))
    if etype == "m.reaction":
        relates = _dict(content.get("m.relates_to"))
        target = _str(relates.get("event_id"))
        key = _str(relates.get("key"))
        if relates.get("rel_type") != "m.annotation" or target is None or key is None:
            return None
        return ReactionAdded(room_id, event_id, sender, ts, target, key[:64])
    if etype == "m.room.redaction":
        # Room versions 11+ put `redacts` in content; older ones at the top level.
        redacts = _str(content.get("redacts")) or _str(event.get("redacts"))
        if redacts is None:
            return None
        return Redacted(room_id, event_id, sender, ts, redacts)
    if etype == "m.room.message":
        if content.get("msgtype") not in ("m.text", "m.notice"):
            return None
        if content.get("msgtype") == "m.notice":
            return None  # other bots speak in notices; never act on them
        body = _str(content.get("body"))
        if body is not None and "m.in_reply_to" in _dict(content.get("m.relates_to")):
            body = strip_reply_fallback(body)
        if body is None or not body.lstrip().startswith(prefix):
            return None
        # An edit (m.replace) re-sends the body with "* "; do not run a command twice.
        if _dict(content.get("m.relates_to")).get("rel_type") == "m.replace":
            return None
        return CommandText(room_id, event_id, sender, ts, body[:MAX_BODY_CHARS])
    if etype in POLL_RESPONSE_TYPES:
        relates = _dict(content.get("m.relates_to"))
        poll_id = _str(relates.get("event_id"))
        if relates.get("rel_type") != "m.reference" or poll_id is None:
            return None
        body = content.get("org.matrix.msc3381.poll.response", content.get("m.response"))
        answers = _dict(body).get("answers") if body is not None else content.get("m.selections")
        if not isinstance(answers, list):
            return None
        picked = tuple(a for a in answers if isinstance(a, str))[:8]
        return PollResponse(room_id, event_id, sender, ts, poll_id, picked)
    if etype == "m.room.encrypted":
        return EncryptedMessage(room_id, event_id, sender, ts)
    if etype == "m.room.encryption" and event.get("state_key") == "":
        return EncryptionEnabled(room_id, event_id, sender, ts)
    return None


def strip_reply_fallback(body: str) -> str:
    """Drop the quoted `> <@user> …` lines clients put before a reply's own text."""
    lines = body.split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    if i and i < len(lines) and lines[i] == "":
        i += 1
    return "\n".join(lines[i:]) if i else body


def _invite(room_id: str, room: Mapping[str, Any], bot_user_id: str) -> Invite:
    inviter: str | None = None
    is_direct = False
    events = _dict(room.get("invite_state")).get("events")
    for ev in events if isinstance(events, list) else []:
        ev = _dict(ev)
        if ev.get("type") == "m.room.member" and ev.get("state_key") == bot_user_id:
            content = _dict(ev.get("content"))
            if content.get("membership") == "invite":
                inviter = _str(ev.get("sender"))
                is_direct = content.get("is_direct") is True
    return Invite(room_id, inviter, is_direct)


def _left(room_id: str, room: Mapping[str, Any], bot_user_id: str) -> LeftRoom | None:
    timeline = _dict(room.get("timeline")).get("events")
    state = _dict(room.get("state")).get("events")
    events = [
        *(state if isinstance(state, list) else []),
        *(timeline if isinstance(timeline, list) else []),
    ]
    for ev in reversed(events):
        ev = _dict(ev)
        if ev.get("type") == "m.room.member" and ev.get("state_key") == bot_user_id:
            content = _dict(ev.get("content"))
            membership = _str(content.get("membership")) or "leave"
            return LeftRoom(
                room_id, membership, _str(ev.get("sender")), _str(content.get("reason"))
            )
    return LeftRoom(room_id, "leave", None, None)


def decode_sync(raw: Any, bot_user_id: str, prefix: str, *, initial: bool = False) -> SyncBatch:
    """Decode a whole sync response.

    With `initial` (the very first sync of a fresh database) timeline events are skipped:
    old commands must not run again; invites are still taken.
    """
    data = _dict(raw)
    batch = SyncBatch(next_batch=_str(data.get("next_batch")) or "")
    rooms = _dict(data.get("rooms"))
    for room_id, room in _dict(rooms.get("join")).items():
        if not isinstance(room_id, str):
            continue
        batch.joined_rooms.add(room_id)
        timeline = _dict(_dict(room).get("timeline"))
        if timeline.get("limited") is True:
            batch.limited_rooms.add(room_id)
            prev = _str(timeline.get("prev_batch"))
            if prev:
                batch.prev_batch[room_id] = prev
        if initial:
            continue
        events = timeline.get("events")
        for event in events if isinstance(events, list) else []:
            decoded = decode_event(room_id, event, bot_user_id, prefix)
            if decoded is None:
                batch.skipped += 1
            else:
                batch.events.append(decoded)
    for room_id, room in _dict(rooms.get("invite")).items():
        if isinstance(room_id, str):
            batch.invites.append(_invite(room_id, _dict(room), bot_user_id))
    for room_id, room in _dict(rooms.get("leave")).items():
        if isinstance(room_id, str):
            left = _left(room_id, _dict(room), bot_user_id)
            if left is not None:
                batch.left.append(left)
    return batch


def sync_filter(timeline_limit: int = 100) -> dict[str, Any]:
    """The sync filter: only what the bot acts on, so initial syncs stay fast."""
    return {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": timeline_limit, "types": list(TIMELINE_TYPES)},
            "state": {"lazy_load_members": True, "types": ["m.room.member", "m.room.encryption"]},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    }
